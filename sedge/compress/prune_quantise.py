"""Compression path of the pruning-vs-XNOR comparison (SPEC §10): global magnitude pruning with
masks re-applied during fine-tuning, and 8-bit post-training quantisation with an integer model
(our own well-defined fake-quant; ``torch.ao.quantization`` is deprecated), and structured channel
pruning of the ACDNet feature stack (:func:`prune_channels`): per conv, the output channels with the
smallest L1 norm go, physically, with their BatchNorm and the next conv's input channels.

Quantisation: weights per output channel, symmetric int8, scale s_w = max|W|/127; activations per
tensor, asymmetric uint8 from calibration min/max: q = clamp(round(x/s) + z, 0, 255). A layer's
integer form is (W_q int8, s_w, b float32) and its input/output (s, z) pairs, exported as NumPy.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


# ---- unstructured magnitude pruning ------------------------------------------------------
def magnitude_masks(model: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    """Masks keeping the largest-|w| weights of all conv/linear layers together (global)."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    weights = {n: m.weight for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    allw = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(sparsity * allw.numel())
    thresh = allw.kthvalue(k).values if k > 0 else allw.min() - 1
    return {n: (w.detach().abs() > thresh).float() for n, w in weights.items()}


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the pruned weights (call after every optimiser step while fine-tuning)."""
    modules = dict(model.named_modules())
    for n, m in masks.items():
        modules[n].weight.mul_(m)


def sparsity_of(model: nn.Module) -> float:
    ws = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return float(sum((w == 0).sum() for w in ws) / sum(w.numel() for w in ws))


# ---- structured channel pruning (ACDNet) ------------------------------------------------------
def prune_channels(model: nn.Module, keep_fraction: float) -> nn.Module:
    """A physically smaller ACDNet keeping ⌈keep_fraction · C⌉ output channels of every TFEB conv (the
    last, class-producing 1×1 conv keeps its n_classes outputs): those with the largest L1 weight norm,
    so channels zeroed by magnitude pruning go first. Copies the SFEB and the decoder unchanged."""
    from sedge.models.acdnet import ACDNet
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    if model.xnor:
        raise ValueError("prune_channels: structured pruning is defined for the float ACDNet")
    old_convs = [m for m in model.tfeb if isinstance(m, nn.Conv2d)]
    old_bns = [m for m in model.tfeb if isinstance(m, nn.BatchNorm2d)]
    keep = []
    for conv in old_convs[:-1]:
        norms = conv.weight.detach().abs().sum(dim=(1, 2, 3))
        k = max(1, math.ceil(keep_fraction * conv.out_channels))
        keep.append(torch.sort(torch.topk(norms, k).indices).values)
    keep.append(torch.arange(old_convs[-1].out_channels))
    kw = model.arch["kwargs"] if hasattr(model, "arch") else {}
    new = ACDNet(**{**kw, "n_classes": model.fc.out_features, "widths": tuple(len(k) for k in keep[:-1]), "xnor": False})
    new.sfeb.load_state_dict(model.sfeb.state_dict())
    new.fc.load_state_dict(model.fc.state_dict())
    new_convs = [m for m in new.tfeb if isinstance(m, nn.Conv2d)]
    new_bns = [m for m in new.tfeb if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        prev = torch.arange(old_convs[0].in_channels)
        for oc, nc, ob, nb, k in zip(old_convs, new_convs, old_bns, new_bns, keep):
            nc.weight.copy_(oc.weight[k][:, prev])
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(nb, name).copy_(getattr(ob, name)[k])
            prev = k
    if hasattr(model, "arch"):
        new.arch = {"kind": model.arch["kind"], "kwargs": {**kw, "widths": tuple(len(k) for k in keep[:-1])}}
    return new.train(model.training)


# ---- 8-bit post-training quantisation ----------------------------------------------------------
def quantise_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: W ≈ W_q · s_w."""
    flat = w.detach().reshape(w.shape[0], -1)
    scale = flat.abs().max(dim=1).values.clamp_min(1e-12) / 127.0
    q = torch.clamp(torch.round(flat / scale[:, None]), -127, 127).to(torch.int8)
    return q.reshape(w.shape), scale


def activation_qparams(x_min: float, x_max: float) -> tuple[float, int]:
    """Asymmetric uint8 scale and zero point covering [min(x_min, 0), max(x_max, 0)]."""
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)
    scale = max(hi - lo, 1e-12) / 255.0
    return scale, int(np.clip(round(-lo / scale), 0, 255))


def fake_quant(x: torch.Tensor, scale: float, zero: int) -> torch.Tensor:
    q = torch.clamp(torch.round(x / scale) + zero, 0, 255)
    return (q - zero) * scale


class QuantWrapper(nn.Module):
    """A conv/linear layer run with int8 weights and a uint8-quantised input (calibrated)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer
        self.w_q, self.w_scale = quantise_weight(layer.weight)
        self.register_buffer("x_range", torch.tensor([np.inf, -np.inf]))
        self.calibrating = True

    def forward(self, x):
        if self.calibrating:
            self.x_range[0] = torch.minimum(self.x_range[0], x.detach().min())
            self.x_range[1] = torch.maximum(self.x_range[1], x.detach().max())
            return self.layer(x)
        s, z = activation_qparams(float(self.x_range[0]), float(self.x_range[1]))
        w = self.w_q.float() * self.w_scale.reshape(-1, *[1] * (self.w_q.dim() - 1))
        xq = fake_quant(x, s, z)
        if isinstance(self.layer, nn.Conv2d):
            return nn.functional.conv2d(xq, w, self.layer.bias, self.layer.stride, self.layer.padding)
        return nn.functional.linear(xq, w, self.layer.bias)

    def integer_export(self) -> dict:
        s, z = activation_qparams(float(self.x_range[0]), float(self.x_range[1]))
        return {"w_int8": self.w_q.numpy(), "w_scale": self.w_scale.numpy(), "x_scale": s, "x_zero": z,
                "bias": None if self.layer.bias is None else self.layer.bias.detach().numpy()}


def quantise_model(model: nn.Module, calibration: torch.Tensor, batch: int = 32) -> nn.Module:
    """Wrap every float conv/linear (binary convs stay binary), calibrate on ``calibration``, freeze."""
    from sedge.models.acdnet import BinaryConv2d
    def wrap(parent):
        for name, child in parent.named_children():
            if isinstance(child, (nn.Conv2d, nn.Linear)) and not isinstance(child, BinaryConv2d):
                setattr(parent, name, QuantWrapper(child))
            else:
                wrap(child)
    wrap(model)
    model.eval()
    with torch.no_grad():
        for i in range(0, len(calibration), batch):
            model(calibration[i:i + batch])
    for m in model.modules():
        if isinstance(m, QuantWrapper):
            m.calibrating = False
    return model


def quantised_bytes(model: nn.Module) -> int:
    """Weight bytes of a quantised model: int8 weights + float32 per-channel scales and biases."""
    n = 0
    for m in model.modules():
        if isinstance(m, QuantWrapper):
            n += m.w_q.numel() + 4 * m.w_scale.numel() + (4 * m.layer.bias.numel() if m.layer.bias is not None else 0)
    return n
