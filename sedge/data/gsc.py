"""Google Speech Commands v0.02 with its official split lists (SPEC §5).

torchaudio's ``SPEECHCOMMANDS`` is used only to download (when the user asks for it); the
clips are then read with ``soundfile`` through the folder loader, with the official
``validation_list.txt`` / ``testing_list.txt`` deciding the split.
"""
from __future__ import annotations

from pathlib import Path

from sedge.data.base import DataError, KeywordData
from sedge.data.folder import load_folder

SUBDIR = Path("SpeechCommands") / "speech_commands_v0.02"


def locate(root: Path) -> Path:
    for cand in (root / SUBDIR, root):
        if (cand / "validation_list.txt").exists() and (cand / "testing_list.txt").exists():
            return cand
    raise DataError(f"Speech Commands v0.02 not found under {root}: expected validation_list.txt and "
                    f"testing_list.txt in {root / SUBDIR} or {root}; pass download=True (data spec: gsc+download:ROOT) "
                    "to fetch it with torchaudio")


def load_gsc(root: str | Path, download: bool = False) -> KeywordData:
    root = Path(root)
    if download:
        from torchaudio.datasets import SPEECHCOMMANDS
        root.mkdir(parents=True, exist_ok=True)
        SPEECHCOMMANDS(str(root), url="speech_commands_v0.02", download=True)
    base = locate(root)
    val = set((base / "validation_list.txt").read_text().split())
    test = set((base / "testing_list.txt").read_text().split())

    def split_of(rel: str, speaker: str) -> str:
        rel = rel.replace("\\", "/")
        return "val" if rel in val else "test" if rel in test else "train"

    return load_folder(base, split_of=split_of, name="speech_commands_v0.02")
