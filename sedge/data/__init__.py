"""Keyword data: synthetic (default, offline), any Speech-Commands-layout folder, or GSC v0.02.

``load_data(spec)`` takes one string so that CLIs, notebooks and profiles share a syntax:

* ``synthetic`` or ``synthetic:n_speakers=120,snr_db=5,words=yes+no+up`` — eSpeak NG keywords (SPEC §5)
* ``folder:/path/to/root`` — any ``<label>/<speaker>_nohash_<n>.wav|flac`` tree, hash split
* ``mini`` — the real 8-word excerpt beside the project (``../shared/data/speech_commands_mini``)
* ``gsc:/path/to/root`` (``gsc+download:/path`` fetches it) — Speech Commands v0.02, official split
"""
from __future__ import annotations

from pathlib import Path

from sedge.paths import MINI_SPEECH_COMMANDS
from sedge.data.base import CLIP_SAMPLES, SAMPLE_RATE, DataError, KeywordData, Split
from sedge.data.folder import load_folder
from sedge.data.gsc import load_gsc
from sedge.data.synthetic import SyntheticConfig, load_synthetic

__all__ = ["load_data", "data_identity", "available_datasets", "KeywordData", "Split", "DataError", "SyntheticConfig", "SAMPLE_RATE", "CLIP_SAMPLES"]


def _parse_kv(text: str) -> dict:
    out = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise DataError(f"data option {item!r}: expected key=value")
        k, v = item.split("=", 1)
        field = SyntheticConfig.__dataclass_fields__.get(k)
        if field is None:
            raise DataError(f"unknown synthetic data option {k!r}; expected one of "
                            f"{sorted(SyntheticConfig.__dataclass_fields__)}")
        if k == "words":
            out[k] = tuple(v.split("+"))
        else:
            kind = float if field.type == "float" else int
            try:
                out[k] = kind(v)
            except ValueError:
                raise DataError(f"synthetic data option {k}={v!r}: expected {'a number' if kind is float else 'an integer'}") from None
    return out


def load_data(spec: str) -> KeywordData:
    """Load a dataset from a spec string (see the module docstring)."""
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        return load_synthetic(SyntheticConfig(**_parse_kv(arg)))
    if kind == "mini":
        root = Path(arg) if arg else MINI_SPEECH_COMMANDS
        return load_folder(root, name="speech_commands_mini")
    if kind == "folder":
        return load_folder(Path(arg))
    if kind in ("gsc", "gsc+download"):
        return load_gsc(Path(arg), download=kind == "gsc+download")
    raise DataError(f"data spec {spec!r}: expected synthetic[:k=v,...], mini[:ROOT], folder:ROOT or gsc:ROOT")


def data_identity(spec: str) -> str:
    """What a stage that read ``spec`` depends on, without decoding it: for a folder (``mini``,
    ``folder:``, ``gsc:``) every audio file's path, label, size and modification time — the key of
    the decoded-clip cache, so a replaced clip changes it — and for ``synthetic`` the generator
    configuration with the fingerprint of the generator's code."""
    from sedge.data.folder import _cache_key, scan_folder
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        from sedge.pipeline.fingerprint import fingerprint
        return f"synthetic:{SyntheticConfig(**_parse_kv(arg)).key()}:{fingerprint(['sedge.data.synthetic'])[:16]}"
    if kind == "mini":
        root = Path(arg) if arg else MINI_SPEECH_COMMANDS
        return f"folder:{_cache_key(root, scan_folder(root), 'hash')}"
    if kind == "folder":
        return f"folder:{_cache_key(Path(arg), scan_folder(Path(arg)), 'hash')}"
    if kind in ("gsc", "gsc+download"):
        from sedge.data.gsc import locate
        base = locate(Path(arg))
        return f"gsc:{_cache_key(base, scan_folder(base), 'official')}"
    raise DataError(f"data spec {spec!r}: expected synthetic[:k=v,...], mini[:ROOT], folder:ROOT or gsc:ROOT")


def available_datasets(datasets: dict[str, str]) -> dict[str, str]:
    """The (tag → spec) entries whose data is on this machine: a ``mini`` spec is dropped, with one
    line saying so, when the real excerpt is not beside the project (every other spec is kept, and
    :func:`load_data` says what is wrong with it)."""
    out = {}
    for tag, spec in datasets.items():
        if not isinstance(spec, str):
            raise DataError(f"datasets[{tag!r}] = {spec!r}: expected a data spec string such as 'mini'")
        kind, _, arg = spec.partition(":")
        if kind == "mini" and not (Path(arg) if arg else MINI_SPEECH_COMMANDS).exists():
            print(f"skipping {tag}: {Path(arg) if arg else MINI_SPEECH_COMMANDS} not found")
            continue
        out[tag] = spec
    return out
