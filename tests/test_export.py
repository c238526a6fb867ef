"""Export dict, float64 NumPy reference and generated C++ (SPEC §9)."""
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from sedge.models.config import model_config
from sedge.deploy.cpp import CompilerError, CppModel, build_cli, build_shared, find_compiler, generate_cpp
from sedge.deploy.export import export_dict, load_export, reference_logits, save_export
from sedge.models.model import build_model
from sedge.paths import MINI_SPEECH_COMMANDS
from sedge.compress.reduction import reduce_layer


def model_with_stats(name="tiny", n_classes=5, seed=0):
    m = build_model(model_config(name, n_classes=n_classes), seed=seed).eval()
    g = torch.Generator().manual_seed(seed)
    for l in m.layers:
        if l.norm is not None:
            l.norm.running_mean.copy_(torch.rand(l.d_in, generator=g) * 0.4 - 0.2)
            l.norm.running_var.copy_(torch.rand(l.d_in, generator=g) * 1.5 + 0.5)
    return m


def real_clips(n=4) -> np.ndarray:
    """``n`` clips of real speech when the mini Speech Commands excerpt is beside the project, else
    synthetic (test clips first, then validation and training clips: these are only input signals,
    and the small synthetic set has fewer test clips than some tests need)."""
    from sedge.data import load_data
    d = load_data("mini") if MINI_SPEECH_COMMANDS.exists() else load_data("synthetic:n_speakers=10,words=yes+no")
    waves = np.concatenate([d.test.waves, d.val.waves, d.train.waves])[:n]
    assert len(waves) == n, f"the data set has only {len(waves)} clips"
    return waves.astype(np.float32) / 32768


@pytest.mark.parametrize("steps", [[1, 1, 1], [1, 2, 6], [1, 9, 54]])
def test_numpy_reference_matches_pytorch(steps, tmp_path):
    m = model_with_stats().double()
    x = torch.from_numpy(real_clips().astype(np.float64))
    d = export_dict(m, steps, norm=(0.001, 0.1))
    save_export(d, tmp_path / "e.npz")
    d2 = load_export(tmp_path / "e.npz")
    with torch.no_grad():
        ref = m((x - 0.001) / 0.1).numpy()
    assert np.allclose(reference_logits(d2, x.numpy()), ref, rtol=1e-9, atol=1e-12)


def test_export_of_reduced_layers_with_feedthrough():
    m = model_with_stats().double()
    m.layers[1] = reduce_layer(m.layers[1], 12)
    m.layers[2] = reduce_layer(m.layers[2], 6, method="matchdc")
    x = torch.from_numpy(real_clips(2).astype(np.float64))
    d = export_dict(m, [1, 2, 6])
    with torch.no_grad():
        assert np.allclose(reference_logits(d, x.numpy()), m(x).numpy(), rtol=1e-9, atol=1e-12)
    assert d["layers"][2]["D"] is not None


def test_bad_export_file(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a sedge export"):
        load_export(tmp_path / "x.npz")


@pytest.mark.parametrize("name,steps", [("tiny", [1, 1, 1]), ("tiny", [1, 9, 54]), ("s", [1, 2, 2, 6, 18, 54])])
def test_cpp_parity_with_numpy_and_pytorch(name, steps, tmp_path):
    m = model_with_stats(name)
    x = real_clips()
    d = export_dict(m, steps, norm=(0.001, 0.1))
    cpp = CppModel(build_shared(generate_cpp(d, tmp_path / "cpp")))
    ref = reference_logits(d, x.astype(np.float64))
    out = cpp.classify(x)
    assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max()
    assert (out.argmax(1) == ref.argmax(1)).all()
    with torch.no_grad():
        pt = m.set_step_scale(steps)((torch.from_numpy(x) - 0.001) / 0.1).numpy()
    assert np.abs(pt - out).max() <= 1e-4 * np.abs(pt).max()
    streamed = cpp.classify(x, path="stream")
    assert np.abs(streamed - out).max() <= 1e-5 * np.abs(out).max()   # blocked products ≈ per-sample loop
    assert np.array_equal(cpp.stream(x[0]), streamed[0])              # push API == its whole-clip loop, bit for bit
    assert cpp.weight_bytes > 0 and cpp.state_bytes > 0


def test_cpp_cli_classifies_a_wav(tmp_path):
    m = model_with_stats(n_classes=3)
    d = export_dict(m, [1, 2, 6], classes=["yes", "no", "up"])
    exe = build_cli(generate_cpp(d, tmp_path / "cpp"))
    clip = real_clips(1)[0]
    sf.write(tmp_path / "a.wav", clip, 16000, subtype="PCM_16")
    out = subprocess.run([str(exe), str(tmp_path / "a.wav")], capture_output=True, text=True)
    assert out.returncode == 0
    top, *rows = out.stdout.split("\n")
    logits = reference_logits(d, (np.round(clip * 32768) / 32768)[None].astype(np.float64))[0]
    assert top == ["yes", "no", "up"][int(np.argmax(logits))]
    sf.write(tmp_path / "b.wav", clip, 8000, subtype="PCM_16")
    bad = subprocess.run([str(exe), str(tmp_path / "b.wav")], capture_output=True, text=True)
    assert bad.returncode == 2 and "8000 Hz, expected 16000" in bad.stderr
    assert (tmp_path / "cpp" / "CMakeLists.txt").exists() and (tmp_path / "cpp" / "README.md").exists()


def test_missing_compiler_and_compile_errors(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(CompilerError, match="no C\\+\\+ compiler"):
        find_compiler()
    monkeypatch.undo()
    (tmp_path / "sedge_model.cpp").write_text("this is not C++")
    with pytest.raises(CompilerError, match="failed"):
        build_shared(tmp_path)


def test_export_cli(tmp_path, capsys):
    from sedge.cli import main as cli_main
    from sedge.training.checkpoints import save_checkpoint
    m = model_with_stats(n_classes=3)
    save_checkpoint(tmp_path / "m.pt", m, {"classes": ["a", "b", "c"], "norm": (0.0, 0.1)})
    assert cli_main(["export", "--checkpoint", str(tmp_path / "m.pt"), "--step-scale", "1,9,54",
                     "--out", str(tmp_path / "out"), "--build"]) == 0
    d = load_export(tmp_path / "out" / "export.npz")
    assert d["step_scale"] == [1, 9, 54] and d["classes"] == ["a", "b", "c"]
    assert (tmp_path / "out" / "sedge_classify").exists()


def test_cpp_blocked_path_on_reduced_layers_and_odd_lengths(tmp_path):
    m = model_with_stats()
    m.layers[1] = reduce_layer(m.layers[1], 12)
    m.layers[2] = reduce_layer(m.layers[2], 5, method="matchdc")           # odd order: a real mode, and D
    m.cfg = type(m.cfg).from_dict({**m.cfg.to_dict(), "states": tuple(l.P for l in m.layers)})
    x = real_clips(3)[:, :15_963]                                             # not a multiple of any block
    d = export_dict(m, [1, 2, 6], norm=(0.001, 0.1))
    assert d["layers"][2]["D"] is not None
    cpp = CppModel(build_shared(generate_cpp(d, tmp_path / "cpp")))
    ref = reference_logits(d, x.astype(np.float64))
    for path in ("block", "stream"):
        out = cpp.classify(x, path=path)
        assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max(), path
    with pytest.raises(ValueError, match="path"):
        cpp.classify(x, path="fast")


def test_best_cpu_seconds_warms_up_then_takes_the_minimum():
    from sedge.deploy.cpp import best_cpu_seconds
    calls = []

    def work():
        calls.append(1)
        sum(i * i for i in range(20000 if len(calls) % 2 else 200000))   # alternately short and long
    t = best_cpu_seconds(work, 4)
    assert len(calls) == 5
    long = best_cpu_seconds(lambda: sum(i * i for i in range(200000)), 1)
    assert 0 <= t < long / 3                 # the short calls (10× less work), not a long one or their mean


def test_padding_states_for_the_cpp_vectors_changes_no_output():
    from sedge.deploy.cpp import pad_states
    m = model_with_stats()
    m.layers[2] = reduce_layer(m.layers[2], 6)
    m.cfg = type(m.cfg).from_dict({**m.cfg.to_dict(), "states": tuple(l.P for l in m.layers)})
    d = export_dict(m, [1, 2, 6], norm=(0.001, 0.1))
    padded = pad_states(d)
    before, after = [l["P"] for l in d["layers"]], [l["P"] for l in padded["layers"]]
    assert before[2] % 8 and after == [-(-p // 8) * 8 for p in before], (before, after)
    x = real_clips(2).astype(np.float64)
    assert np.array_equal(reference_logits(padded, x), reference_logits(d, x))
