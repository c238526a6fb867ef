"""The comparison baselines (SPEC §10) — any waveform → logits ``nn.Module`` — and their training recipe.

Adam, cross-entropy, the per-batch cosine schedule with linear warm-up of the one training loop,
:func:`sedge.training.loop.fit` (the S-Edge recipe uses the same loop); inputs are the normalised
waveforms of the same splits as S-Edge. The checkpoint is selected on **validation** accuracy and the
test split is evaluated once, on it, at the end (two of the seed codebases selected on test; SPEC §12);
an interrupted run resumes from ``last.pt``. A checkpoint stores the architecture as ``(kind, kwargs)``,
so :func:`sedge.training.checkpoints.read_checkpoint` rebuilds it, pruned shapes included.

``after_step(model)`` runs after every optimiser step (e.g. re-applying pruning masks); with
``init`` the starting model competes as epoch 0 (fine-tuning).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import torch

from sedge.data import KeywordData
from sedge.training.checkpoints import read_checkpoint
from sedge.training.device import resolve_device
from sedge.training.loop import Schedule, fit
from sedge.models.acdnet import ACDNet
from sedge.models.dcase_cnn import DcaseCNN
from sedge.models.transformer import FrameTransformer

KINDS: dict[str, type[torch.nn.Module]] = {"dcase": DcaseCNN, "acdnet": ACDNet, "transformer": FrameTransformer}


def build_baseline(kind: str, seed: int | None = None, **kwargs) -> torch.nn.Module:
    """Baseline ``kind`` built with ``kwargs``; with ``seed`` its initial weights are drawn from
    ``torch.manual_seed(seed)`` in a forked RNG (the same weights whatever ran before, the caller's
    random state untouched), else from the global RNG (a checkpoint being rebuilt, then overwritten)."""
    if kind not in KINDS:
        raise ValueError(f"unknown baseline {kind!r}; choose one of {sorted(KINDS)}")
    if seed is None:
        model = KINDS[kind](**kwargs)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = KINDS[kind](**kwargs)
    model.arch = {"kind": kind, "kwargs": kwargs}            # what a checkpoint needs to rebuild it
    return model


def load_baseline(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """(model, metadata) of a **baseline** checkpoint (:func:`sedge.training.checkpoints.read_checkpoint`
    reads any family)."""
    ck = read_checkpoint(path)
    if ck.family == "sedge":
        raise ValueError(f"checkpoint {ck.path}: an S-Edge checkpoint, where a baseline one (DCASE CNN, ACDNet, "
                         "transformer) is expected")
    return ck.model, ck.meta


def train_baseline(model: torch.nn.Module, data: KeywordData, run_dir: str | Path, *, epochs: int, lr: float,
                   batch_size: int = 32, max_steps: int | None = None, warmup_steps: int = 20, seed: int = 0,
                   init_competes: bool = False, after_step: Callable[[torch.nn.Module], None] | None = None,
                   data_spec: str = "", progress: bool = True, device: str | torch.device = "cpu",
                   checkpoint_minutes: float = 5.0) -> dict:
    """Train (a copy of) ``model`` (built by :func:`build_baseline`) with Adam and cross-entropy through
    :func:`sedge.training.loop.fit`; returns the summary. ``device``: see
    :func:`sedge.training.device.resolve_device` (batches move there once per step)."""
    dev = resolve_device(device)
    torch.manual_seed(seed)
    model = copy.deepcopy(model).train().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    data_name = data_spec or data.name
    recipe = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "max_steps": max_steps, "warmup_steps": warmup_steps,
              "seed": seed, "init_competes": init_competes, "data": data_name, "n_train": len(data.train)}
    meta = {"classes": data.classes, "norm": data.stats(), "data": data_name, "recipe": recipe}

    def differs(saved: dict) -> list[str]:
        if saved.get("arch") != model.arch:
            return ["arch"]
        old = saved.get("recipe") or {}
        return sorted(k for k in recipe if old.get(k, "?") != recipe[k])

    schedule = Schedule(epochs=epochs, batch_size=batch_size, warmup_steps=warmup_steps, seed=seed, max_steps=max_steps)
    return fit(model, opt, data, run_dir, schedule, meta=meta, differs=differs, summary_head={"arch": model.arch},
               init_competes=init_competes, after_step=after_step, progress=progress,
               checkpoint_minutes=checkpoint_minutes, name=model.arch["kind"])
