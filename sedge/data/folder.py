"""Any folder in Speech Commands layout: ``<root>/<label>/<speaker>_nohash_<n>.wav|flac``.

Audio is read with ``soundfile``; clips at another sample rate are resampled to 16 kHz with
torchaudio and multi-channel clips are mixed down (one summary warning per load, repeated on cached
loads); a clip with NaN or infinite samples is an error naming the file. Decoded clips are cached
under ``$SEDGE_CACHE``, keyed by every file's path, size and modification time. Without official
split lists the split is a stable hash of the speaker id (80/10/10), so no speaker is in two splits.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from sedge.paths import CACHE, atomic_write_bytes
from sedge.data.base import CLIP_SAMPLES, SAMPLE_RATE, DataError, KeywordData, Split, check_split_sizes, fit_length, speaker_split

AUDIO_SUFFIXES = (".wav", ".flac")
IGNORED_DIRS = ("_background_noise_",)


def read_clip(path: Path, notes: dict[str, list[str]] | None = None) -> np.ndarray:
    """One clip as int16 mono at 16 kHz, zero-padded/cropped to 16,000 samples. Conversions made
    (mix-down, resampling) are appended to ``notes`` (else warned about)."""
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise DataError(f"{path}: cannot read audio ({e})") from e
    if x.shape[0] == 0:
        raise DataError(f"{path}: empty audio file (0 samples)")
    bad = int((~np.isfinite(x)).sum())
    if bad:
        raise DataError(f"{path}: {bad} of {x.size} samples are NaN or infinite; expected finite audio")
    own = notes is None                     # a single read warns itself; a folder load sums up
    notes = {} if own else notes
    if x.shape[1] > 1:
        notes.setdefault(f"mixed down to mono ({x.shape[1]} channels)", []).append(str(path))
    x = x.mean(axis=1)
    if sr != SAMPLE_RATE:
        import torch
        import torchaudio.functional as AF
        notes.setdefault(f"resampled from {sr} Hz to {SAMPLE_RATE} Hz", []).append(str(path))
        x = AF.resample(torch.from_numpy(x), sr, SAMPLE_RATE).numpy()
    if own:
        for what in notes:
            warnings.warn(f"{path}: {what}", stacklevel=2)
    return (np.clip(fit_length(x, CLIP_SAMPLES), -1, 1 - 1 / 32768) * 32768).astype(np.int16)


def scan_folder(root: Path) -> list[tuple[Path, str, str]]:
    """(path, label, speaker) for every clip under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist or is not a directory; expected "
                        "<root>/<label>/<speaker>_nohash_<n>.wav|flac")
    items = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in IGNORED_DIRS
                            and not p.name.startswith(".")):
        for f in sorted(label_dir.iterdir()):
            if f.suffix.lower() in AUDIO_SUFFIXES:
                items.append((f, label_dir.name, f.name.split("_nohash_")[0]))
    if not items:
        raise DataError(f"data folder {root}: no .wav/.flac clips found in <label>/ subfolders")
    return items


def _read_all(items, desc: str) -> tuple[np.ndarray, dict[str, list[str]]]:
    waves = np.zeros((len(items), CLIP_SAMPLES), np.int16)
    notes: dict[str, list[str]] = {}
    for i, (path, _, _) in enumerate(tqdm(items, desc=desc, unit="clip", mininterval=2)):
        waves[i] = read_clip(path, notes)
    return waves, notes


def warn_conversions(root: Path, notes: dict[str, list[str]], n: int) -> None:
    """One warning for all the conversions of a load (shown on cached loads too)."""
    if notes:
        parts = [f"{len(files)} {what} (e.g. {files[0]})" for what, files in notes.items()]
        warnings.warn(f"data folder {root}: of {n} clips, " + "; ".join(parts), stacklevel=3)


def _cache_key(root: Path, items, extra: str = "") -> str:
    """Every file's relative path, label, size and modification time (ns): a replaced file of the
    same size has another mtime and is read again."""
    h = hashlib.sha1(f"{root.resolve()}|{extra}".encode())
    for path, label, _ in items:
        st = path.stat()
        h.update(f"{path.relative_to(root)}|{label}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def load_folder(root: str | Path, split_of=None, name: str | None = None, cache: bool = True,
                classes: list[str] | None = None) -> KeywordData:
    """Load a Speech-Commands-layout folder; ``split_of(rel_path, speaker)`` may override the hash split."""
    root = Path(root)
    items = scan_folder(root)
    labels = sorted({lab for _, lab, _ in items}) if classes is None else list(classes)
    key = _cache_key(root, items, "official" if split_of else "hash")
    cache_file = CACHE / f"folder_{root.name}_{key}.npz"
    if cache and cache_file.exists():
        z = np.load(cache_file)
        waves = z["waves"]
        notes = json.loads(str(z["notes"])) if "notes" in z.files else {}
    else:
        waves, notes = _read_all(items, f"reading {root.name}")
        if cache:
            atomic_write_bytes(cache_file, lambda f: np.savez(f, waves=waves, notes=json.dumps(notes)))
    warn_conversions(root, notes, len(items))
    label_idx = {c: i for i, c in enumerate(labels)}
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for i, (path, lab, spk) in enumerate(items):
        if lab not in label_idx:
            continue
        s = split_of(str(path.relative_to(root)), spk) if split_of else speaker_split(spk)
        parts[s].append(i)
    all_labels = np.array([label_idx.get(lab, -1) for _, lab, _ in items], np.int64)
    speakers = [spk for _, _, spk in items]

    def mk(idx):
        idx = np.array(idx, np.int64)
        return Split(waves[idx], all_labels[idx], [speakers[i] for i in idx])

    data = KeywordData(name or root.name, labels, mk(parts["train"]), mk(parts["val"]), mk(parts["test"]))
    check_split_sizes(data)
    return data
