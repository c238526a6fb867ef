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
# # Convexity-guided layer pruning
#
# Dorszewski, Tětková & Hansen (2024) prune whole layers of transformer speech models: a layer whose
# classes form *convex* regions in its representation already separates them, and the layers after
# the convexity peak can go, with fine-tuning after. The graph convexity of a layer
# (`sedge.compress.convexity`): one vector per clip (the time mean of the layer's output), a
# 10-nearest-neighbour graph with Euclidean edge lengths, and for sampled same-class pairs the share
# of the shortest path's interior nodes that carry the same class (a direct edge scores 1, no path 0);
# the layer's score is the mean × 100. We compute it on **validation** clips, keep the layers up to
# the peak, put the classifier on the last kept layer (S-Edge: a fresh decoder, since the width
# changes; the transformer keeps its classifier) and fine-tune with validation selection.
#
# Two families: the S-Edge models of the training chapter, and a small transformer encoder trained
# here on raw-audio frames (25-ms frames → 40 tokens, 4 pre-norm blocks of width 48). The S-Edge
# result is set next to pruning by model order reduction (the iterative-pruning chapter) at the same
# validation budget.

# %% tags=["parameters"]
run_root = "runs/ci"                     # the training chapter's run folder (the transformer is trained into it too)
datasets = {"synthetic": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10"}  # dataset tag → data spec
models = ["tiny"]                        # S-Edge models pruned by convexity, per dataset
mor_models = ["tiny"]                    # S-Edge models whose MOR searches are set beside them, per dataset
transformer_epochs = 1                   # training epochs of the transformer
transformer_batches_per_epoch = 2        # its batches per epoch (None: the whole training split)
transformer_lr = 0.003                   # its learning rate
transformer_batch_size = 32              # its clips per batch
finetune_sedge_epochs = 1                # fine-tuning epochs after dropping S-Edge layers
finetune_sedge_batches_per_epoch = 2     # their batches per epoch (None: all)
finetune_sedge_lr = 0.002                # their learning rate η
finetune_sedge_batch_size = 8            # their clips per batch
finetune_transformer_epochs = 1          # fine-tuning epochs after dropping transformer layers
finetune_transformer_batches_per_epoch = 2  # their batches per epoch (None: all)
finetune_transformer_lr = 0.001          # their learning rate
finetune_transformer_batch_size = 32     # their clips per batch
mor_budgets = [2.0]                      # the pruning chapter's searches shown: their budgets,
mor_step_fraction = 0.25                 # their move size,
mor_max_val = 16                         # and their validation clips (None: all)
max_val = None                           # validation clips for the convexity scores (None: all)
device = "cpu"                           # where to train: cpu, cuda[:N] or auto

# %%
from sedge.pipeline.parameters import check_namespace, for_data
check_namespace(globals(), "07_convexity")

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
import numpy as np
import pandas as pd
import torch

from sedge.report.plots import book_style, legend_below, panels, plain_log_ticks
from sedge.pipeline.baseline_experiments import baseline_run, convexity_pruned_run
from sedge.pipeline.experiments import load_run, pruned_run, run_dir_for
from sedge.report.pareto import pareto_mask
from sedge.data import available_datasets

torch.set_num_threads(2)
book_style()
available = available_datasets(datasets)
def recipe(prefix: str) -> dict:
    """The epochs, batches per epoch, learning rate and batch size of one training stage."""
    g = globals()
    return dict(epochs=g[f"{prefix}_epochs"], max_steps=g[f"{prefix}_batches_per_epoch"], lr=g[f"{prefix}_lr"],
                batch_size=g[f"{prefix}_batch_size"], device=device)

# %% [markdown]
# ## Layer-wise convexity
#
# S-Edge models come from the training chapter (their cached runs); the transformer is trained here
# (Adam, cosine schedule, validation selection). The marker is each model's peak.

# %%
results = {}
for tag, spec in available.items():
    for m in for_data(models, tag, "models"):
        results[(tag, f"S-Edge {m}")] = convexity_pruned_run(run_dir_for(run_root, tag, m), spec, "sedge",
                                                             **recipe("finetune_sedge"), max_val=max_val, progress=False)
    t = baseline_run("transformer", spec, run_dir_for(run_root, tag, "transformer"), **recipe("transformer"),
                     progress=False)
    results[(tag, "transformer")] = convexity_pruned_run(t["run_dir"], spec, "transformer",
                                                         **recipe("finetune_transformer"), max_val=max_val, progress=False)
names = list(dict.fromkeys(name for _, name in results))      # S-Edge sizes, then the transformer
colour = {name: f"C{i}" for i, name in enumerate(names)}         # one colour per model in every figure
fig, axes = panels(len(available), height=3.6)
for ax, tag in zip(axes, available):
    for (t, name), r in results.items():
        if t != tag:
            continue
        ax.plot(range(1, r["layers"] + 1), r["scores"], "o-", color=colour[name], label=name)
        ax.plot([r["keep"]], [r["scores"][r["keep"] - 1]], "*", ms=14, color=colour[name])
    ax.set(title=tag, xlabel="layer", ylabel="graph convexity (validation)", ylim=(0, 100))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
legend_below(fig, axes, ncol=4)

# %% [markdown]
# ## Pruning after the peak, next to model order reduction
#
# *truncated* is the network cut after the peak before fine-tuning (for S-Edge with its new, untrained
# decoder), *fine-tuned* the validation-selected result. Parameters of S-Edge by the paper's formula;
# of the transformer, every trainable parameter. Where the peak is the last layer, the method prunes
# nothing. The MOR rows are the iterative-pruning searches at the listed validation budgets, without
# fine-tuning.

# %%
rows = []
for (tag, name), r in results.items():
    base = {"data": tag, "model": name}
    rows.append({**base, "method": "unpruned", "layers": r["layers"], "params": r["params"],
                 "val %": 100 * r["val_acc"], "test %": 100 * r["test_acc"]})
    if r["keep"] < r["layers"]:
        rows.append({**base, "method": "convexity, truncated", "layers": r["keep"], "params": r["params_pruned"],
                     "val %": 100 * r["val_acc_truncated"], "test %": 100 * r["test_acc_truncated"]})
        rows.append({**base, "method": "convexity, fine-tuned", "layers": r["keep"], "params": r["params_pruned"],
                     "val %": 100 * r["val_acc_finetuned"], "test %": 100 * r["test_acc_finetuned"]})
for tag, spec in available.items():
    for m in for_data(mor_models, tag, "mor_models"):
        for b in mor_budgets:
            p = pruned_run(run_dir_for(run_root, tag, m), spec, budget_pp=b, step_fraction=mor_step_fraction,
                           max_val=mor_max_val, progress=False)
            rows.append({"data": tag, "model": f"S-Edge {m}", "method": f"MOR ≤ {b} pp", "layers": len(p["states_after"]),
                         "params": p["params_after"], "val %": p["val_acc_after"], "test %": p["test_acc_after"]})
table = pd.DataFrame(rows)
first = table[table.method == "unpruned"].set_index(["data", "model"])["params"]
table["Δparams %"] = [100 * (r.params / first[(r.data, r.model)] - 1) for r in table.itertuples()]
table.sort_values(["data", "model"], kind="stable").round(2)

# %% [markdown]
# ## Accuracy against parameters
#
# Every model and pruning result per data set; the line joins the points no other one beats on both
# parameters and *validation* accuracy (chosen on validation, drawn at their test accuracy).
# The paper reports large layer reductions of transformer speech models at no loss of accuracy, and
# sometimes gains; what carries over to these far smaller models is read off here.

# %%
fig, axes = panels(len(available), height=3.8)
methods = list(dict.fromkeys(table.method))
fixed = {"unpruned": "o", "convexity, fine-tuned": "s", "convexity, truncated": "x"}
other = iter("^v<>Dp")                                       # one marker per MOR budget
marker = {m: fixed.get(m) or next(other) for m in methods}   # the colour is the model, the marker the method
for ax, tag in zip(axes, available):
    g = table[table.data == tag].reset_index(drop=True)
    for (name, method), h in g.groupby(["model", "method"]):
        ax.plot(h["params"], h["test %"], marker[method], mfc="none", color=colour[name], ms=7)
    ok = g[g.method != "convexity, truncated"]
    front = ok[pareto_mask(ok["params"].to_numpy(), ok["val %"].to_numpy())].sort_values("params")
    ax.step(front["params"], front["test %"], "k-", where="post", lw=0.8)
    ax.set(xscale="log", title=tag, xlabel="parameters", ylabel="test accuracy %")
    plain_log_ticks(ax)
key = ([Line2D([], [], color=colour[n], marker="o", ls="none", label=n) for n in names]
       + [Line2D([], [], color="0.3", marker=marker[m], mfc="none", ls="none", label=m)
          for m in methods]
       + [Line2D([], [], color="k", lw=0.8, label="front (chosen on validation)")])
for h in key:
    axes[0].add_line(h)
legend_below(fig, axes, ncol=4)
