"""How much compute the committed book took: the times its records hold, summed by kind.

    .venv/bin/python tools/compute_time.py [--runs checkpoints/quick] [--book book]

Every training run (S-Edge, fine-tuning, baseline) records ``train_seconds`` in its ``summary.json``,
every pruning search ``search_seconds``, and every executed chapter Papermill's ``duration`` in its
notebook metadata. A chapter's duration excludes the stages it read from cache but includes those
it computed itself in its last execution, which the records cannot tell apart: the total is the
wall time of building the committed book from nothing when every chapter last ran from cached
stages, and an upper bound otherwise. All as measured — on whatever machine and beside whatever
else ran at the time (the training READMEs under ``checkpoints/`` say where each run ran).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sedge.paths import CHECKPOINTS
from sedge.pipeline.chapters import BOOK


def recorded_seconds(runs: Path, book: Path) -> dict[str, float]:
    """Seconds by kind: 'training' (every summary's train_seconds), 'pruning searches' (search_seconds)
    and 'chapter execution' (each executed notebook's papermill duration)."""
    totals = {"training": 0.0, "pruning searches": 0.0, "chapter execution": 0.0}
    for summary in sorted(runs.rglob("summary.json")):
        record = json.loads(summary.read_text())
        totals["training"] += float(record.get("train_seconds") or 0.0)
        totals["pruning searches"] += float(record.get("search_seconds") or 0.0)
    for notebook in sorted(book.glob("*.ipynb")):
        if notebook.name.endswith(".running.ipynb"):
            continue
        meta = json.loads(notebook.read_text()).get("metadata", {})
        totals["chapter execution"] += float(meta.get("papermill", {}).get("duration") or 0.0)
    return totals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, default=CHECKPOINTS / "quick",
                    help="folder of the book's runs and stages (default checkpoints/quick)")
    ap.add_argument("--book", type=Path, default=BOOK, help="folder of the executed chapters (default book)")
    args = ap.parse_args(argv)
    for folder in (args.runs, args.book):
        if not folder.is_dir():
            print(f"error: {folder} is not a folder", file=sys.stderr)
            return 2
    totals = recorded_seconds(args.runs, args.book)
    for kind, seconds in totals.items():
        print(f"{kind:>18}: {seconds / 3600:7.2f} h")
    print(f"{'total':>18}: {sum(totals.values()) / 3600:7.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
