"""Cached experiment stages shared by the notebooks and the CLI.

A training run lives in a folder holding ``config.json`` (model, data, recipe). Calling
:func:`trained_run` again with the same configuration reuses the finished run (or resumes an
interrupted one) instead of training again: notebooks stay cheap to re-execute.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .config import TrainConfig, model_config
from .data import load_data
from .paths import REPO, atomic_write_json
from .train import load_checkpoint, train


def run_dir_for(root: str | Path, data_tag: str, model: str) -> Path:
    root = Path(root)
    return (root if root.is_absolute() else REPO / root) / f"{data_tag}_{model}"


def trained_run(model: str, data_spec: str, data_tag: str, root: str | Path, *, epochs: int, lr: float,
                batch_size: int = 16, max_steps: int | None = None, seed: int = 1234, warmup_steps: int = 100,
                progress: bool = True) -> dict:
    """Train ``model`` on ``data_spec`` into ``root/<data_tag>_<model>`` unless already done.

    Returns the run summary plus the run folder.
    """
    run_dir = run_dir_for(root, data_tag, model)
    tcfg = TrainConfig(lr=lr, batch_size=batch_size, epochs=epochs, seed=seed, warmup_steps=warmup_steps,
                       max_steps_per_epoch=max_steps)
    data = load_data(data_spec)                          # cached after the first call
    config = {"model": model, "data": data_spec, "dataset": data.summary(), "train": asdict(tcfg)}
    summary_file = run_dir / "summary.json"
    if summary_file.exists() and (run_dir / "config.json").exists() \
            and json.loads((run_dir / "config.json").read_text()) == config and (run_dir / "best.pt").exists():
        return {**json.loads(summary_file.read_text()), "run_dir": str(run_dir)}
    cfg = model_config(model, n_classes=len(data.classes))
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", config)
    summary = train(cfg, data, tcfg, run_dir, data_spec=data_spec, progress=progress)
    (run_dir / "last.pt").unlink(missing_ok=True)        # the resume state is not needed once finished
    return {**summary, "run_dir": str(run_dir)}


def load_run(run_dir: str | Path):
    """(model, checkpoint metadata, metrics history) of a finished run."""
    run_dir = Path(run_dir)
    model, meta = load_checkpoint(run_dir / "best.pt")
    history = json.loads((run_dir / "metrics.json").read_text())
    return model, meta, history
