"""Every bad input is a clear error naming the option or file, before any work or folder is made."""
import json
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from sedge.cli import main as cli_main
from sedge.models.config import TrainConfig
from sedge.data import DataError, load_data
from sedge.data.folder import load_folder
from sedge.training.train import train

from helpers import MICRO, toy_data


def run(args, capsys):
    rc = cli_main(args)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["train", "--lr", "-1"], "--lr must be > 0"),
    (["train", "--batch-size", "0"], "--batch-size must be ≥ 1"),
    (["train", "--epochs", "0"], "--epochs must be ≥ 1"),
    (["train", "--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["train", "--augment", "pitch=3"], "--augment 'pitch=3'"),
])
def test_train_refuses_bad_values_before_loading_data(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("sedge.data.load_data", lambda spec: pytest.fail("data loaded before validation"))
    rc, err = run(args + ["--out", str(tmp_path / "run")], capsys)
    assert rc == 2 and message in err
    assert not (tmp_path / "run").exists()


def test_unavailable_cuda_is_an_error(capsys, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rc, err = run(["train", "--device", "cuda", "--out", str(tmp_path / "r")], capsys)
    assert rc == 2 and "CUDA is not available" in err


@pytest.mark.parametrize("scale,message", [("", "got nothing"), ("1,1000,20000", "factors must lie in 1…16000")])
def test_step_scale_is_checked(scale, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["cost", "--model", "tiny", "--step-scale", scale])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_prune_refuses_a_negative_budget_without_creating_the_folder(tmp_path, capsys):
    out = tmp_path / "prune"
    rc, err = run(["prune", "--checkpoint", "x.pt", "--budget", "-1", "--out", str(out)], capsys)
    assert rc == 2 and "--budget must be ≥ 0" in err and not out.exists()


def test_export_to_an_existing_file_and_a_run_folder_as_checkpoint(tmp_path, capsys):
    train(MICRO, toy_data(), TrainConfig(epochs=1, batch_size=8, warmup_steps=2), tmp_path / "run", progress=False)
    f = tmp_path / "file.txt"
    f.write_text("x")
    rc, err = run(["export", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--out", str(f)], capsys)
    assert rc == 2 and "is an existing file" in err
    rc, err = run(["cost", "--checkpoint", str(tmp_path / "run")], capsys)
    assert rc == 2 and "is a folder" in err and "best.pt" in err


def test_synthetic_option_of_the_wrong_type_names_the_option():
    with pytest.raises(DataError, match="n_speakers='abc': expected an integer"):
        load_data("synthetic:n_speakers=abc")


def make_folder(root, n=30, sr=16000, value=None):
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for s in range(n):
            x = 0.1 * rng.standard_normal(sr) if value is None else np.full(sr, value)
            sf.write(root / label / f"spk{s}_nohash_0.wav", x, sr, subtype="FLOAT")


def test_non_finite_samples_are_an_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr("sedge.data.folder.CACHE", tmp_path / "cache")
    make_folder(tmp_path / "d")
    bad = tmp_path / "d" / "a" / "spk3_nohash_0.wav"
    x, sr = sf.read(bad)
    x[100] = np.nan
    sf.write(bad, x, sr, subtype="FLOAT")
    with pytest.raises(DataError, match=r"spk3_nohash_0.wav: 1 of 16000 samples are NaN or infinite"):
        load_folder(tmp_path / "d")


def test_a_replaced_file_of_the_same_size_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setattr("sedge.data.folder.CACHE", tmp_path / "cache")
    make_folder(tmp_path / "d")
    first = load_folder(tmp_path / "d")
    target = tmp_path / "d" / "a" / "spk0_nohash_0.wav"
    size = target.stat().st_size
    sf.write(target, np.full(16000, 0.5), 16000, subtype="FLOAT")
    assert target.stat().st_size == size
    import os
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))    # a coarse clock must not hide it
    second = load_folder(tmp_path / "d")
    w1 = np.concatenate([first.train.waves, first.val.waves, first.test.waves])
    w2 = np.concatenate([second.train.waves, second.val.waves, second.test.waves])
    assert not np.array_equal(w1, w2)


def test_conversions_give_one_summary_warning_also_when_cached(tmp_path, monkeypatch):
    monkeypatch.setattr("sedge.data.folder.CACHE", tmp_path / "cache")
    make_folder(tmp_path / "d", sr=8000)
    for _ in range(2):                                   # decoded, then from the cache
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_folder(tmp_path / "d")
        ours = [w for w in caught if "resampled from 8000 Hz" in str(w.message)]
        assert len(ours) == 1 and "60 resampled" in str(ours[0].message)


def test_evaluate_scores_every_clip_of_another_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sedge.data.folder.CACHE", tmp_path / "cache")
    train(MICRO, toy_data(length=16000), TrainConfig(epochs=1, batch_size=8, warmup_steps=2), tmp_path / "run",
          progress=False)
    make_folder(tmp_path / "d")
    rc = cli_main(["evaluate", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--data", f"folder:{tmp_path / 'd'}",
                   "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 0 and "all accuracy on 60 clips" in out
    assert np.sum(json.loads((tmp_path / "r.json").read_text())["confusion"]) == 60


@pytest.mark.parametrize("kind,kwargs,family", [("dcase", {}, "DCASE CNN"),
                                                ("acdnet", {"widths": [8, 16, 16, 32, 32, 48, 48, 64, 64], "xnor": True}, "ACDNet"),
                                                ("transformer", {}, "transformer")])
def test_evaluate_and_cost_take_baseline_checkpoints_and_export_says_it_is_for_s_edge(kind, kwargs, family, tmp_path, capsys):
    from sedge.training.baselines import build_baseline
    from sedge.training.checkpoints import save_checkpoint
    spec = "synthetic:n_speakers=10,words=yes+no+up"
    data = load_data(spec)
    model = build_baseline(kind, n_classes=len(data.classes), **kwargs)
    ckpt = tmp_path / "best.pt"
    save_checkpoint(ckpt, model, {"classes": data.classes, "norm": data.stats(), "data": spec, "epoch": 0, "val_acc": 0.0})
    assert cli_main(["evaluate", "--checkpoint", str(ckpt), "--data", spec, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"test accuracy on {len(data.test)} clips" in out and family in out
    assert cli_main(["cost", "--checkpoint", str(ckpt)]) == 0
    cost = json.loads(capsys.readouterr().out)
    assert cost["family"] == family and cost["params"] > 0 and cost["macs_per_clip"] > 0
    rc, err = run(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "cpp")], capsys)
    assert rc == 2 and f"is a {family} checkpoint" in err and "S-Edge checkpoints only" in err
    assert not (tmp_path / "cpp").exists()
    rc, err = run(["evaluate", "--checkpoint", str(ckpt), "--data", spec, "--step-scale", "1,2,6"], capsys)
    assert rc == 2 and "--step-scale applies to S-Edge checkpoints" in err


@pytest.mark.parametrize("flag,rzoh", [([], True), (["--no-rzoh"], False)])
def test_train_no_rzoh_switches_the_hold_off_in_the_model_configuration(flag, rzoh, capsys, tmp_path, monkeypatch):
    seen = {}

    def fake_train(cfg, data, tcfg, out, **kw):
        seen["cfg"] = cfg
        return {"model": cfg.name}
    monkeypatch.setattr("sedge.data.load_data", lambda spec: toy_data())
    monkeypatch.setattr("sedge.training.train.train", fake_train)
    rc, _ = run(["train", "--model", "tiny", "--device", "cpu", "--out", str(tmp_path / "r")] + flag, capsys)
    assert rc == 0 and seen["cfg"].rzoh is rzoh


@pytest.mark.parametrize("args,message", [
    (["reduce", "--checkpoint", "x.pt", "--states", "4,-,-", "--method", "data"], "give --data"),
    (["prune", "--checkpoint", "x.pt", "--method", "data", "--gramian-clips", "0"], "--gramian-clips must be ≥ 1"),
    (["prune", "--checkpoint", "x.pt", "--screen", "-5"], "--screen must be ≥ 0 validation clips"),
    (["prune", "--checkpoint", "x.pt", "--screen", "32", "--batch", "0"], "--batch must be ≥ 1"),
    (["prune", "--checkpoint", "x.pt", "--batch", "4"], "give --screen N"),
    (["prune", "--checkpoint", "x.pt", "--refit-clips", "-1"], "--refit-clips must be ≥ 0"),
    (["prune", "--checkpoint", "x.pt", "--refit-clips", "8", "--method", "matchdc"], "use --method truncate or data"),
])
def test_data_weighted_reduction_options_are_checked_first(args, message, tmp_path, capsys):
    out = tmp_path / "out"
    rc, err = run(args + ["--out", str(out)], capsys)
    assert rc == 2 and message in err and not out.exists()


def test_reduce_with_the_data_weighted_method_writes_a_smaller_model(tmp_path, capsys, monkeypatch):
    from sedge.training.checkpoints import load_checkpoint
    monkeypatch.setattr("sedge.data.folder.CACHE", tmp_path / "cache")
    rng = np.random.default_rng(0)
    for lab, level in (("a", -0.3), ("b", 0.0), ("c", 0.3)):
        (tmp_path / "d" / lab).mkdir(parents=True)
        for s in range(20):
            sf.write(tmp_path / "d" / lab / f"sp{s}_nohash_0.wav", level + 0.05 * rng.standard_normal(400), 16000)
    spec = f"folder:{tmp_path / 'd'}"
    train(MICRO, load_data(spec), TrainConfig(epochs=1, batch_size=8, warmup_steps=2), tmp_path / "run", progress=False)
    out = tmp_path / "small.pt"
    rc = cli_main(["reduce", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--states", "2,-", "--method", "data",
                   "--data", spec, "--gramian-clips", "4", "--out", str(out)])
    model, meta = load_checkpoint(out)
    assert rc == 0 and [l.P for l in model.layers][1:] == [4] and model.layers[0].P <= 3 and meta["method"] == "data"
