"""The cost of any checkpoint's network, each family counted as its paper counts it."""
from __future__ import annotations

from sedge.training.checkpoints import Checkpoint


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
