"""Any checkpoint sedge writes, whatever the family of its network.

Two formats exist on disk: an S-Edge checkpoint holds ``model_cfg`` (the zoo configuration) and a
baseline checkpoint ``arch`` (kind and constructor arguments of the DCASE CNN, ACDNet or the
transformer). Both hold ``state_dict``, ``classes``, ``norm`` = (mean, std) of the training clips,
``data`` (the training data spec), ``epoch`` and ``val_acc``, so every network is evaluated the
same way: logits = model((wave − mean) / std). :func:`read_checkpoint` recognises the format, and
:func:`checkpoint_cost` counts each family as its paper counts it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

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


def read_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint at ``path``, S-Edge or baseline; a clear error for a folder, a missing file or
    a file that is neither."""
    from sedge.training.baselines import load_baseline
    from sedge.training.train import load_checkpoint
    path = Path(path)
    if path.is_dir() or not path.is_file():
        load_checkpoint(path)                            # raises its error naming the folder or file
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ValueError(f"checkpoint {path}: cannot be read as a sedge checkpoint ({e})") from e
    if isinstance(blob, dict) and "arch" in blob:
        model, meta = load_baseline(path)
        return Checkpoint(model, meta, meta["arch"]["kind"], path)
    if isinstance(blob, dict) and "model_cfg" in blob:
        model, meta = load_checkpoint(path)
        return Checkpoint(model, meta, "sedge", path)
    raise ValueError(f"checkpoint {path}: neither an S-Edge checkpoint (model_cfg) nor a baseline "
                     f"checkpoint (arch) of sedge")


def checkpoint_cost(ck: Checkpoint, step_scale: list[int] | None = None) -> dict:
    """``{family, params, macs_per_clip, …}`` of a checkpoint's network on one 1-s clip, as its paper
    counts it: S-Edge with the paper formula at ``step_scale`` (:func:`sedge.models.cost.cost_report`, all
    of whose figures are included), the DCASE CNN with Keras parameter counts and conv MACs, ACDNet
    with XNOR-effective MACs and weight bits, the transformer with its projection and attention MACs.
    A step scale applies to S-Edge only."""
    from sedge.models.acdnet import cost as acdnet_cost
    from sedge.pipeline.baseline_experiments import dcase_costs, transformer_macs
    from sedge.models.cost import cost_report
    if step_scale is not None and ck.family != "sedge":
        raise ValueError(f"--step-scale applies to S-Edge checkpoints; {ck.path} is a {ck.family_name} checkpoint")
    base = {"family": ck.family_name, "classes": len(ck.meta.get("classes", []))}
    if ck.family == "sedge":
        r = cost_report(ck.model, step_scale)
        return {**base, "params": r["params_paper"], "macs_per_clip": r["mmac_per_clip"] * 1e6, **r}
    if ck.family == "dcase":
        c = dcase_costs(ck.model)
        return {**base, "params": c["params_keras"], "params_trainable": c["params"],
                "macs_per_clip": c["macs"]["total"], "channels": c["channels"]}
    if ck.family == "acdnet":
        c = acdnet_cost(ck.model)
        return {**base, "params": c["params"], "macs_per_clip": c["macs"], "effective_macs_per_clip": c["macs_effective"],
                "weight_bits": c["weight_bits"], "binary_params": c["binary_params"]}
    return {**base, "params": sum(p.numel() for p in ck.model.parameters()), "macs_per_clip": transformer_macs(ck.model)}
