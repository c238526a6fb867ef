"""Offer a finished ``sedge train`` run to the book as the training stage of its recipe.

    .venv/bin/python tools/adopt_run.py checkpoints/quick/mini_tiny
    SEDGE_STAGES=adopt .venv/bin/sedge book --profile quick --only 01_training

A run trained with ``sedge train`` (not through a chapter) has no ``stage.json``. This writes the
stage configuration that :func:`sedge.pipeline.experiments.trained_run` would build — model, data spec, data
summary, training recipe — from the run's own checkpoint metadata into ``config.json``. With
``SEDGE_STAGES=adopt`` the chapter then adopts the run only if that configuration equals the one its
profile asks for (the same model, data and recipe); any difference leaves the run alone and the
chapter stops. The adoption trusts the person who asks that the training code did not change in a
way the run's recipe reaches (the record says when it was adopted).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sedge.data import load_data
from sedge.paths import atomic_write_json
from sedge.pipeline.stages import LEGACY_CONFIG, RECORD, with_new_defaults


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="folder of a finished `sedge train` run (best.pt, summary.json)")
    run = ap.parse_args().run_dir
    missing = [f for f in ("best.pt", "summary.json", "metrics.json") if not (run / f).is_file()]
    if missing:
        raise SystemExit(f"{run}: not a finished sedge train run ({', '.join(missing)} missing)")
    if (run / RECORD).exists():
        raise SystemExit(f"{run}: already a stage ({RECORD} exists)")
    meta = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
    summary = json.loads((run / "summary.json").read_text())
    config = with_new_defaults({"model": summary["model"], "data": meta["data"],
                                "dataset": load_data(meta["data"]).summary(), "train": meta["train_cfg"]})
    atomic_write_json(run / LEGACY_CONFIG, config)
    print(f"wrote {run / LEGACY_CONFIG}: {config['model']} on {config['data']}, recipe {config['train']}")


if __name__ == "__main__":
    main()
