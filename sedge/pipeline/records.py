"""Runs of record: which of several longer runs of one model the book reports.

The longer runs on the real words (``checkpoints/trained``, ``checkpoints/ablations``; each from
:func:`sedge.pipeline.experiments.converged_runs`) vary the recipe one thing at a time. The run of
record of a model is chosen on validation alone, among the finished runs that keep the method being
reproduced and its data:

    record(model) = argmax_{run finished, RZOH on, data = the base spec} val_acc(run)

so a run without the random zero-order hold (another method) or on a subset of the training
speakers (another data set) is shown but never chosen, and a test accuracy never decides anything.
"""
from __future__ import annotations

#: The recipe the longer runs share (``checkpoints/trained/README.md``): what :func:`recipe_changes`
#: leaves unsaid.
BASE_RECIPE = {"lr": 0.005, "batch_size": 16, "seed": 1234}


def base_data(spec: str) -> str:
    """The data set of a spec without its options: ``mini:/tmp/x`` → ``mini``."""
    return spec.split(":", 1)[0]


def recipe_changes(run: dict) -> str:
    """What a run does differently from :data:`BASE_RECIPE` with RZOH on and no augmentation or
    dropout, in words (its number of epochs first): ``"60 epochs"``, ``"40 epochs, augmentation"``."""
    meta = run["meta"]
    train_cfg, model_cfg = meta["train_cfg"], meta["model_cfg"]
    words = [f"{train_cfg['epochs']} epochs"]
    words += [f"{k.replace('_', ' ')} {train_cfg[k]}" for k, v in BASE_RECIPE.items() if train_cfg.get(k) != v]
    if train_cfg.get("augment"):
        words.append("augmentation")
    if model_cfg.get("dropout"):
        words.append(f"dropout {model_cfg['dropout']}")
    if not model_cfg.get("rzoh", True):
        words.append("RZOH off")
    if meta["data"] != base_data(meta["data"]):
        words.append(f"data {meta['data']}")
    return ", ".join(words)


def eligible(run: dict) -> bool:
    """A finished run of the reproduced method (RZOH on) on the whole data set of its spec."""
    meta = run["meta"]
    return run["summary"] is not None and meta["model_cfg"].get("rzoh", True) and meta["data"] == base_data(meta["data"])


def runs_of_record(runs: list[dict]) -> dict[str, dict]:
    """Model name → its run of record: the eligible run with the highest validation accuracy (the
    first in ``runs`` on a tie)."""
    best: dict[str, dict] = {}
    for run in runs:
        if eligible(run) and (run["model"] not in best
                              or run["summary"]["val_acc"] > best[run["model"]]["summary"]["val_acc"]):
            best[run["model"]] = run
    return best
