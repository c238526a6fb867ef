"""Why fine-tuning a pruned S-Edge model did not help, and which learning rate does: a sweep on validation.

    .venv/bin/python tools/finetune_lr_sweep.py            # about 25 min on one core (tiny, real words)

Fine-tunes the pruning chapter's 2-pp model of the trained ``tiny`` (real 8 words) with
:func:`sedge.pipeline.experiments.finetuned_run` — the training recipe, BatchNorm frozen, the pruned model
competing as epoch 0 — at several learning rates and lengths, each a cached stage under
``checkpoints/ablations/finetune_lr/``. Prints, per setting, the validation accuracy of every epoch,
the training accuracy, the selected epoch and the gap to the unpruned model. Selection is on
validation only; the test accuracy is the stage's single evaluation of its selected checkpoint.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from sedge.pipeline.experiments import finetuned_run
from sedge.memory import keep_freed_memory

PRUNED = "checkpoints/ablations/mini_tiny_epochs30/prune/params_truncate_b2_s1_f0.125_vall"
OUT = Path("checkpoints/ablations/finetune_lr")
# (η, epochs, batches per epoch or None for the whole training split); 1e-3 × 2 × 40 is the book's old recipe
SETTINGS = [(1e-3, 2, 40), (1e-4, 2, 40), (2e-5, 2, 40), (5e-6, 2, 40), (1e-4, 2, None), (5e-5, 2, None),
            (2e-5, 2, None)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args()
    keep_freed_memory()                       # big tensors reuse freed heap (sedge.memory)
    torch.set_num_threads(args.threads)
    search = json.loads(Path(PRUNED, "summary.json").read_text())
    unpruned, pruned_val = search["val_acc_before"], search["val_acc_after"]
    print(f"unpruned val {unpruned:.2f} %; the 2-pp model: {PRUNED}")
    print("| η | epochs × batches | val % per epoch (0 = pruned) | train % per epoch | selected | val % | "
          "gap to unpruned pp | test % |")
    print("|---|---|---|---|---|---|---|---|")
    for lr, epochs, steps in SETTINGS:
        out = OUT / f"lr{lr:g}_e{epochs}_b{steps or 'all'}"
        s = finetuned_run(f"{PRUNED}/pruned.pt", "mini", out, epochs=epochs, max_steps=steps, lr=lr,
                          batch_size=16, progress=False)
        history = json.loads((out / "metrics.json").read_text())
        vals = [f"{pruned_val:.1f}"] + [f"{100 * h['val_acc']:.1f}" for h in history]
        trains = [f"{100 * h['train_acc']:.1f}" for h in history]
        print(f"| {lr:g} | {epochs} × {steps or math.ceil(s['n_train'] / 16)} | {' → '.join(vals)} | {', '.join(trains)} | "
              f"epoch {s['best_epoch']} | {100 * s['val_acc']:.2f} | {round(unpruned - 100 * s['val_acc'], 2) + 0.0:.2f} | "
              f"{100 * s['test_acc']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
