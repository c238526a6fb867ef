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

The executed chapters are carried over with them: a chapter's freshness key holds the fingerprint of
the library code it imports (:func:`sedge.pipeline.book.freshness_key`), and it remembers the digest
of every ``stage.json`` it read, which re-keying rewrites. A chapter whose key is the one it would
have had at ``OLD_REV`` gets the current key, and each digest of a record re-keyed here is replaced
by the new one (its metadata notes ``rekeyed`` too); a chapter stale for any other reason stays stale.
"""
from __future__ import annotations

import argparse
import ast
import json
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat

from sedge.paths import CHECKPOINTS, REPO, atomic_write_json
from sedge.pipeline.baseline_experiments import BASELINE_CODE, COMPRESS_CODE, CONVEXITY_CODE, FILTER_CODE
from sedge.pipeline.experiments import PRUNE_CODE, TRAIN_CODE
from sedge.pipeline.book import freshness_key, library_fingerprint
from sedge.pipeline.chapters import executed_path, source_notebooks
from sedge.pipeline.fingerprint import fingerprint
from sedge.pipeline.profiles import load_profile
from sedge.pipeline.stages import RECORD, file_digest

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


def old_fingerprints(old_rev: str) -> tuple[dict[str, str], dict[Path, str]]:
    """({old fingerprint: new fingerprint} for every stage code list whose fingerprint changed,
    {chapter source: its library fingerprint at ``old_rev``})."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(tree), old_rev], check=True)
        try:
            old_lists = code_lists_at(tree)
            pairs = {name: (fingerprint(old_lists[name], root=tree), fingerprint(roots))
                     for name, roots in CODE_LISTS.items()}
            chapters = {src: library_fingerprint(src, root=tree) for src in source_notebooks()}
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True)
    for name, (old, new) in pairs.items():
        print(f"{name:10s} {old[:12]} -> {new[:12]}{'' if old != new else '  (unchanged)'}")
    return {old: new for old, new in pairs.values() if old != new}, chapters


def read_name(path: Path) -> str:
    """How a chapter's stage log names a read of ``path`` (:func:`sedge.pipeline.stages.read_is_current`):
    a stage by its folder, any other file as ``file:<path>``, relative to the repository when inside it."""
    target = path.parent if path.name == RECORD else path
    try:
        name = str(target.resolve().relative_to(REPO.resolve()))
    except ValueError:
        name = str(target.resolve())
    return name if path.name == RECORD else f"file:{name}"


def rekey_chapter(executed: Path, old_key: str, new_key: str, rewritten: dict[str, tuple[str, str]],
                  note: dict, dry_run: bool = False) -> bool:
    """Give the executed chapter ``executed`` the key ``new_key`` if it was run under ``old_key``, and
    replace each read digest of a rewritten record (``rewritten``: read name → (old, new) digest).
    Returns whether the chapter was (or, with ``dry_run``, would be) carried over."""
    nb = nbformat.read(str(executed), as_version=4)
    meta = nb.metadata.get("sedge", {})
    if meta.get("key") != old_key:                # stale already, or run by other code: not ours to carry
        return False
    read = meta.get("stages", {})
    stages = {n: rewritten[n][1] if n in rewritten and rewritten[n][0] == d else d for n, d in read.items()}
    if new_key == old_key and stages == read:
        return False
    meta["stages"] = stages
    meta["key"] = new_key
    meta["rekeyed"] = note
    if not dry_run:
        tmp = executed.with_suffix(".rekey.tmp")
        nbformat.write(nb, str(tmp))
        tmp.replace(executed)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old_rev", help="the git revision whose code computed the committed stages and chapters")
    ap.add_argument("--because", required=True, help="the evidence that the results are unchanged")
    ap.add_argument("--dry-run", action="store_true", help="list the records, change nothing")
    args = ap.parse_args()
    mapping, old_chapter_libs = old_fingerprints(args.old_rev)
    note = {"because": args.because, "on": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    records = sorted(set(CHECKPOINTS.rglob(RECORD)) | set(CHECKPOINTS.rglob("*.key.json")))
    rewritten: dict[str, tuple[str, str]] = {}       # read name → (digest before, digest after)
    for path in records:
        rec = json.loads(path.read_text())
        key = rec.get("key", rec)                     # a stage record holds {key, files}; a memo key is the key
        old = key.get("code")
        if old not in mapping:
            continue
        key["code"] = mapping[old]
        if "key" in rec:
            rec["rekeyed"] = {"from": old, **note}
        before = file_digest(path)
        if not args.dry_run:
            atomic_write_json(path, rec)
        rewritten[read_name(path)] = (before, file_digest(path) if not args.dry_run else "(dry run)")
    print(f"{'would re-key' if args.dry_run else 're-keyed'} {len(rewritten)} of {len(records)} records")
    carried = []
    for src, old_lib in old_chapter_libs.items():
        executed = executed_path(src)
        if not executed.exists():
            continue
        profile = nbformat.read(str(executed), as_version=4).metadata.get("sedge", {}).get("profile", "quick")
        params = load_profile(profile).get(src.stem, {})
        old_key = freshness_key(src, profile, params, lib=old_lib)
        if rekey_chapter(executed, old_key, freshness_key(src, profile, params), rewritten,
                         {"from": old_key, **note}, args.dry_run):
            carried.append(src.stem)
    print(f"{'would carry' if args.dry_run else 'carried'} over {len(carried)} executed chapters: {', '.join(carried) or '-'}")


if __name__ == "__main__":
    main()
