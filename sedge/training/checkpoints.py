"""The one checkpoint format of sedge and its one reader, for every family of network.

A checkpoint is a dict saved with ``torch.save``:

    version     format version (:data:`CHECKPOINT_VERSION`); a file of a newer version is refused
    family      "sedge", "dcase", "acdnet" or "transformer" (a key of :data:`FAMILIES`)
    model_cfg   S-Edge: the zoo configuration, with ``step_scale``   |   arch   baselines: (kind, kwargs)
    state_dict  the weights (CPU tensors)
    classes, norm = (mean, std) of the training clips, data (the training data spec), epoch, val_acc,
    the run configuration (``train_cfg`` or ``recipe``), and in ``last.pt`` the optimiser, scheduler and
    RNG state of the run

so every network is evaluated the same way, logits = model((wave − mean) / std). Version 1 (written
before the family field existed; the baselines' files had no version) is read as well.
:func:`read_checkpoint` rebuilds any family; :func:`sedge.training.checkpoint_cost.checkpoint_cost`
counts each family as its paper counts it.
"""
from __future__ import annotations

import importlib
import io
from dataclasses import dataclass
from pathlib import Path

import torch

from sedge.paths import atomic_write_bytes

CHECKPOINT_VERSION = 2
FAMILIES = {"sedge": "S-Edge", "dcase": "DCASE CNN", "acdnet": "ACDNet", "transformer": "transformer"}


@dataclass
class Checkpoint:
    """A network rebuilt from its checkpoint (eval mode), its metadata and its family (a key of
    :data:`FAMILIES`)."""
    model: torch.nn.Module
    meta: dict
    family: str
    path: Path

    @property
    def family_name(self) -> str:
        return FAMILIES[self.family]


def save_checkpoint(path: str | Path, model: torch.nn.Module, meta: dict, **extra) -> None:
    """Write ``model`` (an S-Edge model or a baseline built by ``build_baseline``) with ``meta`` and
    ``extra`` atomically to ``path``."""
    if hasattr(model, "arch"):                           # a baseline: rebuilt from (kind, kwargs)
        head = {"family": model.arch["kind"], "arch": model.arch}
    else:
        head = {"family": "sedge", "model_cfg": model.cfg.to_dict(), "step_scale": list(model.step_scale)}
    blob = {"version": CHECKPOINT_VERSION, **head,
            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, **meta, **extra}

    def write(f):
        buf = io.BytesIO()
        torch.save(blob, buf)
        f.write(buf.getvalue())
    atomic_write_bytes(Path(path), write)


def _load_blob(path: Path) -> dict:
    if path.is_dir():
        hint = [n for n in ("best.pt", "pruned.pt") if (path / n).is_file()]
        raise FileNotFoundError(f"checkpoint {path} is a folder (a run folder?); expected a .pt file"
                                + (f" such as {path / hint[0]}" if hint else ""))
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ValueError(f"checkpoint {path}: cannot be read as a sedge checkpoint ({e})") from e
    if not isinstance(blob, dict) or "state_dict" not in blob or not ("model_cfg" in blob or "arch" in blob):
        raise ValueError(f"checkpoint {path}: not a sedge checkpoint (neither an S-Edge model_cfg nor a "
                         "baseline arch, or no state_dict)")
    version = blob.get("version", 1)
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path}: format version {version!r}, but this sedge reads versions 1 to "
                         f"{CHECKPOINT_VERSION}; update sedge")
    return blob


def _rebuild_sedge(blob: dict, path: Path) -> torch.nn.Module:
    import dataclasses

    from sedge.models.config import ModelConfig
    from sedge.models.model import build_model
    cfg = ModelConfig.from_dict(blob["model_cfg"])
    # the weights replace every initial value: build with an initialisation valid for any order (S5's
    # needs P divisible by 4, which a pruned layer need not be), then restore the configuration
    model = build_model(dataclasses.replace(cfg, init="orthogonal"))
    model.cfg = cfg
    for i, layer in enumerate(model.layers):             # matched-DC reduced layers carry a feed-through D
        D = blob["state_dict"].get(f"layers.{i}.feedthrough")
        if D is not None:
            layer.feedthrough = torch.nn.Parameter(torch.zeros_like(D))
        if layer.norm is not None and f"layers.{i}.norm.weight" not in blob["state_dict"]:
            layer.norm = None                            # a reduced layer: BN folded into B, b
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path}: weights do not fit its model configuration ({e})") from e
    model.set_step_scale(blob.get("step_scale", [1] * len(model.layers)))
    return model


def read_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint at ``path``, of any family, rebuilt in eval mode; a clear error for a folder, a
    missing file, a file that is no sedge checkpoint or one of a newer format version."""
    path = Path(path)
    blob = _load_blob(path)
    if "model_cfg" in blob:
        return Checkpoint(_rebuild_sedge(blob, path).eval(), blob, "sedge", path)
    # imported by name: the baselines' code is run (and fingerprinted) by the stages that train them;
    # an S-Edge run, which reads only S-Edge checkpoints, does not depend on it
    build_baseline = importlib.import_module("sedge.training.baselines").build_baseline
    model = build_baseline(blob["arch"]["kind"], **blob["arch"]["kwargs"])
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path}: weights do not fit its architecture ({e})") from e
    return Checkpoint(model.eval(), blob, blob["arch"]["kind"], path)


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """(model, metadata) of an **S-Edge** checkpoint (:func:`read_checkpoint`, which see, for any family)."""
    ck = read_checkpoint(path)
    if ck.family != "sedge":
        raise ValueError(f"checkpoint {ck.path}: a {ck.family_name} checkpoint, where an S-Edge one is expected")
    return ck.model, ck.meta
