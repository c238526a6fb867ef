"""Convexity-guided layer pruning (Dorszewski, Tětková, Hansen 2024; SPEC §10) of S-Edge stacks and
of the frame transformer.

1. Layer-wise convexity: the graph convexity (:func:`sedge.compress.convexity.graph_convexity`) of
   every layer's time-mean output on **validation** clips.
2. Keep the layers up to and including the convexity peak, drop the rest, and put the classifier on
   the last kept layer: S-Edge gets a fresh decoder (the width changes), the transformer keeps its
   norm and classifier (the width does not).
3. Fine-tune with validation selection.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from sedge.models.config import ModelConfig
from sedge.models.model import SEdgeModel, build_model
from sedge.compress.convexity import graph_convexity
from sedge.models.transformer import FrameTransformer


@torch.no_grad()
def layer_means(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 32) -> list[np.ndarray]:
    """Time mean of every layer's output, one (N, H_ℓ) array per layer (eval mode; any model with
    ``features(wave) -> [per-layer (B, T, H)]``)."""
    was = model.training
    model.eval()
    chunks = [[f.mean(dim=1).double().numpy() for f in model.features(x[i:i + batch_size])]
              for i in range(0, len(x), batch_size)]
    model.train(was)
    return [np.concatenate([c[l] for c in chunks]) for l in range(len(chunks[0]))]


def convexity_profile(model: torch.nn.Module, x: torch.Tensor, labels, **kw) -> list[float]:
    """Graph convexity × 100 of every layer of ``model`` on clips ``x`` with ``labels``."""
    return [graph_convexity(f, np.asarray(labels), **kw) for f in layer_means(model, x)]


def layers_to_keep(scores: list[float]) -> int:
    """Number of leading layers up to the convexity peak (the first one if several tie)."""
    return int(np.argmax(scores)) + 1


def truncate_sedge(model: SEdgeModel, keep: int, seed: int = 0) -> SEdgeModel:
    """The first ``keep`` layers of ``model`` (weights copied) with a fresh decoder on layer ``keep``."""
    if not 1 <= keep <= len(model.layers):
        raise ValueError(f"keep must be in 1..{len(model.layers)}, got {keep}")
    cfg = ModelConfig.from_dict({**model.cfg.to_dict(), "name": f"{model.cfg.name}-{keep}L",
                                 "states": tuple(l.P for l in model.layers[:keep]),
                                 "widths": tuple(l.H for l in model.layers[:keep])})
    new = build_model(cfg, seed=seed)
    for i in range(keep):
        new.layers[i] = copy.deepcopy(model.layers[i])
    if keep == len(model.layers):
        new.decoder = copy.deepcopy(model.decoder)
    new.set_step_scale(model.step_scale[:keep])
    return new.train(model.training)


def truncate_transformer(model: FrameTransformer, keep: int) -> FrameTransformer:
    """The first ``keep`` encoder blocks; embedding, final norm and classifier kept."""
    if not 1 <= keep <= len(model.blocks):
        raise ValueError(f"keep must be in 1..{len(model.blocks)}, got {keep}")
    new = copy.deepcopy(model)
    new.blocks = torch.nn.ModuleList(list(new.blocks)[:keep])
    new.arch = {"kind": model.arch["kind"], "kwargs": {**model.arch["kwargs"], "layers": keep}}
    return new
