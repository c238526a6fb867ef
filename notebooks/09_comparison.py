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
# # Every method on the same data
#
# One table and one set of fronts for every network of the previous chapters: S-Edge trained, pruned
# by model order reduction (with and without fine-tuning) and by convexity-guided layer pruning; the
# DCASE CNN and its filter-pruned variants; the frame transformer and its layer-pruned variant; the
# micro ACDNet in float and as XNOR-Net, and the larger ACDNet along the pruning-and-quantisation
# path. Everything is read back from the cached stages those chapters computed (`sedge.pipeline.compare.collect`
# makes the same calls), on the same splits, with every model chosen on validation.
#
# Counting conventions, each as its paper counts: S-Edge parameters by the paper's formula and MACs
# per 1-s clip at step scale 1; the other networks' trainable parameters (non-zero ones after
# magnitude pruning) and the MACs of their convolutions, linear layers and attention — the DCASE
# CNN's log-mel front end is not counted, which flatters it; *effective* MACs count a binary MAC as
# 1/64 (the XNOR cost model). Weight memory counts 32 bits per float weight, 8 per int8 weight, 1 per
# binary weight.

# %% tags=["parameters"]
profile = "ci"          # whose chapters are compared: the same profile the book was built with
timing_reps = 3         # C++ timing repetitions of the S-Edge networks (best of, process CPU time)

# %%
from sedge.pipeline.parameters import check_namespace
check_namespace(globals(), "09_comparison")

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
import numpy as np
import pandas as pd
import torch

from sedge.report.plots import book_style, legend_below, panels, plain_log_ticks
from sedge.pipeline.compare import collect
from sedge.deploy.cpp import CppModel, best_cpu_seconds, build_shared, generate_cpp
from sedge.deploy.export import export_dict
from sedge.report.pareto import pareto_mask
from sedge.training.checkpoints import load_checkpoint

torch.set_num_threads(2)
book_style()
df = collect(profile)
table = df.drop(columns=["checkpoint"]).rename(columns={"macs": "MMACs", "effective macs": "effective MMACs"})
table[["MMACs", "effective MMACs"]] /= 1e6                   # MACs per clip in millions
table.round(2)

# %% [markdown]
# ## Accuracy against parameters and against computation
#
# Per data set; the black line joins the networks no other one beats on both cost and *validation*
# accuracy — chosen on validation, drawn at their test accuracy (measured once).

# %%
families = sorted(df.family.unique())
colours = dict(zip(families, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
tags = list(dict.fromkeys(df.data))
fig, flat = panels(2 * len(tags), ncols=2, height=3.3)
for row, tag in zip((flat[i:i + 2] for i in range(0, len(flat), 2)), tags):
    g = df[df.data == tag].reset_index(drop=True)
    for ax, col, label in ((row[0], "params", "parameters"), (row[1], "effective macs", "MACs per clip (binary MAC = 1/64)")):
        for fam, h in g.groupby("family"):
            trained = h.method == "trained"
            ax.plot(h[col][trained], h["test %"][trained], "o", color=colours[fam], ms=6)
            ax.plot(h[col][~trained], h["test %"][~trained], "x", color=colours[fam], ms=6)
        front = g[pareto_mask(g[col].to_numpy(), g["val %"].to_numpy())].sort_values(col)
        ax.step(front[col], front["test %"], "k-", where="post", lw=0.8)
        ax.set(xscale="log", title=tag, xlabel=label, ylabel="test accuracy %")
        lo, hi = g[col].min(), g[col].max()
        if hi < 3 * lo:                                   # a narrow range: widen it so a tick is in view
            ax.set_xlim(lo / 2, hi * 2)
        plain_log_ticks(ax)
key = ([Line2D([], [], color=colours[f], marker="o", ls="none", label=f) for f in families]
       + [Line2D([], [], color="0.3", marker=m, ls="none", label=k) for k, m in (("trained", "o"), ("compressed", "x"))]
       + [Line2D([], [], color="k", lw=0.8, label="front (chosen on validation)")])
for h in key:
    flat[0].add_line(h)
legend_below(fig, flat, ncol=4)

# %%
fronts = []
for tag in tags:
    g = df[df.data == tag].reset_index(drop=True)
    for col in ("params", "effective macs"):
        for _, r in g[pareto_mask(g[col].to_numpy(), g["val %"].to_numpy())].sort_values(col).iterrows():
            fronts.append({"data": tag, "front": col, "family": r.family, "model": r.model, "method": r.method,
                           "cost": r[col], "val % (selects)": r["val %"], "test %": r["test %"]})
pd.DataFrame(fronts).round(2)

# %% [markdown]
# ## S-Edge against C++ latency
#
# Every S-Edge network of the table exported at step scale 1 and run by the generated C++ (whole-clip
# path, one thread, process CPU time per 1-s clip). The other families have no deployed C++ here, so
# only S-Edge has this axis.

# %%
work = Path(tempfile.mkdtemp(prefix="sedge-compare-"))
lat = []
one = np.random.default_rng(0).uniform(-0.1, 0.1, (1, 16000)).astype(np.float32)   # latency does not depend on content
for i, r in df[df.family == "S-Edge"].reset_index(drop=True).iterrows():
    model, meta = load_checkpoint(r.checkpoint)
    d = export_dict(model, [1] * len(model.layers), norm=tuple(meta["norm"]), classes=meta["classes"])
    cpp = CppModel(build_shared(generate_cpp(d, work / f"m{i}")))
    lat.append({**r.drop("checkpoint").to_dict(), "µs/clip": 1e6 * best_cpu_seconds(lambda: cpp.classify(one), timing_reps)})
lat = pd.DataFrame(lat)
shown = [t for t in tags if len(lat) and (lat.data == t).any()]      # data sets with S-Edge rows
size_marker = dict(zip(["tiny", "s", "m", "l", "full"], "os^Dv"))     # S-Edge keeps its colour; the marker is the size
fig, axes = panels(len(shown), height=3.6) if shown else (None, [])
for ax, tag in zip(axes, shown):
    g = lat[lat.data == tag]
    for m, h in g.groupby("model", sort=False):
        ax.plot(h["µs/clip"], h["test %"], size_marker.get(m, "o"), mfc="none", color=colours["S-Edge"], ms=7,
                label=f"S-Edge {m}")
    front = g[pareto_mask(g["µs/clip"].to_numpy(), g["val %"].to_numpy())].sort_values("µs/clip")
    ax.step(front["µs/clip"], front["test %"], "k-", where="post", lw=0.8, label="front (chosen on validation)")
    ax.set(xscale="log", title=tag, xlabel="C++ µs per 1-s clip", ylabel="test accuracy %")
    plain_log_ticks(ax)
if shown:
    legend_below(fig, axes, ncol=5)
lat[["data", "model", "method", "params", "µs/clip", "val %", "test %"]].round(1)


# %% [markdown]
# ## Next to each paper's own numbers
#
# The papers measured on other data (Speech Commands with 35 words; DCASE 2021 acoustic scenes;
# ESC-10/ESC-50 and others) and at full training budgets, so absolute accuracies do not carry over;
# the relative figures — how much a method removes, and at what cost in accuracy — are what can be
# set side by side.

# %%
def pct(a, b):
    return 100 * (a / b - 1)

claims = []
for tag in tags:
    g = df[df.data == tag]
    se = g[(g.family == "S-Edge") & (g.method == "trained")]
    if len(se):
        big, small = se.loc[se.params.idxmax()], se.loc[se.params.idxmin()]     # each model's own figures
        claims.append({"claim": "S-Edge (quoted): 141 k–8 k parameters at 94.9–90.0 % (GSC, 35 words)", "data": tag,
                       "ours": f"{big.model}: {big.params:,.0f} parameters at {big['test %']:.1f} %; "
                               f"{small.model}: {small.params:,.0f} at {small['test %']:.1f} %"})
    mor = g[g.method == "MOR ≤ 0.5 pp"]
    if len(mor):
        base = se.set_index("model")
        big, small = mor.loc[mor.params.idxmax()], mor.loc[mor.params.idxmin()]
        claims.append({"claim": "MOR within 0.5 pp (quoted): −36.1 % (largest) / −5.8 % (smallest), no retraining", "data": tag,
                       "ours": f"{pct(big.params, base.params[big.model]):.1f} % ({big.model}) / "
                               f"{pct(small.params, base.params[small.model]):.1f} % ({small.model})"})
    dw = g[g.method == "MOR data-weighted ≤ 0.5 pp"]
    if len(dw):
        base = se.set_index("model")
        big, small = dw.loc[dw.params.idxmax()], dw.loc[dw.params.idxmin()]
        claims.append({"claim": "the same, data-weighted truncation (ours; no retraining, Gramians from training clips)",
                       "data": tag,
                       "ours": f"{pct(big.params, base.params[big.model]):.1f} % ({big.model}) / "
                               f"{pct(small.params, base.params[small.model]):.1f} % ({small.model})"})
    cnn = g[g.family == "DCASE CNN"]
    c2 = cnn[cnn.method.str.startswith("filter pruning C2 ")]
    if len(c2):
        b = cnn[cnn.method == "trained"].iloc[0]
        claims.append({"claim": "filter pruning C2 (quoted): 16→11 filters, −25 % parameters, 48.58 → 47.61 %", "data": tag,
                       "ours": f"{c2.iloc[0].model}, {pct(c2.iloc[0].params, b.params):.1f} % parameters, "
                               f"{b['test %']:.1f} → {c2.iloc[0]['test %']:.1f} %"})
    acd = g[(g.family == "ACDNet") & (g.model == "micro")]
    if {"trained", "XNOR-Net"} <= set(acd.method):
        f, x = acd[acd.method == "trained"].iloc[0], acd[acd.method == "XNOR-Net"].iloc[0]
        claims.append({"claim": "XNOR-Net (quoted): 32× less memory, 58× less computation; close to float for few classes", "data": tag,
                       "ours": f"{f['weight bits'] / x['weight bits']:.0f}× memory, {f['effective macs'] / x['effective macs']:.0f}× "
                               f"effective MACs; XNOR − float = {x['test %'] - f['test %']:+.1f} pp"})
    for fam in ("S-Edge", "transformer"):
        cv = g[(g.family == fam) & g.method.str.startswith("convexity")]
        for _, r in cv.iterrows():
            b = g[(g.family == fam) & (g.method == "trained") & ((g.model == r.model) if fam == "S-Edge" else True)].iloc[0]
            claims.append({"claim": "convexity layer pruning (quoted): large layer reductions at no loss", "data": tag,
                           "ours": f"{fam} {r.model}: {r.method}, {pct(r.params, b.params):.0f} % parameters, "
                                   f"{b['test %']:.1f} → {r['test %']:.1f} %"})
pd.set_option("display.max_colwidth", 200)
pd.DataFrame(claims)

# %% [markdown]
# ## What carries over
#
# Read with the tables above (their numbers are recomputed with every build). What can carry over
# are the *mechanisms*: whether model order reduction removes states within the validation budget,
# whether similar filters exist and can be removed and recovered by fine-tuning, the memory and
# effective-computation factors of binarisation under its cost model, and where in a stack the
# convexity peaks (for many stacks it rises to the last layer, and then the method removes nothing).
# Absolute accuracies do not carry over: the budgets here are CPU-minutes per network, under which
# the networks learn at very different speeds — compare the trained rows of each family — so the
# cross-family fronts say which family learns fastest on two cores, not which wins when trained to
# convergence as in the papers. The same holds for the XNOR gap across class counts: it tests the
# paper's claim only where the float network is well above chance. The C++ latencies are best of a
# few runs on a shared machine; rows of the same model and parameter count are the same network,
# and their spread shows the timing noise.
