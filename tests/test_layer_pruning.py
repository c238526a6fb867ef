"""Convexity-guided layer pruning of S-Edge stacks and the frame transformer (SPEC §10)."""
import pytest
import torch

from sedge.pipeline.baseline_experiments import baseline_run, convexity_pruned_run
from sedge.compress.layer_pruning import layers_to_keep, truncate_sedge, truncate_transformer
from sedge.training.baselines import build_baseline
from sedge.models.config import model_config
from sedge.models.model import build_model

SPEC = "synthetic:n_speakers=20,words=yes+no+up"


def test_truncated_models_reproduce_the_kept_layers():
    torch.manual_seed(0)
    m = build_model(model_config("s", n_classes=4), seed=0).eval()
    small = truncate_sedge(m, 2).eval()
    x = torch.randn(2, 1600)
    assert len(small.layers) == 2 and small.decoder.in_features == m.layers[1].H
    with torch.no_grad():
        assert torch.equal(small.features(x)[-1], m.features(x)[1])
    t = build_baseline("transformer", n_classes=3, layers=4).eval()
    t2 = truncate_transformer(t, 2).eval()
    with torch.no_grad():
        assert torch.allclose(t2.features(x)[-1], t.features(x)[1])
    assert t2.arch["kwargs"]["layers"] == 2
    with pytest.raises(ValueError, match="keep"):
        truncate_sedge(m, 0)


def test_peak_selection():
    assert layers_to_keep([40.0, 70.0, 65.0, 50.0]) == 2
    assert layers_to_keep([10.0, 20.0, 30.0]) == 3


def test_convexity_pruning_stage_of_the_transformer(tmp_path):
    s = baseline_run("transformer", SPEC, tmp_path / "t", epochs=1, lr=0.003, max_steps=2, progress=False)
    r = convexity_pruned_run(s["run_dir"], SPEC, "transformer", epochs=1, lr=0.001, max_steps=2, progress=False)
    assert len(r["scores"]) == 4 and all(0 <= v <= 100 for v in r["scores"])
    assert r["keep"] == 1 + max(range(4), key=lambda i: r["scores"][i])
    if r["keep"] < 4:
        assert r["params_pruned"] < r["params"] and r["val_acc_finetuned"] >= r["val_acc_truncated"]
    again = convexity_pruned_run(s["run_dir"], SPEC, "transformer", epochs=1, lr=0.001, max_steps=2, progress=False)
    assert again == r


def test_convexity_pruning_stage_cuts_and_fine_tunes(tmp_path, monkeypatch):
    """The cutting branch, whatever the peak of this tiny run: keep 2 of 4 blocks."""
    monkeypatch.setattr("sedge.compress.layer_pruning.layers_to_keep", lambda scores: 2)
    s = baseline_run("transformer", SPEC, tmp_path / "t", epochs=1, lr=0.003, max_steps=2, progress=False)
    r = convexity_pruned_run(s["run_dir"], SPEC, "transformer", epochs=1, lr=0.001, max_steps=2, progress=False)
    assert r["keep"] == 2 and r["params_pruned"] < r["params"] and r["macs_pruned"] < r["macs"]
    assert r["val_acc_finetuned"] >= r["val_acc_truncated"]            # the cut model competes as epoch 0
