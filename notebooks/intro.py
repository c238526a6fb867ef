# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: kernelspec,jupytext,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # sedge: efficient raw-audio classification with state space models
#
# **sedge** reproduces, as this browsable book, the S-Edge models — diagonal complex state space
# models (SSMs) that classify raw 16 kHz audio directly — and the work around them: pruning by model
# order reduction, C++ export, and comparisons with other compression methods from the literature.
# Every number on these pages is produced by the executed notebooks of the repository, from one
# command.

# %% [markdown]
# ## Results at a glance

# %% tags=["parameters"]
profile = "ci"                      # whose chapters are summarised: the profile the book was built with
long_runs = ["checkpoints/trained", "checkpoints/ablations"]   # folders of longer `sedge train` runs on the real words ([]: skip them)

# %% tags=["hide-input"]
from sedge.pipeline.parameters import check_namespace
check_namespace(globals(), "intro")

import pandas as pd

from sedge.pipeline.compare import collect
from sedge.models.config import PAPER_PARAMS
from sedge.models.cost import cost_report
from sedge.pipeline.experiments import PAPER_TEST_ACC, converged_runs
from sedge.pipeline.records import recipe_changes, runs_of_record
from sedge.report.plots import book_style, styled

book_style()

# %% [markdown]
# ### S-Edge on real speech
#
# The zoo models of this profile on the real 8-word excerpt (chance: 12.5 %), trained for the epochs
# the table gives (in the committed `quick` book until validation accuracy had flattened; the
# `scratch` profile trains a few epochs only); checkpoint chosen on validation, test measured once. These
# are the models the chapters prune, downsample and export (run: `profile`; where the profile adopted
# a run of record, the row names its recipe once, not twice). Below them, the run of
# record of each model among the longer runs of `checkpoints/trained` and `checkpoints/ablations`
# (trained with `sedge train`, partly on a GPU; run: what its recipe changes): the finished run with
# the highest *validation* accuracy that keeps the method (RZOH on) and all the training speakers
# (chapter 1 shows every run), with its test accuracy, measured once at its end; a run still in
# progress with its best validation accuracy so
# far and no test accuracy. The paper's figures are on the 35 words of
# Speech Commands v0.02 (chance: 2.9 %) and are quoted, not measured here.

# %% tags=["hide-input"]
import json
from pathlib import Path

from sedge.pipeline.stages import file_digest

df = collect(profile)
rows, profile_rows = [], {}                     # profile rows by checkpoint digest
for r in df[(df.family == "S-Edge") & (df.method == "trained") & (df.data == "mini")].to_dict("records"):
    s = json.loads((Path(r["checkpoint"]).parent / "summary.json").read_text())
    profile_rows[file_digest(r["checkpoint"])] = len(rows)
    rows.append({"model": r["model"], "run": "profile", "params": r["params"], "MACs per clip": r["macs"],
                 "epochs (best)": f"{s['epochs']} ({s['best_epoch']})", "val %": r["val %"], "test %": r["test %"],
                 "paper params (quoted)": PAPER_PARAMS[r["model"]],
                 "paper GSC-35 test % (quoted)": PAPER_TEST_ACC.get(r["model"], float("nan"))})
all_runs = [run for root in long_runs for run in converged_runs(root)]
shown = list(runs_of_record(all_runs).values()) + [run for run in all_runs if run["summary"] is None]
long_rows = []
for run in shown:
    same = profile_rows.get(file_digest(run["run_dir"] / "best.pt"))
    if same is not None:                        # the profile's model is this run of record
        rows[same]["run"] = f"profile = {recipe_changes(run)}"
        continue
    hist, name, s = run["history"], run["model"], run["summary"]
    best = max(hist, key=lambda h: h["val_acc"])
    c = cost_report(run["module"])
    long_rows.append({"model": name, "run": recipe_changes(run) + ("" if s else " (in progress)"),
                      "params": c["params_paper"], "MACs per clip": 1e6 * c["mmac_per_clip"],
                      "epochs (best)": f"{s['epochs']} ({s['best_epoch']})" if s else f"{len(hist)} so far ({best['epoch']})",
                      "val %": 100 * (s["val_acc"] if s else best["val_acc"]),
                      "test %": 100 * s["test_acc"] if s else float("nan"),
                      "paper params (quoted)": PAPER_PARAMS[name],
                      "paper GSC-35 test % (quoted)": PAPER_TEST_ACC.get(name, float("nan"))})
rows += sorted(long_rows, key=lambda r: r["params"])                  # by size
pd.DataFrame(rows) if rows else print("no S-Edge run on the real words in this profile")

# %% [markdown]
# ### Every family on the same data
#
# Per data set and family: each trained network, then (last row of the family) the smallest
# compressed network of the family that stays within 1 point of the family's best trained network
# on *validation* (chosen on validation; its test accuracy is reported once). These are the models
# of the profile this book was built with: the S-Edge models on the real words are the ones above,
# the synthetic set's and the baselines are trained with the profile's budgets (chapter 1 and chapters
# 6–8 state them); the chapters give every point and the last chapter the full table. MACs per clip: multiply-accumulates for one 1-s clip
# (M: millions), each family counted as its paper counts.

# %% tags=["hide-input"]
from IPython.display import Markdown, display

DATA_NAMES = {"mini": "the real 8 words (chance 12.5 %)", "synthetic": "10 synthetic words (chance 10 %)",
              "synthetic4": "4 synthetic words (chance 25 %)", "synthetic35": "35 synthetic words (chance 2.9 %)"}
for tag, by_data in df.groupby("data", sort=False):
    glance = []
    for family, g in by_data.groupby("family", sort=False):
        trained = g[g.method == "trained"]
        glance += trained.to_dict("records")
        ok = g[(g.method != "trained") & (g["val %"] >= trained["val %"].max() - 1.0)]
        if len(ok):
            best = ok.sort_values(["params", "val %"], ascending=[True, False]).iloc[0].to_dict()
            glance.append(best)
        else:
            glance.append({"family": family, "model": "–", "method": "none within 1 pp"})
    display(Markdown(f"**{tag}** — {DATA_NAMES.get(tag, tag)}"))
    table = pd.DataFrame(glance).rename(columns={"macs": "MACs per clip"})[
        ["family", "model", "method", "params", "MACs per clip", "val %", "test %"]]
    display(styled(table))

# %% [markdown]
# Chance level is one over the number of classes: 10 % on the ten synthetic words, 12.5 % on the
# eight real ones.

# %% [markdown]
# ## The papers
#
# - M. Bittner, D. Schnöll, M. Wess, A. Jantsch. *Efficient and interpretable raw audio
#   classification with diagonal state space models.* Machine Learning 114:175, 2025.
#   [doi:10.1007/s10994-025-06807-z](https://doi.org/10.1007/s10994-025-06807-z) — the S-Edge layer,
#   its model zoo (141 k to 8 k parameters at 94.9 % to 90.0 % on Speech Commands v0.02), layer-wise
#   downsampling by *step scale*, and C++ inference.
# - M. Bittner, D. Schnöll, D. Dallinger, M. Wess, A. Jantsch. *Pruning State Space Models with Model
#   Order Reduction for Efficient Raw Audio Classification.* EUSIPCO 2025, pp. 271–275,
#   [hdl:20.500.12708/226014](http://hdl.handle.net/20.500.12708/226014) — layer-wise
#   balanced truncation and iterative pruning under an accuracy budget (−36.1 % parameters on the
#   largest model, −5.8 % on the smallest, within 0.5 pp).
# - A. Singh, M. D. Plumbley. *A Passive Similarity based CNN Filter Pruning for Efficient Acoustic
#   Scene Classification.* Interspeech 2022 — removing the filters of a CNN that a rank-1 SVD marks
#   as similar to others ({doc}`06_filter_pruning`).
# - M. Mohaimenuzzaman, C. Bergmeir, B. Meyer. *Pruning vs XNOR-Net: A Comprehensive Study of Deep
#   Learning for Audio Classification on Edge-devices* — magnitude and channel pruning with int8
#   quantisation against binarisation of the raw-audio ACDNet ({doc}`08_xnor`).
# - T. Dorszewski, L. Tětková, L. K. Hansen. *Convexity-based Pruning of Speech Representation
#   Models.* 2024, [arXiv:2408.11858](https://arxiv.org/abs/2408.11858) — dropping the layers after
#   the peak of class convexity ({doc}`07_convexity`).
#
# (The filter-pruning and XNOR studies are cited by title: the sources this book was written from
# give no address for them.)
#
# ## What is in this book
#
# - **Training** — the model zoo with the paper's recipe, parameter and MAC counts next to the
#   paper's, learning curves, and accuracy per model size on synthetic and real keywords.
# - **Step scale and interpretability** — accuracy against MACs over a sweep of layer-wise
#   downsampling factors, the 16/8/4 kHz table, pole maps and layer transfer functions.
# - **Balanced truncation** — Hankel singular value decay per layer, the error bound against the
#   measured error, accuracy against kept order one layer at a time, poles and transfer functions
#   before and after truncation.
# - **Iterative pruning** — the greedy search under an accuracy budget: trajectories, the result at
#   the paper's 0.5-point budget next to the paper's, a budget sweep, a clearly separate fine-tuning
#   column, the front of pruning combined with step scale, and our data-weighted truncation (the
#   layers' state moments on training clips in place of white noise), which prunes further
#   without retraining.
# - **Deployment** — parity of the generated C++ with PyTorch on the test split, weights and state
#   bytes, µs per clip and real-time factor per model, pruning and step scale, fixed point against
#   float32, and running the exported program on a WAV file.
# - **Passive filter pruning** — the DCASE 2021 log-mel CNN, its redundant filters per layer, pruning
#   with fine-tuning, and the accuracy/cost front.
# - **Convexity-guided layer pruning** — class convexity per layer of S-Edge stacks and of a frame
#   transformer, the layers after the peak removed, against model order reduction on the same model.
# - **Pruning and quantisation against XNOR-Net** — ACDNet float, pruned and int8 against its
#   binarised version, and the XNOR gap by class count.
# - **Every method on the same data** — one table and one accuracy/parameters/MACs front for every
#   network of the book, S-Edge latencies in C++, and each paper's claims next to ours.
#
# Each chapter opens with a line saying which profile, commit, machine and date produced it, and a
# table of its parameters (name, meaning, value in force). Chance level is one over the number of classes: 10 % on the ten
# synthetic words, 12.5 % on the eight real ones.
#
# ## How to reproduce
#
# On a Linux machine with Python 3.11 and a C++ compiler, from a clone of the repository:
#
# ```bash
# make book    # creates .venv, executes the stale notebooks (profile "quick"), builds this book
# make test    # the test suite, including the notebooks under the "ci" profile
# ```
#
# The chapter sources are text notebooks (`notebooks/NN_name.py`, Jupytext's percent format). Rerun
# one with another profile of `notebooks/profiles.yml`, or with single values changed, through
# `.venv/bin/sedge book --profile NAME --only 01_training --set epochs=20` (a separate book, the
# committed results untouched), or convert it with Jupytext and run it with Papermill and your own
# parameters (the repository's README shows how).
#
# ## Data
#
# - **Synthetic keywords** (the offline default): the Speech Commands words spoken by the eSpeak NG
#   engine shipped in the `espeakng-loader` wheel, with speakers drawn as (voice, variant, pitch,
#   rate), speaker-disjoint splits, speed perturbation, gain, time shift and coloured noise.
# - **Real speech**: the 8-word *mini Speech Commands* excerpt of Google Speech Commands (P. Warden,
#   *Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition*, arXiv:1804.03209),
#   licensed [CC BY 4.0](https://creativecommons.org/licenses/by/4.0/) by Google; 7,192 clips of
#   1,583 speakers, split 80/10/10 by speaker. It is read from beside the repository and never
#   redistributed with it.
# - **Speech Commands v0.02** (35 words, official split) is one option away for the `paper` profile.

