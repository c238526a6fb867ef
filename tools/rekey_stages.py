"""Carry the committed stages over a code change that does not change what they compute.

    .venv/bin/python tools/rekey_stages.py OLD_REV --because "why the results are the same"

Every cached stage keys on the fingerprint of the library code it runs
(:mod:`sedge.pipeline.fingerprint`), so *any* edit of that code makes it stale, including one that
provably leaves every result as it was (a build flag that only lets the same loop run on more
threads). This tool computes, for each stage code list, the fingerprint at ``OLD_REV`` (a git
revision, checked out into a temporary worktree) and in the working tree; in every stage record and
pruning-memo key under ``checkpoints/`` that holds an old value, it writes the new one and notes
``rekeyed: {from, because, on}``. Use it only with evidence that the new code reproduces the old
results (say which in ``--because``); otherwise let the stages recompute.
"""
from __future__ import annotations

import argparse
import ast
import json
import subprocess
import tempfile
import time
from pathlib import Path

from sedge.paths import CHECKPOINTS, REPO, atomic_write_json
from sedge.pipeline.baseline_experiments import BASELINE_CODE, COMPRESS_CODE, CONVEXITY_CODE, FILTER_CODE
from sedge.pipeline.experiments import PRUNE_CODE, TRAIN_CODE
from sedge.pipeline.fingerprint import fingerprint

CODE_LISTS = {"train": TRAIN_CODE, "prune": PRUNE_CODE, "baseline": BASELINE_CODE, "filter": FILTER_CODE,
              "convexity": CONVEXITY_CODE, "compress": COMPRESS_CODE}


def code_lists_at(tree: Path) -> dict[str, tuple[str, ...]]:
    """The stage code lists (``TRAIN_CODE``, …) as the sources under ``tree`` define them: the roots a
    stage ran may change with the code (a module split in two), so the old fingerprint needs the old lists."""
    names = {v: k for k, v in {"train": "TRAIN_CODE", "prune": "PRUNE_CODE", "baseline": "BASELINE_CODE",
                                "filter": "FILTER_CODE", "convexity": "CONVEXITY_CODE", "compress": "COMPRESS_CODE"}.items()}
    found: dict[str, tuple[str, ...]] = {}
    for module in ("experiments", "baseline_experiments"):
        for node in ast.parse((tree / "sedge" / "pipeline" / f"{module}.py").read_text()).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and getattr(node.targets[0], "id", None) in names:
                found[names[node.targets[0].id]] = tuple(ast.literal_eval(node.value))
    return found


def changed_fingerprints(old_rev: str) -> dict[str, str]:
    """{old fingerprint: new fingerprint} for every stage code list whose fingerprint changed."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(tree), old_rev], check=True)
        try:
            old_lists = code_lists_at(tree)
            pairs = {name: (fingerprint(old_lists[name], root=tree), fingerprint(roots))
                     for name, roots in CODE_LISTS.items()}
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True)
    for name, (old, new) in pairs.items():
        print(f"{name:10s} {old[:12]} -> {new[:12]}{'' if old != new else '  (unchanged)'}")
    return {old: new for old, new in pairs.values() if old != new}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old_rev", help="the git revision whose code computed the committed stages")
    ap.add_argument("--because", required=True, help="the evidence that the results are unchanged")
    ap.add_argument("--dry-run", action="store_true", help="list the records, change nothing")
    args = ap.parse_args()
    mapping = changed_fingerprints(args.old_rev)
    records = sorted(set(CHECKPOINTS.rglob("stage.json")) | set(CHECKPOINTS.rglob("*.key.json")))
    done = 0
    for path in records:
        rec = json.loads(path.read_text())
        key = rec.get("key", rec)                     # a stage record holds {key, files}; a memo key is the key
        old = key.get("code")
        if old not in mapping:
            continue
        key["code"] = mapping[old]
        if "key" in rec:
            rec["rekeyed"] = {"from": old, "because": args.because, "on": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        done += 1
        if not args.dry_run:
            atomic_write_json(path, rec)
    print(f"{'would re-key' if args.dry_run else 're-keyed'} {done} of {len(records)} records")


if __name__ == "__main__":
    main()
