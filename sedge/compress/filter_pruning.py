"""Passive similarity-based CNN filter pruning (Singh & Plumbley, Interspeech 2022; SPEC §10).

Per conv layer: each filter W_f (C_in × k × k) is reshaped to a (k·k) × C_in matrix; its rank-1
SVD's left singular vector u_f (L2-normalised; sign fixed so that its largest-magnitude entry is
positive, since SVD signs are arbitrary and a duplicate must map to the same vector) summarises the
filter. Pairwise cosine distances d(f, g) = 1 − u_f·u_g; each filter's nearest other filter forms
a pair; pairs are sorted by distance ascending; a greedy pass keeps i and marks its neighbour
redundant whenever i is not yet marked (a filter once kept stays kept, so of two duplicates
exactly one goes). The redundant filters are then removed *physically*: the
conv's output channels, its BatchNorm, and the next layer's input channels (or the dense layer's
input features after C3).
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from sedge.models.dcase_cnn import DcaseCNN


def filter_signatures(weight: torch.Tensor) -> np.ndarray:
    """Unit rank-1 signatures u_f, one row per output filter."""
    W = weight.detach().double().cpu().numpy()
    C_out, C_in, kh, kw = W.shape
    sig = np.zeros((C_out, kh * kw))
    for f in range(C_out):
        U, _, _ = np.linalg.svd(W[f].reshape(C_in, kh * kw).T, full_matrices=False)
        u = U[:, 0] / np.linalg.norm(U[:, 0])
        sig[f] = u * np.sign(u[np.argmax(np.abs(u))])
    return sig


def redundant_filters(weight: torch.Tensor, max_fraction: float = 0.5) -> list[int]:
    """Indices of filters marked redundant by the greedy nearest-neighbour pass."""
    sig = filter_signatures(weight)
    D = 1.0 - sig @ sig.T
    np.fill_diagonal(D, np.inf)
    nearest = D.argmin(axis=1)
    pairs = sorted(((D[i, nearest[i]], i, int(nearest[i])) for i in range(len(sig))), key=lambda t: (t[0], t[1]))
    redundant: list[int] = []
    kept: set[int] = set()
    for _, i, j in pairs:
        if len(redundant) >= int(max_fraction * len(sig)):
            break
        if i in redundant:
            continue
        kept.add(i)                      # a kept filter is never marked later by another pair
        if j not in kept and j not in redundant:
            redundant.append(j)
    return sorted(redundant)


def _subset_conv(conv: nn.Conv2d, out_keep=None, in_keep=None) -> nn.Conv2d:
    out_keep = torch.arange(conv.out_channels) if out_keep is None else out_keep
    in_keep = torch.arange(conv.in_channels) if in_keep is None else in_keep
    new = nn.Conv2d(len(in_keep), len(out_keep), conv.kernel_size, padding=conv.padding)
    with torch.no_grad():
        new.weight.copy_(conv.weight[out_keep][:, in_keep])
        new.bias.copy_(conv.bias[out_keep])
    return new


def _subset_bn(bn: nn.BatchNorm2d, keep) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(keep))
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new, name).copy_(getattr(bn, name)[keep])
    return new


def prune_filters(model: DcaseCNN, remove: dict[int, list[int]]) -> DcaseCNN:
    """A physically smaller copy of ``model`` without the filters ``remove[layer]`` (layer 1, 2 or 3)."""
    new = copy.deepcopy(model)
    keep = {}
    for i in (1, 2, 3):
        c = getattr(model, f"conv{i}").out_channels
        gone = set(remove.get(i, []))
        if not gone <= set(range(c)):
            raise ValueError(f"conv{i} has {c} filters; cannot remove {sorted(gone)}")
        if len(gone) >= c:
            raise ValueError(f"conv{i}: removing all {c} filters would disconnect the network")
        keep[i] = torch.tensor([f for f in range(c) if f not in gone], dtype=torch.long)
    new.conv1 = _subset_conv(model.conv1, keep[1])
    new.conv2 = _subset_conv(model.conv2, keep[2], keep[1])
    new.conv3 = _subset_conv(model.conv3, keep[3], keep[2])
    for i in (1, 2, 3):
        setattr(new, f"bn{i}", _subset_bn(getattr(model, f"bn{i}"), keep[i]))
    spatial = model.fc1.in_features // model.conv3.out_channels     # flatten order: channel-major
    cols = (keep[3][:, None] * spatial + torch.arange(spatial)[None, :]).reshape(-1)
    new.fc1 = nn.Linear(len(cols), model.fc1.out_features)
    with torch.no_grad():
        new.fc1.weight.copy_(model.fc1.weight[:, cols])
        new.fc1.bias.copy_(model.fc1.bias)
    return new.train(model.training)          # fresh BN modules start in training mode


def masks_for(model: DcaseCNN, remove: dict[int, list[int]]) -> dict[int, torch.Tensor]:
    """Channel masks equivalent to removing ``remove`` (for checking the physical pruning)."""
    out = {}
    for i, gone in remove.items():
        m = torch.ones(getattr(model, f"conv{i}").out_channels)
        m[list(gone)] = 0
        out[i] = m
    return out
