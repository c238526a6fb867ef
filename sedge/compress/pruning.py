"""Iterative pruning by balanced truncation under an accuracy budget (SPEC §8; ours within the
EUSIPCO 2025 paper's constraints: layer-wise, no retraining).

Greedy loop over the validation split:

1. every layer's candidate is its *original* balanced realisation truncated to one move fewer
   complex states than its current order (never a truncation of a truncation); a move is
   ``max(step, ⌈step_fraction · P_ℓ⌉)`` states of the original order P_ℓ;
2. all candidates of a round are evaluated in one pass over the validation clips, in small chunks
   (cache-friendly): each candidate recomputes only from its own layer onward, from the current
   model's layer inputs, which are kept in memory across rounds when they fit in ``cache_gb`` and
   updated from the accepted layer on (else recomputed, up to the deepest candidate's layer only);
   with ``screen`` the new candidates are ranked on a subset of the clips first and confirmed on
   the whole split one at a time, best first, until one is within the budget (and with ``batch``,
   several moves are taken on the subset's estimates and confirmed together where they end);
3. the candidate with the best saving per accuracy point lost is accepted while the cumulative
   drop from the unpruned model stays within the budget; a layer whose next move breaks the
   budget is frozen; the search stops when every layer is frozen or at its minimum order.

A whole-split evaluation stops for a candidate as soon as the clips still to come could no longer
bring it within the budget (every later clip counted correct would leave it beyond): the decision
is the one the whole pass gives, the memo keeps that upper bound under ``BOUND`` + key, and only
accepted candidates, which are always measured on every clip, have their accuracies recorded.

The accuracy of a configuration (the orders asked of every layer) does not depend on the budget
or the objective, so evaluations are kept in a ``memo`` that searches with other budgets reuse
(and that :func:`sedge.pipeline.experiments.pruned_run` stores on disk, so an interrupted search resumes).
Every accepted step is recorded; the test split is evaluated once, for the final model, by the
caller.

``method`` picks the reduction of a layer: "truncate" (the paper's balanced truncation, python-control
``balred``), "matchdc" (with a feed-through D) or "data" (ours: balanced truncation with the
controllability Gramian replaced by the layer's state moments on training clips,
:func:`~sedge.compress.reduction.data_weighted_truncation`). With ``refit_clips`` (training clips) every
candidate's C and c are then refitted by least squares to the original layer's output on those clips
(ours, label-free: :mod:`sedge.compress.refit`).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm import tqdm

from sedge.models.cost import layer_shape, layer_shapes, macs_per_sample, paper_params
from sedge.training.device import resolve_device
from sedge.compress.reduction import ReductionError, reduce_layer_orders
from sedge.compress.refit import OutputRefit


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
    seconds: float = 0.0                 # wall time of the search
    evaluated: int = 0                   # configurations evaluated (not found in the memo)
    unstable: list[tuple[int, int]] = field(default_factory=list)   # (layer, states) of unstable data-weighted candidates

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


def _saving(model, shapes, i: int, layer, objective: str) -> float:
    """Cost saved by replacing layer ``i`` (current ``shapes``) with ``layer``: cost now − cost after."""
    return _cost(shapes, model, objective) - _cost(shapes[:i] + [layer_shape(layer)] + shapes[i + 1:], model, objective)


def _score(saving: float, from_acc: float, acc: float) -> float:
    """Pruning score of a move: cost saved per accuracy point lost, saving / (max(from − acc, 0) + 10⁻³)."""
    return saving / (max(from_acc - acc, 0.0) + 1e-3)


def memo_key(method: str, requested: list[int]) -> str:
    """Key of a configuration in the memo: the method and the order asked of every layer."""
    return f"{method}:" + ",".join(map(str, requested))


BOUND = "at most|"      # memo prefix: an upper bound on a configuration's accuracy (an evaluation stopped early)


class _Bound(float):
    """An accuracy known only from above: the evaluation stopped once the clips left could no longer
    bring the candidate within the budget (100 · (correct so far + clips left) / clips)."""


def _store(memo: dict[str, float], key: str, acc: float) -> None:
    """Put an evaluation into the memo: an exact accuracy under ``key``, a :class:`_Bound` under
    ``BOUND + key`` (so that a search with a larger budget, which the bound may not decide, evaluates
    the configuration again)."""
    memo[BOUND + key if isinstance(acc, _Bound) else key] = float(acc)


def _known(memo: dict[str, float], key: str, fails: Callable[[float], bool]) -> float | None:
    """What ``memo`` says of ``key`` that decides this search: its accuracy, or a bound beyond the budget
    (``fails``); None if it must be evaluated."""
    if key in memo:
        return memo[key]
    bound = memo.get(BOUND + key)
    return bound if bound is not None and fails(bound) else None


class _CandidateCache:
    """Reduced versions of each original layer, computed on first use (one reduction per order);
    method "data" takes one data Gramian per layer (:func:`~sedge.compress.reduction.state_covariances`);
    with ``refit`` each reduction's output map is then refitted (:class:`~sedge.compress.refit.OutputRefit`)."""

    def __init__(self, original_layers, method: str, gramians=None, refit: OutputRefit | None = None):
        if method == "data" and (gramians is None or len(gramians) != len(original_layers)):
            raise ReductionError("method 'data' needs one data Gramian per layer "
                                 "(sedge.compress.reduction.state_covariances of the model on training clips)")
        self.layers, self.method, self.gramians, self.cache = original_layers, method, gramians, {}
        self.refit = refit

    def get(self, i: int, states: int):
        key = (i, states)
        if key not in self.cache:
            gramian = self.gramians[i] if self.gramians is not None else None
            reduced = reduce_layer_orders(self.layers[i], [2 * states], self.method, gramian)[0]
            self.cache[key] = (self.refit(i, reduced) if self.refit is not None else reduced).eval()
        return self.cache[key]


class _LayerInputs:
    """The current model's input to every layer, per chunk of clips: stored when they fit in
    ``cache_gb`` (then updated from a replaced layer on), recomputed on every use otherwise."""

    def __init__(self, model, x: torch.Tensor, chunk: int, cache_gb: float):
        self.model, self.x, self.chunk = model, x, chunk
        elems = len(x) * x.shape[1] * sum(l.d_in for l in model.layers)
        self.keep = elems * x.element_size() <= cache_gb * 1e9
        self.stored: list[list[torch.Tensor]] | None = None

    def _compute(self, xb: torch.Tensor, upto: int) -> list[torch.Tensor]:
        """The inputs of layers 0 … ``upto`` (running layers 0 … upto − 1 only)."""
        h, inputs = xb.unsqueeze(-1), [xb.unsqueeze(-1)]
        for layer in self.model.layers[:upto]:
            h = layer(h)
            inputs.append(h)
        return inputs

    def chunks(self, upto: int | None = None):
        """(first clip, [input of layer 0, …, input of layer ``upto``]) per chunk (all layers if stored)."""
        last = len(self.model.layers) - 1
        if self.keep and self.stored is None:
            self.stored = [self._compute(self.x[s:s + self.chunk], last) for s in range(0, len(self.x), self.chunk)]
        if self.stored is not None:
            yield from ((s, inp) for s, inp in zip(range(0, len(self.x), self.chunk), self.stored))
        else:
            for s in range(0, len(self.x), self.chunk):
                yield s, self._compute(self.x[s:s + self.chunk], last if upto is None else upto)

    @torch.no_grad()
    def replaced(self, i: int) -> None:
        """Layer i of the model was replaced: refresh the stored inputs of the layers after it."""
        if self.stored is None:
            return
        layers = self.model.layers
        for inputs in self.stored:
            h = inputs[i]
            for j in range(i, len(layers) - 1):
                h = layers[j](h)
                inputs[j + 1] = h


@torch.no_grad()
def _evaluate_candidates(model, candidates: dict[int, torch.nn.Module], x: torch.Tensor, y: torch.Tensor,
                         chunk: int, inputs: _LayerInputs | None = None, base: bool = True,
                         fails: Callable[[float], bool] | None = None) -> tuple[float, dict[int, float]]:
    """Accuracy of the current model (``base``; else NaN) and of each single-layer replacement
    {layer: new_layer}.

    With ``fails`` (accuracy → beyond the budget?) a candidate is dropped as soon as even all the
    clips still to come could not bring it within the budget: fails(100 · (correct + left) / n). Its
    accuracy is then that bound, a :class:`_Bound`; the decision is the one the whole pass would give,
    since its accuracy can only be lower. Once every candidate is dropped (and no ``base``), the pass ends."""
    inputs = inputs or _LayerInputs(model, x, chunk, cache_gb=0.0)
    correct_base, correct = 0, {i: 0 for i in candidates}
    active, bounds = dict(candidates), {}
    layers = model.layers
    n = max(len(x), 1)

    def n_correct(h, yb):
        return int((model.decoder(h.mean(1)).argmax(1) == yb).sum())

    upto = len(layers) - 1 if base or not candidates else max(candidates)    # no layer past the deepest needed
    seen = 0
    for start, inp in inputs.chunks(upto):
        yb = y[start:start + len(inp[0])]
        if base:
            correct_base += n_correct(layers[-1](inp[-1]), yb)
        for i, cand in active.items():
            h = cand(inp[i])
            for layer in layers[i + 1:]:
                h = layer(h)
            correct[i] += n_correct(h, yb)
        seen += len(yb)
        if fails is not None:
            for i in list(active):
                bound = 100.0 * (correct[i] + len(x) - seen) / n
                if fails(bound):
                    bounds[i] = _Bound(bound)
                    del active[i]
            if not active and not base:
                break
    accs = {i: bounds[i] if i in bounds else 100.0 * c / n for i, c in correct.items()}
    return (100.0 * correct_base / n if base else math.nan), accs


class _Screen:
    """A fixed random subset of the validation clips (``n`` of them, drawn with ``seed``) on which the
    candidates of a round are ranked before they are confirmed on the whole split. Its accuracies
    are kept in the same memo under keys prefixed ``screen<n>.<seed>|``."""

    def __init__(self, model, x: torch.Tensor, y: torch.Tensor, n: int, seed: int, chunk: int, cache_gb: float):
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n].sort().values.to(x.device)
        self.model, self.x, self.y, self.chunk = model, x[idx], y[idx], chunk
        self.inputs = _LayerInputs(model, self.x, chunk, cache_gb)
        self.prefix = f"screen{n}.{seed}|"

    def screen(self, todo: dict[int, torch.nn.Module], keys: dict[int, str], memo: dict[str, float],
               current_key: str) -> None:
        """Accuracies on the screened clips of the model's current configuration (``current_key``) and of
        each candidate in ``todo`` (layer → candidate), into ``memo`` under the prefix, unless known."""
        p = self.prefix
        new = {i: c for i, c in todo.items() if p + keys[i] not in memo}
        if new or p + current_key not in memo:
            base, accs = _evaluate_candidates(self.model, new, self.x, self.y, self.chunk, self.inputs,
                                              base=p + current_key not in memo)
            memo.update({p + keys[i]: a for i, a in accs.items()})
            if not math.isnan(base):
                memo[p + current_key] = base

    def confirm(self, todo: dict[int, torch.nn.Module], keys: dict[int, str], memo: dict[str, float], current_key: str,
                current_acc: float, base_acc: float, budget_pp: float, x_full: torch.Tensor, y_full: torch.Tensor,
                inputs: "_LayerInputs", saving: Callable[[int], float],
                fails: Callable[[float], bool] | None = None) -> int:
        """Screen ``todo`` (layer → candidate), then confirm on the whole split the candidates estimated
        within the budget one at a time, best estimated score first, until one is within the budget; if
        none is, those estimated beyond it all together, in one pass (they share the layers before the
        shallowest of them). The whole-split accuracies go to ``memo`` under ``keys``. Returns the number
        of whole-split evaluations (candidates confirmed)."""
        p = self.prefix
        self.screen(todo, keys, memo, current_key)
        estimate = {i: current_acc + memo[p + keys[i]] - memo[p + current_key] for i in todo}

        def rank(i: int) -> tuple[bool, float]:
            within = base_acc - estimate[i] <= budget_pp + 1e-9
            return (within, _score(saving(i), current_acc, estimate[i]))
        order = sorted(todo, key=rank, reverse=True)
        confirmed = 0
        for i in (i for i in order if rank(i)[0]):
            _, acc = _evaluate_candidates(self.model, {i: todo[i]}, x_full, y_full, self.chunk, inputs, base=False,
                                          fails=fails)
            _store(memo, keys[i], acc[i])
            confirmed += 1
            if base_acc - acc[i] <= budget_pp + 1e-9 and saving(i) > 0:
                return confirmed
        rest = {i: todo[i] for i in order if not rank(i)[0]}      # expected to fail: one pass for all of them
        if rest:
            _, accs = _evaluate_candidates(self.model, rest, x_full, y_full, self.chunk, inputs, base=False, fails=fails)
            for i, a in accs.items():
                _store(memo, keys[i], a)
        return confirmed + len(rest)


def _speculate(model, screen: _Screen, cache: _CandidateCache, requested: list[int], moves: list[int],
               frozen: list[bool], min_states: int, method: str, memo: dict[str, float], current_acc: float,
               base_acc: float, budget_pp: float, batch: int, objective: str,
               dev: torch.device) -> list[tuple[int, torch.nn.Module, PruneStep]]:
    """Up to ``batch`` greedy moves from the confirmed configuration ``requested`` taken on the screen's
    estimates alone: each is the move with the best estimated score among those estimated within the
    budget. Estimates are lazy: a layer's next move is screened (its change of accuracy on the screened
    clips) when the path starts and after that layer moves, and that change is taken to hold while
    other layers move; it is added to the path's own estimate (``current_acc`` plus the path's change
    on the screened clips). The moves are applied to ``model`` and to the screen's inputs as they are
    taken; returns (layer, the layer it replaced, the step's record without an accuracy) per move."""
    p, asked, path = screen.prefix, list(requested), []
    confirmed = p + memo_key(method, requested)
    change: dict[int, float] = {}                    # layer → screened change of its next move
    while len(path) < batch:
        cands, keys = {}, {}
        for i in range(len(asked)):
            if frozen[i] or asked[i] - moves[i] < min_states:
                continue
            try:
                cands[i] = cache.get(i, asked[i] - moves[i]).to(dev)
            except ReductionError:                   # left to the confirmed round, which raises or freezes
                continue
            keys[i] = memo_key(method, asked[:i] + [asked[i] - moves[i]] + asked[i + 1:])
        if not cands:
            break
        here = memo_key(method, asked)
        fresh = {i: c for i, c in cands.items() if i not in change}
        screen.screen(fresh, keys, memo, here)
        change.update({i: memo[p + keys[i]] - memo[p + here] for i in fresh})
        shapes = layer_shapes(model)
        estimate_here = current_acc + memo[p + here] - memo[confirmed]
        best, best_score = None, -math.inf
        for i, cand in cands.items():
            estimate = estimate_here + change[i]
            saving = _saving(model, shapes, i, cand, objective)
            if base_acc - estimate > budget_pp + 1e-9 or saving <= 0:
                continue
            score = _score(saving, estimate_here, estimate)
            if score > best_score:
                best, best_score = i, score
        if best is None:
            break
        replaced = model.layers[best]
        model.layers[best] = cands[best]
        screen.inputs.replaced(best)
        asked[best] -= moves[best]
        del change[best]
        path.append((best, replaced, _record(model, best, math.nan)))
    return path


def _undo(model, screen: _Screen, path: list[tuple[int, torch.nn.Module, PruneStep]], keep: int) -> None:
    """Take back the moves of ``path`` after the first ``keep`` (latest first), on the model and the screen."""
    if len(path) > keep:
        for i, replaced, _ in reversed(path[keep:]):
            model.layers[i] = replaced
        screen.inputs.replaced(min(i for i, _, _ in path[keep:]))


def prune(model, x_val: torch.Tensor, y_val: torch.Tensor, budget_pp: float = 0.5, objective: str = "params",
          step: int = 1, method: str = "truncate", chunk: int = 4, progress: bool = True,
          min_states: int = 1, step_fraction: float = 0.0, memo: dict[str, float] | None = None,
          cache_gb: float = 8.0, on_round: Callable[[dict[str, float]], None] | None = None,
          device: str | torch.device = "cpu", gramians: list | None = None, screen: int = 0,
          screen_seed: int = 0, batch: int = 1, refit_clips: torch.Tensor | None = None) -> PruneResult:
    """Greedy layer-wise order reduction of ``model`` within ``budget_pp`` validation accuracy points.

    ``screen`` > 0 (and below the number of validation clips): each round's new candidates are first
    evaluated on ``screen`` validation clips drawn at random (``screen_seed``), then confirmed on the
    whole split one at a time, best estimated score first (estimate: the confirmed accuracy of the
    current model plus the candidate's change on the screened clips), until one is within the budget;
    that one (or a better one already in the memo) is accepted. A layer is frozen only by a whole-split
    accuracy beyond the budget, so every accepted step and the final model are confirmed on the whole
    split; only the order in which candidates are confirmed comes from the screen (:class:`_Screen`).

    ``batch`` > 1 (with ``screen``): each round first takes up to ``batch`` greedy moves on the screen's
    estimates alone (:func:`_speculate`) and confirms only where they end on the whole split; within the
    budget, all are accepted at the cost of one whole-split evaluation (their steps are recorded, the
    intermediate ones with accuracy NaN: not measured); beyond it, the first half is confirmed, and so
    on; a path of one move goes to the single confirmed round above, which alone freezes layers. Every
    recorded accuracy, and the final model's, is then still a whole-split accuracy within the budget.

    ``memo`` maps :func:`memo_key` → validation accuracy (%) for this model and validation set; it is
    read and extended, and ``on_round(memo)`` is called after every round (to save it). ``method``
    "data" (data-weighted balanced truncation) takes ``gramians``, one per layer, computed on
    training clips; a layer whose next data-weighted truncation is unstable is frozen there.
    ``refit_clips`` (normalised training clips, N × T): every candidate's C and c are refitted to the
    original layer's output on them (:func:`~sedge.compress.refit.refit_output`); the memo must then be
    one of refitted configurations (its keys do not say so)."""
    if budget_pp < 0:
        raise ReductionError(f"budget must be ≥ 0 accuracy points, got {budget_pp}")
    if objective not in ("params", "macs"):
        raise ReductionError(f"objective must be 'params' or 'macs', got {objective!r}")
    if step < 1:
        raise ReductionError(f"step must be ≥ 1 complex state, got {step}")
    if not 0 <= step_fraction < 1:
        raise ReductionError(f"step_fraction must be in [0, 1), got {step_fraction}")
    if batch < 1:
        raise ReductionError(f"batch must be ≥ 1 move per confirmation, got {batch}")
    if batch > 1 and not 0 < screen < len(x_val):
        raise ReductionError(f"batch {batch} takes moves on screened estimates: it needs a screen of 1 … "
                             f"{len(x_val) - 1} validation clips (got screen={screen})")
    if refit_clips is not None and method == "matchdc":
        raise ReductionError("the output refit replaces C and c; 'matchdc' fixes the DC gain with a feed-through "
                             "instead: refit 'truncate' or 'data' reductions")
    if len(x_val) == 0:
        raise ReductionError("the validation split is empty: pruning needs validation clips")
    if not getattr(model, "layers", None):
        raise ReductionError("the model has no S-Edge layers to reduce")
    t0 = time.perf_counter()
    memo = {} if memo is None else memo
    dev = resolve_device(device)
    model = copy.deepcopy(model).eval().to(dev)
    x_val, y_val = x_val.to(dev), y_val.to(dev)
    refit = OutputRefit(model, refit_clips) if refit_clips is not None else None
    cache = _CandidateCache([copy.deepcopy(l).cpu() for l in model.layers], method, gramians, refit)   # reductions run on the CPU
    requested = [l.P for l in model.layers]          # order asked of balred, in complex states
    moves = [max(step, math.ceil(step_fraction * p)) for p in requested]
    frozen = [False] * len(requested)
    inputs = _LayerInputs(model, x_val, chunk, cache_gb)
    screened = _Screen(model, x_val, y_val, screen, screen_seed, chunk, cache_gb) if 0 < screen < len(x_val) else None
    evaluated, unstable = 0, []
    key = memo_key(method, requested)
    if key not in memo:
        memo[key], _ = _evaluate_candidates(model, {}, x_val, y_val, chunk, inputs)
        evaluated += 1
    base_acc = current_acc = memo[key]

    def fails(acc: float) -> bool:
        """Beyond the budget: the cumulative drop from the unpruned model exceeds budget_pp."""
        return base_acc - acc > budget_pp + 1e-9

    result = PruneResult(model, [_record(model, None, base_acc)], base_acc)
    bar = tqdm(desc=f"pruning ({objective}, budget {budget_pp} pp)", unit="step", disable=not progress)
    while True:
        for i in range(len(requested)):
            frozen[i] = frozen[i] or requested[i] - moves[i] < min_states
        keys = {i: memo_key(method, requested[:i] + [requested[i] - moves[i]] + requested[i + 1:])
                for i in range(len(requested)) if not frozen[i]}
        if not keys:
            break
        if screened is not None and batch > 1:
            path = _speculate(model, screened, cache, requested, moves, frozen, min_states, method, memo,
                              current_acc, base_acc, budget_pp, batch, objective, dev)
            n = len(path)
            while n >= 2:                            # confirm the path's end on the whole split; halve it on failure
                _undo(model, screened, path, n)
                asked = list(requested)
                for i, _, _ in path[:n]:
                    asked[i] -= moves[i]
                end, first = memo_key(method, asked), min(i for i, _, _ in path[:n])
                if _known(memo, end, fails) is None:
                    _, acc = _evaluate_candidates(model, {first: model.layers[first]}, x_val, y_val, chunk, inputs,
                                                  base=False, fails=fails)
                    _store(memo, end, acc[first])
                    evaluated += 1
                    if on_round:
                        on_round(memo)
                if not fails(_known(memo, end, fails)):
                    break
                n //= 2
            if n >= 2:                               # accepted together; only the last step is measured
                inputs.replaced(first)
                requested, current_acc = asked, memo[end]
                path[n - 1][2].val_acc = current_acc
                result.steps.extend(step for _, _, step in path[:n])
                bar.update(n)
                bar.set_postfix(states=[l.P for l in model.layers], val=f"{current_acc:.2f}")
                continue
            _undo(model, screened, path, 0)          # one move or none: the round below confirms it alone
        cands = {}
        for i in list(keys):
            try:
                cands[i] = cache.get(i, requested[i] - moves[i]).to(dev)
            except ReductionError:                   # data-weighted truncation unstable (or beyond the rank): stop this layer
                if method != "data":
                    raise
                frozen[i] = True
                del keys[i]
                unstable.append((i, requested[i] - moves[i]))
        shapes = layer_shapes(model)
        todo = {i: c for i, c in cands.items() if _known(memo, keys[i], fails) is None}
        if todo and screened is not None:
            evaluated += screened.confirm(todo, keys, memo, memo_key(method, requested), current_acc, base_acc,
                                          budget_pp, x_val, y_val, inputs,
                                          lambda i: _saving(model, shapes, i, cands[i], objective), fails)
        elif todo:
            _, new = _evaluate_candidates(model, todo, x_val, y_val, chunk, inputs, base=False, fails=fails)
            for i, acc in new.items():
                _store(memo, keys[i], acc)
            evaluated += len(todo)
        if todo and on_round:
            on_round(memo)
        accs = {i: _known(memo, k, fails) for i, k in keys.items()}   # screened: the confirmed candidates
        accs = {i: acc for i, acc in accs.items() if acc is not None}
        best, best_score = None, -math.inf
        for i, acc in accs.items():
            if fails(acc):                           # cumulative drop beyond the budget: freeze
                frozen[i] = True
                continue
            saving = _saving(model, shapes, i, cands[i], objective)
            if saving <= 0:                          # real eigenvalues ate the move: ask for one more
                requested[i] -= moves[i]
                continue
            score = _score(saving, current_acc, acc)
            if score > best_score:
                best, best_score = i, score
        if best is None:
            continue
        model.layers[best] = cands[best]
        inputs.replaced(best)
        if screened is not None:
            screened.inputs.replaced(best)
        requested[best] -= moves[best]
        current_acc = accs[best]
        result.steps.append(_record(model, best, current_acc))
        bar.update()
        bar.set_postfix(states=[l.P for l in model.layers], val=f"{current_acc:.2f}")
    bar.close()
    model.cfg = type(model.cfg).from_dict({**model.cfg.to_dict(), "states": tuple(l.P for l in model.layers)})
    model.cpu()
    result.model, result.seconds, result.evaluated = model, time.perf_counter() - t0, evaluated
    result.unstable = unstable
    return result


def layer_sensitivity(model, x: torch.Tensor, y: torch.Tensor, fractions: list[float], method: str = "truncate",
                      chunk: int = 4, memo: dict[str, float] | None = None, cache_gb: float = 8.0,
                      progress: bool = True, gramians: list | None = None) -> list[dict]:
    """Accuracy when *one* layer alone is truncated to ⌈f·P_ℓ⌉ complex states, for every layer ℓ and
    fraction f (the other layers unchanged): how much order each layer can give up on its own.
    Shares :func:`prune`'s memo keys, so a later search on the same clips reuses these evaluations."""
    if len(x) == 0:
        raise ReductionError("the validation split is empty: the sensitivity needs validation clips")
    memo = {} if memo is None else memo
    model = copy.deepcopy(model).eval()
    full = [l.P for l in model.layers]
    cache = _CandidateCache(list(model.layers), method, gramians)
    inputs = _LayerInputs(model, x, chunk, cache_gb)
    rows = []
    for f in tqdm(fractions, desc="layer sensitivity", disable=not progress):
        kept = [min(p, max(1, math.ceil(f * p))) for p in full]
        keys = {i: memo_key(method, full[:i] + [kept[i]] + full[i + 1:]) for i in range(len(full))}
        todo = {i: cache.get(i, kept[i]) for i, k in keys.items() if k not in memo and kept[i] < full[i]}
        if todo:
            _, accs = _evaluate_candidates(model, todo, x, y, chunk, inputs, base=False)
            memo.update({keys[i]: a for i, a in accs.items()})
        if memo_key(method, full) not in memo:
            memo[memo_key(method, full)], _ = _evaluate_candidates(model, {}, x, y, chunk, inputs)
        for i in range(len(full)):
            key = keys[i] if kept[i] < full[i] else memo_key(method, full)
            rows.append({"layer": i, "fraction": f, "requested": kept[i],
                         "states": cache.get(i, kept[i]).P if kept[i] < full[i] else full[i], "val_acc": memo[key]})
    return rows
