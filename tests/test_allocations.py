"""Every maximal layer-wise allocation at a saving, checked against the budget (sedge.compress.allocations)."""
import copy
import itertools
import json

import pytest
import torch

from sedge.compress import allocations as alloc
from sedge.compress.allocations import (evaluate_allocations, layer_reductions, maximal_allocations, reduced_model,
                                        within)
from sedge.compress.pruning import _CandidateCache, memo_key
from sedge.compress.reduction import ReductionError, reduce_model
from sedge.models.cost import cost_report

from test_pruning import three_level_folder, trained  # noqa: F401  (a fixture)


def brute_force(savings, target):
    """Every allocation that saves ≥ target and from which no layer can take its next state and still reach it."""
    def total(k):
        return sum(s[j] for s, j in zip(savings, k))
    out = []
    for k in itertools.product(*(sorted(s) for s in savings)):
        if total(k) < target:
            continue
        ups = [k[:i] + (min(j for j in s if j > k[i]),) + k[i + 1:] for i, s in enumerate(savings) if k[i] < max(s)]
        if all(total(u) < target for u in ups):
            out.append(k)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_maximal_allocations_are_those_of_a_brute_force_search(seed):
    g = torch.Generator().manual_seed(seed)
    savings = []
    for P in (6, 4, 3):
        steps = torch.rand(P - 1, generator=g).tolist()          # saving grows as states are removed
        s, acc = {P: 0.0}, 0.0
        for k, d in zip(range(P - 1, 0, -1), steps):
            acc += d
            s[k] = acc
        if seed == 1:
            del s[2]                                              # a request that failed (unstable) is absent
        savings.append(s)
    target = 0.5 * sum(max(s.values()) for s in savings)
    found = maximal_allocations(savings, target)
    assert found and found == brute_force(savings, target)
    assert maximal_allocations(savings, 10 ** 9) == []           # beyond every allocation's reach


def test_too_many_allocations_is_a_clear_error():
    savings = [{k: float(10 - k) for k in range(1, 11)} for _ in range(3)]
    with pytest.raises(ReductionError, match="greedy search"):
        maximal_allocations(savings, 12.0, limit=3)


def test_layer_reductions_count_the_states_the_reduction_returns(trained):
    model, _, _ = trained
    reductions = layer_reductions(model)
    before = cost_report(model)["params_paper"]
    for i, found in enumerate(reductions):
        P = model.layers[i].P
        assert found[P] == (P, 0.0) and set(found) == set(range(1, P + 1))
        for k, (states, saving) in found.items():
            if k == P:
                continue
            orders = [None] * len(model.layers)
            orders[i] = 2 * k
            reduced = reduce_model(model, orders)
            assert states == reduced.layers[i].P >= k
            assert saving == before - cost_report(reduced)["params_paper"] > 0


def test_evaluations_equal_the_reduced_model_and_are_kept_in_the_memo(trained, monkeypatch):
    model, x, y = trained
    cache = _CandidateCache(list(model.layers), "truncate")
    allocations = [(2, 4), (4, 1), (1, 3)]
    memo = {}
    accs = evaluate_allocations(model, x, y, allocations, cache, "truncate", memo, chunk=5, progress=False)
    with torch.no_grad():
        for k in allocations:
            direct = 100 * float((reduced_model(model, cache, k)(x).argmax(1) == y).float().mean())
            assert accs[k] == pytest.approx(direct) and within(accs[k])
            assert memo[memo_key("truncate", list(k))] == pytest.approx(direct)
    assert [l.P for l in reduced_model(model, cache, (2, 4)).layers][1] == 4
    calls = []
    monkeypatch.setattr(alloc, "allocation_accuracy", lambda *a, **kw: calls.append(a) or 0.0)
    again = evaluate_allocations(model, x, y, allocations, cache, "truncate", memo, progress=False)
    assert again == accs and calls == []                        # read from the memo
    monkeypatch.undo()
    stopped = evaluate_allocations(model, x, y, [(3, 3)], cache, "truncate", {}, floor=101.0, chunk=5, progress=False)
    exact = evaluate_allocations(model, x, y, [(3, 3)], cache, "truncate", {}, progress=False)
    assert not within(stopped[(3, 3)]) and stopped[(3, 3)] >= exact[(3, 3)]   # an upper bound, marked as one


def test_allocation_check_is_a_cached_stage_that_reads_the_search_memo(trained, tmp_path, monkeypatch):
    from sedge.data import load_data
    from sedge.pipeline.allocation_check import allocation_check
    from sedge.pipeline.experiments import memo_key as file_memo_key, memo_path, write_memo
    from sedge.training.checkpoints import save_checkpoint
    model, _, _ = trained
    spec = three_level_folder(tmp_path, monkeypatch, seed=6)
    run = tmp_path / "run"
    save_checkpoint(run / "best.pt", copy.deepcopy(model).float(), {"classes": ["a", "b", "c"],
                                                                    "norm": load_data(spec).stats()})
    with pytest.raises(ReductionError, match="saving_pct"):
        allocation_check(run, spec, saving_pct=0)
    loose = allocation_check(run, spec, saving_pct=20, budget_pp=100.0, progress=False)
    assert loose["allocations"] == loose["within_budget"] > 0 and (run / "prune" / "alloc_truncate_p20_b100" / "pruned.pt").exists()
    best = loose["best"]
    assert best["saving_pct"] >= 20 and best["val_acc"] == max(r["val_acc"] for r in loose["rows"])
    assert {"test_acc_before", "test_acc_after"} <= set(best)
    assert allocation_check(run, spec, saving_pct=20, budget_pp=100.0, progress=False) == loose   # cached
    # an exact accuracy in the greedy search's memo of the same run is used, and not copied into the check's own memo
    other = tmp_path / "other"
    save_checkpoint(other / "best.pt", copy.deepcopy(model).float(), {"classes": ["a", "b", "c"],
                                                                      "norm": load_data(spec).stats()})
    k = loose["rows"][0]["requested"]
    key = memo_key("truncate", k)
    write_memo(memo_path(other, "truncate"), file_memo_key(other / "best.pt", spec, None, "truncate"), {key: 99.5})
    tight = allocation_check(other, spec, saving_pct=20, budget_pp=0.0, progress=False)
    assert next(r for r in tight["rows"] if r["requested"] == k)["val_acc"] == 99.5
    assert key not in json.loads(memo_path(other, "alloc_truncate").read_text())
    floor = tight["val_acc_before"]
    assert all(r["within_budget"] == (r["exact"] and r["val_acc"] >= floor - 1e-9) for r in tight["rows"])
    full = allocation_check(other, spec, saving_pct=20, budget_pp=0.0, exact=True, progress=False)
    assert all(r["exact"] for r in full["rows"]) and (other / "prune" / "alloc_truncate_p20_b0_exact").is_dir()
    assert [r["val_acc"] for r in full["rows"] if r["requested"] != k] == \
        [r["val_acc"] for r in loose["rows"] if r["requested"] != k]             # the same model, clips and code
