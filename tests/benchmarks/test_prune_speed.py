"""Search time of the iterative pruning (SPEC §8), each measurement in its own process on 2 threads.

* ``tiny`` and ``s``: a complete search (budget 0.5 pp, moves of ⌈P/8⌉ states, empty memo) of the
  committed quick-profile checkpoints on their synthetic validation split (160 clips).
* ``full`` on 1,000 validation clips (the issue's target: ≤ 10 min for the whole search): a
  briefly trained ``full`` would be fine, but its accuracy plays no role in the cost of a round, so a
  seeded untrained ``full`` is used and *one round* is timed — the base pass that stores the layer
  inputs plus all six candidates — together with the number of rounds a search needs at the
  quick-profile move size (at most 8 moves per layer). Set SEDGE_BENCH_FULL_CLIPS to time fewer clips
  (the cost is linear in the clip count). Run with ``make benchmark``.
* ``full`` trained (the run of record on the real 8 words, 713 validation clips), a complete
  *screened* search (``screen`` = 96 clips; 0.5 pp, moves of ⌈P/8⌉, empty memo) next to the
  committed exact search of the same checkpoint (its whole-split evaluation count and time, read
  from its stage record), in batches of up to ``SEDGE_BENCH_BATCH`` moves (default 8; 1 is the
  screened search that confirms every move), with the time split between whole-split passes and
  screening. Skipped where the real excerpt or the run is missing. The result is also written to
  ``records/prune_screen_full.json`` (batch 1) or ``records/prune_screen_full_batch<B>.json``.
  ``SEDGE_BENCH_PAD_CLIPS=1000`` pads the validation split with training clips to that many, to time
  the search at the issue's 1,000 clips (``…_1000clips.json``; its outcome is not a search of record).
  ``SEDGE_BENCH_EVERY_CLIP=1`` evaluates every candidate on every clip (no early stop of a candidate
  that can no longer pass): the same search as before that stop existed, for a ratio in one session
  (``…_every_clip.json``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sedge.memory import child_environment

SCRIPT = r"""
import json, sys, time, math
import torch
torch.set_num_threads(2)
from sedge.compress.pruning import prune, _CandidateCache, _LayerInputs, _evaluate_candidates
which = sys.argv[1]
if which == "full":
    from sedge.models.config import model_config
    from sedge.models.model import build_model
    n = int(sys.argv[2])
    model = build_model(model_config("full", n_classes=35), seed=0).eval()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 16000, generator=g), torch.randint(0, 35, (n,), generator=g)
    t = time.perf_counter()
    inputs = _LayerInputs(model, x, 4, cache_gb=16.0)
    base, _ = _evaluate_candidates(model, {}, x, y, 4, inputs)
    t_base = time.perf_counter() - t
    cache = _CandidateCache(list(model.layers), "truncate")
    cands = {i: cache.get(i, l.P - math.ceil(l.P / 8)) for i, l in enumerate(model.layers)}
    t = time.perf_counter()
    _evaluate_candidates(model, cands, x, y, 4, inputs, base=False)
    t_round = time.perf_counter() - t
    print(json.dumps({"clips": n, "base_pass_s": t_base, "round_s": t_round, "max_rounds": 8 * 6}))
elif which == "screened":
    from sedge.data import load_data
    from sedge.pipeline.experiments import converged_runs
    from sedge.pipeline.records import runs_of_record
    from sedge.training.checkpoints import load_checkpoint
    screen, batch, pad, every_clip = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
    import sedge.compress.pruning as pruning
    evaluate, spent = pruning._evaluate_candidates, {"whole": [0, 0.0], "screen": [0, 0.0]}

    def timed(model, cands, x, *a, **k):                  # where the time goes: whole split or screen
        if every_clip:
            k.pop("fails", None)
        t = time.perf_counter()
        out = evaluate(model, cands, x, *a, **k)
        spent["screen" if len(x) == screen else "whole"][0] += 1
        spent["screen" if len(x) == screen else "whole"][1] += time.perf_counter() - t
        return out
    pruning._evaluate_candidates = timed
    run = runs_of_record([r for root in ("checkpoints/trained", "checkpoints/ablations") for r in converged_runs(root)])["full"]
    model, meta = load_checkpoint(run["run_dir"] / "best.pt")
    data = load_data(meta["data"]).restrict_to(meta["classes"])
    xv, yv = data.val.tensors(*meta["norm"])
    padded = max(0, pad - len(xv))
    if padded:                                            # timing only: training clips stand in for more validation
        xt, yt = data.train.tensors(*meta["norm"])
        xv, yv = torch.cat([xv, xt[:padded]]), torch.cat([yv, yt[:padded]])
    memo = {}
    res = prune(model, xv, yv, budget_pp=0.5, step_fraction=0.125, progress=False, memo=memo, screen=screen,
                batch=batch)
    exact = json.loads((run["run_dir"] / "prune" / "params_truncate_b0.5_s1_f0.125_vall" / "summary.json").read_text())
    from sedge.paths import portable
    print(json.dumps({"run": portable(run["run_dir"]), "clips": len(xv), "padded_with_training_clips": padded, "screen": screen, "batch": batch,
                      "early_stop": not every_clip, "seconds": res.seconds,
                      "passes": {k: {"calls": n, "seconds": t} for k, (n, t) in spent.items()},
                      "unmeasured_steps": sum(math.isnan(s.val_acc) for s in res.steps),
                      "whole_split_evaluations": res.evaluated, "steps": len(res.steps) - 1,
                      "states": [l.P for l in res.model.layers], "params": [res.steps[0].params, res.steps[-1].params],
                      "val_acc": [res.baseline_val_acc, res.steps[-1].val_acc],
                      "exact": {k: exact[k] for k in ("search_seconds", "configurations_evaluated", "states_after",
                                                      "params_before", "params_after", "val_acc_after")}}))
else:
    from sedge.data import load_data
    from sedge.pipeline.experiments import load_run, run_dir_for
    from sedge.paths import REPO
    import yaml
    prof = yaml.safe_load((REPO / "notebooks" / "profiles.yml").read_text())["quick"]["04_iterative_pruning"]
    spec = prof["datasets"]["synthetic"]["spec"]
    model, meta, _ = load_run(run_dir_for(prof["run_root"], "synthetic", which))
    data = load_data(spec).restrict_to(meta["classes"])
    xv, yv = data.val.tensors(*meta["norm"])
    res = prune(model, xv, yv, budget_pp=0.5, step_fraction=0.125, progress=False)
    print(json.dumps({"clips": len(xv), "seconds": res.seconds, "configurations": res.evaluated,
                      "steps": len(res.steps) - 1, "states": [l.P for l in res.model.layers]}))
"""


def measure(*args: str) -> dict:
    """One search in its own process, with freed memory kept for reuse as the ``sedge`` command has it."""
    out = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, check=True,
                         env={**os.environ, **child_environment()})
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["tiny", "s"])
def test_complete_search_time(name, benchmark):
    r = benchmark.pedantic(measure, args=(name,), rounds=1, iterations=1)
    print(f"\n{name}: complete search on {r['clips']} validation clips in {r['seconds']:.1f} s "
          f"({r['configurations']} configurations evaluated, {r['steps']} accepted, states {r['states']})")
    benchmark.extra_info.update(r)
    assert r["configurations"] >= 1


def test_full_round_time_on_1000_clips(benchmark):
    n = int(os.environ.get("SEDGE_BENCH_FULL_CLIPS", "1000"))
    r = benchmark.pedantic(measure, args=("full", str(n)), rounds=1, iterations=1)
    per_1000 = 1000 / n
    print(f"\nfull on {n} clips: base pass {r['base_pass_s']:.1f} s, one round (6 candidates) {r['round_s']:.1f} s; "
          f"for 1,000 clips: {r['round_s'] * per_1000:.0f} s per round, up to {r['max_rounds']} rounds "
          f"→ a search needs {r['round_s'] * per_1000 * 2 / 60:.0f}–{r['round_s'] * per_1000 * r['max_rounds'] / 60:.0f} min "
          f"(2 rounds … all rounds); goal ≤ 10 min")
    benchmark.extra_info.update(r)
    assert r["round_s"] > 0


def test_screened_search_of_the_trained_full_model(benchmark):
    from pathlib import Path

    from sedge.paths import REPO
    if not (REPO.parent / "shared" / "data" / "speech_commands_mini").is_dir() or \
            not (REPO / "checkpoints" / "trained" / "mini_full" / "best.pt").is_file():
        pytest.skip("needs the real 8-word excerpt and the trained full run")
    screen = int(os.environ.get("SEDGE_BENCH_SCREEN", "96"))
    batch = int(os.environ.get("SEDGE_BENCH_BATCH", "8"))
    pad = int(os.environ.get("SEDGE_BENCH_PAD_CLIPS", "0"))
    every_clip = os.environ.get("SEDGE_BENCH_EVERY_CLIP", "0")
    r = benchmark.pedantic(measure, args=("screened", str(screen), str(batch), str(pad), every_clip), rounds=1,
                           iterations=1)
    e = r["exact"]
    if r["padded_with_training_clips"]:
        print(f"\n(validation split padded with {r['padded_with_training_clips']} training clips to {r['clips']}: "
              "the time of a search on that many clips, not the search of record; compare its outcome with nothing)")
    print(f"\nfull, screened on {r['screen']} of {r['clips']} clips, batches of ≤ {r['batch']} moves: "
          f"{r['seconds'] / 60:.1f} min (whole-split passes {r['passes']['whole']['seconds'] / 60:.1f} min in "
          f"{r['passes']['whole']['calls']} calls, screening {r['passes']['screen']['seconds'] / 60:.1f} min), "
          f"{r['whole_split_evaluations']} whole-split evaluations (exact search: {e['configurations_evaluated']}, "
          f"{e['search_seconds'] / 60:.0f} min in its record), states {r['states']}, params "
          f"{r['params'][0]:,} → {r['params'][1]:,} ({100 * (r['params'][1] / r['params'][0] - 1):+.1f} %; exact "
          f"{100 * (e['params_after'] / e['params_before'] - 1):+.1f} %), val {r['val_acc'][0]:.2f} → {r['val_acc'][1]:.2f} %")
    benchmark.extra_info.update(r)
    name = "prune_screen_full.json" if r["batch"] == 1 else f"prune_screen_full_batch{r['batch']}.json"
    if r["padded_with_training_clips"]:
        name = name.replace(".json", f"_{r['clips']}clips.json")
    if not r["early_stop"]:
        name = name.replace(".json", "_every_clip.json")
    record = Path(__file__).parent / "records" / name
    record.write_text(json.dumps({**r, "threads": 2, "measured": __import__("time").strftime("%Y-%m-%d")}, indent=1) + "\n")
    assert r["whole_split_evaluations"] >= 1
