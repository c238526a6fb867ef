"""Cached stages: a folder whose finished result is reused only while everything it came from holds.

A stage's *key* is

    key = {config, inputs: {name: SHA-256 of each input file (checkpoints)},
           data: identity of the data it read, code: fingerprint of the library code it runs}

(``data``: :func:`data_identity`, by content, the same on every machine; ``code``: :func:`sedge.pipeline.fingerprint.fingerprint` of the
modules that compute the stage — training stages do not name the pruning code, so an edit there
recomputes pruning stages only). ``stage.json`` holds the key and the digests of the stage's result
files, and is written last, atomically: it is the commit point (a chapter that read the stage
remembers the record's digest, so a recomputed result makes the chapter stale even under the same
key). Starting a computation first removes a ``stage.json`` of another key, so an
interrupted run with a new configuration never returns the old result.

Modes (``SEDGE_STAGES``): unset — compute what is missing or stale; ``readonly`` — a missing or
stale stage is :class:`StageMissing` (rebuilding the book from committed stages); ``protect`` —
compute missing stages but never replace one finished under another key (``sedge book --set``);
``adopt`` — a stage written before keys existed (``config.json`` only) whose configuration and
input digest match is given its ``stage.json`` now, once, by explicit request, and a stage (or a
pruning memo) whose key differs from the current one only in a folder identity of the old,
machine-bound form (absolute path and modification times) is re-keyed to the content identity;
nothing is computed. Both trust the person who asks: the data did not change.

Every stage read or written is appended to ``$SEDGE_STAGE_LOG`` when set: the book runner records
the stages a chapter read, so the chapter is stale once one of them changes.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sedge.paths import atomic_write_json, portable

RECORD = "stage.json"
LEGACY_CONFIG = "config.json"
LEGACY_SOURCE = "source.sha256"


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Within the block, ``os.environ[name] = value`` for each keyword (``None`` unsets it); every
    variable is restored afterwards, also on error. Child processes (the notebook kernels) inherit
    the values, which is how the book runner sets ``SEDGE_STAGES`` and ``SEDGE_STAGE_LOG``."""
    before = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class StageMissing(RuntimeError):
    """A stage that would have to be computed (or overwritten) where the mode forbids it."""


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stage_key(config: dict, *, inputs: dict[str, str | Path] | None = None, data: str | None = None,
              code: tuple[str, ...] = ()) -> dict:
    """The key of a stage (module docstring); ``data`` is a data spec, ``code`` module names."""
    from sedge.pipeline.fingerprint import fingerprint
    key = {"config": config,
           "inputs": {n: file_digest(p) if Path(p).is_file() else None for n, p in sorted((inputs or {}).items())},
           "code": fingerprint(code) if code else None}
    if data is not None:
        key["data"] = data_identity(data)
    return key


def data_identity(spec: str) -> str:
    """What a stage that read data ``spec`` depends on, the same on every machine that holds the
    same data: for a folder (``mini``, ``folder:``, ``gsc:``)

        files:SHA-256 over the clips sorted by path of (path relative to the root, label, SHA-256 of the bytes)

    (not the absolute path nor modification times: a clone elsewhere, or the excerpt copied to a new
    machine, keeps its stages; a replaced clip changes it), with the split rule; for ``synthetic``
    the generator configuration with the fingerprint of the generator's code
    (:func:`sedge.data.data_identity`, already machine-independent)."""
    from sedge.data import DataError
    from sedge.data import data_identity as generator_identity
    from sedge.data.folder import scan_folder
    from sedge.paths import MINI_SPEECH_COMMANDS
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        return generator_identity(spec)
    if kind in ("mini", "folder"):
        root, split = (Path(arg) if arg else MINI_SPEECH_COMMANDS) if kind == "mini" else Path(arg), "hash"
    elif kind in ("gsc", "gsc+download"):
        from sedge.data.gsc import locate
        root, split = locate(Path(arg)), "official"
    else:
        raise DataError(f"data spec {spec!r}: expected synthetic[:k=v,...], mini[:ROOT], folder:ROOT or gsc:ROOT")
    items = scan_folder(root)
    h = hashlib.sha256(split.encode())
    for path, label, _ in items:
        st = path.stat()
        h.update(f"{path.relative_to(root).as_posix()}|{label}|{_content_digest(path, st.st_size, st.st_mtime_ns)}\n".encode())
    return f"files:{h.hexdigest()[:32]}"


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _content_digest(path: Path, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, remembered in this process per (path, size, mtime)."""
    k = (str(path), size, mtime_ns)
    if k not in _DIGESTS:
        _DIGESTS[k] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _DIGESTS[k]


def machine_bound_only(stored: dict, key: dict) -> bool:
    """Whether a stored key equals ``key`` except for a folder data identity of the old form
    (``folder:…``, from the absolute path and modification times): what ``adopt`` re-keys."""
    stored, key = _jsonable(stored), _jsonable(key)
    return (str(stored.get("data", "")).startswith("folder:") and str(key.get("data", "")).startswith("files:")
            and {k: v for k, v in stored.items() if k != "data"} == {k: v for k, v in key.items() if k != "data"})


def record_digest(folder: Path) -> str | None:
    """SHA-256 of a stage's record (what a chapter that read it remembers), None when unfinished."""
    p = Path(folder) / RECORD
    return file_digest(p) if p.exists() else None


def _log(entry: dict) -> None:
    log = os.environ.get("SEDGE_STAGE_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps(entry) + "\n")


def _log_read(folder: Path) -> None:
    _log({"stage": portable(folder), "record": record_digest(folder)})


def note_file_read(path: str | Path) -> None:
    """Record that a chapter read ``path``, a file no stage owns (a run trained with ``sedge train``):
    the chapter is stale once the file changes, appears or disappears."""
    p = Path(path)
    _log({"stage": "file:" + portable(p), "record": file_digest(p) if p.is_file() else None})


def note_run_read(folder: str | Path, files: tuple[str, ...] = ("best.pt", "metrics.json")) -> None:
    """Record that a chapter read the run in ``folder``: its stage record when a stage owns it (a
    retrained run has a new record), else each of ``files`` (a run of ``sedge train``)."""
    folder = Path(folder)
    if (folder / RECORD).exists():
        _log_read(folder)
    else:
        for f in files:
            note_file_read(folder / f)


def listing_digest(folder: Path, pattern: str) -> str:
    """SHA-256 of the sorted paths (relative to ``folder``) that ``folder.glob(pattern)`` finds."""
    names = sorted(str(p.relative_to(folder)) for p in folder.glob(pattern)) if folder.is_dir() else []
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def note_listing_read(folder: str | Path, pattern: str) -> None:
    """Record that a chapter chose what to read by listing ``folder`` (``pattern``, e.g. every run's
    ``*/best.pt``): the chapter is stale once a match appears or disappears."""
    folder = Path(folder)
    _log({"stage": f"glob:{portable(folder)}:{pattern}", "record": listing_digest(folder, pattern)})


def read_is_current(name: str, digest: str | None, root: Path) -> bool:
    """Whether one recorded read (``stage`` of a log entry and its digest) still holds."""
    from pathlib import Path as P
    if name.startswith("glob:"):
        folder, pattern = name[5:].rsplit(":", 1)
        return listing_digest(P(folder) if P(folder).is_absolute() else root / folder, pattern) == digest
    if name.startswith("file:"):
        p = P(name[5:])
        p = p if p.is_absolute() else root / p
        return (file_digest(p) if p.is_file() else None) == digest
    p = P(name)
    return record_digest(p if p.is_absolute() else root / p) == digest


def _mode() -> str:
    return os.environ.get("SEDGE_STAGES", "")


def with_new_defaults(stored: dict) -> dict:
    """A stored stage configuration with the TrainConfig fields added since it was written set to
    their defaults (a field that did not exist could not have been set)."""
    from dataclasses import asdict

    from sedge.models.config import TrainConfig
    if isinstance(stored.get("train"), dict):
        stored = {**stored, "train": {**asdict(TrainConfig()), **stored["train"]}}
    return stored


def _adopt(folder: Path, key: dict, files: tuple[str, ...], legacy_config: dict | None) -> bool:
    """SEDGE_STAGES=adopt: give a pre-key stage whose configuration and input digest match its record."""
    cfg = folder / LEGACY_CONFIG
    if legacy_config is None or not cfg.exists() or with_new_defaults(json.loads(cfg.read_text())) != legacy_config:
        return False
    src = folder / LEGACY_SOURCE
    if key["inputs"] and not (src.exists() and src.read_text().strip() in key["inputs"].values()):
        return False
    atomic_write_json(folder / RECORD, {"key": key, "files": {f: file_digest(folder / f) for f in files},
                                        "adopted": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    return True


def finished(folder: str | Path, key: dict, files: tuple[str, ...] = (), legacy_config: dict | None = None) -> bool:
    """Whether ``folder`` holds a finished stage of ``key`` with ``files`` present (logged as read)."""
    folder = Path(folder)
    rec = folder / RECORD
    ok = (rec.exists() and json.loads(rec.read_text()).get("key") == _jsonable(key)
          and all((folder / f).exists() for f in files))
    if not ok and _mode() == "adopt" and not rec.exists() and all((folder / f).exists() for f in files):
        ok = _adopt(folder, key, files, legacy_config)
    if not ok and _mode() == "adopt" and rec.exists() and all((folder / f).exists() for f in files):
        stored = json.loads(rec.read_text())
        if machine_bound_only(stored.get("key", {}), key) and all(
                file_digest(folder / f) == d for f, d in stored.get("files", {}).items()):
            atomic_write_json(rec, {**stored, "key": key,
                                    "rekeyed": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
            ok = True
    if ok:
        _log_read(folder)
    return ok


def begin(folder: str | Path, key: dict) -> Path:
    """Before computing a stage into ``folder``: refuse where the mode forbids it, drop a record of
    another key (the old result is no longer this folder's), create the folder."""
    folder = Path(folder)
    rec = folder / RECORD
    mode = _mode()
    if mode in ("readonly", "adopt"):
        raise StageMissing(f"stage {portable(folder)} is missing or stale (its configuration, inputs, data or "
                           f"code changed) and SEDGE_STAGES={mode} forbids computing it")
    if mode == "protect" and rec.exists():
        raise StageMissing(f"stage {portable(folder)} was computed with another configuration, inputs or code; "
                           "it is kept (SEDGE_STAGES=protect). Give the variant its own folder (e.g. --set "
                           "run_root=runs/variant) or pass --replace to recompute the profile's stages in place")
    rec.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / LEGACY_CONFIG, key["config"])       # human-readable; not the commit point
    return folder


def commit(folder: str | Path, key: dict, files: tuple[str, ...] = ()) -> None:
    """The commit point: ``stage.json`` with the key, written last and atomically."""
    folder = Path(folder)
    missing = [f for f in files if not (folder / f).exists()]
    if missing:
        raise RuntimeError(f"stage {portable(folder)} cannot be committed: {missing} were not written")
    atomic_write_json(folder / RECORD, {"key": key, "files": {f: file_digest(folder / f) for f in files}})
    _log_read(folder)


def _jsonable(obj):
    """``obj`` as it reads back from JSON (tuples become lists), so keys compare equal to stored ones."""
    return json.loads(json.dumps(obj))
