"""Training loop of the comparison baselines (SPEC §10): any waveform → logits ``nn.Module``.

Adam, cross-entropy, a per-batch cosine schedule with linear warm-up (the one of
:func:`sedge.training.train.cosine_with_warmup`); inputs are the normalised waveforms of the same splits as
S-Edge. The checkpoint is selected on **validation** accuracy and the test split is evaluated once,
on it, at the end (two of the seed codebases selected on test; SPEC §12). Every epoch rewrites
``last.pt`` atomically, so an interrupted run resumes. A checkpoint stores the architecture as
``(kind, kwargs)``, so :func:`load_baseline` rebuilds it, pruned shapes included.

``after_step(model)`` runs after every optimiser step (e.g. re-applying pruning masks); with
``init`` the starting model competes as epoch 0 (fine-tuning).
"""
from __future__ import annotations

import copy
import io
import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sedge.data import KeywordData
from sedge.paths import atomic_write_bytes, atomic_write_csv, atomic_write_json
from sedge.training.train import accuracy, cosine_with_warmup, predict
from sedge.models.acdnet import ACDNet
from sedge.models.dcase_cnn import DcaseCNN
from sedge.models.transformer import FrameTransformer

KINDS: dict[str, type[torch.nn.Module]] = {"dcase": DcaseCNN, "acdnet": ACDNet, "transformer": FrameTransformer}


def build_baseline(kind: str, **kwargs) -> torch.nn.Module:
    if kind not in KINDS:
        raise ValueError(f"unknown baseline {kind!r}; choose one of {sorted(KINDS)}")
    model = KINDS[kind](**kwargs)
    model.arch = {"kind": kind, "kwargs": kwargs}            # what a checkpoint needs to rebuild it
    return model


def save_baseline(path: str | Path, model: torch.nn.Module, meta: dict, **extra) -> None:
    blob = {"arch": model.arch, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, **meta, **extra}

    def write(f):
        buf = io.BytesIO()
        torch.save(blob, buf)
        f.write(buf.getvalue())
    atomic_write_bytes(Path(path), write)


def load_baseline(path: str | Path) -> tuple[torch.nn.Module, dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(blob, dict) or "arch" not in blob:
        raise ValueError(f"checkpoint {path}: not a sedge baseline checkpoint (no 'arch')")
    model = build_baseline(blob["arch"]["kind"], **blob["arch"]["kwargs"])
    model.load_state_dict(blob["state_dict"])
    return model.eval(), blob


def train_baseline(model: torch.nn.Module, data: KeywordData, run_dir: str | Path, *, epochs: int, lr: float,
                   batch_size: int = 32, max_steps: int | None = None, warmup_steps: int = 20, seed: int = 0,
                   init_competes: bool = False, after_step: Callable[[torch.nn.Module], None] | None = None,
                   data_spec: str = "", progress: bool = True, device: str | torch.device = "cpu") -> dict:
    """Train ``model`` (built by :func:`build_baseline`) in place of a copy; returns the summary.
    ``device``: see :func:`sedge.training.device.resolve_device` (batches move there once per step)."""
    from sedge.training.device import resolve_device
    dev = resolve_device(device)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = copy.deepcopy(model).train().to(dev)
    mean, std = data.stats()
    x_train, y_train = data.train.tensors(mean, std)
    x_val, y_val = data.val.tensors(mean, std)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = math.ceil(len(x_train) / batch_size)
    steps = min(steps, max_steps) if max_steps else steps
    total = steps * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_with_warmup(s, total, warmup_steps))
    meta = {"classes": data.classes, "norm": (mean, std), "data": data_spec or data.name}
    recipe = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "max_steps": max_steps, "warmup_steps": warmup_steps,
              "seed": seed, "init_competes": init_competes, "data": meta["data"], "n_train": len(x_train)}
    history: list[dict] = []
    best_val = -1.0
    last = run_dir / "last.pt"
    if last.exists():
        blob = torch.load(last, map_location="cpu", weights_only=False)
        if blob["arch"] != model.arch:
            raise ValueError(f"{last}: a run of another architecture is already in {run_dir}")
        if blob.get("recipe") != recipe:
            changed = sorted(k for k in recipe if (blob.get("recipe") or {}).get(k, "?") != recipe[k])
            raise ValueError(f"{last}: the interrupted run in {run_dir} has another recipe (differs in {changed}); "
                             "resuming would continue its schedule. Remove last.pt to start over, or use another folder")
        model.load_state_dict(blob["state_dict"])
        opt.load_state_dict(blob["optimizer"])
        sched.load_state_dict(blob["scheduler"])
        torch.set_rng_state(blob["rng"])
        history, best_val = blob["history"], blob["best_val"]
    elif init_competes:
        best_val = accuracy(predict(model, x_val), y_val)
        save_baseline(run_dir / "best.pt", model, meta, epoch=0, val_acc=best_val)
    for epoch in range(len(history), epochs):
        t0 = time.time()
        model.train()
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        loss_sum = correct = seen = 0.0
        bar = tqdm(range(steps), desc=f"{model.arch['kind']} epoch {epoch + 1}/{epochs}", unit="batch",
                   disable=not progress, mininterval=2)
        for step in bar:
            idx = order[step * batch_size:(step + 1) * batch_size]
            if len(idx) == 0:
                break
            xb, yb = x_train[idx].to(dev, non_blocking=True), y_train[idx].to(dev, non_blocking=True)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if after_step is not None:
                after_step(model)
            loss_sum += float(loss.detach()) * len(idx)
            correct += float((logits.argmax(1) == yb).sum())
            seen += len(idx)
        val_acc = accuracy(predict(model, x_val), y_val)
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
                        "val_acc": val_acc, "seconds": time.time() - t0})
        if val_acc > best_val:
            best_val = val_acc
            save_baseline(run_dir / "best.pt", model, meta, epoch=epoch + 1, val_acc=val_acc)
        atomic_write_csv(run_dir / "metrics.csv", history)
        save_baseline(last, model, meta, optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                      rng=torch.get_rng_state(), history=history, best_val=best_val, recipe=recipe)
        if progress:
            tqdm.write(f"epoch {epoch + 1}: train acc {history[-1]['train_acc']:.3f}  val acc {val_acc:.3f}")
    best, blob = load_baseline(run_dir / "best.pt")
    x_test, y_test = data.test.tensors(mean, std)
    summary = {"arch": model.arch, "data": meta["data"], "best_epoch": blob["epoch"], "val_acc": blob["val_acc"],
               "test_acc": accuracy(predict(best.to(dev), x_test), y_test), "epochs": epochs,
               "train_seconds": sum(r["seconds"] for r in history)}
    atomic_write_json(run_dir / "summary.json", summary)
    last.unlink(missing_ok=True)
    return summary
