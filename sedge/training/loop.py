"""The one training loop of sedge: S-Edge (the paper's recipe, :mod:`sedge.training.train`) and every
baseline (:mod:`sedge.training.baselines`) run through :func:`fit`; a recipe only brings its model,
optimiser and loss.

Per epoch e (of E), with S steps of batch size b on each of W ranks:

    order_e        = randperm(N_train; seed · 1000 + e)[rank :: W]        (W = 1: the whole permutation)
    lr(t)          = lr₀ · cosine_with_warmup(t, S · E, warm-up)            (per optimiser step t)
    θ ← θ − step(∇θ loss(model(x_batch), y_batch, model))                   then after_step(model)
    val_acc(e)     = accuracy on the validation split after epoch e

The checkpoint of the best ``val_acc`` is ``best.pt`` (a starting model passed as ``init_competes``
competes as epoch 0); the **test split is evaluated once**, on it, at the end. ``last.pt`` is the commit
point of a run: rewritten atomically at every epoch end and every ``checkpoint_minutes`` inside an epoch
(with the position in the epoch), so an interrupted run resumes where it was and ends bit for bit as an
uninterrupted one. A first SIGINT (Ctrl-C) or SIGTERM (``kill``) is a request to stop: the step under
way finishes, ``last.pt`` records the position reached and :class:`TrainingStopped` is raised, so a
stopped run loses nothing; a second signal interrupts at once (single-process runs; under torchrun the
default handlers stay). Resuming checks the saved run configuration (``meta``) and refuses another, naming
the fields that differ. Under ``torchrun`` (DistributedDataParallel, gloo on CPU) each rank takes its
shard of every epoch's permutation, so the global batch of step s is ``order[s·b·W : (s+1)·b·W]`` — the
batch a single process with batch size b·W takes; rank 0 writes.
"""
from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from sedge.data import KeywordData
from sedge.paths import atomic_write_csv, atomic_write_json
from sedge.training.checkpoints import read_checkpoint, save_checkpoint
from sedge.training.evaluation import accuracy, predict

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.nn.Module], torch.Tensor]


def cosine_with_warmup(step: int, total: int, warmup: int) -> float:
    """Multiplier of the base lr: linear warm-up over ``warmup`` steps, then cosine to 0."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """The plain classification loss ℒ = CE(logits, labels) (the baselines' loss)."""
    return F.cross_entropy(logits, labels)


@dataclass
class Schedule:
    """How long and in what order a run trains: ``epochs`` of at most ``max_steps`` batches of
    ``batch_size`` clips (per rank), ``warmup_steps`` of linear warm-up, batch order from ``seed``."""
    epochs: int
    batch_size: int
    warmup_steps: int
    seed: int
    max_steps: int | None = None
    augment: dict | None = None                          # sedge.data.augment.Augment fields


class TrainingStopped(KeyboardInterrupt):
    """A run stopped on request (SIGINT/SIGTERM) after ``last.pt`` was written at ``epoch`` (0-based)
    and ``step`` (batches done in that epoch); rerunning the same command resumes there."""

    def __init__(self, last: Path, epoch: int, step: int, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} at epoch {epoch + 1}, batch {step}: "
                         f"{last} holds the position; rerun the same command to resume")
        self.last, self.epoch, self.step, self.signum = last, epoch, step, signum


@contextmanager
def stop_requests(enabled: bool = True) -> Iterator[dict]:
    """While active, the first SIGINT or SIGTERM only sets ``flag["signal"]`` (the caller stops at a
    safe point); a second one raises KeyboardInterrupt at once. The previous handlers are restored on
    exit. Disabled (plain default behaviour) when ``enabled`` is false or off the main thread."""
    flag: dict = {"signal": None}
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flag
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in signals}

    def request(signum, frame) -> None:
        if flag["signal"] is not None:
            raise KeyboardInterrupt
        flag["signal"] = signum
        tqdm.write(f"{signal.Signals(signum).name}: finishing this batch and saving last.pt "
                   "(send it again to stop at once)")
    for s in signals:
        signal.signal(s, request)
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def dist_info() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _write_metrics(run_dir: Path, history: list[dict]) -> None:
    atomic_write_csv(run_dir / "metrics.csv", history)
    atomic_write_json(run_dir / "metrics.json", history)


def fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data: KeywordData, run_dir: str | Path,
        schedule: Schedule, *, meta: dict, differs: Callable[[dict], list[str]], summary_head: dict,
        loss_fn: LossFn = cross_entropy, init_competes: bool = False,
        after_step: Callable[[torch.nn.Module], None] | None = None, freeze_norm: bool = False,
        progress: bool = True, checkpoint_minutes: float = 5.0, name: str = "model") -> dict:
    """Train ``model`` (already on its device, in train mode) with ``optimizer``; select on validation,
    test once; returns the run summary (also ``summary.json``), ``summary_head`` first.

    ``meta``: what every checkpoint of the run holds besides the weights (classes, normalisation, data
    spec, the run configuration); ``differs(saved)``: the names of the configuration fields in which a
    saved ``last.pt`` differs from this run (empty: it resumes). ``after_step(model)`` runs after every
    optimiser step (e.g. re-applying pruning masks); ``freeze_norm`` keeps every BatchNorm in eval mode."""
    from sedge.data.augment import Augment
    from sedge.training.device import model_device
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dev = model_device(model)
    rank, world = dist_info()
    mean, std = meta["norm"]
    x_train, y_train = data.train.tensors(mean, std)
    x_val, y_val = data.val.tensors(mean, std)
    sc = schedule
    steps_per_epoch = math.ceil(len(x_train) / (sc.batch_size * world))
    if sc.max_steps:
        steps_per_epoch = min(steps_per_epoch, sc.max_steps)
    total = steps_per_epoch * sc.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_with_warmup(s, total, sc.warmup_steps))
    augment = Augment(**sc.augment) if sc.augment else None
    history: list[dict] = []
    start_epoch, best_val, partial = 0, -1.0, None
    last = run_dir / "last.pt"
    if last.exists():                                    # resume after an interruption
        blob = torch.load(last, map_location="cpu", weights_only=False)
        changed = differs(blob)
        if changed:
            raise ValueError(f"{last}: the interrupted run in {run_dir} has another configuration (differs in "
                             f"{changed}); resuming would continue its schedule. Choose another --out, or delete "
                             "last.pt to start over")
        model.load_state_dict(blob["state_dict"])
        optimizer.load_state_dict(blob["optimizer"])
        sched.load_state_dict(blob["scheduler"])
        torch.set_rng_state(blob["rng"])
        history, best_val = blob["history"], blob["best_val"]
        start_epoch = len(history)
        partial = blob.get("partial")                    # written inside an epoch: continue at its step
    elif init_competes:                                  # fine-tuning: the starting model competes as epoch 0
        best_val = accuracy(predict(model, x_val), y_val)
        if rank == 0:
            save_checkpoint(run_dir / "best.pt", model, meta, epoch=0, val_acc=best_val)
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)

    def save_last(**extra) -> None:
        save_checkpoint(last, model, meta, optimizer=optimizer.state_dict(), scheduler=sched.state_dict(),
                        rng=torch.get_rng_state(), history=history, best_val=best_val, **extra)

    with stop_requests(enabled=world == 1) as stop:   # Ctrl-C / kill: stop after a whole batch
        for epoch in range(start_epoch, sc.epochs):
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
            order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(sc.seed * 1000 + epoch))
            order = order[rank::world]                       # each rank its own shard, same length ± 1
            bar = tqdm(range(first, steps_per_epoch), desc=f"{name} epoch {epoch + 1}/{sc.epochs}", unit="batch",
                       disable=not progress or rank != 0, mininterval=2, initial=first, total=steps_per_epoch)
            saved_at = time.time()
            for step in bar:
                idx = order[step * sc.batch_size:(step + 1) * sc.batch_size]
                if len(idx) == 0:
                    break
                xb = x_train[idx]
                if augment is not None:                      # drawn from (seed, global step): resumable
                    xb = augment(xb, torch.Generator().manual_seed(sc.seed * 7919 + epoch * steps_per_epoch + step))
                xb, yb = xb.to(dev, non_blocking=True), y_train[idx].to(dev, non_blocking=True)
                logits = net(xb)
                loss = loss_fn(logits, yb, model)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                sched.step()
                if after_step is not None:
                    after_step(model)
                loss_sum += float(loss.detach()) * len(idx)
                correct += float((logits.argmax(1) == yb).sum())
                seen += len(idx)
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
                if rank == 0 and time.time() - saved_at > 60 * checkpoint_minutes and step + 1 < steps_per_epoch:
                    save_last(partial={"epoch": epoch, "step": step + 1, "loss_sum": loss_sum, "correct": correct,
                                       "seen": seen, "seconds": spent + time.time() - t0})
                    saved_at = time.time()
                if stop["signal"] is not None:               # asked to stop: commit this batch, then leave
                    save_last(partial={"epoch": epoch, "step": step + 1, "loss_sum": loss_sum, "correct": correct,
                                       "seen": seen, "seconds": spent + time.time() - t0})
                    bar.close()
                    raise TrainingStopped(last, epoch, step + 1, stop["signal"])
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
            if stop["signal"] is not None:               # asked during validation: the epoch is committed
                raise TrainingStopped(last, epoch + 1, 0, stop["signal"])
    if world > 1:
        dist.barrier()
    best = read_checkpoint(run_dir / "best.pt")
    x_test, y_test = data.test.tensors(mean, std)
    test_logits = predict(best.model.to(dev), x_test)
    summary = {**summary_head, "data": meta["data"], "best_epoch": best.meta["epoch"], "val_acc": best.meta["val_acc"],
               "test_acc": accuracy(test_logits, y_test), "epochs": sc.epochs, "world_size": world,
               "train_seconds": sum(r["seconds"] for r in history),
               "n_train": len(x_train), "n_val": len(x_val), "n_test": len(x_test)}
    if rank == 0:
        atomic_write_json(run_dir / "summary.json", summary)
    return summary
