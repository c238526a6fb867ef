"""Where sedge keeps generated data, runs and committed checkpoints."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("SEDGE_CACHE", REPO / "cache"))
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
