"""Parameter and MAC accounting for S-Edge models (SPEC §6).

Works from layer shapes alone, so it applies to zoo models, pruned models and export
dicts alike. ``LayerShape`` = (d_in, P, H, trainable_skip, feedthrough).
"""
from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATE = 16_000
UNUSED_INPUT_BN = 2          # the original code's unused input BatchNorm, counted by the paper


@dataclass(frozen=True)
class LayerShape:
    d_in: int
    P: int
    H: int
    trainable_skip: bool
    feedthrough: bool = False    # a D matrix H × (d_in + 1) from matched-DC reduction


def layer_shape(layer) -> LayerShape:
    """Shape of one :class:`~sedge.models.layer.SEdgeLayer`."""
    return LayerShape(layer.d_in, layer.P, layer.H, layer.skip is not None, layer.feedthrough is not None)


def layer_shapes(model) -> list[LayerShape]:
    """Shapes of the layers of an :class:`~sedge.models.model.SEdgeModel`."""
    return [layer_shape(l) for l in model.layers]


def paper_layer_params(s: LayerShape) -> int:
    """2P (Λ) + 2·d_in·P (B) + 2P (b) + 2PH (C) + 2H (c) + d_in·H (trainable skip) [+ D]."""
    n = 2 * s.P + 2 * s.d_in * s.P + 2 * s.P + 2 * s.P * s.H + 2 * s.H
    n += s.d_in * s.H if s.trainable_skip else 0
    n += s.H * (s.d_in + 1) if s.feedthrough else 0
    return n


def paper_params(shapes: list[LayerShape], n_classes: int) -> int:
    """The paper's count: layers + decoder (n_classes·H_L + n_classes) + 2."""
    return sum(map(paper_layer_params, shapes)) + n_classes * shapes[-1].H + n_classes + UNUSED_INPUT_BN


def deployed_params(shapes: list[LayerShape], n_classes: int) -> int:
    """Numbers stored by the exported model: Λ̄ (2P), B̄ (2·d_in·P, BN folded), b̄ (2P), C (2PH),
    Re c (H), skip (d_in·H if trainable), D if any, decoder (n_classes·H_L + n_classes)."""
    n = 0
    for s in shapes:
        n += 2 * s.P + 2 * s.d_in * s.P + 2 * s.P + 2 * s.P * s.H + s.H
        n += s.d_in * s.H if s.trainable_skip else 0
        n += s.H * (s.d_in + 1) if s.feedthrough else 0
    return n + n_classes * shapes[-1].H + n_classes


def _state_macs(s: LayerShape) -> int:
    return 4 * s.P + 2 * s.d_in * s.P

def _output_macs(s: LayerShape) -> int:
    skip = s.d_in * s.H if s.trainable_skip else s.H
    return 2 * s.P * s.H + skip + (s.H * (s.d_in + 1) if s.feedthrough else 0)


def macs_per_sample(shapes: list[LayerShape], n_classes: int, step_scale: list[int] | None = None,
                    convention: str = "paper") -> float:
    """MACs per 16 kHz input sample.

    ``paper``:  Σ_ℓ [4P + 2·d_in·P + 2PH + skip]/s_ℓ + H_L/s_L + n_classes·H_L/16000 + 1
    ``cpp``:    the authors' C++ computes layer ℓ's output projection only at layer ℓ+1's rate:
                Σ_ℓ (4P + 2·d_in·P)/s_ℓ + (2PH + skip)/s_{ℓ+1}, with s_{L+1} = s_L (the time
                mean consumes every output of the last layer); other terms as ``paper``.
    """
    s = step_scale or [1] * len(shapes)
    if len(s) != len(shapes):
        raise ValueError(f"step scale {s} has {len(s)} entries for {len(shapes)} layers")
    if convention not in ("paper", "cpp"):
        raise ValueError(f"convention must be 'paper' or 'cpp', got {convention!r}")
    total = 0.0
    for i, sh in enumerate(shapes):
        rate_out = s[i] if convention == "paper" else (s[i + 1] if i + 1 < len(s) else s[i])
        total += _state_macs(sh) / s[i] + _output_macs(sh) / rate_out
    return total + shapes[-1].H / s[-1] + n_classes * shapes[-1].H / SAMPLE_RATE + 1


def cost_report(model, step_scale: list[int] | None = None) -> dict:
    """All cost figures of a model at a step scale, as a flat dict (for tables)."""
    shapes = layer_shapes(model)
    n_classes = model.cfg.n_classes
    s = step_scale or list(model.step_scale)
    mps = macs_per_sample(shapes, n_classes, s, "paper")
    return {
        "params_paper": paper_params(shapes, n_classes),
        "params_deployed": deployed_params(shapes, n_classes),
        "params_torch": sum(p.numel() for p in model.parameters()),
        "macs_per_sample": mps,
        "mmac_per_clip": mps * SAMPLE_RATE / 1e6,
        "macs_per_sample_cpp": macs_per_sample(shapes, n_classes, s, "cpp"),
        "step_scale": s,
    }
