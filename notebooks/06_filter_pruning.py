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
# # Passive similarity-based filter pruning of a CNN
#
# Singh & Plumbley (Interspeech 2022) prune the convolution filters of the DCASE 2021 Task 1A baseline
# CNN *passively*, from the weights alone: each filter W_f (C_in × 7 × 7) is read as a 49 × C_in
# matrix, its rank-1 SVD's left singular vector u_f is its signature, and a greedy pass over pairs of
# nearest signatures (cosine distance, ascending) keeps one filter of each close pair and marks the
# other redundant (`sedge.compress.filter_pruning`). The redundant filters are removed
# **physically** — the conv's output channels, its BatchNorm, and the next layer's input channels —
# and the smaller network is fine-tuned, with the checkpoint chosen on validation (the paper's code
# chose it on the test split; we do not).
#
# Here the CNN reads 40 log-mel bands × 50 frames (a 1-s clip, 40 ms windows, 20 ms hop; input shape
# 1 × 40 × 50) of the same keyword splits as S-Edge; its second pool is 4 × 10 instead of 4 × 100 so
# that the flattened size, and so the parameter count (46,246 at 10 classes, counted as Keras and the
# paper count them), stay the paper's. As in the paper, C1, C2 and C3 are pruned alone and in
# combinations. Parameters are given as the paper counts them (BatchNorm: 4 numbers per channel) and
# as trainable parameters; MACs both as the paper counts them (only the pruned layers' own MACs) and
# for the whole network (the next layer's inputs shrink too).

# %% tags=["parameters"]
run_root = "runs/ci"            # folder of the CNN runs
datasets = {"synthetic": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10"}  # dataset tag → data spec
epochs = 1                      # training epochs of the DCASE CNN
batches_per_epoch = 2           # its batches per epoch (None: the whole training split)
lr = 0.003                      # its learning rate (Adam)
batch_size = 32                 # its clips per batch
finetune_epochs = 1             # fine-tuning epochs after pruning
finetune_batches_per_epoch = 2  # fine-tuning batches per epoch (None: all)
finetune_lr = 0.0005            # fine-tuning learning rate
finetune_batch_size = 32        # fine-tuning clips per batch
layer_sets = [[2], [1, 2, 3]]   # conv layers pruned together, one experiment per set
max_fraction = 0.5              # at most this share of a layer's filters is removed
device = "cpu"                  # where to train: cpu, cuda[:N] or auto

# %%
from sedge.pipeline.parameters import check_namespace
check_namespace(globals(), "06_filter_pruning")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from sedge.report.plots import book_style, label_points, legend_below, panels, show_table
from sedge.pipeline.baseline_experiments import baseline_run, dcase_costs, filter_pruned_run
from sedge.compress.filter_pruning import filter_signatures
from sedge.training.baselines import load_baseline
from sedge.pipeline.experiments import run_dir_for
from sedge.report.pareto import pareto_mask
from sedge.data import available_datasets

torch.set_num_threads(2)
book_style()
available = available_datasets(datasets)
recipe = dict(epochs=epochs, max_steps=batches_per_epoch, lr=lr, batch_size=batch_size, device=device)
finetune_recipe = dict(epochs=finetune_epochs, max_steps=finetune_batches_per_epoch, lr=finetune_lr,
                       batch_size=finetune_batch_size, device=device)

# %% [markdown]
# ## The trained CNN
#
# Adam with a cosine schedule on the training split; the epoch with the best validation accuracy is
# kept and tested once. A finished run is read back from its folder.

# %%
trained = {}
for tag, spec in available.items():
    trained[tag] = baseline_run("dcase", spec, run_dir_for(run_root, tag, "dcase"), **recipe, progress=False)
pd.DataFrame([{"data": t, "classes": s["arch"]["kwargs"]["n_classes"], "best epoch": s["best_epoch"],
               "val acc %": 100 * s["val_acc"], "test acc %": 100 * s["test_acc"],
               "params (paper count)": dcase_costs(load_baseline(s["run_dir"] + "/best.pt")[0])["params_keras"],
               "train min": s["train_seconds"] / 60} for t, s in trained.items()]).round(2)

# %% [markdown]
# ## Which filters look alike
#
# Cosine distances between the rank-1 signatures of the filters of C1, C2 and C3, each with each, in
# the trained network (first data set); the filters the greedy pass marks redundant are the red
# triangles under each matrix.

# %%
from matplotlib.ticker import MaxNLocator

from sedge.compress.filter_pruning import redundant_filters
tag0 = next(iter(trained))
cnn, _ = load_baseline(trained[tag0]["run_dir"] + "/best.pt")
fig, axes = panels(3, height=3.3)
for ax, i in zip(axes, (1, 2, 3)):
    w = getattr(cnn, f"conv{i}").weight
    sig = filter_signatures(w)
    im = ax.imshow(1 - sig @ sig.T, cmap="viridis", vmin=0, vmax=2)
    red = redundant_filters(w, max_fraction)
    ax.plot(red, [w.shape[0] - 0.5 + 0.04 * w.shape[0]] * len(red), "^", color="red", ms=5, clip_on=False)
    ax.set(title=f"C{i}: {len(red)} of {w.shape[0]} redundant", xlabel="filter", ylabel="filter")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
fig.tight_layout(rect=(0, 0, 0.9, 1))
bar = fig.colorbar(im, ax=axes, label="cosine distance", fraction=0.025, pad=0.02)

# %% [markdown]
# ## Pruning C1, C2, C3 and their combinations
#
# *before* is the trained CNN, *pruned* the smaller network with no retraining, *fine-tuned* the best
# validation epoch after fine-tuning (the pruned network competes as epoch 0, so fine-tuning never
# makes validation worse).

# %%
rows = []
for tag, spec in available.items():
    for layers in layer_sets:
        r = filter_pruned_run(trained[tag]["run_dir"], spec, tuple(layers), **finetune_recipe, max_fraction=max_fraction,
                              progress=False)
        u, p, f = r["unpruned"], r["pruned"], r["finetuned"]
        own = lambda c: sum(c["macs"][f"conv{i}"] for i in layers)
        rows.append({"data": tag, "pruned": "+".join(f"C{i}" for i in layers), "channels": "→".join(map(str, p["channels"])),
                     "params (paper count)": p["params_keras"], "Δparams % (paper count)": 100 * (p["params_keras"] / u["params_keras"] - 1),
                     "Δparams % (trainable)": 100 * (p["params"] / u["params"] - 1),
                     "ΔMACs % (pruned layers, paper)": 100 * (own(p) / own(u) - 1),
                     "ΔMACs % (whole network)": 100 * (p["macs"]["total"] / u["macs"]["total"] - 1),
                     "MMACs": p["macs"]["total"] / 1e6,
                     "val % before": 100 * u["val_acc"], "val % pruned": 100 * p["val_acc"], "val % fine-tuned": 100 * f["val_acc"],
                     "test % before": 100 * u["test_acc"], "test % pruned": 100 * p["test_acc"], "test % fine-tuned": 100 * f["test_acc"],
                     "FT best epoch": f["best_epoch"]})
results = pd.DataFrame(rows)
show_table(results, ["data", "pruned"], max_columns=9)           # cost columns, then accuracy columns

# %% [markdown]
# ## Next to the paper
#
# The paper prunes the same CNN on DCASE 2021 Task 1A (acoustic scenes, 10 classes, 10-s clips), so
# only the *relative* figures carry over: which layers have redundant filters, how much of the cost
# goes, and how much accuracy the fine-tuned network keeps.

# %%
paper = pd.DataFrame([{"data": "paper (DCASE21 1A)", "pruned": "C2", "channels": "16→11→32",
                       "Δparams % (paper count)": -25.0, "ΔMACs % (pruned layers, paper)": -27.0,
                       "test % before": 48.58, "test % fine-tuned": 47.61}])
cols = ["data", "pruned", "channels", "Δparams % (paper count)", "ΔMACs % (pruned layers, paper)", "test % before",
        "test % fine-tuned"]
pd.concat([paper[cols], results[results.pruned == "C2"][cols]]).round(2)

# %% [markdown]
# ## Accuracy against parameters and MACs
#
# Every pruned network after fine-tuning, with the unpruned CNN (star); the line is the front of
# networks no other one beats on both cost and *validation* accuracy (chosen on validation, drawn at their
# test accuracy).

# %%
fig, flat = panels(2 * len(available), ncols=2, height=3.4)
axes = [flat[2 * i:2 * i + 2] for i in range(len(available))]
for row, tag in zip(axes, available):
    g = results[results.data == tag]
    u = filter_pruned_run(trained[tag]["run_dir"], available[tag], tuple(layer_sets[0]), **finetune_recipe,
                          max_fraction=max_fraction, progress=False)["unpruned"]
    for ax, (col, base) in zip(row, (("params (paper count)", u["params_keras"]), ("MMACs", u["macs"]["total"] / 1e6))):
        ax.plot(g[col], g["test % fine-tuned"], "o", mfc="none", color="C0", label="pruned + fine-tuned")
        ax.plot([base], [100 * u["test_acc"]], "k*", ms=10, label="unpruned")
        pts = pd.concat([g[[col, "val % fine-tuned", "test % fine-tuned"]],
                         pd.DataFrame({col: [base], "val % fine-tuned": [100 * u["val_acc"]],
                                       "test % fine-tuned": [100 * u["test_acc"]]})])
        front = pts[pareto_mask(pts[col].to_numpy(), pts["val % fine-tuned"].to_numpy())].sort_values(col)
        ax.step(front[col], front["test % fine-tuned"], "k-", where="post", lw=0.8, label="front (chosen on validation)")
        ax.set(title=tag, xlabel=col, ylabel="test accuracy %")
legend_below(fig, flat, ncol=3)
for row, tag in zip(axes, available):
    g = results[results.data == tag]
    for ax, col in zip(row, ("params (paper count)", "MMACs")):
        label_points(ax, g[col], g["test % fine-tuned"], g["pruned"], fontsize=8)
