"""Cached experiment stages shared by the notebooks and the CLI (:mod:`sedge.pipeline.stages` keeps them).

A training run lives in a folder ``root/<data tag>_<model>``; calling :func:`trained_run` again with
the same key (configuration, data, training code) reuses the finished run, resumes an interrupted
one, and retrains when anything it came from changed. Stages derived from a checkpoint (pruning,
fine-tuning, the baselines' compression stages) also key on that checkpoint's digest.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from sedge.models.config import TrainConfig, model_config
from sedge.data import load_data
from sedge.paths import REPO, atomic_write_json, portable
from sedge.pipeline.stages import (StageMissing, begin, commit, environment, file_digest, finished, machine_bound_only,
                                   note_listing_read, note_run_read, stage_key)
from sedge.training.checkpoints import load_checkpoint
from sedge.training.train import train

__all__ = ["PAPER_TEST_ACC", "StageMissing", "converged_runs", "file_digest", "trained_run", "load_run", "prune_checkpoint", "pruned_run",
           "finetuned_run", "memo_path", "run_dir_for", "stages_readonly"]

#: The library code each kind of stage runs (its key holds their fingerprint).
TRAIN_CODE = ("sedge.training.train",)
PRUNE_CODE = ("sedge.compress.pruning", "sedge.models.cost", "sedge.training.checkpoints", "sedge.training.evaluation")


def run_dir_for(root: str | Path, data_tag: str, model: str) -> Path:
    root = Path(root)
    return (root if root.is_absolute() else REPO / root) / f"{data_tag}_{model}"


def trained_run(model: str, data_spec: str, data_tag: str, root: str | Path, *, epochs: int, lr: float,
                batch_size: int = 16, max_steps: int | None = None, seed: int = 1234, warmup_steps: int = 100,
                progress: bool = True, device: str = "cpu") -> dict:
    """Train ``model`` on ``data_spec`` into ``root/<data_tag>_<model>`` unless already done.

    Returns the run summary plus the run folder.
    """
    run_dir = run_dir_for(root, data_tag, model)
    tcfg = TrainConfig(lr=lr, batch_size=batch_size, epochs=epochs, seed=seed, warmup_steps=warmup_steps,
                       max_steps_per_epoch=max_steps)
    data = load_data(data_spec)
    config = {"model": model, "data": data_spec, "dataset": data.summary(), "train": asdict(tcfg)}
    key = stage_key(config, data=data_spec, code=TRAIN_CODE)
    if finished(run_dir, key, ("summary.json", "best.pt"), legacy_config=config):
        return {**json.loads((run_dir / "summary.json").read_text()), "run_dir": str(run_dir)}
    begin(run_dir, key)
    cfg = model_config(model, n_classes=len(data.classes))
    summary = train(cfg, data, tcfg, run_dir, data_spec=data_spec, progress=progress, device=device)
    (run_dir / "last.pt").unlink(missing_ok=True)        # the resume state is not needed once finished
    commit(run_dir, key, ("summary.json", "best.pt"))
    return {**summary, "run_dir": str(run_dir)}


def load_run(run_dir: str | Path):
    """(model, checkpoint metadata, metrics history) of a finished run; the read is noted in the stage
    log, so a chapter that loads a run is stale once the run is retrained."""
    run_dir = Path(run_dir)
    note_run_read(run_dir)
    model, meta = load_checkpoint(run_dir / "best.pt")
    history = json.loads((run_dir / "metrics.json").read_text())
    return model, meta, history


# Test accuracy (%) the paper reports on Speech Commands v0.02 (35 words) for the end points of its
# zoo, quoted in the book beside what is measured here (the abstract gives only this range). Not in
# sedge.models.config: that module is part of every training stage's code fingerprint.
PAPER_TEST_ACC: dict[str, float] = {"full": 94.9, "tiny": 90.0}


def converged_runs(root: str | Path | None) -> list[dict]:
    """The runs of ``sedge train`` under ``root`` (each a folder with ``best.pt`` and ``metrics.json``),
    sorted by folder name; a missing or ``None`` root gives none.

    Each is ``{run_dir, model (name), module, meta, history, summary}`` with ``summary`` ``None`` while
    the run is still training (no test accuracy yet). Every file read is noted in the stage log, so a
    chapter that shows the runs is stale once one of them moves on."""
    if root is None:
        return []
    root = Path(root)
    root = root if root.is_absolute() else REPO / root
    for pattern in ("*/best.pt", "*/metrics.json"):       # a run folder that appears makes the chapter stale
        note_listing_read(root, pattern)
    runs = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if not ((d / "metrics.json").exists() and (d / "best.pt").exists()):
            continue
        note_run_read(d, ("metrics.json", "summary.json", "best.pt"))
        module, meta = load_checkpoint(d / "best.pt")
        summary = json.loads((d / "summary.json").read_text()) if (d / "summary.json").exists() else None
        name = summary["model"] if summary else meta["model_cfg"]["name"]
        runs.append({"run_dir": d, "model": name, "module": module, "meta": meta,
                     "history": json.loads((d / "metrics.json").read_text()), "summary": summary})
    return runs


@contextmanager
def stages_readonly():
    """Within the block, stages are only read (SEDGE_STAGES=readonly), whatever the environment says."""
    with environment(SEDGE_STAGES="readonly"):
        yield


def memo_key(checkpoint: str | Path, data_spec: str, max_val: int | None, method: str,
             gramian_clips: int = 0, refit_clips: int = 0) -> dict:
    """What a pruning memo's validation accuracies depend on: the checkpoint, the validation clips
    (data and count), the reduction method (and for "data" the Gramian's clips), the output refit's
    training clips (if any) and the pruning code."""
    config = {"method": method, "max_val": max_val}
    if method == "data":
        config["gramian_clips"] = gramian_clips
    if refit_clips:                                    # absent when 0: the keys of plain searches are unchanged
        config["refit_clips"] = refit_clips
    return stage_key(config, inputs={"checkpoint": checkpoint}, data=data_spec, code=PRUNE_CODE)


# Training clips behind the data-weighted Gramians of method "data" (a seeded random subset).
GRAMIAN_CLIPS = 128
GRAMIAN_SEED = 0


def gramian_clip_tensor(data, norm: tuple[float, float], n: int = GRAMIAN_CLIPS, seed: int = GRAMIAN_SEED):
    """``n`` normalised training clips, drawn at random (seeded) from the training split: the inputs
    whose layer-by-layer state moments weight the data-weighted balanced truncation."""
    import numpy as np
    if n < 1:
        raise ValueError(f"gramian_clips must be ≥ 1 training clip, got {n}")
    train = data.train
    idx = np.sort(np.random.default_rng(seed).permutation(len(train))[:n])
    return train.subset(idx).tensors(*norm)[0]


def read_memo(memo_file: str | Path, key: dict) -> dict:
    """The memo's evaluations if it was made under ``key``, else an empty memo. With
    SEDGE_STAGES=adopt a memo from before keys (a ``.sha256`` of its checkpoint) is given its key."""
    import os
    memo_file = Path(memo_file)
    rec = memo_file.with_suffix(".key.json")
    if memo_file.exists() and rec.exists() and json.loads(rec.read_text()) == json.loads(json.dumps(key)):
        return json.loads(memo_file.read_text())
    if (os.environ.get("SEDGE_STAGES") == "adopt" and memo_file.exists() and rec.exists()
            and machine_bound_only(json.loads(rec.read_text()), key)):
        atomic_write_json(rec, key)                   # re-keyed to the content identity of its data
        return json.loads(memo_file.read_text())
    legacy = memo_file.with_suffix(".sha256")
    if (os.environ.get("SEDGE_STAGES") == "adopt" and memo_file.exists() and not rec.exists() and legacy.exists()
            and legacy.read_text().strip() == key["inputs"]["checkpoint"]):
        atomic_write_json(rec, key)
        return json.loads(memo_file.read_text())
    return {}


def write_memo(memo_file: Path, key: dict, memo: dict) -> None:
    atomic_write_json(memo_file.with_suffix(".key.json"), key)
    atomic_write_json(memo_file, memo)


def prune_checkpoint(checkpoint: str | Path, data_spec: str, out: str | Path, *, budget_pp: float = 0.5,
                     objective: str = "params", step: int = 1, step_fraction: float = 0.0, method: str = "truncate",
                     max_val: int | None = None, memo_file: str | Path | None = None, progress: bool = True,
                     device: str = "cpu", gramian_clips: int = GRAMIAN_CLIPS, screen: int = 0,
                     batch: int = 1, refit_clips: int = 0) -> dict:
    """Iterative pruning of a checkpoint (SPEC §8) as a cached stage in ``out``: ``pruned.pt``,
    ``steps.csv`` and ``summary.json`` (test accuracy before and after, computed once, here).
    ``method`` "data" weights the balanced truncation by the layers' inputs on ``gramian_clips``
    training clips (:func:`gramian_clip_tensor`; never validation or test clips). ``screen`` > 0 ranks
    candidates on that many validation clips before confirming them on all, and ``batch`` > 1 confirms
    up to that many moves at once (:func:`sedge.compress.pruning.prune`). ``refit_clips`` > 0 refits
    every candidate's output map on that many training clips (the same seeded draw as the Gramian's,
    :func:`gramian_clip_tensor`; :mod:`sedge.compress.refit`).

    Validation accuracies of the configurations tried are kept in ``memo_file`` (default
    ``out/memo.json``), which searches with other budgets or objectives on the same checkpoint and
    validation clips may share; an interrupted search resumes from it."""
    from sedge.models.cost import cost_report
    from sedge.compress.pruning import prune
    from sedge.paths import atomic_write_csv
    from sedge.training.checkpoints import save_checkpoint
    from sedge.training.evaluation import accuracy, predict
    out = Path(out)
    config = {"checkpoint": portable(checkpoint), "data": data_spec, "budget_pp": budget_pp, "objective": objective,
              "step": step, "step_fraction": step_fraction, "method": method, "max_val": max_val}
    if method == "data":
        config["gramian_clips"] = gramian_clips
    if screen:                                         # absent when 0: the exact search's keys are unchanged
        config["screen"] = screen
    if batch > 1:                                      # likewise absent at 1
        config["batch"] = batch
    if refit_clips:                                    # and absent at 0
        config["refit_clips"] = refit_clips
    key = stage_key(config, inputs={"checkpoint": checkpoint}, data=data_spec, code=PRUNE_CODE)
    if finished(out, key, ("summary.json", "pruned.pt"), legacy_config=config):
        return json.loads((out / "summary.json").read_text())
    begin(out, key)
    model, meta = load_checkpoint(checkpoint)
    data = load_data(data_spec).restrict_to(meta["classes"])
    xv, yv = data.val.tensors(*meta["norm"])
    if max_val:
        xv, yv = xv[:max_val], yv[:max_val]
    memo_file = Path(memo_file) if memo_file else out / "memo.json"
    memo_file.parent.mkdir(parents=True, exist_ok=True)
    mkey = memo_key(checkpoint, data_spec, max_val, method, gramian_clips, refit_clips)
    memo = read_memo(memo_file, mkey)                  # evaluations of another checkpoint, data or code: dropped
    gramians = None
    if method == "data":
        from sedge.compress.reduction import state_covariances
        gramians = state_covariances(model, gramian_clip_tensor(data, meta["norm"], gramian_clips))
    res = prune(model, xv, yv, budget_pp=budget_pp, objective=objective, step=step, step_fraction=step_fraction,
                method=method, progress=progress, memo=memo, on_round=lambda m: write_memo(memo_file, mkey, m),
                device=device, gramians=gramians, screen=screen, batch=batch,
                refit_clips=gramian_clip_tensor(data, meta["norm"], refit_clips) if refit_clips else None)
    write_memo(memo_file, mkey, memo)
    xt, yt = data.test.tensors(*meta["norm"])
    keep = {k: meta[k] for k in ("classes", "norm", "data", "train_cfg") if k in meta}
    save_checkpoint(out / "pruned.pt", res.model, {**keep, "pruned_from": portable(checkpoint), "budget_pp": budget_pp})
    atomic_write_csv(out / "steps.csv", res.table())
    b, f = cost_report(model), cost_report(res.model)
    summary = {**config, "states_before": [l.P for l in model.layers], "states_after": [l.P for l in res.model.layers],
               "params_before": b["params_paper"], "params_after": f["params_paper"],
               "macs_before": b["macs_per_sample"], "macs_after": f["macs_per_sample"],
               "val_acc_before": res.baseline_val_acc, "val_acc_after": res.steps[-1].val_acc,
               "test_acc_before": 100 * accuracy(predict(model, xt, batch_size=4), yt),
               "test_acc_after": 100 * accuracy(predict(res.model, xt, batch_size=4), yt),   # test: once, here
               "n_val": len(xv), "search_seconds": res.seconds, "configurations_evaluated": res.evaluated,
               "steps": res.table()}
    if method == "data":
        summary["unstable_candidates"] = [list(c) for c in res.unstable]
    atomic_write_json(out / "summary.json", summary)
    commit(out, key, ("summary.json", "pruned.pt"))
    return summary


def memo_path(run_dir: str | Path, method: str = "truncate", max_val: int | None = None) -> Path:
    """Where a run's pruning evaluations (configuration → validation accuracy) are kept."""
    return Path(run_dir) / "prune" / f"memo_{method}_v{max_val or 'all'}.json"


def pruned_run(run_dir: str | Path, data_spec: str, *, budget_pp: float, objective: str = "params",
               step: int = 1, step_fraction: float = 0.0, method: str = "truncate", max_val: int | None = None,
               progress: bool = True, device: str = "cpu", gramian_clips: int = GRAMIAN_CLIPS,
               screen: int = 0, batch: int = 1, refit_clips: int = 0) -> dict:
    """:func:`prune_checkpoint` of a training run's ``best.pt`` into ``run_dir/prune/<settings>``,
    with one memo per run, method and validation subset shared by every budget and objective (and
    by screened searches, whose whole-split confirmations are the exact search's evaluations)."""
    run_dir = Path(run_dir)
    label = f"data{gramian_clips}" if method == "data" else method
    label += f"_refit{refit_clips}" if refit_clips else ""
    name = f"{objective}_{label}_b{budget_pp:g}_s{step}_f{step_fraction:g}_v{max_val or 'all'}"
    name += f"_screen{screen}" if screen else ""
    name += f"_batch{batch}" if batch > 1 else ""
    summary = prune_checkpoint(run_dir / "best.pt", data_spec, run_dir / "prune" / name, budget_pp=budget_pp,
                               objective=objective, step=step, step_fraction=step_fraction, method=method,
                               max_val=max_val, memo_file=memo_path(run_dir, label, max_val),
                               progress=progress, gramian_clips=gramian_clips, screen=screen, batch=batch,
                               refit_clips=refit_clips)
    return {**summary, "prune_dir": str(run_dir / "prune" / name)}


def finetuned_run(checkpoint: str | Path, data_spec: str, out: str | Path, *, epochs: int, lr: float,
                  batch_size: int = 16, max_steps: int | None = None, warmup_steps: int = 10, seed: int = 1234,
                  progress: bool = True, device: str = "cpu") -> dict:
    """Short fine-tuning of a (pruned) checkpoint with the paper's recipe at a small learning rate,
    BatchNorm frozen, checkpoint selected on validation (epoch 0 = the checkpoint itself competes),
    test evaluated once — a cached stage in ``out``."""
    out = Path(out)
    tcfg = TrainConfig(lr=lr, batch_size=batch_size, epochs=epochs, seed=seed, warmup_steps=warmup_steps,
                       max_steps_per_epoch=max_steps)
    config = {"checkpoint": portable(checkpoint), "data": data_spec, "train": asdict(tcfg)}
    key = stage_key(config, inputs={"checkpoint": checkpoint}, data=data_spec, code=TRAIN_CODE)
    if finished(out, key, ("summary.json", "best.pt"), legacy_config=config):
        return json.loads((out / "summary.json").read_text())
    begin(out, key)
    model, meta = load_checkpoint(checkpoint)
    data = load_data(data_spec).restrict_to(meta["classes"])
    if tuple(data.stats()) != tuple(meta["norm"]):
        raise ValueError(f"{checkpoint}: its input normalisation {meta['norm']} differs from {data_spec!r}'s")
    summary = train(model.cfg, data, tcfg, out, data_spec=data_spec, progress=progress, init=model, freeze_norm=True,
                    device=device)
    (out / "last.pt").unlink(missing_ok=True)
    commit(out, key, ("summary.json", "best.pt"))
    return summary
