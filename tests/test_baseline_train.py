"""Training loop and cached stages of the comparison baselines (SPEC §10)."""
import json

import pytest
import torch

from sedge.compress.prune_quantise import apply_masks, magnitude_masks, sparsity_of
from sedge.pipeline.baseline_experiments import baseline_run, filter_pruned_run
from sedge.training.baselines import build_baseline, load_baseline, train_baseline
from sedge.data import load_data

SPEC = "synthetic:n_speakers=10,words=yes+no+up"


def test_baseline_run_is_cached_and_filter_pruning_never_loses_the_pruned_model(tmp_path):
    s = baseline_run("dcase", SPEC, tmp_path / "syn_dcase", epochs=1, lr=0.003, max_steps=3, progress=False)
    assert s["best_epoch"] == 1 and 0 <= s["test_acc"] <= 1
    stamp = (tmp_path / "syn_dcase" / "best.pt").stat().st_mtime_ns
    again = baseline_run("dcase", SPEC, tmp_path / "syn_dcase", epochs=1, lr=0.003, max_steps=3, progress=False)
    assert again["val_acc"] == s["val_acc"] and (tmp_path / "syn_dcase" / "best.pt").stat().st_mtime_ns == stamp
    r = filter_pruned_run(s["run_dir"], SPEC, (2, 3), epochs=1, lr=0.001, max_steps=2, progress=False)
    assert r["pruned"]["channels"][0] == 16 and r["pruned"]["channels"][1] < 16 and r["pruned"]["channels"][2] < 32
    assert r["pruned"]["params_keras"] < r["unpruned"]["params_keras"]
    assert r["pruned"]["macs"]["total"] < r["unpruned"]["macs"]["total"]
    assert r["finetuned"]["val_acc"] >= r["pruned"]["val_acc"]            # the pruned model competes as epoch 0
    small, _ = load_baseline(r["out"] + "/best.pt")
    assert list(small.channels) == r["pruned"]["channels"]
    with pytest.raises(ValueError, match="subset"):
        filter_pruned_run(s["run_dir"], SPEC, (4,), epochs=1, lr=0.001)


def test_masks_reapplied_after_every_step_keep_the_sparsity(tmp_path):
    data = load_data(SPEC)
    model = build_baseline("dcase", n_classes=len(data.classes))
    masks = magnitude_masks(model, 0.9)
    apply_masks(model, masks)
    train_baseline(model, data, tmp_path, epochs=1, lr=0.01, max_steps=3, progress=False,
                   after_step=lambda m: apply_masks(m, masks))
    trained, blob = load_baseline(tmp_path / "best.pt")
    assert sparsity_of(trained) >= 0.89 and json.loads((tmp_path / "summary.json").read_text())["epochs"] == 1
    assert len(torch.load(tmp_path / "last.pt", weights_only=False)["history"]) == 1   # the run's commit point


def test_bad_baseline_inputs(tmp_path):
    with pytest.raises(ValueError, match="unknown baseline"):
        build_baseline("resnet")
    torch.save({"x": 1}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="x.pt: not a sedge checkpoint"):
        load_baseline(tmp_path / "x.pt")


def test_baseline_cli(tmp_path, capsys):
    from sedge.cli import main as cli_main
    out = tmp_path / "t"
    assert cli_main(["baseline", "--kind", "transformer", "--data", "synthetic:n_speakers=20,words=yes+no+up",
                     "--epochs", "1", "--max-steps", "1", "--out", str(out)]) == 0
    assert (out / "best.pt").exists()
    assert cli_main(["prune-layers", "--run", str(out), "--family", "transformer", "--data",
                     "synthetic:n_speakers=20,words=yes+no+up", "--epochs", "1", "--max-steps", "1"]) == 0
    assert json.loads((out / "convexity" / "result.json").read_text())["layers"] == 4
    assert cli_main(["baseline", "--kind", "dcase", "--xnor", "--out", str(tmp_path / "x")]) == 2
    assert "acdnet only" in capsys.readouterr().err
    assert cli_main(["baseline", "--kind", "acdnet", "--float-sfeb", "--out", str(tmp_path / "f")]) == 2
    assert "--xnor networks only" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


_RUN_IN_A_FRESH_PROCESS = r"""
import hashlib, sys, torch
draws = int(sys.argv[2])
torch.rand(draws)                                    # what earlier cells of a notebook might have drawn
from sedge.pipeline.baseline_experiments import baseline_run
s = baseline_run("dcase", "synthetic:n_speakers=10,words=yes+no+up", sys.argv[1], epochs=1, lr=0.003, max_steps=2,
                 progress=False)
weights = torch.load(sys.argv[1] + "/best.pt", weights_only=False)["state_dict"]
print(hashlib.sha256(b"".join(v.numpy().tobytes() for _, v in sorted(weights.items()))).hexdigest())
"""


def test_a_baseline_run_gives_the_same_weights_in_two_processes_whatever_ran_before(tmp_path):
    """The initial weights are drawn from the run's seed, not from the global RNG's state (which
    depends on what ran before in a notebook): two processes with different earlier draws and hash
    seeds train bit-identical weights."""
    import os
    import subprocess
    import sys
    digests = []
    for i, draws in enumerate((0, 1000)):
        env = {**os.environ, "PYTHONHASHSEED": str(i + 1)}
        out = subprocess.run([sys.executable, "-c", _RUN_IN_A_FRESH_PROCESS, str(tmp_path / f"run{i}"), str(draws)],
                             capture_output=True, text=True, env=env, check=True)
        digests.append(out.stdout.split()[-1])
    assert digests[0] == digests[1]


def test_a_seeded_build_leaves_the_callers_random_state_alone():
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    a = build_baseline("dcase", seed=0, n_classes=3)
    assert torch.equal(torch.rand(4), expected)
    b = build_baseline("dcase", seed=0, n_classes=3)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert "seed" not in a.arch["kwargs"]                           # a checkpoint rebuilds the shape only
