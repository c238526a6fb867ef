"""Paper-faithful training of S-Edge models (SPEC §4): the recipe; the loop is :func:`sedge.training.loop.fit`.

AdamW with two groups — {Λ, log_step, B, b, C, c}: lr η, no weight decay; skip, BN and
decoder: lr 4η, weight decay 0.04 — a per-batch cosine schedule after 100 linear warm-up
steps, and the loss

    ℒ = CE + 0.1 · sqrt(mean((W Wᵀ ⊙ (1 − I))²))        (W: decoder weight)

The checkpoint is selected by validation accuracy; the test split is evaluated once, on
that checkpoint, at the end; ``last.pt`` is rewritten every epoch and every ``checkpoint_minutes``
inside one, so an interrupted run resumes where it was. Optional training-time augmentation:
:mod:`sedge.data.augment`. Runs unchanged under ``torchrun`` (DistributedDataParallel, gloo on CPU).
"""
from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path

import torch

from sedge.data import KeywordData
from sedge.models.config import ModelConfig, TrainConfig
from sedge.models.model import SEdgeModel, build_model
from sedge.training.device import resolve_device
from sedge.training.loop import Schedule, fit


# ---- loss and optimiser ----------------------------------------------------------------
def decoder_orthogonality(W: torch.Tensor) -> torch.Tensor:
    """sqrt(mean((W Wᵀ ⊙ (1 − I))²)) for the decoder weight W (SPEC §4)."""
    G = W @ W.T
    off = G - torch.diag_embed(torch.diagonal(G))
    return torch.sqrt(torch.mean(off ** 2))


def make_optimizer(model: SEdgeModel, cfg: TrainConfig) -> torch.optim.AdamW:
    ssm = {id(p) for p in model.ssm_parameters()}
    rest = [p for p in model.parameters() if id(p) not in ssm]
    return torch.optim.AdamW([
        {"params": model.ssm_parameters(), "lr": cfg.lr, "weight_decay": 0.0},
        {"params": rest, "lr": 4 * cfg.lr, "weight_decay": cfg.weight_decay},
    ])


def train(model_cfg: ModelConfig, data: KeywordData, cfg: TrainConfig, run_dir: str | Path,
          data_spec: str = "", progress: bool = True, init: SEdgeModel | None = None,
          freeze_norm: bool = False, device: str | torch.device = "cpu", checkpoint_minutes: float = 5.0) -> dict:
    """Train, select on validation, test once; returns the run summary (also ``summary.json``).

    ``init``: start from (a copy of) this model instead of a fresh one — fine-tuning, e.g. of a
    pruned model; ``model_cfg`` must then be ``init.cfg``, and the starting model competes in the
    validation selection as epoch 0. ``freeze_norm`` keeps every BatchNorm in eval mode (running
    statistics fixed). ``device``: see :func:`sedge.training.device.resolve_device` (the device is not
    part of the run's configuration: a run may resume on another one). ``checkpoint_minutes``: interval
    of the mid-epoch ``last.pt`` writes."""
    dev = resolve_device(device)
    torch.manual_seed(cfg.seed)
    if init is not None and init.cfg.to_dict() != model_cfg.to_dict():
        raise ValueError("train(init=...): model_cfg must be init.cfg")
    model = copy.deepcopy(init).train() if init is not None else build_model(model_cfg, seed=cfg.seed)
    model.to(dev)
    opt = make_optimizer(model, cfg)
    meta = {"classes": data.classes, "norm": data.stats(), "data": data_spec or data.name, "train_cfg": asdict(cfg)}

    def differs(saved: dict) -> list[str]:
        if saved.get("model_cfg") != model_cfg.to_dict():
            return ["model_cfg"]
        if cfg.same_run(saved.get("train_cfg") or {}):
            return []
        old = {**asdict(TrainConfig()), **(saved.get("train_cfg") or {})}
        return sorted(k for k, v in asdict(cfg).items() if old.get(k) != v)

    def loss(logits: torch.Tensor, labels: torch.Tensor, m: torch.nn.Module) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits, labels) + cfg.ortho_reg * decoder_orthogonality(m.decoder.weight)

    schedule = Schedule(epochs=cfg.epochs, batch_size=cfg.batch_size, warmup_steps=cfg.warmup_steps, seed=cfg.seed,
                        max_steps=cfg.max_steps_per_epoch, augment=cfg.augment)
    return fit(model, opt, data, run_dir, schedule, meta=meta, differs=differs, summary_head={"model": model_cfg.name},
               loss_fn=loss, init_competes=init is not None, freeze_norm=freeze_norm, progress=progress,
               checkpoint_minutes=checkpoint_minutes, name=model_cfg.name)
