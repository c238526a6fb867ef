"""GPU check of the training path (issue: fast training), run on demand on a CUDA machine.

    python tests/benchmarks/gpu_check.py --out gpu_check.json

For every zoo model with 8 classes and the same weights (seed 0):

* **parity** — eval-mode logits of 4 random normalised one-second clips on the CPU (the chunked scan
  of :mod:`sedge.models.scan`, which the CPU tests tie to the fused kernel within 1e-5) and on CUDA;
  reported as the largest absolute difference over the largest absolute logit (goal ≤ 1e-4);
* **speed** — one training step (forward, backward, AdamW step of :func:`sedge.training.train.make_optimizer`)
  at the recipe's batch of 16 clips, median of ``--reps`` after 3 warm-up steps, CUDA synchronised;
  and the eval forward of 64 clips (one validation batch).

Prints one line per model and writes the record as JSON. Not part of the test suite (CI has no GPU).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("SEDGE_KERNEL", "0")          # CPU reference: the chunked scan, no compile needed

import torch
import torch.nn.functional as F

from sedge.models.config import ZOO, TrainConfig, model_config
from sedge.models.model import build_model
from sedge.training.train import decoder_orthogonality, make_optimizer


def _sync() -> None:
    torch.cuda.synchronize()


def check(name: str, reps: int) -> dict:
    torch.manual_seed(0)
    cfg = model_config(name, n_classes=8)
    x = torch.randn(4, 16000)
    model = build_model(cfg, seed=0).eval()
    with torch.no_grad():
        ref = model(x)
        gpu = model.to("cuda")(x.to("cuda")).cpu()
    rel = float((ref - gpu).abs().max() / ref.abs().max())

    model.train()
    recipe = TrainConfig(lr=0.005)
    opt = make_optimizer(model, recipe)
    xb, yb = torch.randn(16, 16000, device="cuda"), torch.randint(0, 8, (16,), device="cuda")
    times = []
    for i in range(reps + 3):
        _sync()
        t = time.perf_counter()
        loss = F.cross_entropy(model(xb), yb) + recipe.ortho_reg * decoder_orthogonality(model.decoder.weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync()
        if i >= 3:
            times.append(time.perf_counter() - t)
    model.eval()
    xe = torch.randn(64, 16000, device="cuda")
    ev = []
    with torch.no_grad():
        for i in range(reps // 2 + 2):
            _sync()
            t = time.perf_counter()
            model(xe)
            _sync()
            if i >= 2:
                ev.append(time.perf_counter() - t)
    return {"model": name, "logits_rel_diff": rel, "train_step_s": statistics.median(times),
            "eval_64_s": statistics.median(ev), "peak_gb": torch.cuda.max_memory_allocated() / 2**30}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu_check.json", help="where to write the JSON record")
    ap.add_argument("--reps", type=int, default=10, help="timed training steps per model")
    ap.add_argument("--models", default=",".join(ZOO), help="comma-separated zoo models")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: CUDA is not available on this machine")
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    record = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "host": platform.node(),
              "cpu_threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "models": []}
    for name in a.models.split(","):
        torch.cuda.reset_peak_memory_stats()
        r = check(name, a.reps)
        record["models"].append(r)
        print(f"{name:5s} logits |Δ|/max {r['logits_rel_diff']:.1e}  train step {1e3 * r['train_step_s']:.1f} ms "
              f"(batch 16)  eval {1e3 * r['eval_64_s']:.1f} ms (64 clips)  peak {r['peak_gb']:.2f} GiB", flush=True)
    with open(a.out, "w") as f:
        json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
