"""Where sedge keeps generated data, runs and committed checkpoints."""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Generated and decoded data (synthetic sets, decoded folders): $SEDGE_CACHE, else the user cache
# directory ($XDG_CACHE_HOME/sedge, default ~/.cache/sedge), never inside the repository by default.
CACHE = Path(os.environ.get("SEDGE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sedge")
# Training runs that the notebooks start and do not commit: $SEDGE_RUNS, else runs/ in the repository.
RUNS = Path(os.environ.get("SEDGE_RUNS", REPO / "runs"))
CHECKPOINTS = REPO / "checkpoints"          # small trained `quick` models committed with the repo
MINI_SPEECH_COMMANDS = REPO.parent / "shared" / "data" / "speech_commands_mini"


def atomic_write_bytes(path: Path, write) -> None:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj) -> None:
    """Write ``obj`` as indented JSON atomically."""
    atomic_write_bytes(path, lambda f: f.write(json.dumps(obj, indent=1).encode()))


def atomic_write_csv(path: Path, rows: list[dict]) -> None:
    """Write a list of same-keyed dicts as CSV (header from the first row) atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, lambda f: f.write(buf.getvalue().encode()))


def portable(path: str | Path) -> str:
    """``path`` relative to the repository when it lies inside it (how cached stages name their inputs,
    so that a clone elsewhere recognises the committed stages), else as given."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(path)
