"""Can any layer-wise allocation of orders save a given share of a run of record's parameters
within the budget? Evaluates every maximal allocation (``sedge.compress.allocations``) on the
validation split, no retraining; the best one within the budget is scored on test once.

    .venv/bin/python tools/prune_allocations.py --model tiny --saving 15                 # plain truncation
    .venv/bin/python tools/prune_allocations.py --model tiny --saving 15 --method data --refit-clips 128

The run of record is the one ``tools/prune_long_runs.py`` prunes; the result is a cached stage in
``RUN/prune/alloc_<method>_p<saving>_b<budget>[_exact]`` with a memo that an interrupted check resumes from.
Meant for small models (``tiny``): the number of maximal allocations grows with the product of the
layers' orders, and the check refuses more than 5,000.
"""
from __future__ import annotations

import argparse

import torch

from sedge.pipeline.allocation_check import allocation_check
from sedge.pipeline.experiments import converged_runs
from sedge.pipeline.records import runs_of_record

ROOTS = ("checkpoints/trained", "checkpoints/ablations")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="tiny", help="zoo model whose run of record is checked (default tiny)")
    ap.add_argument("--saving", type=float, required=True, help="parameters to save, in per cent of the paper's count")
    ap.add_argument("--budget", type=float, default=0.5, help="validation budget in points (default 0.5)")
    ap.add_argument("--method", default="truncate", choices=["truncate", "data"],
                    help="'truncate': the paper's balanced truncation; 'data': weighted by the layers' state "
                         "moments on 128 training clips (ours)")
    ap.add_argument("--refit-clips", type=int, default=0,
                    help="refit every reduced layer's C, c on this many training clips (ours; default 0: none)")
    ap.add_argument("--exact", action="store_true",
                    help="evaluate every allocation on every validation clip (default: a pass stops once the "
                         "allocation cannot end within the budget, and only an upper bound is shown)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--show", type=int, default=15, help="rows to print, best validation accuracy first")
    args = ap.parse_args()
    if args.refit_clips < 0:
        ap.error(f"--refit-clips must be ≥ 0 training clips, got {args.refit_clips}")
    torch.set_num_threads(args.threads)
    record = runs_of_record([run for root in ROOTS for run in converged_runs(root)])
    if args.model not in record:
        raise SystemExit(f"no finished run of record for {args.model!r} under {ROOTS}")
    run = record[args.model]
    print(f"{args.model}: {run['run_dir']}, saving ≥ {args.saving:g} % at {args.budget:g} pp", flush=True)
    s = allocation_check(run["run_dir"], run["meta"]["data"], saving_pct=args.saving, budget_pp=args.budget,
                         method=args.method, refit_clips=args.refit_clips, exact=args.exact)
    floor = s["val_acc_before"] - s["budget_pp"]
    print(f"unpruned validation {s['val_acc_before']:.2f} %, floor {floor:.2f} %; {s['allocations']} maximal "
          f"allocations, {s['within_budget']} within the budget")
    print("| requested | states | Δparams % | val % |")
    print("|---|---|---|---|")
    rows = sorted(s["rows"], key=lambda r: (-r["val_acc"], -r["saving_pct"]))
    for r in rows[:args.show]:
        acc = f"{r['val_acc']:.2f}" if r["exact"] else f"≤ {r['val_acc']:.2f} (stopped)"
        print(f"| {r['requested']} | {r['states']} | -{r['saving_pct']:.1f} | {acc} |")
    if "best" in s:
        b = s["best"]
        print(f"best within the budget: {b['states']} −{b['saving_pct']:.1f} %, validation {b['val_acc']:.2f} %, "
              f"test {b['test_acc_before']:.1f} → {b['test_acc_after']:.1f} % (scored once)")
    else:
        print("no maximal allocation is within the budget")


if __name__ == "__main__":
    main()
