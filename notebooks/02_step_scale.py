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
# # Step scale and interpretability
#
# After training, layer ℓ can run at a lower rate: it decimates its input by s_ℓ/s_{ℓ−1} and scales
# its Δ by s_ℓ. Under zero-order hold this is exact for a held input, so accuracy degrades
# only through aliasing and information loss, while MACs fall roughly by the step scale. This chapter
# sweeps step-scale lists on the trained models of the training chapter, tabulates the 16/8/4 kHz
# case, and looks inside the layers: their eigenvalues and transfer functions.

# %% tags=["parameters"]
run_root = "runs/ci"            # the training chapter's run folder
datasets = {"synthetic": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10"}  # dataset tag → data spec
models = ["tiny"]               # trained models to sweep, per dataset
max_eval_clips = 32             # validation and test clips scored per configuration (None: all)
no_rzoh_runs = {}               # data tag → {model: [run with RZOH, run with --no-rzoh]}, same recipe otherwise: the RZOH ablation

# %%
from sedge.pipeline.parameters import check_namespace, for_data
check_namespace(globals(), "02_step_scale")

import numpy as np
import matplotlib.pyplot as plt
import pandas as pd
import torch

from sedge.report.plots import book_style, label_points, legend_below, panels, plain_log_ticks
from sedge.models.cost import cost_report
from sedge.data import available_datasets, load_data
from sedge.pipeline.experiments import load_run, run_dir_for
from sedge.training.evaluation import accuracy, predict
from sedge.models.interpret import step_scale_candidates, frequency_response

torch.set_num_threads(2)
book_style()


# %%
def clips(split, norm):
    x, y = split.tensors(*norm)
    return (x[:max_eval_clips], y[:max_eval_clips]) if max_eval_clips else (x, y)

def step_scale_sweep(model, data, norm) -> list[dict]:
    """Validation and test accuracy and MACs of ``model`` at every step-scale candidate."""
    xv, yv = clips(data.val, norm)
    xt, yt = clips(data.test, norm)
    out = []
    for s in step_scale_candidates(len(model.layers)):
        model.set_step_scale(s)
        out.append({"step scale": "-".join(map(str, s)), "s": tuple(s),
                    "kMAC/sample": cost_report(model)["macs_per_sample"] / 1e3,
                    "val acc %": 100 * accuracy(predict(model, xv), yv),
                    "test acc %": 100 * accuracy(predict(model, xt), yt)})
    model.set_step_scale([1] * len(model.layers))
    return out

rows = []
models_loaded, data_loaded = {}, {}
for tag, spec in available_datasets(datasets).items():
    data_loaded[tag] = data = load_data(spec)
    for m in for_data(models, tag, "models"):
        model, meta, _ = load_run(run_dir_for(run_root, tag, m))
        models_loaded[tag, m] = model
        rows += [{"data": tag, "model": m, **r} for r in step_scale_sweep(model, data, meta["norm"])]
sweep = pd.DataFrame(rows)
sweep.drop(columns="s").round(2)

# %% [markdown]
# ## Accuracy against MACs
#
# Each point is one step-scale list (written 1-9-54: the cumulative factor of each layer); the
# uniform lists 1-1-1, 2-2-2 and 4-4-4 are the 16, 8 and 4 kHz models. Labelled: the uniform lists
# and the lists no other one beats on both MACs and validation accuracy.

# %%
from sedge.report.pareto import pareto_mask
keys = sorted(models_loaded)
fig, axes = panels(len(keys), ncols=2, height=3.8)
for ax, (tag, m) in zip(axes, keys):
    sub = sweep[(sweep.data == tag) & (sweep.model == m)]
    ax.plot(sub["kMAC/sample"], sub["val acc %"], "o", color="C0", label="validation")
    ax.plot(sub["kMAC/sample"], sub["test acc %"], "x", color="C1", label="test")
    ax.set(xscale="log", title=f"{m} on {tag}", xlabel="kMAC per input sample", ylabel="accuracy %")
    ax.margins(x=0.15)
    plain_log_ticks(ax)
legend_below(fig, axes, ncol=2)
for ax, (tag, m) in zip(axes, keys):       # label the uniform lists and the validation front
    sub = sweep[(sweep.data == tag) & (sweep.model == m)]
    front = pareto_mask(sub["kMAC/sample"].to_numpy(), sub["val acc %"].to_numpy())
    named = sub[front | sub["s"].apply(lambda s: len(set(s)) == 1).to_numpy()]
    label_points(ax, named["kMAC/sample"], named["val acc %"], named["step scale"])

# %% [markdown]
# ## 16, 8 and 4 kHz

# %%
rate = {1: "16 kHz", 2: "8 kHz", 4: "4 kHz"}
uni = sweep[sweep["s"].apply(lambda s: len(set(s)) == 1 and s[0] in rate)].copy()
uni["rate"] = uni["s"].apply(lambda s: rate[s[0]])
rates = pd.DataFrame([{"data": tag, "model": m,
                       **{f"{r} {split} %": g.loc[g.rate == r, f"{split} acc %"].iloc[0]
                          for r in rate.values() for split in ("val", "test")}}
                      for (tag, m), g in uni.groupby(["data", "model"], sort=False)])
rates

# %% [markdown]
# ## The random zero-order hold on and off
#
# Training with RZOH (the paper's recipe) draws a random step scale for each batch, so that
# the model sees held, decimated inputs. The ablation: two runs of one recipe, with RZOH and with
# `sedge train --no-rzoh` (one seed each), scored at the same step-scale lists. *drop* is the loss
# against the run's own 16 kHz accuracy; both are on validation (nothing is chosen here, the test
# columns are for completeness).

# %%
ablation = {"with": [], "without": []}
for tag, runs in no_rzoh_runs.items():
    for m, folders in runs.items():
        for which, folder in zip(("with", "without"), folders):
            run, meta, _ = load_run(folder)
            ablation[which] += [{"data": tag, "model": f"{m} ({meta['train_cfg']['epochs']} epochs)", **r}
                                for r in step_scale_sweep(run, data_loaded[tag], meta["norm"])]
if ablation["with"]:
    cols = ["data", "model", "step scale", "val acc %", "test acc %"]
    ablation = pd.DataFrame(ablation["with"])[cols].merge(
        pd.DataFrame(ablation["without"])[cols], on=["data", "model", "step scale"], suffixes=("", " no RZOH")).rename(
        columns={"val acc %": "RZOH val %", "test acc %": "RZOH test %",
                 "val acc % no RZOH": "no RZOH val %", "test acc % no RZOH": "no RZOH test %"})
    for col in ("RZOH", "no RZOH"):
        first = ablation.groupby(["data", "model"])[f"{col} val %"].transform("first")   # the 16 kHz list comes first
        ablation[f"{col} drop pp"] = first - ablation[f"{col} val %"]
    display(ablation[["data", "model", "step scale", "RZOH val %", "no RZOH val %", "RZOH drop pp", "no RZOH drop pp",
                      "RZOH test %", "no RZOH test %"]])
else:
    print("no run without RZOH in this profile (parameter no_rzoh_runs)")

# %% [markdown]
# ## Eigenvalue maps
#
# The discrete poles Λ̄ = exp(ΛΔ) of every layer inside the unit circle: poles near 1 remember long,
# poles with large angle oscillate fast. The angle of a pole is its resonance frequency
# f = arg(Λ̄)/(2π) · f_s, with f_s = 16 kHz at step scale 1.

# %%
for (tag, m), model in sorted(models_loaded.items()):
    L = len(model.layers)
    fig, axes = panels(L, height=3.2)
    t = np.linspace(0, 2 * np.pi, 200)
    for i, (ax, layer) in enumerate(zip(axes, model.layers)):
        with torch.no_grad():
            lam_bar = layer.discretise()[0].numpy()
        ax.plot(np.cos(t), np.sin(t), "k-", lw=0.5)
        ax.plot(lam_bar.real, lam_bar.imag, ".", ms=5)
        ax.set(title=f"layer {i + 1} (P={layer.P})", aspect="equal", xlim=(-1.1, 1.1), ylim=(-1.1, 1.1))
    fig.suptitle(f"{m} on {tag}: poles Λ̄")
    fig.tight_layout()

# %% [markdown]
# ## Layer transfer functions
#
# Each layer without its nonlinearity and skip is a linear system; its frequency response from input
# channel j to output i is G_ij(e^{iω}) = Σ_p C_ip B̄_pj / (e^{iω} − Λ̄_p) · e^{iω}. The curves show
# |G| for the first input channel to a few outputs, in Hz at the layer's input rate (16 kHz at step
# scale 1): the first layer is a learned filter bank on the raw waveform.

# %%
for (tag, m), model in sorted(models_loaded.items()):
    L = len(model.layers)
    fig, axes = panels(L, height=3)
    for i, (ax, layer) in enumerate(zip(axes, model.layers)):
        f, G = frequency_response(layer, n=512)
        for o in range(min(6, G.shape[1])):
            ax.semilogy(f, np.abs(G[:, o, 0]) + 1e-12, lw=0.8)
        ax.set(title=f"layer {i + 1}", xlabel="Hz", ylabel="|G| (gain)")
    fig.suptitle(f"{m} on {tag}: |G| from input channel 0")
    fig.tight_layout()
