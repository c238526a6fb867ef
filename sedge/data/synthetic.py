"""Synthetic keywords (SPEC §5, ours): the 35 Speech Commands words spoken by eSpeak NG.

A *speaker* is a (voice, variant, pitch, rate) combination; speakers are drawn from a seed and
assigned to train/val/test so that the splits are speaker-disjoint, like GSC's. Every clip is
augmented: speed perturbation, random gain, random placement in the 1-s window (time shift)
and coloured noise at a per-clip SNR drawn around ``snr_db``. Generation is deterministic
from the seed and cached on disk (atomic write).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import lfilter, resample_poly
from tqdm import tqdm

from sedge.paths import CACHE, atomic_write_bytes
from sedge.data.base import CLIP_SAMPLES, SAMPLE_RATE, DataError, KeywordData, Split, check_split_sizes

GENERATOR_VERSION = 2
# The ten classic command words first, so that ``words`` can name a smaller task.
COMMANDS10 = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
WORDS = ("backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go",
         "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven",
         "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero")
# English accents, plus a few non-English voices reading English words ("accented speakers").
VOICES = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
          "en-us-nyc", "de", "nl", "af", "sv", "fr", "es", "it", "pl")
# Variants without "breath": eSpeak's breath noise is not reproducible between processes.
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f4", "klatt", "klatt2", "klatt3", "croak",
            "steph", "max", "david", "anika", "edward", "linda")


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and difficulty of the synthetic keyword set."""

    n_speakers: int = 120            # split 80/10/10 by speaker
    repeats: int = 1                 # takes per speaker and word (each differently augmented)
    snr_db: float = 5.0              # centre of the per-clip SNR, drawn from snr_db ± 5 dB
    speed: float = 0.15              # speed perturbation factor drawn from 1 ± speed
    words: tuple[str, ...] = WORDS
    seed: int = 0

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "version": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]


def draw_speakers(cfg: SyntheticConfig) -> list[dict]:
    """Distinct (voice, variant, pitch, rate) speakers with a split each, deterministic in the seed."""
    rng = np.random.default_rng(cfg.seed)
    seen, speakers = set(), []
    while len(speakers) < cfg.n_speakers:
        s = (str(rng.choice(VOICES)), str(rng.choice(VARIANTS)), int(rng.integers(25, 80)), int(rng.integers(110, 230)))
        if s not in seen:
            seen.add(s)
            speakers.append(dict(zip(("voice", "variant", "pitch", "rate"), s)))
    order = rng.permutation(cfg.n_speakers)
    n_val = n_test = max(1, round(0.1 * cfg.n_speakers))
    for rank, i in enumerate(order):
        speakers[i]["split"] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
    return speakers


def speaker_id(s: dict) -> str:
    return f"{s['voice']}+{s['variant'] or 'default'}_p{s['pitch']}_r{s['rate']}"


def render(speech: np.ndarray, rng: np.random.Generator, cfg: SyntheticConfig) -> np.ndarray:
    """Speed-perturb, place at a random offset, scale and add coloured noise at a random SNR."""
    factor = 1 + rng.uniform(-cfg.speed, cfg.speed)
    n = max(1, int(len(speech) / factor))
    speech = np.interp(np.linspace(0, len(speech) - 1, n), np.arange(len(speech)), speech)
    nz = np.flatnonzero(np.abs(speech) > 0.02 * np.abs(speech).max())      # trim silence
    speech = speech[nz[0]:nz[-1] + 1] if len(nz) else speech
    speech = speech[:CLIP_SAMPLES]
    clip = np.zeros(CLIP_SAMPLES)
    offset = int(rng.integers(0, CLIP_SAMPLES - len(speech) + 1))
    clip[offset:offset + len(speech)] = speech
    p_speech = np.mean(speech ** 2) + 1e-12
    noise = lfilter([1.0], [1.0, -rng.uniform(0.0, 0.97)], rng.standard_normal(CLIP_SAMPLES))
    snr = cfg.snr_db + rng.uniform(-5, 5)
    noise *= np.sqrt(p_speech / (np.mean(noise ** 2) * 10 ** (snr / 10)))
    clip += noise
    clip *= 10 ** (rng.uniform(-12, 0) / 20) * 0.5 / (np.abs(clip).max() + 1e-9)
    return np.clip(clip * 32768, -32768, 32767).astype(np.int16)


def _speak_all(speakers: list[dict], words: tuple[str, ...]) -> tuple[list[np.ndarray], int]:
    """Raw int16 utterances for every (speaker, word), in a fixed order."""
    from sedge.data.espeak import ESpeak
    engine = ESpeak.get()
    out = []
    with tqdm(total=len(speakers) * len(words), desc="synthesising keywords", unit="word", mininterval=2) as bar:
        for s in speakers:
            voice = s["voice"] + (f"+{s['variant']}" if s["variant"] else "")
            for word in words:
                out.append(engine.synth(word, voice, s["rate"], s["pitch"]))
                bar.update()
    return out, engine.sample_rate


def speak_in_fresh_process(speakers: list[dict], words: tuple[str, ...]) -> tuple[list[np.ndarray], int]:
    """eSpeak NG keeps internal state between utterances (its pitch flutter), so the same call gives
    different audio depending on what was spoken before. A fresh interpreter makes the output a
    function of the call sequence alone, i.e. of the seed."""
    import pickle
    import subprocess
    import sys
    code = ("import pickle, sys; from sedge.data.synthetic import _speak_all; "
            "a = pickle.load(sys.stdin.buffer); sys.stdout.buffer.write(pickle.dumps(_speak_all(*a)))")
    proc = subprocess.run([sys.executable, "-c", code], input=pickle.dumps((speakers, tuple(words))),
                          stdout=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"eSpeak NG synthesis failed in its worker process (exit code {proc.returncode})")
    return pickle.loads(proc.stdout)


def generate(cfg: SyntheticConfig) -> dict[str, np.ndarray]:
    speakers = draw_speakers(cfg)
    utterances, rate = speak_in_fresh_process(speakers, cfg.words)
    n = len(utterances) * cfg.repeats
    waves = np.zeros((n, CLIP_SAMPLES), np.int16)
    labels, spk_idx = np.zeros(n, np.int64), np.zeros(n, np.int64)
    rng = np.random.default_rng([cfg.seed, 1])
    i = 0
    for j, raw in enumerate(tqdm(utterances, desc="augmenting", unit="word", mininterval=2)):
        speech = resample_poly(raw.astype(np.float64) / 32768, SAMPLE_RATE // 50, rate // 50)
        for _ in range(cfg.repeats):
            waves[i] = render(speech, rng, cfg)
            labels[i], spk_idx[i] = j % len(cfg.words), j // len(cfg.words)
            i += 1
    return {"waves": waves, "labels": labels, "speaker": spk_idx,
            "speaker_ids": np.array([speaker_id(s) for s in speakers]),
            "speaker_split": np.array([s["split"] for s in speakers])}


def load_synthetic(cfg: SyntheticConfig | None = None, cache: bool = True, **overrides) -> KeywordData:
    """The synthetic keyword set for ``cfg`` (generated once, then read from the cache)."""
    cfg = cfg or SyntheticConfig(**overrides)
    if cfg.n_speakers < 10:
        raise DataError(f"synthetic set: n_speakers={cfg.n_speakers}, need at least 10 for three splits")
    unknown = [w for w in cfg.words if w not in WORDS]
    if unknown:
        raise DataError(f"synthetic set: unknown words {unknown}; expected a subset of {list(WORDS)}")
    path = CACHE / f"synthetic_{cfg.key()}.npz"
    if cache and path.exists():
        z = dict(np.load(path))
    else:
        z = generate(cfg)
        if cache:
            atomic_write_bytes(path, lambda f: np.savez(f, **z))
    ids, where = z["speaker_ids"], z["speaker_split"]

    def mk(split: str) -> Split:
        idx = np.flatnonzero(where[z["speaker"]] == split)
        return Split(z["waves"][idx], z["labels"][idx], [str(ids[j]) for j in z["speaker"][idx]])

    data = KeywordData(f"synthetic-{cfg.key()[:6]}", list(cfg.words), mk("train"), mk("val"), mk("test"))
    check_split_sizes(data)
    return data
