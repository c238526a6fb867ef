"""A cached stage: every maximal layer-wise allocation at a saving, evaluated against the budget
(:mod:`sedge.compress.allocations`), for a training run's ``best.pt``.

The configurations are evaluated on the validation split only; the best one within the budget
(highest validation accuracy, then the largest saving) is saved as ``pruned.pt`` and scored on the
test split once, here. Evaluations are kept in a memo per run and method (written after each one,
so an interrupted check resumes); exact accuracies from the greedy search's memo of the same run,
method and clips are read as well, never written.
"""
from __future__ import annotations

import json
from pathlib import Path

from sedge.data import load_data
from sedge.paths import atomic_write_json, portable
from sedge.pipeline.experiments import (GRAMIAN_CLIPS, PRUNE_CODE, gramian_clip_tensor, memo_key, memo_path,
                                        read_memo, write_memo)
from sedge.pipeline.stages import begin, commit, finished, stage_key
from sedge.training.checkpoints import load_checkpoint, save_checkpoint

ALLOCATION_CODE = PRUNE_CODE + ("sedge.compress.allocations",)


def allocation_check(run_dir: str | Path, data_spec: str, *, saving_pct: float, budget_pp: float = 0.5,
                     method: str = "truncate", gramian_clips: int = GRAMIAN_CLIPS, refit_clips: int = 0,
                     exact: bool = False, progress: bool = True) -> dict:
    """Does any allocation of orders save ``saving_pct`` % of the paper's parameter count within
    ``budget_pp`` validation points? Stage ``run_dir/prune/alloc_<method>_p<saving>_b<budget>``:
    ``summary.json`` (every maximal allocation with its states, parameters and validation accuracy,
    or an upper bound where the pass stopped early below the budget) and, if one is within the
    budget, ``pruned.pt`` with its test accuracy. ``exact``: every allocation is evaluated on every
    validation clip (else a pass stops once the allocation cannot end within the budget)."""
    import torch

    from sedge.compress.allocations import (evaluate_allocations, layer_reductions,
                                            maximal_allocations, reduced_model, within)
    from sedge.compress.pruning import _CandidateCache
    from sedge.compress.reduction import ReductionError, state_covariances
    from sedge.compress.refit import OutputRefit
    from sedge.models.cost import cost_report
    from sedge.training.evaluation import accuracy, predict
    if not 0 < saving_pct < 100:
        raise ReductionError(f"saving_pct must be in (0, 100) per cent of the parameters, got {saving_pct}")
    if budget_pp < 0:
        raise ReductionError(f"budget must be ≥ 0 accuracy points, got {budget_pp}")
    run_dir = Path(run_dir)
    checkpoint = run_dir / "best.pt"
    label = f"data{gramian_clips}" if method == "data" else method
    label += f"_refit{refit_clips}" if refit_clips else ""
    out = run_dir / "prune" / f"alloc_{label}_p{saving_pct:g}_b{budget_pp:g}{'_exact' if exact else ''}"
    config = {"checkpoint": portable(checkpoint), "data": data_spec, "saving_pct": saving_pct,
              "budget_pp": budget_pp, "method": method}
    if method == "data":
        config["gramian_clips"] = gramian_clips
    if refit_clips:
        config["refit_clips"] = refit_clips
    if exact:                                          # absent when False: early-stopping checks keep their keys
        config["exact"] = True
    key = stage_key(config, inputs={"checkpoint": checkpoint}, data=data_spec, code=ALLOCATION_CODE)
    if finished(out, key, ("summary.json",)):
        return json.loads((out / "summary.json").read_text())
    begin(out, key)
    model, meta = load_checkpoint(checkpoint)
    model.eval()
    data = load_data(data_spec).restrict_to(meta["classes"])
    xv, yv = data.val.tensors(*meta["norm"])
    gramians = (state_covariances(model, gramian_clip_tensor(data, meta["norm"], gramian_clips))
                if method == "data" else None)
    refit = OutputRefit(model, gramian_clip_tensor(data, meta["norm"], refit_clips)) if refit_clips else None
    cache = _CandidateCache(list(model.layers), method, gramians, refit)

    search_memo = read_memo(memo_path(run_dir, label),
                            memo_key(checkpoint, data_spec, None, method, gramian_clips, refit_clips))
    own_file = memo_path(run_dir, f"alloc_{label}")
    own_key = stage_key({"method": method, "gramian_clips": gramian_clips if method == "data" else None,
                         "refit_clips": refit_clips}, inputs={"checkpoint": checkpoint}, data=data_spec,
                        code=ALLOCATION_CODE)
    memo = read_memo(own_file, own_key)
    prior = {k: v for k, v in search_memo.items() if k not in memo}
    merged = {**prior, **memo}

    def save(m: dict) -> None:
        write_memo(own_file, own_key, {k: v for k, v in m.items() if k not in prior})

    with torch.no_grad():
        reductions = layer_reductions(model, method, gramians)
        cost = cost_report(model)["params_paper"]
        allocations = maximal_allocations([{k: s for k, (_, s) in r.items()} for r in reductions],
                                          saving_pct / 100 * cost)
        full = tuple(l.P for l in model.layers)
        base = evaluate_allocations(model, xv, yv, [full], cache, method, merged, progress=False)[full]
        floor = base - budget_pp
        accs = evaluate_allocations(model, xv, yv, allocations, cache, method, merged, floor=None if exact else floor,
                                    progress=progress, on_result=save)
    save(merged)
    rows = []
    for k, acc in accs.items():
        saved = sum(r[j][1] for r, j in zip(reductions, k))
        rows.append({"requested": list(k), "states": [r[j][0] for r, j in zip(reductions, k)],
                     "params": int(round(cost - saved)), "saving_pct": 100 * saved / cost,
                     "val_acc": float(acc), "exact": within(acc), "within_budget": within(acc) and acc >= floor - 1e-9})
    passing = [r for r in rows if r["within_budget"]]
    summary = {**config, "states_before": list(full), "params_before": cost, "val_acc_before": base,
               "n_val": len(xv), "allocations": len(rows), "within_budget": len(passing),
               "best_val_acc": max((r["val_acc"] for r in rows if r["exact"]), default=None), "rows": rows}
    if passing:
        best = max(passing, key=lambda r: (r["val_acc"], r["saving_pct"]))
        pruned = reduced_model(model, cache, tuple(best["requested"]))
        xt, yt = data.test.tensors(*meta["norm"])
        keep = {k: meta[k] for k in ("classes", "norm", "data", "train_cfg") if k in meta}
        save_checkpoint(out / "pruned.pt", pruned, {**keep, "pruned_from": portable(checkpoint), "budget_pp": budget_pp})
        summary["best"] = {**best, "test_acc_before": 100 * accuracy(predict(model, xt, batch_size=4), yt),
                           "test_acc_after": 100 * accuracy(predict(pruned, xt, batch_size=4), yt)}   # test: once, here
    atomic_write_json(out / "summary.json", summary)
    commit(out, key, ("summary.json",))
    return summary
