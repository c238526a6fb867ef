"""Balanced-truncation pruning of the longer runs of record on the real 8 words, no retraining.

    .venv/bin/python tools/prune_long_runs.py                       # full, l, m, s, tiny at 0.5 pp
    .venv/bin/python tools/prune_long_runs.py --models tiny --budgets 0.25 0.5 1 2
    .venv/bin/python tools/prune_long_runs.py --models m l --method data   # data-weighted (ours)
    .venv/bin/python tools/prune_long_runs.py --models tiny --refit-clips 128   # least-squares output refit (ours)

For each model, its run of record (:func:`sedge.pipeline.records.runs_of_record` over
``checkpoints/trained`` and ``checkpoints/ablations``: the best validation accuracy among the finished
runs of the method) is pruned with the book's search (SPEC §8; :func:`sedge.pipeline.experiments.pruned_run`:
greedy layer-wise balanced truncation on the validation split, moves of ⌈P/8⌉ states, objective
parameters) into ``RUN/prune/<settings>``. Each budget is a cached stage; the validation accuracies
of the configurations tried are kept in one memo per run, written after every round, so budgets
share evaluations and an interrupted search resumes. The test split is scored once per final
model. Prints a Markdown table of the pruned models and, per layer, where the reductions come from: the Hankel singular values σ₁ ≥ σ₂ ≥ … of the
layer's real realisation (2P states) and the balanced-truncation bound on the error of keeping k
complex states, relative to σ₁ (a lower bound of the layer's H∞ norm):

    bound(k) = 2 Σ_{j > 2k} σ_j / σ₁
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from sedge.compress.reduction import hankel_singular_values, layer_system
from sedge.pipeline.experiments import converged_runs, pruned_run
from sedge.pipeline.records import runs_of_record
from sedge.memory import keep_freed_memory

ROOTS = ("checkpoints/trained", "checkpoints/ablations")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["full", "l", "m", "s", "tiny"],
                    help="zoo models, in the order to prune them (default: largest first)")
    ap.add_argument("--budgets", nargs="+", type=float, default=[0.5], help="validation budgets in points")
    ap.add_argument("--step-fraction", type=float, default=0.125,
                    help="moves of ⌈fraction · P⌉ complex states (default 0.125, the book's; 0: one state)")
    ap.add_argument("--method", default="truncate", choices=["truncate", "data"],
                    help="'truncate': the paper's balanced truncation; 'data': weighted by the layers' state "
                         "moments on 128 training clips (ours; the iterative-pruning chapter)")
    ap.add_argument("--screen", type=int, default=0,
                    help="rank candidates on this many validation clips before confirming them on all "
                         "(default 0: the exact search)")
    ap.add_argument("--batch", type=int, default=1,
                    help="with --screen: moves confirmed together on the whole split (default 1)")
    ap.add_argument("--refit-clips", type=int, default=0,
                    help="refit every candidate's C, c by least squares to the original layer's output on this "
                         "many training clips (ours; default 0: none)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = ap.parse_args()
    keep_freed_memory()                       # big tensors reuse freed heap (sedge.memory)
    if args.batch < 1 or (args.batch > 1 and args.screen <= 0):
        ap.error(f"--batch {args.batch}: must be ≥ 1, and above 1 it needs --screen N (N > 0 validation clips)")
    if args.refit_clips < 0:
        ap.error(f"--refit-clips must be ≥ 0 training clips, got {args.refit_clips}")
    torch.set_num_threads(args.threads)
    record = runs_of_record([run for root in ROOTS for run in converged_runs(root)])
    missing = [m for m in args.models if m not in record]
    if missing:
        raise SystemExit(f"no finished run of record for {missing} under {ROOTS}")
    rows = []
    for model in args.models:
        run = record[model]
        for budget in args.budgets:
            print(f"{model}: {run['run_dir']} at {budget:g} pp", flush=True)
            s = pruned_run(run["run_dir"], run["meta"]["data"], budget_pp=budget, step_fraction=args.step_fraction,
                           method=args.method, screen=args.screen, batch=args.batch, refit_clips=args.refit_clips)
            rows.append((model, run["run_dir"].name, budget, s))
    print(f"method {args.method}{f' + output refit on {args.refit_clips} training clips' if args.refit_clips else ''}, moves of ⌈{args.step_fraction:g} · P⌉ states (at least 1)")
    print("| model | run | budget pp | states | Δparams % | ΔMACs % | val drop pp | test before → after % | search min |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model, name, budget, s in rows:
        dp = 100 * (s["params_after"] / s["params_before"] - 1)
        dm = 100 * (s["macs_after"] / s["macs_before"] - 1)
        print(f"| {model} | {name} | {budget:g} | {s['states_after']} | {dp:.1f} | {dm:.1f} | "
              f"{s['val_acc_before'] - s['val_acc_after']:.2f} | {s['test_acc_before']:.1f} → {s['test_acc_after']:.1f} | "
              f"{s['search_seconds'] / 60:.0f} |")

    print("\n| model | budget pp | layer | states kept | bound at kept % | states for bound ≤ 1 % | ≤ 10 % |")
    print("|---|---|---|---|---|---|---|")
    for model, name, budget, s in rows:
        layers = record[model]["module"].layers
        for i, (layer, kept) in enumerate(zip(layers, s["states_after"])):
            rel = relative_bounds(hankel_singular_values(layer_system(layer)))
            need = [int(np.argmax(rel <= tol)) for tol in (0.01, 0.1)]
            print(f"| {model} | {budget:g} | {i + 1} | {kept} of {layer.P} | {100 * rel[kept]:.1f} | {need[0]} | {need[1]} |")


def relative_bounds(hsv: np.ndarray) -> np.ndarray:
    """bound(k) = 2 Σ_{j>2k} σ_j / σ₁ for k = 0 … P complex states kept (index k)."""
    tail = np.concatenate([np.cumsum(hsv[::-1])[::-1], [0.0]])        # tail[m] = Σ_{j≥m} σ_j (0-based)
    return 2 * tail[0::2] / hsv[0]


if __name__ == "__main__":
    main()
