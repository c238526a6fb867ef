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
# # Balanced truncation of S-Edge layers
#
# Every S-Edge layer is, between its BatchNorm and its LeakyReLU, a linear time-invariant system.
# With the BatchNorm folded into B and b and the bias as a constant extra input, its *sample-time
# continuous* form is
#
# $$\dot x = A x + B_c \begin{bmatrix} u \\ 1 \end{bmatrix},\qquad y = \operatorname{Re}(C x),
# \qquad A = \operatorname{diag}(\Delta \odot \Lambda),\quad B_c = \Delta \odot [B \mid b],$$
#
# whose zero-order hold at unit sample time is exactly the layer's recurrence — so the reduction
# does not depend on the step scale. Writing x = x_r + i x_i gives a real system of order 2P.
# Balanced truncation (python-control `balred`, continuous time, slycot) changes coordinates so that
# the controllability and observability Gramians are equal and diagonal,
# W_c = W_o = diag(σ₁ ≥ σ₂ ≥ …), the **Hankel singular values**, and keeps the first k states. The
# reduced system is stable and obeys the a-priori bound
#
# $$\lVert G - G_k \rVert_\infty \le 2 \sum_{i > k} \sigma_i .$$
#
# The reduced A is diagonalised again so the result is a plain S-Edge layer: one state per conjugate
# pair with its C column doubled, real eigenvalues counted honestly (two equal real poles share one
# complex state). This chapter looks at what that does to the trained layers of the training chapter.

# %% tags=["parameters"]
run_root = "runs/ci"            # the training chapter's run folder
datasets = {"synthetic": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10"}  # dataset tag → data spec
models = ["tiny"]               # trained models to analyse, per dataset
fractions = [0.5, 1.0]          # kept fraction of each layer's states in the accuracy sweep
max_val = 16                    # validation clips for the sweep (None: all; shared with the pruning search)
gramian_clips = 16              # training clips behind the data-weighted Gramians (dashed lines of the sweep)

# %%
from sedge.pipeline.parameters import check_namespace, for_data
check_namespace(globals(), "03_balanced_truncation")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from sedge.report.plots import book_style, legend_below, panels, plain_log_ticks
from sedge.data import available_datasets, load_data
from sedge.pipeline.experiments import (gramian_clip_tensor, load_run, memo_key, memo_path, read_memo, run_dir_for,
                                        write_memo)
from sedge.compress.reduction import state_covariances
from sedge.models.interpret import frequency_response
from sedge.compress.pruning import layer_sensitivity
from sedge.compress.reduction import hankel_singular_values, layer_system, reduce_layer, truncation_errors

torch.set_num_threads(2)
book_style()
loaded = {}
available = available_datasets(datasets)
for tag in available:
    for m in for_data(models, tag, "models"):
        run_dir = run_dir_for(run_root, tag, m)
        loaded[tag, m] = (run_dir, *load_run(run_dir)[:2])

# %% [markdown]
# ## Hankel singular value decay
#
# σ_i/σ₁ per layer (the real realisation has 2P values). A fast decay means a few balanced states
# carry the layer's input–output behaviour; the table gives how many real states hold 99 % and
# 99.9 % of Σσ.

# %%
rows = []
fig, axes = panels(len(loaded), ncols=2, height=3.2)
for ax, ((tag, m), (run_dir, model, meta)) in zip(axes, loaded.items()):
    for i, layer in enumerate(model.layers):
        hsv = hankel_singular_values(layer_system(layer))
        ax.semilogy(np.arange(1, len(hsv) + 1), hsv / hsv[0], ".-", ms=3, color=f"C{i}", label=f"layer {i + 1}")
        share = np.cumsum(hsv) / hsv.sum()
        rows.append({"data": tag, "model": m, "layer": i + 1, "2P": len(hsv),
                     "states for 99 % Σσ": f"{int(np.searchsorted(share, 0.99)) + 1} of {len(hsv)}",
                     "states for 99.9 % Σσ": f"{int(np.searchsorted(share, 0.999)) + 1} of {len(hsv)}"})
    ax.set(title=f"{m} on {tag}", xlabel="index i", ylabel="σ_i / σ_1")
legend_below(fig, axes, ncol=6)                      # layer i has colour C(i-1) in every figure here
pd.DataFrame(rows)

# %% [markdown]
# ## The error bound against the measured error
#
# For every layer, ‖G − G_k‖∞ measured on a dense frequency grid (max over ω of the largest singular
# value of the difference) next to 2·Σ_{i>k} σ_i. The measured error must stay under the bound
# (the tests check this on constructed layers; here it is checked on the trained ones).

# %%
err_rows = []
for (tag, m), (run_dir, model, meta) in loaded.items():
    L = len(model.layers)
    fig, axes = panels(L, height=3)
    for i, (ax, layer) in enumerate(zip(axes, model.layers)):
        orders = sorted({max(1, int(round(f * 2 * layer.P))) for f in np.linspace(0.05, 1, 12)})
        errs = truncation_errors(layer, orders)
        ax.semilogy([e["order"] for e in errs], [e["bound"] + 1e-16 for e in errs], "k--", label="2Σσ bound")
        ax.semilogy([e["order"] for e in errs], [e["measured"] + 1e-16 for e in errs], "o-", ms=3, label="measured")
        ax.set(title=f"layer {i + 1}", xlabel="kept real order k")
        err_rows += [{"data": tag, "model": m, "layer": i + 1, **e} for e in errs]
    fig.suptitle(f"{m} on {tag}: ‖G − G_k‖∞")
    legend_below(fig, axes, ncol=2)
errors = pd.DataFrame(err_rows)
violations = errors[errors.measured > errors.bound * (1 + 1e-6) + 1e-9]
print(f"{len(errors)} truncations, {len(violations)} above the bound")
assert violations.empty

# %% [markdown]
# ## Accuracy against kept order, one layer at a time
#
# Validation accuracy when a single layer is truncated to ⌈f·P⌉ complex states and every other layer
# is left alone. This is the layer's individual sensitivity; the iterative pruning of the next chapter
# combines layers greedily. The evaluations are stored with the run and reused by that search.
# Solid lines: balanced truncation as above. Dashed: the *data-weighted* truncation of the next
# chapter (ours), which balances the observability Gramian against the layer's state moments on
# training clips instead of the white-noise controllability Gramian — it keeps the states that the
# signals a layer is actually fed excite, and loses far less accuracy at the same order.

# %%
sens_rows = []
for (tag, m), (run_dir, model, meta) in loaded.items():
    data = load_data(available[tag]).restrict_to(meta["classes"])
    xv, yv = data.val.tensors(*meta["norm"])
    if max_val:
        xv, yv = xv[:max_val], yv[:max_val]
    path = memo_path(run_dir, "truncate", max_val)
    mkey = memo_key(run_dir / "best.pt", available[tag], max_val, "truncate")   # the pruning search's memo
    memo = read_memo(path, mkey)
    rows = layer_sensitivity(model, xv, yv, fractions, memo=memo, progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_memo(path, mkey, memo)
    sens_rows += [{"data": tag, "model": m, "method": "plain", **r} for r in rows]
    path = memo_path(run_dir, f"data{gramian_clips}", max_val)       # the data-weighted search's memo
    mkey = memo_key(run_dir / "best.pt", available[tag], max_val, "data", gramian_clips)
    memo = read_memo(path, mkey)
    grams = state_covariances(model, gramian_clip_tensor(data, meta["norm"], gramian_clips))
    rows = layer_sensitivity(model, xv, yv, fractions, method="data", memo=memo, progress=False, gramians=grams)
    write_memo(path, mkey, memo)
    sens_rows += [{"data": tag, "model": m, "method": "data-weighted", **r} for r in rows]
sens = pd.DataFrame(sens_rows)
keys = list(loaded)
fig, axes = panels(len(keys), height=3.4)
for ax, (tag, m) in zip(axes, keys):
    sub = sens[(sens.data == tag) & (sens.model == m)]
    for (layer, method), g in sub.groupby(["layer", "method"]):
        ax.plot(g["fraction"], g["val_acc"], "o-" if method == "plain" else "s--", ms=3, color=f"C{layer}",
                label=f"layer {layer + 1}" + (" (data-weighted)" if method != "plain" else ""))
    full = sub[sub.fraction == 1.0]["val_acc"]
    if len(full):
        ax.axhline(full.iloc[0] - 0.5, color="k", ls=":", lw=0.8, label="unpruned − 0.5 pp")
    ax.set(title=f"{m} on {tag}", xlabel="kept fraction of states", ylabel="validation accuracy %")
legend_below(fig, axes, ncol=4)

# %% [markdown]
# ## Poles before and after
#
# The discrete poles Λ̄ of each layer (dots) and of the same layer truncated to half its real order
# (crosses). Balanced truncation keeps the poles that matter for the input–output map — often not
# simply the slowest ones.

# %%
t = np.linspace(0, 2 * np.pi, 200)
for (tag, m), (run_dir, model, meta) in loaded.items():
    L = len(model.layers)
    fig, axes = panels(L, height=3.2)
    for i, (ax, layer) in enumerate(zip(axes, model.layers)):
        half = reduce_layer(layer, max(1, layer.P))
        with torch.no_grad():
            before, after = layer.discretise()[0].numpy(), half.discretise()[0].numpy()
        ax.plot(np.cos(t), np.sin(t), "k-", lw=0.5)
        ax.plot(before.real, before.imag, ".", ms=5, label="poles of the trained layer")
        ax.plot(after.real, after.imag, "x", ms=5, label="poles after truncation to half order")
        ax.set(title=f"layer {i + 1}: P = {layer.P} → {half.P}", aspect="equal", xlim=(-1.1, 1.1), ylim=(-1.1, 1.1))
    fig.suptitle(f"{m} on {tag}: poles Λ̄ before and after truncation to half order")
    legend_below(fig, axes, ncol=2)

# %% [markdown]
# ## What truncation does to a transfer function
#
# The first layer filters the raw waveform. Its gain from the input to a few output channels, at full
# order and truncated to 1/2 and 1/4 of its real order: truncation keeps the bands carrying most
# Hankel energy and flattens the rest.

# %%
for (tag, m), (run_dir, model, meta) in loaded.items():
    layer = model.layers[0]
    versions = {"full": layer, "1/2": reduce_layer(layer, max(1, layer.P)), "1/4": reduce_layer(layer, max(1, layer.P // 2))}
    fig, axes = panels(3, height=3, sharey=True)
    for o, ax in enumerate(axes):
        for label, lay in versions.items():
            f, G = frequency_response(lay, n=512)
            ax.semilogy(f, np.abs(G[:, o, 0]) + 1e-12, lw=0.9, label=f"{label} (P={lay.P})")
        ax.set(title=f"output {o}", xlabel="Hz", ylabel="|G| (gain)" if o == 0 else None)
    fig.suptitle(f"{m} on {tag}: layer 1 |G|")
    legend_below(fig, axes, ncol=3)
