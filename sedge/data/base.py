"""The one data interface shared by every source: int16 clips of 16,000 samples at 16 kHz,
integer labels into a class list taken from the data, and speaker-disjoint splits."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

SAMPLE_RATE = 16_000
CLIP_SAMPLES = 16_000
SPLITS = ("train", "val", "test")


class DataError(ValueError):
    """Bad or missing data; the message names the file or parameter and what was expected."""


@dataclass
class Split:
    waves: np.ndarray                # int16 (N, CLIP_SAMPLES)
    labels: np.ndarray               # int64 (N,)
    speakers: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> "Split":
        return Split(self.waves[idx], self.labels[idx], [self.speakers[i] for i in idx] if self.speakers else [])

    def tensors(self, mean: float, std: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Float waveforms normalised by the training set's global mean/std, and labels."""
        x = torch.from_numpy(self.waves.astype(np.float32) / 32768.0)
        return (x - mean) / std, torch.from_numpy(self.labels)


@dataclass
class KeywordData:
    name: str
    classes: list[str]
    train: Split
    val: Split
    test: Split

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)

    def stats(self) -> tuple[float, float]:
        """Global mean and std of the training waveforms (SPEC §4)."""
        x = self.train.waves.astype(np.float64) / 32768.0
        return float(x.mean()), float(x.std() + 1e-8)

    def summary(self) -> dict:
        return {"name": self.name, "classes": len(self.classes),
                **{s: len(self.split(s)) for s in SPLITS},
                **{f"{s}_speakers": len(set(self.split(s).speakers)) for s in SPLITS}}

    def restrict_to(self, classes: list[str]) -> "KeywordData":
        """Keep only clips whose label is in ``classes`` and relabel them by that list."""
        known = [c for c in self.classes if c in classes]
        if not known:
            raise DataError(f"dataset {self.name!r} has labels {self.classes}, none of which the model knows "
                            f"({classes})")
        remap = np.array([classes.index(c) if c in classes else -1 for c in self.classes])

        def f(s: Split) -> Split:
            new = remap[s.labels]
            keep = np.flatnonzero(new >= 0)
            out = s.subset(keep)
            out.labels = new[keep]
            return out
        return KeywordData(self.name, list(classes), f(self.train), f(self.val), f(self.test))


def fit_length(x: np.ndarray, n: int = CLIP_SAMPLES) -> np.ndarray:
    """Zero-pad or crop a 1-D waveform to ``n`` samples."""
    if len(x) >= n:
        return x[:n]
    return np.pad(x, (0, n - len(x)))


def speaker_split(speaker: str, fractions: tuple[float, float] = (0.8, 0.1)) -> str:
    """Stable speaker → split assignment by a hash of the speaker id (no speaker in two splits)."""
    h = int(hashlib.sha1(speaker.encode()).hexdigest()[:8], 16) / 0x100000000
    if h < fractions[0]:
        return "train"
    return "val" if h < fractions[0] + fractions[1] else "test"


def check_split_sizes(data: KeywordData, minimum: int = 1) -> None:
    for s in SPLITS:
        n = len(data.split(s))
        if n < minimum:
            raise DataError(f"dataset {data.name!r}: split {s!r} has {n} clips, need at least {minimum}; "
                            "add clips or speakers")
