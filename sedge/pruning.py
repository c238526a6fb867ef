"""Iterative pruning by balanced truncation under an accuracy budget (SPEC §8; ours within the
EUSIPCO 2025 paper's constraints: layer-wise, no retraining).

Greedy loop over the validation split:

1. every layer's candidate is its *original* balanced realisation truncated to ``step`` fewer
   complex states than its current order (never a truncation of a truncation);
2. all candidates of a round are evaluated in one pass over the validation clips, in chunks:
   the current model's layer inputs are computed once per chunk and each candidate recomputes
   only from its own layer onward (memory stays bounded by the chunk size);
3. the candidate with the best saving per accuracy point lost is accepted while the cumulative
   drop from the unpruned model stays within the budget; a layer whose next step breaks the
   budget is frozen; the search stops when every layer is frozen or at its minimum order.

Every accepted step is recorded; the test split is evaluated once, for the final model.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from .cost import layer_shape, layer_shapes, macs_per_sample, paper_params
from .reduction import ReductionError, reduce_layer_orders


@dataclass
class PruneStep:
    layer: int | None            # None for the starting point
    states: list[int]            # complex states per layer after the step
    params: int                  # paper formula
    macs_per_sample: float       # paper convention at the model's step scale
    val_acc: float


@dataclass
class PruneResult:
    model: torch.nn.Module
    steps: list[PruneStep] = field(default_factory=list)
    baseline_val_acc: float = math.nan

    def table(self) -> list[dict]:
        return [{"step": i, "layer": s.layer, "states": s.states, "params": s.params,
                 "macs_per_sample": s.macs_per_sample, "val_acc": s.val_acc} for i, s in enumerate(self.steps)]


def _cost(shapes, model, objective: str) -> float:
    if objective == "params":
        return paper_params(shapes, model.cfg.n_classes)
    return macs_per_sample(shapes, model.cfg.n_classes, list(model.step_scale))


def _record(model, layer: int | None, acc: float) -> PruneStep:
    shapes = layer_shapes(model)
    return PruneStep(layer, [l.P for l in model.layers], _cost(shapes, model, "params"),
                     _cost(shapes, model, "macs"), acc)


class _CandidateCache:
    """Reduced versions of each original layer, computed on first use (one balred call per order)."""

    def __init__(self, original_layers, method: str):
        self.layers, self.method, self.cache = original_layers, method, {}

    def get(self, i: int, states: int):
        key = (i, states)
        if key not in self.cache:
            self.cache[key] = reduce_layer_orders(self.layers[i], [2 * states], self.method)[0].eval()
        return self.cache[key]


@torch.no_grad()
def _evaluate_candidates(model, candidates: dict[int, torch.nn.Module], x: torch.Tensor, y: torch.Tensor,
                         chunk: int) -> tuple[float, dict[int, float]]:
    """Accuracy of the current model and of each single-layer replacement {layer: new_layer}."""
    correct_base, correct = 0, {i: 0 for i in candidates}
    layers = model.layers
    for start in range(0, len(x), chunk):
        xb, yb = x[start:start + chunk], y[start:start + chunk]
        h = xb.unsqueeze(-1)
        inputs = []
        for layer in layers:
            inputs.append(h)
            h = layer(h)
        correct_base += int((model.decoder(h.mean(1)).argmax(1) == yb).sum())
        for i, cand in candidates.items():
            h = cand(inputs[i])
            for layer in layers[i + 1:]:
                h = layer(h)
            correct[i] += int((model.decoder(h.mean(1)).argmax(1) == yb).sum())
    n = max(len(x), 1)
    return 100.0 * correct_base / n, {i: 100.0 * c / n for i, c in correct.items()}


def prune(model, x_val: torch.Tensor, y_val: torch.Tensor, budget_pp: float = 0.5, objective: str = "params",
          step: int = 1, method: str = "truncate", chunk: int = 64, progress: bool = True,
          min_states: int = 1) -> PruneResult:
    """Greedy layer-wise order reduction of ``model`` within ``budget_pp`` validation accuracy points."""
    if budget_pp < 0:
        raise ReductionError(f"budget must be ≥ 0 accuracy points, got {budget_pp}")
    if objective not in ("params", "macs"):
        raise ReductionError(f"objective must be 'params' or 'macs', got {objective!r}")
    if step < 1:
        raise ReductionError(f"step must be ≥ 1 complex state, got {step}")
    if len(x_val) == 0:
        raise ReductionError("the validation split is empty: pruning needs validation clips")
    if not getattr(model, "layers", None):
        raise ReductionError("the model has no S-Edge layers to reduce")
    model = copy.deepcopy(model).eval()
    cache = _CandidateCache([copy.deepcopy(l) for l in model.layers], method)
    requested = [l.P for l in model.layers]          # order asked of balred, in complex states
    frozen = [False] * len(requested)
    base_acc, _ = _evaluate_candidates(model, {}, x_val, y_val, chunk)
    result = PruneResult(model, [_record(model, None, base_acc)], base_acc)
    current_acc = base_acc
    bar = tqdm(desc=f"pruning ({objective}, budget {budget_pp} pp)", unit="step", disable=not progress)
    while True:
        for i in range(len(requested)):
            frozen[i] = frozen[i] or requested[i] - step < min_states
        cands = {i: cache.get(i, requested[i] - step) for i in range(len(requested)) if not frozen[i]}
        if not cands:
            break
        _, accs = _evaluate_candidates(model, cands, x_val, y_val, chunk)
        shapes = layer_shapes(model)
        cost_now = _cost(shapes, model, objective)
        best, best_score = None, -math.inf
        for i, acc in accs.items():
            if base_acc - acc > budget_pp + 1e-9:    # cumulative drop beyond the budget: freeze
                frozen[i] = True
                continue
            trial = list(shapes)
            trial[i] = layer_shape(cands[i])
            saving = cost_now - _cost(trial, model, objective)
            if saving <= 0:                          # real eigenvalues ate the step: ask for one more
                requested[i] -= step
                continue
            score = saving / (max(current_acc - acc, 0.0) + 1e-3)
            if score > best_score:
                best, best_score = i, score
        if best is None:
            continue
        model.layers[best] = cands[best]
        requested[best] -= step
        current_acc = accs[best]
        result.steps.append(_record(model, best, current_acc))
        bar.update()
        bar.set_postfix(states=[l.P for l in model.layers], val=f"{current_acc:.2f}")
    bar.close()
    model.cfg = type(model.cfg).from_dict({**model.cfg.to_dict(), "states": tuple(l.P for l in model.layers)})
    result.model = model
    return result
