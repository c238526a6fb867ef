"""Iterative pruning by balanced truncation (SPEC §8)."""
import copy

import pytest
import torch

from sedge.models.config import TrainConfig
from sedge.compress import pruning
from sedge.compress.pruning import BOUND, _evaluate_candidates, prune
from sedge.compress.reduction import ReductionError, reduce_layer
from sedge.training.checkpoints import load_checkpoint
from sedge.training.train import train

from helpers import MICRO, toy_data


def three_level_folder(tmp_path, monkeypatch, seed: int) -> str:
    """A Speech-Commands-layout folder of 3 classes (constant levels −0.3, 0, 0.3 plus noise); its spec."""
    import numpy as np
    import soundfile as sf
    monkeypatch.setattr("sedge.data.folder.CACHE", tmp_path / "cache")
    rng = np.random.default_rng(seed)
    for lab, level in (("a", -0.3), ("b", 0.0), ("c", 0.3)):
        (tmp_path / "d" / lab).mkdir(parents=True)
        for s in range(30):
            sf.write(tmp_path / "d" / lab / f"sp{s}_nohash_0.wav", level + 0.05 * rng.standard_normal(400), 16000)
    return f"folder:{tmp_path / 'd'}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = toy_data(n=96)
    run = tmp_path_factory.mktemp("run")
    train(MICRO, data, TrainConfig(epochs=3, batch_size=8, warmup_steps=2, lr=0.01), run, progress=False)
    model, meta = load_checkpoint(run / "best.pt")
    x, y = data.val.tensors(*meta["norm"])
    return model.double(), x.double(), y


def test_candidate_evaluation_equals_swapping_the_layer(trained):
    model, x, y = trained
    cand = reduce_layer(model.layers[0], 4).eval()
    base, accs = _evaluate_candidates(model, {0: cand}, x, y, chunk=7)
    swapped = copy.deepcopy(model)
    swapped.layers[0] = cand
    with torch.no_grad():
        direct = 100 * float((swapped(x).argmax(1) == y).float().mean())
        plain = 100 * float((model(x).argmax(1) == y).float().mean())
    assert accs[0] == pytest.approx(direct) and base == pytest.approx(plain)


def test_zero_budget_never_loses_accuracy_and_records_steps(trained):
    model, x, y = trained
    res = prune(model, x, y, budget_pp=0.0, progress=False)
    assert res.steps[0].layer is None and res.steps[0].states == [4, 4]
    assert all(s.val_acc >= res.baseline_val_acc - 1e-9 for s in res.steps)
    params = [s.params for s in res.steps]
    assert params == sorted(params, reverse=True) and len(set(params)) == len(params)
    with torch.no_grad():
        final = 100 * float((res.model(x).argmax(1) == y).float().mean())
    assert final == pytest.approx(res.steps[-1].val_acc)
    assert res.model.cfg.states == tuple(l.P for l in res.model.layers)


def test_unlimited_budget_reduces_to_the_minimum(trained):
    model, x, y = trained
    res = prune(model, x, y, budget_pp=100.0, progress=False)
    assert all(l.P <= 2 for l in res.model.layers)            # one state, or two real modes
    assert res.steps[-1].params < res.steps[0].params
    macs = prune(model, x, y, budget_pp=100.0, objective="macs", progress=False)
    assert macs.steps[-1].macs_per_sample < macs.steps[0].macs_per_sample


def test_original_model_is_untouched(trained):
    model, x, y = trained
    before = [p.clone() for p in model.parameters()]
    prune(model, x, y, budget_pp=100.0, step=2, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_bad_input(trained):
    model, x, y = trained
    with pytest.raises(ReductionError, match="budget"):
        prune(model, x, y, budget_pp=-1)
    with pytest.raises(ReductionError, match="objective"):
        prune(model, x, y, objective="flops")
    with pytest.raises(ReductionError, match="empty"):
        prune(model, x[:0], y[:0])
    with pytest.raises(ReductionError, match="step"):
        prune(model, x, y, step=0)


def test_reduce_and_prune_cli(trained, tmp_path, monkeypatch, capsys):
    import json
    from sedge.cli import main as cli_main
    from sedge.training.checkpoints import save_checkpoint
    model, x, y = trained
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, model.float(), {"classes": ["a", "b", "c"], "norm": (0.0, 1.0)})
    model.double()
    assert cli_main(["reduce", "--checkpoint", str(ckpt), "--states", "2,-", "--out", str(tmp_path / "r.pt")]) == 0
    reduced, _ = load_checkpoint(tmp_path / "r.pt")
    assert [l.P for l in reduced.layers][1] == 4 and reduced.layers[0].P <= 2
    assert cli_main(["reduce", "--checkpoint", str(ckpt), "--states", "9,-", "--out", str(tmp_path / "x.pt")]) == 2
    assert "out of range" in capsys.readouterr().err
    three_level_folder(tmp_path, monkeypatch, seed=0)
    assert cli_main(["prune", "--checkpoint", str(ckpt), "--data", f"folder:{tmp_path / 'd'}", "--budget", "5",
                     "--out", str(tmp_path / "p")]) == 0
    summary = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert summary["params_after"] <= summary["params_before"]
    assert summary["val_acc_before"] - summary["val_acc_after"] <= 5 + 1e-9
    assert (tmp_path / "p" / "steps.csv").read_text().startswith("step,layer,states")


def test_memo_and_stored_inputs_do_not_change_the_search(trained):
    model, x, y = trained
    plain = prune(model, x, y, budget_pp=5.0, progress=False, cache_gb=0.0)
    memo: dict = {}
    stored = prune(model, x, y, budget_pp=5.0, progress=False, cache_gb=8.0, memo=memo)
    assert [s.states for s in stored.steps] == [s.states for s in plain.steps]
    assert [s.val_acc for s in stored.steps] == pytest.approx([s.val_acc for s in plain.steps])
    assert stored.evaluated == len(memo) > 1
    again = prune(model, x, y, budget_pp=5.0, progress=False, memo=memo)         # everything known
    assert again.evaluated == 0 and [s.states for s in again.steps] == [s.states for s in plain.steps]
    tighter = prune(model, x, y, budget_pp=0.0, progress=False, memo=memo)       # another budget reuses it
    assert tighter.evaluated < plain.evaluated


@pytest.mark.parametrize("budget", [0.0, 5.0, 100.0])
def test_a_screened_search_confirms_every_step_on_the_whole_split(trained, budget):
    """Screening on a subset only orders the whole-split confirmations: every accepted step's accuracy
    is the whole split's (the exact search's value for that configuration) and within the budget, the
    final model is measured, and no more whole-split evaluations are made than by the exact search."""
    model, x, y = trained
    exact_memo: dict = {}
    exact = prune(model, x, y, budget_pp=budget, progress=False, memo=exact_memo, step=2)
    memo: dict = {}
    res = prune(model, x, y, budget_pp=budget, progress=False, memo=memo, step=2, screen=12, screen_seed=3)
    assert any(k.startswith("screen12.3|") for k in memo)
    assert res.evaluated <= exact.evaluated
    whole = {k: v for k, v in memo.items() if not k.startswith("screen")}    # exact, or bounds (BOUND)
    assert len(whole) == res.evaluated
    with torch.no_grad():
        final = 100 * float((res.model(x).argmax(1) == y).float().mean())
    assert final == pytest.approx(res.steps[-1].val_acc)
    for s in res.steps:
        assert res.baseline_val_acc - s.val_acc <= budget + 1e-9
    for k, v in whole.items():                                # the same numbers the exact search computes
        if k in exact_memo:
            assert v == exact_memo[k]
    if budget == 100.0:                                       # nothing breaks the budget: both reach the minimum
        assert [l.P for l in res.model.layers] == [l.P for l in exact.model.layers]


@pytest.mark.parametrize("budget", [0.0, 5.0, 100.0])
def test_a_batched_search_measures_where_each_batch_ends(trained, budget):
    """Moves taken on the screen alone and confirmed together: every measured step is a whole-split
    accuracy (the exact search's number for that configuration) within the budget, the steps left
    unmeasured lie inside a batch (the last step is always measured, and is the final model's), and a
    batch of one move is the screened search itself."""
    import math
    model, x, y = trained
    exact_memo: dict = {}
    exact = prune(model, x, y, budget_pp=budget, progress=False, memo=exact_memo, step=2)
    single = prune(model, x, y, budget_pp=budget, progress=False, memo={}, step=2, screen=12, screen_seed=3)
    same = prune(model, x, y, budget_pp=budget, progress=False, memo={}, step=2, screen=12, screen_seed=3, batch=1)
    assert [s.states for s in same.steps] == [s.states for s in single.steps]
    memo: dict = {}
    res = prune(model, x, y, budget_pp=budget, progress=False, memo=memo, step=2, screen=12, screen_seed=3, batch=4)
    whole = {k: v for k, v in memo.items() if not k.startswith("screen")}
    assert len(whole) == res.evaluated
    with torch.no_grad():
        final = 100 * float((res.model(x).argmax(1) == y).float().mean())
    assert final == pytest.approx(res.steps[-1].val_acc)
    for prev, s in zip(res.steps, res.steps[1:]):              # one move of one layer per recorded step
        assert sum(a != b for a, b in zip(prev.states, s.states)) == 1
    for s in res.steps:
        if not math.isnan(s.val_acc):
            assert res.baseline_val_acc - s.val_acc <= budget + 1e-9
            key = "truncate:" + ",".join(map(str, s.states))
            assert key not in exact_memo or exact_memo[key] == s.val_acc
    if budget == 100.0:                                       # nothing breaks the budget: batches of four moves
        assert [l.P for l in res.model.layers] == [l.P for l in exact.model.layers]
        assert any(math.isnan(s.val_acc) for s in res.steps) and res.evaluated < single.evaluated
    with pytest.raises(ReductionError, match="batch"):
        prune(model, x, y, batch=0)
    with pytest.raises(ReductionError, match="needs a screen"):      # would silently be the exact search
        prune(model, x, y, batch=4)


def test_an_evaluation_stops_once_the_budget_is_out_of_reach(trained):
    """With ``fails``, a candidate is dropped as soon as the clips left could not bring it within the
    budget: its accuracy is then a bound (``_Bound``) at or above its true accuracy and beyond the budget,
    fewer clips are evaluated, and a candidate that passes is measured exactly."""
    model, x, y = trained
    bad = reduce_layer(model.layers[0], 2).eval()
    _, exact = _evaluate_candidates(model, {0: bad}, x, y, chunk=4, base=False)
    floor = exact[0] + 10.0                                   # a budget this candidate misses by 10 points
    calls = []
    bad_counted = copy.deepcopy(bad)
    bad_counted.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    _, stopped = _evaluate_candidates(model, {0: bad_counted}, x, y, chunk=4, base=False,
                                      fails=lambda acc: acc < floor)
    assert isinstance(stopped[0], pruning._Bound) and exact[0] <= stopped[0] < floor
    assert sum(calls) < len(x)
    _, passed = _evaluate_candidates(model, {0: bad}, x, y, chunk=4, base=False, fails=lambda acc: acc < exact[0])
    assert not isinstance(passed[0], pruning._Bound) and passed[0] == exact[0]


@pytest.fixture(scope="module")
def fragile():
    """An untrained ``tiny`` whose output maps are scaled up so that its states, not its skips, decide
    its predictions, on random clips labelled with those predictions: truncations break it."""
    from sedge.models.config import model_config
    from sedge.models.model import build_model
    model = build_model(model_config("tiny", n_classes=8), seed=3).double().eval()
    with torch.no_grad():
        for layer in model.layers:
            layer.C_re.mul_(30)
            layer.C_im.mul_(30)
        x = torch.randn(40, 300, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        return model, x, model(x).argmax(1)


@pytest.mark.parametrize("screen", [0, 12])
def test_stopping_failed_evaluations_early_does_not_change_the_search(fragile, monkeypatch, screen):
    """The same steps, accuracies and final model as evaluating every candidate on every clip; the
    memo keeps a stopped evaluation as a bound (``BOUND`` + key) at or above the exact accuracy, which
    a search with a larger budget does not take as decided."""
    model, x, y = fragile
    kw = dict(progress=False, step=4, screen=screen, screen_seed=3, cache_gb=0.0)
    early_memo: dict = {}
    early = prune(model, x, y, budget_pp=5.0, memo=early_memo, **kw)
    evaluate = pruning._evaluate_candidates
    monkeypatch.setattr(pruning, "_evaluate_candidates",
                        lambda *a, fails=None, **k: evaluate(*a, **k))          # every clip, always
    full_memo: dict = {}
    full = prune(model, x, y, budget_pp=5.0, memo=full_memo, **kw)
    monkeypatch.undo()
    assert [(s.states, s.val_acc) for s in early.steps] == [(s.states, s.val_acc) for s in full.steps]
    assert early.evaluated == full.evaluated
    bounds = {k[len(BOUND):]: v for k, v in early_memo.items() if k.startswith(BOUND)}
    if screen == 0:
        assert bounds, "no evaluation was stopped early"
    for k, v in bounds.items():
        assert full_memo[k] <= v and early.baseline_val_acc - v > 5.0
    wider = prune(model, x, y, budget_pp=100.0, memo=dict(early_memo), **kw)
    fresh = prune(model, x, y, budget_pp=100.0, memo={}, **kw)
    assert [s.states for s in wider.steps] == [s.states for s in fresh.steps]


def test_step_fraction_sets_the_move_size(trained):
    model, x, y = trained
    res = prune(model, x, y, budget_pp=100.0, step_fraction=0.5, progress=False)
    moved = [a.states[s.layer] - s.states[s.layer] for a, s in zip(res.steps, res.steps[1:])]
    assert moved and all(m >= 2 for m in moved)                   # P = 4 per layer: moves of 2 states
    with pytest.raises(ReductionError, match="step_fraction"):
        prune(model, x, y, step_fraction=1.5)


def test_finetune_cli_starts_from_the_pruned_model_and_never_ends_worse(trained, tmp_path, monkeypatch):
    import json
    from sedge.cli import main as cli_main
    from sedge.data import load_data
    from sedge.training.checkpoints import save_checkpoint
    model, x, y = trained
    three_level_folder(tmp_path, monkeypatch, seed=1)
    spec = f"folder:{tmp_path / 'd'}"
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, copy.deepcopy(model).float(), {"classes": ["a", "b", "c"], "norm": load_data(spec).stats()})
    assert cli_main(["prune", "--checkpoint", str(ckpt), "--data", spec, "--budget", "100", "--out",
                     str(tmp_path / "p")]) == 0
    pruned = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert cli_main(["finetune", "--checkpoint", str(tmp_path / "p" / "pruned.pt"), "--data", spec, "--epochs", "2",
                     "--lr", "0.01", "--batch-size", "8", "--out", str(tmp_path / "f")]) == 0
    tuned = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert 100 * tuned["val_acc"] >= pruned["val_acc_after"] - 1e-6        # the start competes as epoch 0
    best, _ = load_checkpoint(tmp_path / "f" / "best.pt")
    assert [l.P for l in best.layers] == pruned["states_after"]            # same reduced architecture
    # a wrong normalisation is refused rather than silently fine-tuned
    save_checkpoint(tmp_path / "bad.pt", copy.deepcopy(model).float(), {"classes": ["a", "b", "c"], "norm": (5.0, 1.0)})
    assert cli_main(["finetune", "--checkpoint", str(tmp_path / "bad.pt"), "--data", spec, "--out",
                     str(tmp_path / "g")]) == 2


def test_layer_sensitivity_matches_swapping_one_layer_and_feeds_the_search(trained):
    from sedge.compress.pruning import layer_sensitivity, memo_key
    model, x, y = trained
    memo: dict = {}
    rows = layer_sensitivity(model, x, y, [0.5, 1.0], memo=memo, progress=False)
    assert len(rows) == 2 * len(model.layers)
    r = next(r for r in rows if r["layer"] == 1 and r["fraction"] == 0.5)
    swapped = copy.deepcopy(model)
    swapped.layers[1] = reduce_layer(model.layers[1], 2 * r["requested"]).eval()
    with torch.no_grad():
        assert r["val_acc"] == pytest.approx(100 * float((swapped(x).argmax(1) == y).float().mean()))
    assert all(r["val_acc"] == memo[memo_key("truncate", [4, 4])] for r in rows if r["fraction"] == 1.0)
    res = prune(model, x, y, budget_pp=100.0, step_fraction=0.5, memo=memo, progress=False)
    assert res.evaluated < len(memo)          # the first round's candidates were already known


def test_prune_stage_is_cached_and_resumes_from_its_memo(trained, tmp_path, monkeypatch):
    import json
    from sedge.data import load_data
    from sedge.pipeline.experiments import prune_checkpoint
    from sedge.training.checkpoints import save_checkpoint
    model, x, y = trained
    spec = three_level_folder(tmp_path, monkeypatch, seed=2)
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, copy.deepcopy(model).float(), {"classes": ["a", "b", "c"], "norm": load_data(spec).stats()})
    first = prune_checkpoint(ckpt, spec, tmp_path / "p", budget_pp=100.0, progress=False)
    assert first["configurations_evaluated"] >= 2 and (tmp_path / "p" / "memo.json").exists()
    again = prune_checkpoint(ckpt, spec, tmp_path / "p", budget_pp=100.0, progress=False)
    assert again == first                                        # finished stage: read back, not recomputed
    (tmp_path / "p" / "stage.json").unlink()                    # as if interrupted after the search
    resumed = prune_checkpoint(ckpt, spec, tmp_path / "p", budget_pp=100.0, progress=False)
    assert resumed["configurations_evaluated"] == 0 and resumed["states_after"] == first["states_after"]
    other = prune_checkpoint(ckpt, spec, tmp_path / "q", budget_pp=0.0, progress=False,
                             memo_file=tmp_path / "p" / "memo.json")
    assert other["configurations_evaluated"] <= 1 and json.loads((tmp_path / "q" / "config.json").read_text())["budget_pp"] == 0.0
    from sedge.pipeline.experiments import file_digest
    pruned_before = file_digest(tmp_path / "p" / "pruned.pt")
    with torch.no_grad():                                        # the checkpoint is retrained under the same path
        retrained = copy.deepcopy(model).float()
        for p in retrained.parameters():
            p.mul_(1.01)
    save_checkpoint(ckpt, retrained, {"classes": ["a", "b", "c"], "norm": load_data(spec).stats()})
    redone = prune_checkpoint(ckpt, spec, tmp_path / "p", budget_pp=100.0, progress=False)
    assert redone["configurations_evaluated"] >= 2               # neither the stage nor its memo is reused
    assert file_digest(tmp_path / "p" / "pruned.pt") != pruned_before


def test_data_weighted_pruning_uses_training_gramians_and_keeps_its_own_memo(trained, tmp_path, monkeypatch):
    import json
    from sedge.data import load_data
    from sedge.pipeline.experiments import gramian_clip_tensor, prune_checkpoint
    from sedge.training.checkpoints import save_checkpoint
    model, x, y = trained
    with pytest.raises(ReductionError, match="Gramian"):
        prune(model, x, y, method="data", progress=False)
    spec = three_level_folder(tmp_path, monkeypatch, seed=4)
    data = load_data(spec)
    clips = gramian_clip_tensor(data, data.stats(), n=5)
    assert len(clips) == 5 and torch.equal(clips, gramian_clip_tensor(data, data.stats(), n=5))   # seeded
    train_set = {tuple(c) for c in data.train.tensors(*data.stats())[0][:, :8].tolist()}
    assert all(tuple(c) in train_set for c in clips[:, :8].tolist())                         # training clips only
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, copy.deepcopy(model).float(), {"classes": ["a", "b", "c"], "norm": data.stats()})
    plain = prune_checkpoint(ckpt, spec, tmp_path / "t", budget_pp=100.0, progress=False)
    weighted = prune_checkpoint(ckpt, spec, tmp_path / "d", budget_pp=100.0, method="data", gramian_clips=6,
                                progress=False)
    assert json.loads((tmp_path / "d" / "config.json").read_text())["gramian_clips"] == 6
    assert "gramian_clips" not in json.loads((tmp_path / "t" / "config.json").read_text())
    assert weighted["configurations_evaluated"] >= 2            # nothing taken from another method's memo
    again = prune_checkpoint(ckpt, spec, tmp_path / "d2", budget_pp=100.0, method="data", gramian_clips=7,
                             memo_file=tmp_path / "d" / "memo.json", progress=False)
    assert again["configurations_evaluated"] >= 2               # other Gramian clips: the memo does not apply
    assert plain["states_after"] and weighted["states_after"]


def test_a_refitted_search_is_its_own_stage_with_its_own_memo(trained, tmp_path, monkeypatch):
    import json
    from sedge.data import load_data
    from sedge.pipeline.experiments import memo_key, prune_checkpoint
    from sedge.training.checkpoints import save_checkpoint
    model, _, _ = trained
    spec = three_level_folder(tmp_path, monkeypatch, seed=5)
    data = load_data(spec)
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, copy.deepcopy(model).float(), {"classes": ["a", "b", "c"], "norm": data.stats()})
    assert "refit_clips" not in memo_key(ckpt, spec, None, "truncate")["config"]      # plain keys unchanged
    plain = prune_checkpoint(ckpt, spec, tmp_path / "t", budget_pp=100.0, progress=False)
    refit = prune_checkpoint(ckpt, spec, tmp_path / "r", budget_pp=100.0, refit_clips=4,
                             memo_file=tmp_path / "t" / "memo.json", progress=False)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["refit_clips"] == 4
    assert "refit_clips" not in json.loads((tmp_path / "t" / "config.json").read_text())
    assert refit["configurations_evaluated"] >= 2 and plain["states_after"]   # the plain memo does not apply
