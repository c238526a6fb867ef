"""Paper-faithful training of S-Edge models (SPEC §4).

AdamW with two groups — {Λ, log_step, B, b, C, c}: lr η, no weight decay; skip, BN and
decoder: lr 4η, weight decay 0.04 — a per-batch cosine schedule after 100 linear warm-up
steps, and the loss

    ℒ = CE + 0.1 · sqrt(mean((W Wᵀ ⊙ (1 − I))²))        (W: decoder weight)

The checkpoint is selected by validation accuracy; the test split is evaluated once, on
that checkpoint, at the end. Every epoch, and every ``checkpoint_minutes`` within one, rewrites
``last.pt`` atomically (with ``metrics.csv`` at epoch ends), so an interrupted run resumes where it
was, losing minutes at most. Optional training-time augmentation: :mod:`sedge.data.augment`. Runs unchanged
under ``torchrun`` (DistributedDataParallel, gloo on CPU): rank 0 writes.
"""
from __future__ import annotations

import copy
import io
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from sedge.models.config import ModelConfig, TrainConfig
from sedge.data import KeywordData
from sedge.training.device import model_device, resolve_device
from sedge.models.model import SEdgeModel, build_model
from sedge.paths import atomic_write_bytes, atomic_write_csv, atomic_write_json

CHECKPOINT_VERSION = 1


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


def cosine_with_warmup(step: int, total: int, warmup: int) -> float:
    """Multiplier of the base lr: linear warm-up over ``warmup`` steps, then cosine to 0."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


# ---- evaluation -------------------------------------------------------------------------
@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """Logits (on the CPU) for normalised waveforms ``x`` (N, L) in eval mode, computed on the model's device."""
    was_training = model.training
    model.eval()
    dev = model_device(model)
    out = []
    it = range(0, len(x), batch_size)
    for i in tqdm(it, desc="evaluating", unit="batch", disable=not progress, leave=False):
        out.append(model(x[i:i + batch_size].to(dev)).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, getattr(getattr(model, "cfg", None), "n_classes", 0))


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean()) if len(labels) else float("nan")


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (labels, pred), 1)
    return m


# ---- checkpoints ------------------------------------------------------------------------
def save_checkpoint(path: Path, model: SEdgeModel, meta: dict, **extra) -> None:
    blob = {"version": CHECKPOINT_VERSION, "model_cfg": model.cfg.to_dict(),
            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "step_scale": list(model.step_scale),
            **meta, **extra}

    def write(f):
        buf = io.BytesIO()
        torch.save(blob, buf)
        f.write(buf.getvalue())
    atomic_write_bytes(Path(path), write)


def load_checkpoint(path: str | Path) -> tuple[SEdgeModel, dict]:
    """Rebuild the model of a checkpoint (eval mode) and return it with its metadata."""
    path = Path(path)
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
    if not isinstance(blob, dict) or "model_cfg" not in blob or "state_dict" not in blob:
        raise ValueError(f"checkpoint {path}: not a sedge checkpoint (no model_cfg/state_dict)")
    cfg = ModelConfig.from_dict(blob["model_cfg"])
    model = build_model(cfg)
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
    return model.eval(), blob


# ---- the training loop ------------------------------------------------------------------
def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _write_metrics(run_dir: Path, history: list[dict]) -> None:
    atomic_write_csv(run_dir / "metrics.csv", history)
    atomic_write_json(run_dir / "metrics.json", history)


def train(model_cfg: ModelConfig, data: KeywordData, cfg: TrainConfig, run_dir: str | Path,
          data_spec: str = "", progress: bool = True, init: SEdgeModel | None = None,
          freeze_norm: bool = False, device: str | torch.device = "cpu", checkpoint_minutes: float = 5.0) -> dict:
    """Train, select on validation, test once; returns the run summary (also ``summary.json``).

    ``init``: start from (a copy of) this model instead of a fresh one — fine-tuning, e.g. of a
    pruned model; ``model_cfg`` must then be ``init.cfg``, and the starting model competes in the
    validation selection as epoch 0. ``freeze_norm`` keeps every BatchNorm in
    eval mode (running statistics fixed): a reduced layer has its BN folded into B and b and an
    identity BN, which batch statistics would undo. ``device``: see :func:`sedge.training.device.resolve_device`
    (the device is not part of the run's configuration: a run may resume on another one).
    ``checkpoint_minutes``: interval of the mid-epoch ``last.pt`` writes."""
    from sedge.data.augment import Augment
    run_dir = Path(run_dir)
    dev = resolve_device(device)
    rank, world = _dist_info()
    torch.manual_seed(cfg.seed)
    if init is not None and init.cfg.to_dict() != model_cfg.to_dict():
        raise ValueError("train(init=...): model_cfg must be init.cfg")
    model = copy.deepcopy(init).train() if init is not None else build_model(model_cfg, seed=cfg.seed)
    model.to(dev)
    mean, std = data.stats()
    x_train, y_train = data.train.tensors(mean, std)
    x_val, y_val = data.val.tensors(mean, std)
    opt = make_optimizer(model, cfg)
    steps_per_epoch = math.ceil(len(x_train) / (cfg.batch_size * world))
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_with_warmup(s, total, cfg.warmup_steps))
    meta = {"classes": data.classes, "norm": (mean, std), "data": data_spec or data.name,
            "train_cfg": asdict(cfg)}
    history: list[dict] = []
    start_epoch, best_val, partial = 0, -1.0, None
    augment = Augment(**cfg.augment) if cfg.augment else None
    last = run_dir / "last.pt"
    if last.exists():                                    # resume after an interruption
        blob = torch.load(last, map_location="cpu", weights_only=False)
        if blob.get("model_cfg") != model_cfg.to_dict() or not cfg.same_run(blob.get("train_cfg") or {}):
            raise ValueError(f"{last}: a run with another configuration is already in {run_dir}; "
                             "choose another --out or delete it")
        model.load_state_dict(blob["state_dict"])
        opt.load_state_dict(blob["optimizer"])
        sched.load_state_dict(blob["scheduler"])
        torch.set_rng_state(blob["rng"])
        history, best_val = blob["history"], blob["best_val"]
        start_epoch = len(history)
        partial = blob.get("partial")                    # written inside an epoch: continue at its step
    elif init is not None:                               # fine-tuning: the starting model competes as epoch 0
        best_val = accuracy(predict(model, x_val), y_val)
        if rank == 0:
            save_checkpoint(run_dir / "best.pt", model, meta, epoch=0, val_acc=best_val)
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)

    def save_last(**extra) -> None:
        save_checkpoint(last, model, meta, optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                        rng=torch.get_rng_state(), history=history, best_val=best_val, **extra)

    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        first, loss_sum, correct, seen, spent = 0, 0.0, 0.0, 0.0, 0.0
        if partial is not None and partial["epoch"] == epoch:
            first, loss_sum, correct, seen, spent = (partial[k] for k in ("step", "loss_sum", "correct", "seen", "seconds"))
        partial = None
        model.train()
        if freeze_norm:
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        order = torch.randperm(len(x_train), generator=g)
        order = order[rank::world]                       # each rank its own shard, same length ± 1
        bar = tqdm(range(first, steps_per_epoch), desc=f"{model_cfg.name} epoch {epoch + 1}/{cfg.epochs}",
                   unit="batch", disable=not progress or rank != 0, mininterval=2, initial=first,
                   total=steps_per_epoch)
        saved_at = time.time()
        for step in bar:
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            if len(idx) == 0:
                break
            xb = x_train[idx]
            if augment is not None:                      # drawn from (seed, global step): resumable
                xb = augment(xb, torch.Generator().manual_seed(cfg.seed * 7919 + epoch * steps_per_epoch + step))
            xb, yb = xb.to(dev, non_blocking=True), y_train[idx].to(dev, non_blocking=True)
            logits = net(xb)
            loss = F.cross_entropy(logits, yb) + cfg.ortho_reg * decoder_orthogonality(model.decoder.weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += float((logits.argmax(1) == yb).sum())
            seen += len(idx)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
            if rank == 0 and time.time() - saved_at > 60 * checkpoint_minutes and step + 1 < steps_per_epoch:
                save_last(partial={"epoch": epoch, "step": step + 1, "loss_sum": loss_sum, "correct": correct,
                                   "seen": seen, "seconds": spent + time.time() - t0})
                saved_at = time.time()
        val_logits = predict(model, x_val)
        row = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
               "val_loss": float(F.cross_entropy(val_logits, y_val)), "val_acc": accuracy(val_logits, y_val),
               "lr": sched.get_last_lr()[0], "seconds": spent + time.time() - t0}
        history.append(row)
        if rank == 0:
            if row["val_acc"] > best_val:
                best_val = row["val_acc"]
                save_checkpoint(run_dir / "best.pt", model, meta, epoch=epoch + 1, val_acc=best_val)
            _write_metrics(run_dir, history)
            save_last()                                  # the commit point of an epoch
            if progress:
                tqdm.write(f"epoch {epoch + 1}: train acc {row['train_acc']:.3f}  val acc {row['val_acc']:.3f}  "
                           f"({row['seconds']:.0f} s)")
    if world > 1:
        dist.barrier()
    best, blob = load_checkpoint(run_dir / "best.pt")
    x_test, y_test = data.test.tensors(mean, std)
    test_logits = predict(best.to(dev), x_test)
    summary = {"model": model_cfg.name, "data": meta["data"], "best_epoch": blob["epoch"],
               "val_acc": blob["val_acc"], "test_acc": accuracy(test_logits, y_test),
               "epochs": cfg.epochs, "world_size": world, "train_seconds": sum(r["seconds"] for r in history),
               "n_train": len(x_train), "n_val": len(x_val), "n_test": len(x_test)}
    if rank == 0:
        atomic_write_json(run_dir / "summary.json", summary)
    return summary
