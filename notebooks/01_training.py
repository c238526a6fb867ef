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
# # Training the S-Edge model zoo
#
# This chapter trains S-Edge models with the paper's recipe (AdamW in two groups, cosine
# schedule with warm-up, decoder orthogonality penalty, checkpoint chosen on validation accuracy,
# test accuracy computed once) on the synthetic keyword set and on real Speech Commands clips, and
# sets their sizes next to the paper's. Which models, data and how many steps come from the
# parameter profile (`notebooks/profiles.yml`), shown in the table below. In the `quick` profile the
# models are trained for 60 epochs of every training clip on the real 8 words (validation had
# flattened) and 20 epochs of every clip on the synthetic set (1,000 validation and 1,000 test clips;
# learned, though validation was still rising slowly), and they are the ones every later chapter
# prunes, downsamples and exports.

# %% tags=["parameters"]
run_root = "runs/ci"          # folder of the training runs: one sub-folder <dataset>_<model> each
datasets = {"synthetic": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10", "mini": "mini"}  # dataset tag → data spec (`sedge train --help`)
models = ["tiny", "s"]        # zoo models to train, per dataset
epochs = 1                    # training epochs, per dataset
batches_per_epoch = 2         # batches per epoch (None: the whole training split), per dataset
lr = 0.005                    # learning rate η of the SSM parameters (the other parameters get 4η)
batch_size = 8                # clips per batch
warmup_steps = 2              # linear warm-up steps before the cosine schedule, per dataset
device = "cpu"                # where to train: cpu, cuda[:N] or auto
long_runs = ["checkpoints/trained", "checkpoints/ablations"]  # folders of longer `sedge train` runs on the real words (shown when present; []: skip)

# %%
from sedge.pipeline.parameters import check_namespace, for_data
check_namespace(globals(), "01_training")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from sedge.report.plots import audio_table, book_style, label_points, legend_below, panels, plain_log_ticks
from sedge.models.config import PAPER_PARAMS, ZOO, model_config
from sedge.models.cost import cost_report
from sedge.data import available_datasets, load_data
from sedge.pipeline.experiments import PAPER_TEST_ACC, converged_runs, load_run, trained_run
from sedge.pipeline.records import recipe_changes, runs_of_record
from sedge.training.evaluation import confusion_matrix, predict
from sedge.models.model import build_model

torch.set_num_threads(2)
book_style()

# %% [markdown]
# ## Model sizes against the paper
#
# Every zoo model is built with 35 outputs and counted with the paper's formula; the count
# must equal the paper's exactly. The *deployed* count is what the exported model stores (Λ̄, B̄ with
# BatchNorm folded in, b̄, C, Re c, skip, decoder). MACs per input sample use the paper convention at
# step scale 1; the last column is the authors' C++ convention.

# %%
rows = []
for name in ZOO:
    r = cost_report(build_model(model_config(name)))
    rows.append({"model": name, "params (paper formula)": r["params_paper"], "params (paper)": PAPER_PARAMS[name],
                 "params deployed": r["params_deployed"], "kMAC/sample": round(r["macs_per_sample"] / 1e3, 2),
                 "MMAC per 1-s clip": round(r["mmac_per_clip"], 1),
                 "kMAC/sample (C++ conv.)": round(r["macs_per_sample_cpp"] / 1e3, 2)})
zoo_table = pd.DataFrame(rows).set_index("model")
assert (zoo_table["params (paper formula)"] == zoo_table["params (paper)"]).all()
zoo_table

# %% [markdown]
# ## Training
#
# Each (dataset, model) pair is trained once into `run_root`; re-executing the notebook reuses a
# finished run with the same configuration. The real-speech case uses the 8-word excerpt of Google
# Speech Commands provided beside the project (Warden 2018, CC BY 4.0), split 80/10/10 by a stable
# hash of the speaker id; it is skipped when that folder is absent.

# %%
available = available_datasets(datasets)
for tag, spec in available.items():
    print(tag, load_data(spec).summary(), f"budget: {for_data(epochs, tag, 'epochs')} epochs × "
          f"{for_data(batches_per_epoch, tag, 'batches_per_epoch') or 'all'} batches")

runs = {}
for tag, spec in available.items():
    for m in for_data(models, tag, "models"):
        runs[tag, m] = trained_run(m, spec, tag, run_root, epochs=for_data(epochs, tag, "epochs"), lr=lr,
                                   batch_size=batch_size, max_steps=for_data(batches_per_epoch, tag, "batches_per_epoch"),
                                   warmup_steps=for_data(warmup_steps, tag, "warmup_steps"), progress=False,
                                   device=device)

# %%
rows = []
for (tag, m), s in runs.items():
    model, meta, hist = load_run(s["run_dir"])
    c = cost_report(model)
    rows.append({"data": tag, "model": m, "classes": len(meta["classes"]), "params (paper formula)": c["params_paper"],
                 "MMAC/clip": round(c["mmac_per_clip"], 1), "best epoch": s["best_epoch"],
                 "val acc %": round(100 * s["val_acc"], 2), "test acc %": round(100 * s["test_acc"], 2),
                 "train min": round(s["train_seconds"] / 60, 1)})
results = pd.DataFrame(rows)
results

# %% [markdown]
# ## Learning curves

# %%
colour = {m: f"C{i}" for i, m in enumerate(ZOO)}          # one colour per model, train and validation alike
fig, axes = panels(len(available), height=3.8)
for ax, tag in zip(axes, available):
    for m in [m for t, m in runs if t == tag]:
        hist = load_run(runs[tag, m]["run_dir"])[2]
        ep = [h["epoch"] for h in hist]
        ax.plot(ep, [100 * h["val_acc"] for h in hist], "-o", color=colour[m], label=f"{m} validation")
        ax.plot(ep, [100 * h["train_acc"] for h in hist], "--", color=colour[m], label=f"{m} train")
    ax.set(title=tag, xlabel="epoch", ylabel="accuracy %")
legend_below(fig, axes, ncol=4)

# %% [markdown]
# ## Where the real-speech models err
#
# The runs on real speech, on their test split: rows are the spoken word, columns the prediction,
# each cell the share of that word's test clips (the count beside it). The diagonal's mean weighted
# by the clips per word is the test accuracy of the table above.

# %%
real = [(t, m) for t, m in runs if not available[t].startswith("synthetic")]
if real:
    fig, axes = panels(len(real), ncols=2, height=4.6)
    for ax, (tag, m) in zip(axes, real):
        model, meta, _ = load_run(runs[tag, m]["run_dir"])
        classes = meta["classes"]
        xt, yt = load_data(available[tag]).restrict_to(classes).test.tensors(*meta["norm"])
        pred = predict(model, xt, batch_size=16).argmax(1).numpy()
        cm = confusion_matrix(pred, yt.numpy(), len(classes))
        test_pct = 100 * runs[tag, m]["test_acc"]
        assert abs(100 * np.trace(cm) / cm.sum() - test_pct) <= 100 / cm.sum()   # the summary's, ±1 clip
        share = 100 * cm / cm.sum(1, keepdims=True)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=100)
        for i in range(len(classes)):
            for j in range(len(classes)):
                if cm[i, j]:
                    ax.text(j, i, f"{share[i, j]:.0f}\n({cm[i, j]})", ha="center", va="center", fontsize=6.5,
                            color="white" if share[i, j] > 60 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set(xlabel="predicted", ylabel="spoken", title=f"{m} on {tag}: test {test_pct:.1f} % ({cm.sum()} clips)")
    fig.tight_layout()
else:
    print("no real-speech data set in this profile on this machine")

# %% [markdown]
# ## Listen
#
# Test clips of the synthetic set, one per word, with what the best model of this profile on that
# set (chosen on validation) hears; then clips it gets wrong. The real Speech Commands clips are not
# embedded: the excerpt is not redistributed with the book.

# %%
synthetic = [(t, m) for t, m in runs if t.startswith("synthetic")]
if synthetic:
    tag, m = max(synthetic, key=lambda k: runs[k]["val_acc"])
    model, meta, _ = load_run(runs[tag, m]["run_dir"])
    test = load_data(available[tag]).restrict_to(meta["classes"]).test
    xt, yt = test.tensors(*meta["norm"])
    pred = predict(model, xt, batch_size=16).argmax(1).numpy()
    classes, y = meta["classes"], yt.numpy()
    first = [int(np.flatnonzero(y == c)[0]) for c in range(len(classes)) if (y == c).any()]
    wrong = [int(i) for i in np.flatnonzero(pred != y)[:6]]
    print(f"{m} on {tag}: test accuracy {100 * (pred == y).mean():.1f} % ({len(y)} clips)")
    for title, idx in (("one clip per word", first), ("misclassified", wrong)):
        display(Markdown(f"**{title}**"))
        display(audio_table(test.waves[idx], [{"clip": i, "word": classes[y[i]], "model hears": classes[pred[i]]}
                                              for i in idx]))
else:
    print("no synthetic data set in this profile")

# %% [markdown]
# ## Accuracy per model size
#
# Test accuracy of the validation-selected checkpoint against MACs per clip, beside the paper's
# Speech Commands v0.02 results (35 words, 40 epochs; quoted from the paper) for orientation — the tasks and
# budgets differ, so only the ordering is comparable.

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for tag in available:
    sub = results[results.data == tag]
    ax.plot(sub["MMAC/clip"], sub["test acc %"], "o-", label=f"ours: {tag}")
ax.plot([zoo_table.loc[m, "MMAC per 1-s clip"] for m in PAPER_TEST_ACC], list(PAPER_TEST_ACC.values()), "k^",
        label="paper (GSC, 35 words)")
ax.set(xscale="log", xlabel="MMAC per 1-s clip", ylabel="test accuracy %")
plain_log_ticks(ax)
ax.legend()
fig.tight_layout()
_ = label_points(ax, results["MMAC/clip"], results["test acc %"], results["model"], fontsize=8)

# %% [markdown]
# ## Longer runs
#
# Runs trained with `sedge train` on the real 8-word excerpt outside this profile's stages, partly on
# a GPU (their commands and machines are in `checkpoints/trained/README.md` and
# `checkpoints/ablations/README.md`): the recipe above (lr 0.005, batch 16, seed 1234, RZOH on) on
# longer schedules, and one-change ablations of it. Each resumes where it stopped; a finished one can
# become the profile's run of its model on the real words (above), and then every later chapter works
# on it. A run in progress has a best validation accuracy so far and no test accuracy: the test split
# is scored once, at the end. `train h` adds up the wall time of every epoch on whichever machine ran
# it (an epoch takes 13–34 s on the GPU, 2–15 min on this CPU).
#
# The **run of record** of each model is chosen on validation alone: the finished run with the highest
# validation accuracy among those that keep the method (RZOH on) and all the training speakers. A run
# without RZOH or on half the speakers is shown, never chosen. The curves are those of the runs of
# record.

# %% tags=["hide-input"]
all_runs = [run for root in long_runs for run in converged_runs(root)]
record = {id(r) for r in runs_of_record(all_runs).values()}
long = []
for run in all_runs:
    hist, s = run["history"], run["summary"]
    best = max(hist, key=lambda h: h["val_acc"])
    long.append({"run": run["run_dir"].name, "model": run["model"],
                 "recipe": recipe_changes(run), "record": "✓" if id(run) in record else "",
                 "params": cost_report(run["module"])["params_paper"],
                 "epochs (best)": f"{len(hist)} ({best['epoch']})" + ("" if s else " so far"),
                 "val acc %": 100 * best["val_acc"], "test acc %": 100 * s["test_acc"] if s else float("nan"),
                 "train h": sum(h["seconds"] for h in hist) / 3600, "curve": hist,
                 "classes": len(run["meta"]["classes"])})
long.sort(key=lambda r: (r["params"], r["record"] != "✓", r["run"]))   # by size, the record first
shown = [r for r in long if r["record"]]
if shown:
    fig, axes = panels(len(shown), height=2.6, sharey=True)
    chance = 100 / long[0]["classes"]
    for ax, r in zip(axes, shown):
        ep = [h["epoch"] for h in r["curve"]]
        c = colour.get(r["model"], "C9")
        ax.plot(ep, [100 * h["val_acc"] for h in r["curve"]], "-o", ms=2, color=c)
        ax.plot(ep, [100 * h["train_acc"] for h in r["curve"]], "--", color=c)
        ax.axhline(chance, color="k", lw=0.8, ls=":")
        ax.set(title=f"{r['model']} ({r['recipe']})", xlabel="epoch", ylim=(0, 100))
    for ax in axes[::3]:
        ax.set_ylabel("accuracy %")
    axes[0].plot([], [], "k-o", ms=2, label="validation")
    axes[0].plot([], [], "k--", label="train")
    axes[0].plot([], [], "k:", lw=0.8, label=f"chance ({chance:.1f} %)")
    legend_below(fig, axes, ncol=3)
if long:
    display(pd.DataFrame([{k: v for k, v in r.items() if k not in ("curve", "classes")} for r in long]))
else:
    print(f"no longer runs in {long_runs}")
