"""Every layer-wise allocation at a given saving, checked against the budget (ours, beyond the papers).

The greedy search (:func:`sedge.compress.pruning.prune`) follows one path of moves and can stop
where another allocation of the same saving would have stayed within the budget. For a small
model the question "does *any* allocation of orders save a fraction s of the cost within the
budget?" can be answered by evaluation instead.

An allocation k = (k_1 … k_L) asks layer ℓ for k_ℓ complex states of its original balanced
realisation (k_ℓ = P_ℓ: the layer untouched). The cost of the paper's count is additive over the
layers, so the saving of an allocation is

    S(k) = Σ_ℓ S_ℓ(k_ℓ),    S_ℓ(k) = cost(model) − cost(model with layer ℓ alone reduced to k),

with S_ℓ taken from the *actual* reduced layer (a request of k states can return more: two real
eigenvalues of the real realisation become two complex states). The allocations that decide the
question are the *maximal* ones at s,

    S(k) ≥ s · cost(model)   and, for every ℓ with k_ℓ < P_ℓ,   S(k + e_ℓ) < s · cost(model):

if giving a layer more states never lowers accuracy, every other allocation that saves s is below
a maximal one and does no better. That monotonicity is an assumption (truncation errors are not
ordered clip by clip), so a "no" from this check is evidence about the maximal allocations, not a
proof about all of them.
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from tqdm import tqdm

from sedge.compress.pruning import BOUND, _Bound, _CandidateCache, _cost, _store, memo_key
from sedge.compress.reduction import ReductionError, reduce_layer_orders
from sedge.models.cost import layer_shape, layer_shapes

MAX_ALLOCATIONS = 5_000


def layer_reductions(model, method: str = "truncate", gramians: list | None = None,
                     objective: str = "params") -> list[dict[int, tuple[int, float]]]:
    """k → (actual complex states, S_ℓ(k)) for every layer ℓ and request k = 1 … P_ℓ (P_ℓ → (P_ℓ, 0));
    a request whose reduction fails (an unstable data-weighted truncation) is left out. The reductions
    of one layer share its balanced realisation (one call of :func:`reduce_layer_orders`)."""
    shapes = layer_shapes(model)
    full = _cost(shapes, model, objective)
    out = []
    for i, layer in enumerate(model.layers):
        gramian = gramians[i] if gramians is not None else None
        found = {layer.P: (layer.P, 0.0)}
        for k in range(1, layer.P):
            try:
                reduced = reduce_layer_orders(layer, [2 * k], method, gramian)[0]
            except ReductionError:
                if method != "data":
                    raise
                continue
            found[k] = (reduced.P, full - _cost(shapes[:i] + [layer_shape(reduced)] + shapes[i + 1:], model, objective))
        out.append(found)
    return out


def maximal_allocations(savings: list[dict[int, float]], target: float,
                        limit: int = MAX_ALLOCATIONS) -> list[tuple[int, ...]]:
    """The allocations k with Σ_ℓ S_ℓ(k_ℓ) ≥ ``target`` from which no single layer can take one more
    state and still reach it (module docstring), in lexicographic order of k."""
    best_rest = [0.0] * (len(savings) + 1)
    for i in range(len(savings) - 1, -1, -1):
        best_rest[i] = best_rest[i + 1] + max(savings[i].values())
    found: list[tuple[int, ...]] = []

    def total(k: tuple[int, ...]) -> float:
        return sum(s[j] for s, j in zip(savings, k))

    def maximal(k: tuple[int, ...]) -> bool:
        for i, s in enumerate(savings):
            up = min((j for j in s if j > k[i]), default=None)
            if up is not None and total(k[:i] + (up,) + k[i + 1:]) >= target:
                return False
        return True

    def walk(prefix: tuple[int, ...], saved: float) -> None:
        i = len(prefix)
        if i == len(savings):
            if saved >= target and maximal(prefix):
                found.append(prefix)
                if len(found) > limit:
                    raise ReductionError(f"more than {limit} maximal allocations: too many to evaluate; "
                                         "use the greedy search (sedge.compress.pruning.prune) for this model")
            return
        for k in sorted(savings[i]):
            if saved + savings[i][k] + best_rest[i + 1] >= target:
                walk(prefix + (k,), saved + savings[i][k])

    walk((), 0.0)
    return found


@torch.no_grad()
def allocation_accuracy(model, x: torch.Tensor, y: torch.Tensor, chunk: int = 4,
                        floor: float | None = None) -> float:
    """Accuracy (%) of ``model`` on (x, y); with ``floor``, the pass stops once even every clip still to
    come counted correct would leave it below ``floor``, and returns that upper bound as a ``_Bound``."""
    correct, n = 0, max(len(x), 1)
    for s in range(0, len(x), chunk):
        h = x[s:s + chunk].unsqueeze(-1)
        for layer in model.layers:
            h = layer(h)
        correct += int((model.decoder(h.mean(1)).argmax(1) == y[s:s + chunk]).sum())
        bound = 100.0 * (correct + len(x) - min(s + chunk, len(x))) / n
        if floor is not None and bound < floor - 1e-9:
            return _Bound(bound)
    return 100.0 * correct / n


def evaluate_allocations(model, x: torch.Tensor, y: torch.Tensor, allocations: list[tuple[int, ...]],
                         cache: _CandidateCache, method: str, memo: dict[str, float], floor: float | None = None,
                         chunk: int = 4, progress: bool = True,
                         on_result: Callable[[dict[str, float]], None] | None = None) -> dict[tuple[int, ...], float]:
    """Validation accuracy of ``model`` with layer ℓ reduced to k_ℓ requested states (from ``cache``),
    for every allocation k; read from and written to ``memo`` under :func:`memo_key` (an early-stopped
    pass, below ``floor``, as an upper bound). ``on_result(memo)`` after every evaluation (to save it)."""
    model = copy.deepcopy(model).eval()
    fails = (lambda acc: acc < floor - 1e-9) if floor is not None else (lambda acc: False)
    out = {}
    for k in tqdm(allocations, desc="allocations", disable=not progress):
        key = memo_key(method, list(k))
        if key in memo:
            known = memo[key]
        elif BOUND + key in memo and fails(memo[BOUND + key]):
            known = _Bound(memo[BOUND + key])
        else:
            known = allocation_accuracy(reduced_model(model, cache, k), x, y, chunk, floor)
            _store(memo, key, known)
            if on_result:
                on_result(memo)
        out[k] = known
    return out


def reduced_model(model, cache: _CandidateCache, allocation: tuple[int, ...]):
    """A copy of ``model`` with layer ℓ replaced by ``cache``'s reduction to allocation[ℓ] requested
    states (unchanged where allocation[ℓ] = P_ℓ), its config's states updated."""
    new = copy.deepcopy(model)
    for i, (layer, k) in enumerate(zip(model.layers, allocation)):
        if k < layer.P:
            new.layers[i] = copy.deepcopy(cache.get(i, k))
    new.cfg = type(model.cfg).from_dict({**model.cfg.to_dict(), "states": tuple(l.P for l in new.layers)})
    return new


def within(acc: float) -> bool:
    """An exact accuracy (not an early-stopped bound)."""
    return not isinstance(acc, _Bound) and not math.isnan(acc)
