"""Cached experiment stages shared by the notebooks and the CLI.

A training run lives in a folder holding ``config.json`` (model, data, recipe). Calling
:func:`trained_run` again with the same configuration reuses the finished run (or resumes an
interrupted one) instead of training again: notebooks stay cheap to re-execute. A stage derived
from a checkpoint (pruning, fine-tuning, the baselines' compression stages) also keeps the digest of
that checkpoint in ``source.sha256`` and is recomputed when the checkpoint changed.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from .config import TrainConfig, model_config
from .data import load_data
from .paths import REPO, atomic_write_bytes, atomic_write_json, portable
from .train import load_checkpoint, train

SOURCE_RECORD = "source.sha256"      # in a derived stage's folder: digest of the checkpoint it came from


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
    data = load_data(data_spec)                          # cached after the first call
    config = {"model": model, "data": data_spec, "dataset": data.summary(), "train": asdict(tcfg)}
    if _same_config(run_dir, config, "summary.json", "best.pt"):
        return {**json.loads((run_dir / "summary.json").read_text()), "run_dir": str(run_dir)}
    require_computable(run_dir, config)
    cfg = model_config(model, n_classes=len(data.classes))
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", config)
    summary = train(cfg, data, tcfg, run_dir, data_spec=data_spec, progress=progress, device=device)
    (run_dir / "last.pt").unlink(missing_ok=True)        # the resume state is not needed once finished
    return {**summary, "run_dir": str(run_dir)}


def load_run(run_dir: str | Path):
    """(model, checkpoint metadata, metrics history) of a finished run."""
    run_dir = Path(run_dir)
    model, meta = load_checkpoint(run_dir / "best.pt")
    history = json.loads((run_dir / "metrics.json").read_text())
    return model, meta, history


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record_source(record: Path, source: str | Path) -> None:
    """Write the digest of the checkpoint a stage (or a pruning memo) was computed from."""
    digest = file_digest(source)
    atomic_write_bytes(record, lambda f: f.write(digest.encode()))


def source_unchanged(record: Path, source: str | Path) -> bool:
    """Whether ``source`` still has the digest kept in ``record``: a stage derived from a checkpoint
    is stale once that checkpoint is retrained under the same path. A stage written before digests
    were kept has no record; it is trusted this once and its record written now."""
    if not record.exists():
        record_source(record, source)
        return True
    return record.read_text().strip() == file_digest(source)


def _with_new_defaults(stored: dict) -> dict:
    """A stored stage configuration with the TrainConfig fields added since it was written set to
    their defaults (a field that did not exist could not have been set), so adding a field to the
    recipe does not retrain every committed run."""
    if isinstance(stored.get("train"), dict):
        stored = {**stored, "train": {**asdict(TrainConfig()), **stored["train"]}}
    return stored


class StageMissing(RuntimeError):
    """A stage that would have to be computed while SEDGE_STAGES=readonly (or overwritten while
    SEDGE_STAGES=protect)."""


def require_computable(folder: Path, config: dict | None = None) -> None:
    """Called before a stage with configuration ``config`` is computed into ``folder``. With SEDGE_STAGES=readonly (rebuilding the
    book from committed stages, or the comparison chapter reading the others back) a missing or stale
    stage is an error naming it instead of a silent retrain. With SEDGE_STAGES=protect (a book
    variant run by ``sedge book --set``) a missing stage is computed, but one already finished under
    another configuration is never overwritten (an interrupted one with the same configuration resumes)."""
    import os
    mode = os.environ.get("SEDGE_STAGES", "")
    if mode == "readonly":
        raise StageMissing(f"stage {portable(folder)} is missing or stale (its configuration, inputs or files "
                           "changed) and SEDGE_STAGES=readonly forbids computing it")
    stored = folder / "config.json"
    if mode == "protect" and stored.exists() and (config is None
                                                  or _with_new_defaults(json.loads(stored.read_text())) != config):
        raise StageMissing(f"stage {portable(folder)} was computed with another configuration; it is kept "
                           "(SEDGE_STAGES=protect). Give the variant its own folder (e.g. --set run_root=runs/variant) "
                           "or pass --replace to recompute the profile's stages in place")


@contextmanager
def stages_readonly():
    """Within the block, stages are only read (SEDGE_STAGES=readonly), whatever the environment says."""
    import os
    before = os.environ.get("SEDGE_STAGES")
    os.environ["SEDGE_STAGES"] = "readonly"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SEDGE_STAGES", None)
        else:
            os.environ["SEDGE_STAGES"] = before


def _same_config(folder: Path, config: dict, *files: str, source: str | Path | None = None) -> bool:
    """A finished stage in ``folder``: its config.json equals ``config``, ``files`` exist and, for a
    stage derived from checkpoint ``source``, that checkpoint is the one it was computed from."""
    cfg = folder / "config.json"
    if not (cfg.exists() and _with_new_defaults(json.loads(cfg.read_text())) == config
            and all((folder / f).exists() for f in files)):
        return False
    return source is None or source_unchanged(folder / SOURCE_RECORD, source)


def prune_checkpoint(checkpoint: str | Path, data_spec: str, out: str | Path, *, budget_pp: float = 0.5,
                     objective: str = "params", step: int = 1, step_fraction: float = 0.0, method: str = "truncate",
                     max_val: int | None = None, memo_file: str | Path | None = None, progress: bool = True,
                     device: str = "cpu") -> dict:
    """Iterative pruning of a checkpoint (SPEC §8) as a cached stage in ``out``: ``pruned.pt``,
    ``steps.csv`` and ``summary.json`` (test accuracy before and after, computed once, here).

    Validation accuracies of the configurations tried are kept in ``memo_file`` (default
    ``out/memo.json``), which searches with other budgets or objectives on the same checkpoint and
    validation clips may share; an interrupted search resumes from it."""
    from .cost import cost_report
    from .pruning import prune
    from .paths import atomic_write_csv
    from .train import accuracy, predict, save_checkpoint
    out = Path(out)
    config = {"checkpoint": portable(checkpoint), "data": data_spec, "budget_pp": budget_pp, "objective": objective,
              "step": step, "step_fraction": step_fraction, "method": method, "max_val": max_val}
    if _same_config(out, config, "summary.json", "pruned.pt", source=checkpoint):
        return json.loads((out / "summary.json").read_text())
    require_computable(out, config)
    model, meta = load_checkpoint(checkpoint)
    data = load_data(data_spec).restrict_to(meta["classes"])
    xv, yv = data.val.tensors(*meta["norm"])
    if max_val:
        xv, yv = xv[:max_val], yv[:max_val]
    memo_file = Path(memo_file) if memo_file else out / "memo.json"
    memo_file.parent.mkdir(parents=True, exist_ok=True)
    memo_record = memo_file.with_suffix(".sha256")
    fresh = memo_file.exists() and source_unchanged(memo_record, checkpoint)
    memo = json.loads(memo_file.read_text()) if fresh else {}      # evaluations of another checkpoint: dropped
    record_source(memo_record, checkpoint)
    res = prune(model, xv, yv, budget_pp=budget_pp, objective=objective, step=step, step_fraction=step_fraction,
                method=method, progress=progress, memo=memo, on_round=lambda m: atomic_write_json(memo_file, m),
                device=device)
    atomic_write_json(memo_file, memo)
    xt, yt = data.test.tensors(*meta["norm"])
    out.mkdir(parents=True, exist_ok=True)
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
    atomic_write_json(out / "summary.json", summary)
    record_source(out / SOURCE_RECORD, checkpoint)
    atomic_write_json(out / "config.json", config)                  # last: marks the stage finished
    return summary


def memo_path(run_dir: str | Path, method: str = "truncate", max_val: int | None = None) -> Path:
    """Where a run's pruning evaluations (configuration → validation accuracy) are kept."""
    return Path(run_dir) / "prune" / f"memo_{method}_v{max_val or 'all'}.json"


def pruned_run(run_dir: str | Path, data_spec: str, *, budget_pp: float, objective: str = "params",
               step: int = 1, step_fraction: float = 0.0, method: str = "truncate", max_val: int | None = None,
               progress: bool = True, device: str = "cpu") -> dict:
    """:func:`prune_checkpoint` of a training run's ``best.pt`` into ``run_dir/prune/<settings>``,
    with one memo per run, method and validation subset shared by every budget and objective."""
    run_dir = Path(run_dir)
    name = f"{objective}_{method}_b{budget_pp:g}_s{step}_f{step_fraction:g}_v{max_val or 'all'}"
    summary = prune_checkpoint(run_dir / "best.pt", data_spec, run_dir / "prune" / name, budget_pp=budget_pp,
                               objective=objective, step=step, step_fraction=step_fraction, method=method,
                               max_val=max_val, memo_file=memo_path(run_dir, method, max_val),
                               progress=progress)
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
    if _same_config(out, config, "summary.json", "best.pt", source=checkpoint):
        return json.loads((out / "summary.json").read_text())
    require_computable(out, config)
    model, meta = load_checkpoint(checkpoint)
    data = load_data(data_spec).restrict_to(meta["classes"])
    if tuple(data.stats()) != tuple(meta["norm"]):
        raise ValueError(f"{checkpoint}: its input normalisation {meta['norm']} differs from {data_spec!r}'s")
    out.mkdir(parents=True, exist_ok=True)
    summary = train(model.cfg, data, tcfg, out, data_spec=data_spec, progress=progress, init=model, freeze_norm=True,
                    device=device)
    (out / "last.pt").unlink(missing_ok=True)
    record_source(out / SOURCE_RECORD, checkpoint)
    atomic_write_json(out / "config.json", config)
    return summary
