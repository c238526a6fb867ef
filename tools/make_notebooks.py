"""Write the notebook sources in notebooks/ from the cell lists below (no outputs stored).

Run ``python tools/make_notebooks.py`` after editing; the .ipynb files are what papermill runs.
"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "notebooks"


def nb(cells):
    out = []
    for i, (kind, src) in enumerate(cells):
        tags = []
        if kind == "params":
            kind, tags = "code", ["parameters"]
        c = {"cell_type": kind, "id": f"cell-{i:02d}", "metadata": {"tags": tags} if tags else {},
             "source": src.strip("\n")}
        if kind == "code":
            c.update(execution_count=None, outputs=[])
        out.append(c)
    return {"cells": out, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                                       "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}


TRAINING = [
("markdown", """
# Training the S-Edge model zoo

This chapter trains S-Edge models with the paper's recipe (SPEC §4: AdamW in two groups, cosine
schedule with warm-up, decoder orthogonality penalty, checkpoint chosen on validation accuracy,
test accuracy computed once) on the synthetic keyword set and on real Speech Commands clips, and
sets their sizes next to the paper's. Which models, data and how many steps come from the
parameter profile (`notebooks/profiles.yml`); the profile used for this page is printed below.
"""),
("params", """
run_root = "runs/ci"
models = ["tiny", "s"]
datasets = {"synthetic": {"spec": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10", "epochs": 1, "max_steps": 2},
            "mini": {"spec": "mini", "epochs": 1, "max_steps": 2}}
lr = 0.005
batch_size = 8
warmup_steps = 2
"""),
("code", """
import json
import matplotlib.pyplot as plt
import pandas as pd
import torch

from sedge.config import PAPER_PARAMS, ZOO, model_config
from sedge.cost import cost_report
from sedge.data import load_data
from sedge.experiments import load_run, trained_run
from sedge.model import build_model
from sedge.paths import MINI_SPEECH_COMMANDS

torch.set_num_threads(2)
print(json.dumps(dict(run_root=run_root, models=models, datasets=datasets, lr=lr, batch_size=batch_size,
                      warmup_steps=warmup_steps), indent=1))
"""),
("markdown", """
## Model sizes against the paper

Every zoo model is built with 35 outputs and counted with the paper's formula (SPEC §6); the count
must equal the paper's exactly. The *deployed* count is what the exported model stores (Λ̄, B̄ with
BatchNorm folded in, b̄, C, Re c, skip, decoder). MACs per input sample use the paper convention at
step scale 1; the last column is the authors' C++ convention.
"""),
("code", """
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
"""),
("markdown", """
## Training

Each (dataset, model) pair is trained once into `run_root`; re-executing the notebook reuses a
finished run with the same configuration. The real-speech case uses the 8-word excerpt of Google
Speech Commands provided beside the project (Warden 2018, CC BY 4.0), split 80/10/10 by a stable
hash of the speaker id; it is skipped when that folder is absent.
"""),
("code", """
available = {}
for tag, ds in datasets.items():
    if ds["spec"].startswith("mini") and not MINI_SPEECH_COMMANDS.exists():
        print(f"skipping {tag}: {MINI_SPEECH_COMMANDS} not found")
        continue
    available[tag] = ds
    print(tag, load_data(ds["spec"]).summary(), f"budget: {ds['epochs']} epochs × {ds['max_steps'] or 'all'} batches")

runs = {}
for tag, ds in available.items():
    for m in ds.get("models", models):          # a dataset may train fewer models than the list
        runs[tag, m] = trained_run(m, ds["spec"], tag, run_root, epochs=ds["epochs"], lr=lr, batch_size=batch_size,
                                   max_steps=ds["max_steps"], warmup_steps=warmup_steps, progress=False)
"""),
("code", """
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
"""),
("markdown", """
## Learning curves
"""),
("code", """
fig, axes = plt.subplots(1, len(available), figsize=(5.5 * len(available), 3.8), squeeze=False)
for ax, tag in zip(axes[0], available):
    for m in [m for t, m in runs if t == tag]:
        hist = load_run(runs[tag, m]["run_dir"])[2]
        ep = [h["epoch"] for h in hist]
        ax.plot(ep, [100 * h["val_acc"] for h in hist], "-o", label=f"{m} validation")
        ax.plot(ep, [100 * h["train_acc"] for h in hist], "--", label=f"{m} train")
    ax.set(title=tag, xlabel="epoch", ylabel="accuracy %")
    ax.legend(fontsize=8)
fig.tight_layout()
"""),
("markdown", """
## Accuracy per model size

Test accuracy of the validation-selected checkpoint against MACs per clip, beside the paper's
Speech Commands v0.02 results (35 words, 40 epochs; SPEC §11) for orientation — the tasks and
budgets differ, so only the ordering is comparable.
"""),
("code", """
paper_acc = {"full": 94.9, "tiny": 90.0}
fig, ax = plt.subplots(figsize=(6, 4))
for tag in available:
    sub = results[results.data == tag]
    ax.plot(sub["MMAC/clip"], sub["test acc %"], "o-", label=f"ours: {tag}")
    for _, r in sub.iterrows():
        ax.annotate(r.model, (r["MMAC/clip"], r["test acc %"]), textcoords="offset points", xytext=(4, 4))
ax.plot([zoo_table.loc[m, "MMAC per 1-s clip"] for m in paper_acc], list(paper_acc.values()), "k^",
        label="paper (GSC, 35 words)")
ax.set(xscale="log", xlabel="MMAC per 1-s clip", ylabel="test accuracy %")
ax.legend()
fig.tight_layout()
"""),
]

STEP = [
("markdown", """
# Step scale and interpretability

After training, layer ℓ can run at a lower rate: it decimates its input by s_ℓ/s_{ℓ−1} and scales
its Δ by s_ℓ (SPEC §2). Under zero-order hold this is exact for a held input, so accuracy degrades
only through aliasing and information loss, while MACs fall roughly by the step scale. This chapter
sweeps step-scale lists on the trained models of the training chapter, tabulates the 16/8/4 kHz
case, and looks inside the layers: their eigenvalues and transfer functions.
"""),
("params", """
run_root = "runs/ci"
models = ["tiny"]
datasets = {"synthetic": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10"}
max_eval_clips = 32
"""),
("code", """
import numpy as np
import matplotlib.pyplot as plt
import pandas as pd
import torch

from sedge.cost import cost_report
from sedge.data import load_data
from sedge.experiments import load_run, run_dir_for
from sedge.paths import MINI_SPEECH_COMMANDS
from sedge.train import accuracy, predict
from sedge.interpret import step_scale_candidates, frequency_response

torch.set_num_threads(2)
"""),
("code", """
def clips(split, norm):
    x, y = split.tensors(*norm)
    return (x[:max_eval_clips], y[:max_eval_clips]) if max_eval_clips else (x, y)

rows = []
models_loaded = {}
for tag, spec in datasets.items():
    if spec.startswith("mini") and not MINI_SPEECH_COMMANDS.exists():
        print(f"skipping {tag}: {MINI_SPEECH_COMMANDS} not found")
        continue
    data = load_data(spec)
    for m in models:
        model, meta, _ = load_run(run_dir_for(run_root, tag, m))
        models_loaded[tag, m] = model
        xv, yv = clips(data.val, meta["norm"])
        xt, yt = clips(data.test, meta["norm"])
        for s in step_scale_candidates(len(model.layers)):
            model.set_step_scale(s)
            c = cost_report(model)
            rows.append({"data": tag, "model": m, "step scale": str(s), "s": tuple(s),
                         "kMAC/sample": c["macs_per_sample"] / 1e3,
                         "val acc %": 100 * accuracy(predict(model, xv), yv),
                         "test acc %": 100 * accuracy(predict(model, xt), yt)})
        model.set_step_scale([1] * len(model.layers))
sweep = pd.DataFrame(rows)
sweep.drop(columns="s").round(2)
"""),
("markdown", """
## Accuracy against MACs

Each point is one step-scale list; the uniform lists [1]·L, [2]·L and [4]·L are the 16, 8 and 4 kHz
models.
"""),
("code", """
keys = sorted(models_loaded)
fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.8), squeeze=False)
for ax, (tag, m) in zip(axes[0], keys):
    sub = sweep[(sweep.data == tag) & (sweep.model == m)]
    ax.plot(sub["kMAC/sample"], sub["val acc %"], "o", label="validation")
    ax.plot(sub["kMAC/sample"], sub["test acc %"], "x", label="test")
    for _, r in sub.iterrows():
        ax.annotate(r["step scale"], (r["kMAC/sample"], r["val acc %"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set(xscale="log", title=f"{m} on {tag}", xlabel="kMAC per input sample", ylabel="accuracy %")
    ax.legend(fontsize=8)
fig.tight_layout()
"""),
("markdown", """
## 16, 8 and 4 kHz
"""),
("code", """
rate = {1: "16 kHz", 2: "8 kHz", 4: "4 kHz"}
uni = sweep[sweep["s"].apply(lambda s: len(set(s)) == 1 and s[0] in rate)].copy()
uni["rate"] = uni["s"].apply(lambda s: rate[s[0]])
uni.pivot_table(index=["data", "model"], columns="rate", values="test acc %")[["16 kHz", "8 kHz", "4 kHz"]].round(2)
"""),
("markdown", """
## Eigenvalue maps

The discrete poles Λ̄ = exp(ΛΔ) of every layer inside the unit circle: poles near 1 remember long,
poles with large angle oscillate fast. The angle of a pole is its resonance frequency
f = arg(Λ̄)/(2π) · f_s, with f_s = 16 kHz at step scale 1.
"""),
("code", """
for (tag, m), model in sorted(models_loaded.items()):
    L = len(model.layers)
    fig, axes = plt.subplots(1, L, figsize=(3.2 * L, 3.2), squeeze=False)
    t = np.linspace(0, 2 * np.pi, 200)
    for i, (ax, layer) in enumerate(zip(axes[0], model.layers)):
        with torch.no_grad():
            lam_bar = layer.discretise()[0].numpy()
        ax.plot(np.cos(t), np.sin(t), "k-", lw=0.5)
        ax.plot(lam_bar.real, lam_bar.imag, ".", ms=5)
        ax.set(title=f"layer {i + 1} (P={layer.P})", aspect="equal", xlim=(-1.1, 1.1), ylim=(-1.1, 1.1))
    fig.suptitle(f"{m} on {tag}: poles Λ̄")
    fig.tight_layout()
"""),
("markdown", """
## Layer transfer functions

Each layer without its nonlinearity and skip is a linear system; its frequency response from input
channel j to output i is G_ij(e^{iω}) = Σ_p C_ip B̄_pj / (e^{iω} − Λ̄_p) · e^{iω}. The curves show
|G| for the first input channel to a few outputs, in Hz at the layer's input rate (16 kHz at step
scale 1): the first layer is a learned filter bank on the raw waveform.
"""),
("code", """
for (tag, m), model in sorted(models_loaded.items()):
    L = len(model.layers)
    fig, axes = plt.subplots(1, L, figsize=(3.6 * L, 3), squeeze=False)
    for i, (ax, layer) in enumerate(zip(axes[0], model.layers)):
        f, G = frequency_response(layer, n=512)
        for o in range(min(6, G.shape[1])):
            ax.semilogy(f, np.abs(G[:, o, 0]) + 1e-12, lw=0.8)
        ax.set(title=f"layer {i + 1}", xlabel="Hz")
    fig.suptitle(f"{m} on {tag}: |G| from input channel 0")
    fig.tight_layout()
"""),
]


TRUNCATION = [
("markdown", """
# Balanced truncation of S-Edge layers

Every S-Edge layer is, between its BatchNorm and its LeakyReLU, a linear time-invariant system.
With the BatchNorm folded into B and b and the bias as a constant extra input, its *sample-time
continuous* form is (SPEC §7)

$$\\dot x = A x + B_c \\begin{bmatrix} u \\\\ 1 \\end{bmatrix},\\qquad y = \\operatorname{Re}(C x),
\\qquad A = \\operatorname{diag}(\\Delta \\odot \\Lambda),\\quad B_c = \\Delta \\odot [B \\mid b],$$

whose zero-order hold at unit sample time is exactly the layer's recurrence — so the reduction
does not depend on the step scale. Writing x = x_r + i x_i gives a real system of order 2P.
Balanced truncation (python-control `balred`, continuous time, slycot) changes coordinates so that
the controllability and observability Gramians are equal and diagonal,
W_c = W_o = diag(σ₁ ≥ σ₂ ≥ …), the **Hankel singular values**, and keeps the first k states. The
reduced system is stable and obeys the a-priori bound

$$\\lVert G - G_k \\rVert_\\infty \\le 2 \\sum_{i > k} \\sigma_i .$$

The reduced A is diagonalised again so the result is a plain S-Edge layer: one state per conjugate
pair with its C column doubled, real eigenvalues counted honestly (two equal real poles share one
complex state). This chapter looks at what that does to the trained layers of the training chapter.
"""),
("params", """
run_root = "runs/ci"
datasets = {"synthetic": {"spec": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10", "models": ["tiny"]}}
fractions = [0.5, 1.0]          # kept fraction of each layer's states in the accuracy sweep
max_val = 16                    # validation clips for the sweep (null: all, shared with the pruning search)
"""),
("code", """
import json
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from sedge.data import load_data
from sedge.experiments import load_run, memo_path, run_dir_for
from sedge.interpret import frequency_response
from sedge.paths import MINI_SPEECH_COMMANDS, atomic_write_json
from sedge.pruning import layer_sensitivity
from sedge.reduction import hankel_singular_values, layer_system, reduce_layer, truncation_errors

torch.set_num_threads(2)
print(json.dumps(dict(run_root=run_root, datasets=datasets, fractions=fractions, max_val=max_val), indent=1))
loaded = {}
for tag, ds in datasets.items():
    if ds["spec"].startswith("mini") and not MINI_SPEECH_COMMANDS.exists():
        print(f"skipping {tag}: {MINI_SPEECH_COMMANDS} not found")
        continue
    for m in ds["models"]:
        run_dir = run_dir_for(run_root, tag, m)
        loaded[tag, m] = (run_dir, *load_run(run_dir)[:2])
"""),
("markdown", """
## Hankel singular value decay

σ_i/σ₁ per layer (the real realisation has 2P values). A fast decay means a few balanced states
carry the layer's input–output behaviour; the table gives how many real states hold 99 % and
99.9 % of Σσ.
"""),
("code", """
rows = []
for (tag, m), (run_dir, model, meta) in loaded.items():
    L = len(model.layers)
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for i, layer in enumerate(model.layers):
        hsv = hankel_singular_values(layer_system(layer))
        ax.semilogy(np.arange(1, len(hsv) + 1), hsv / hsv[0], ".-", ms=3, label=f"layer {i + 1} (2P={len(hsv)})")
        share = np.cumsum(hsv) / hsv.sum()
        rows.append({"data": tag, "model": m, "layer": i + 1, "2P": len(hsv),
                     "states for 99 % Σσ": int(np.searchsorted(share, 0.99) + 1),
                     "states for 99.9 % Σσ": int(np.searchsorted(share, 0.999) + 1)})
    ax.set(title=f"{m} on {tag}", xlabel="index i", ylabel="σ_i / σ_1")
    ax.legend(fontsize=7)
    fig.tight_layout()
pd.DataFrame(rows)
"""),
("markdown", """
## The error bound against the measured error

For every layer, ‖G − G_k‖∞ measured on a dense frequency grid (max over ω of the largest singular
value of the difference) next to 2·Σ_{i>k} σ_i. The measured error must stay under the bound
(the tests check this on constructed layers; here it is checked on the trained ones).
"""),
("code", """
err_rows = []
for (tag, m), (run_dir, model, meta) in loaded.items():
    L = len(model.layers)
    fig, axes = plt.subplots(1, L, figsize=(3.2 * L, 3), squeeze=False)
    for i, (ax, layer) in enumerate(zip(axes[0], model.layers)):
        orders = sorted({max(1, int(round(f * 2 * layer.P))) for f in np.linspace(0.05, 1, 12)})
        errs = truncation_errors(layer, orders)
        ax.semilogy([e["order"] for e in errs], [e["bound"] + 1e-16 for e in errs], "k--", label="2Σσ bound")
        ax.semilogy([e["order"] for e in errs], [e["measured"] + 1e-16 for e in errs], "o-", ms=3, label="measured")
        ax.set(title=f"layer {i + 1}", xlabel="kept real order k")
        err_rows += [{"data": tag, "model": m, "layer": i + 1, **e} for e in errs]
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{m} on {tag}: ‖G − G_k‖∞")
    fig.tight_layout()
errors = pd.DataFrame(err_rows)
violations = errors[errors.measured > errors.bound * (1 + 1e-6) + 1e-9]
print(f"{len(errors)} truncations, {len(violations)} above the bound")
assert violations.empty
"""),
("markdown", """
## Accuracy against kept order, one layer at a time

Validation accuracy when a single layer is truncated to ⌈f·P⌉ complex states and every other layer
is left alone. This is the layer's individual sensitivity; the iterative pruning of the next chapter
combines layers greedily. The evaluations are stored with the run and reused by that search.
"""),
("code", """
sens_rows = []
for (tag, m), (run_dir, model, meta) in loaded.items():
    data = load_data(datasets[tag]["spec"]).restrict_to(meta["classes"])
    xv, yv = data.val.tensors(*meta["norm"])
    if max_val:
        xv, yv = xv[:max_val], yv[:max_val]
    path = memo_path(run_dir, "truncate", max_val)
    memo = json.loads(path.read_text()) if path.exists() else {}
    rows = layer_sensitivity(model, xv, yv, fractions, memo=memo, progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, memo)
    sens_rows += [{"data": tag, "model": m, **r} for r in rows]
sens = pd.DataFrame(sens_rows)
keys = list(loaded)
fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
for ax, (tag, m) in zip(axes[0], keys):
    sub = sens[(sens.data == tag) & (sens.model == m)]
    for layer, g in sub.groupby("layer"):
        ax.plot(g["fraction"], g["val_acc"], "o-", ms=3, label=f"layer {layer + 1}")
    full = sub[sub.fraction == 1.0]["val_acc"]
    if len(full):
        ax.axhline(full.iloc[0] - 0.5, color="k", ls=":", lw=0.8, label="unpruned − 0.5 pp")
    ax.set(title=f"{m} on {tag}", xlabel="kept fraction of states", ylabel="validation accuracy %")
    ax.legend(fontsize=7)
fig.tight_layout()
"""),
("markdown", """
## Poles before and after

The discrete poles Λ̄ of each layer (dots) and of the same layer truncated to half its real order
(crosses). Balanced truncation keeps the poles that matter for the input–output map — often not
simply the slowest ones.
"""),
("code", """
t = np.linspace(0, 2 * np.pi, 200)
for (tag, m), (run_dir, model, meta) in loaded.items():
    L = len(model.layers)
    fig, axes = plt.subplots(1, L, figsize=(3.2 * L, 3.2), squeeze=False)
    for i, (ax, layer) in enumerate(zip(axes[0], model.layers)):
        half = reduce_layer(layer, max(1, layer.P))
        with torch.no_grad():
            before, after = layer.discretise()[0].numpy(), half.discretise()[0].numpy()
        ax.plot(np.cos(t), np.sin(t), "k-", lw=0.5)
        ax.plot(before.real, before.imag, ".", ms=5, label=f"P={layer.P}")
        ax.plot(after.real, after.imag, "x", ms=5, label=f"truncated, P={half.P}")
        ax.set(title=f"layer {i + 1}", aspect="equal", xlim=(-1.1, 1.1), ylim=(-1.1, 1.1))
        ax.legend(fontsize=6, loc="lower left")
    fig.suptitle(f"{m} on {tag}: poles Λ̄ before and after truncation to half order")
    fig.tight_layout()
"""),
("markdown", """
## What truncation does to a transfer function

The first layer filters the raw waveform. Its gain from the input to a few output channels, at full
order and truncated to 1/2 and 1/4 of its real order: truncation keeps the bands carrying most
Hankel energy and flattens the rest.
"""),
("code", """
for (tag, m), (run_dir, model, meta) in loaded.items():
    layer = model.layers[0]
    versions = {"full": layer, "1/2": reduce_layer(layer, max(1, layer.P)), "1/4": reduce_layer(layer, max(1, layer.P // 2))}
    fig, axes = plt.subplots(1, 3, figsize=(11, 3), sharey=True)
    for o, ax in enumerate(axes):
        for label, lay in versions.items():
            f, G = frequency_response(lay, n=512)
            ax.semilogy(f, np.abs(G[:, o, 0]) + 1e-12, lw=0.9, label=f"{label} (P={lay.P})")
        ax.set(title=f"output {o}", xlabel="Hz")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{m} on {tag}: layer 1 |G|")
    fig.tight_layout()
"""),
]

PRUNING = [
("markdown", """
# Iterative pruning under an accuracy budget

The EUSIPCO 2025 paper prunes S-Edge models layer by layer with balanced truncation and no
retraining, allowing 0.5 accuracy points of loss. Our search (SPEC §8, `sedge.pruning.prune`):
every round tries, for every layer that is not frozen, its *original* balanced realisation
truncated by one move (⌈step_fraction·P_ℓ⌉ complex states); all candidates are scored on the
validation split; the one with the best saving per accuracy point lost is accepted while the drop
from the unpruned model stays within the budget; a layer whose next move breaks the budget is
frozen. The test split is evaluated once, for the final model. The same stage runs from the
command line: `sedge prune --checkpoint RUN/best.pt --data SPEC --budget 0.5 --out DIR`.
"""),
("params", """
run_root = "runs/ci"
datasets = {"synthetic": {"spec": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10", "models": ["tiny"]}}
budgets = [0.5, 2.0]            # accuracy points; 0.5 is the paper's
step_fraction = 0.25            # move size: ⌈step_fraction · P_ℓ⌉ complex states (at least 1)
max_val = 16                    # validation clips for the search (null: all)
finetune = {"budgets": [2.0], "epochs": 1, "max_steps": 2, "lr": 0.001, "batch_size": 8}
max_step_scales = 3             # step-scale lists tried on the pruned model (null: all candidates)
"""),
("code", """
import json
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from sedge.config import PAPER_PARAMS
from sedge.cost import cost_report
from sedge.data import load_data
from sedge.experiments import finetuned_run, load_run, pruned_run, run_dir_for
from sedge.interpret import step_scale_candidates
from sedge.pareto import pareto_mask
from sedge.paths import MINI_SPEECH_COMMANDS
from sedge.train import accuracy, load_checkpoint, predict

torch.set_num_threads(2)
print(json.dumps(dict(run_root=run_root, datasets=datasets, budgets=budgets, step_fraction=step_fraction,
                      max_val=max_val, finetune=finetune, max_step_scales=max_step_scales), indent=1))
available = {t: d for t, d in datasets.items() if not (d["spec"].startswith("mini") and not MINI_SPEECH_COMMANDS.exists())}
searches = {}
for tag, ds in available.items():
    for m in ds["models"]:
        for b in sorted(budgets):                      # small budgets first: larger ones reuse their evaluations
            searches[tag, m, b] = pruned_run(run_dir_for(run_root, tag, m), ds["spec"], budget_pp=b,
                                             step_fraction=step_fraction, max_val=max_val, progress=False)
rows = []
for (tag, m, b), s in searches.items():
    rows.append({"data": tag, "model": m, "budget pp": b, "states": s["states_after"],
                 "params": s["params_after"], "Δparams %": 100 * (s["params_after"] / s["params_before"] - 1),
                 "ΔMACs %": 100 * (s["macs_after"] / s["macs_before"] - 1),
                 "val before": s["val_acc_before"], "val after": s["val_acc_after"],
                 "test before": s["test_acc_before"], "test after": s["test_acc_after"],
                 "search s": s["search_seconds"], "configs evaluated": s["configurations_evaluated"],
                 "val clips": s["n_val"]})
table = pd.DataFrame(rows)
table.round(2)
"""),
("markdown", """
## Trajectories

Parameters (paper formula) against validation accuracy along the accepted steps of the search with
the largest budget; each smaller budget stops earlier (its final point is marked). The grey band is
the 0.5-point budget below the unpruned model.
"""),
("code", """
keys = sorted({(t, m) for t, m, _ in searches})
fig, axes = plt.subplots(1, len(keys), figsize=(4.3 * len(keys), 3.5), squeeze=False)
for ax, (tag, m) in zip(axes[0], keys):
    big = searches[tag, m, max(budgets)]
    steps = pd.DataFrame(big["steps"])
    ax.plot(steps["params"], steps["val_acc"], "-", color="0.6", lw=0.8)
    for b in sorted(budgets):
        s = searches[tag, m, b]
        ax.plot(s["params_after"], s["val_acc_after"], "o", label=f"{b} pp: val")
        ax.plot(s["params_after"], s["test_acc_after"], "x", color=ax.lines[-1].get_color(), label=f"{b} pp: test")
    ax.axhspan(big["val_acc_before"] - 0.5, big["val_acc_before"], color="0.9")
    ax.plot(big["params_before"], big["test_acc_before"], "k+", ms=10, label="unpruned test")
    ax.set(title=f"{m} on {tag}", xlabel="parameters (paper formula)", ylabel="accuracy %")
    ax.legend(fontsize=6)
fig.tight_layout()
"""),
("markdown", """
## At the paper's budget, next to the paper

The paper reports −36.1 % parameters for its largest model and −5.8 % for its smallest at ≤ 0.5 pp
loss on Speech Commands (35 words, fully trained models). Ours are briefly trained models on
other data, so the comparison is one of magnitude: a less converged model can have more or less
redundancy to give away. The validation accuracy granularity is 100/n_val points per clip.
"""),
("code", """
paper = {"full": -36.1, "tiny": -5.8}
at = table[table["budget pp"] == 0.5].copy() if 0.5 in budgets else table.copy()
at["paper Δparams %"] = at["model"].map(paper)
at["val drop pp"] = at["val before"] - at["val after"]
at["test drop pp"] = at["test before"] - at["test after"]
at[["data", "model", "budget pp", "states", "params", "Δparams %", "ΔMACs %", "val drop pp", "test drop pp",
    "paper Δparams %", "search s", "val clips"]].round(2)
"""),
("markdown", """
## Budget sweep
"""),
("code", """
fig, ax = plt.subplots(figsize=(5.5, 3.6))
for (tag, m), g in table.groupby(["data", "model"]):
    ax.plot(g["budget pp"], -g["Δparams %"], "o-", label=f"{m} on {tag}")
ax.set(xscale="log", xlabel="budget (validation accuracy points)", ylabel="parameters removed %")
ax.legend(fontsize=7)
fig.tight_layout()
table.pivot_table(index=["data", "model"], columns="budget pp", values="Δparams %").round(1)
"""),
("markdown", """
## With a little retraining

A separate, clearly labelled column: the pruned model is fine-tuned briefly (the training recipe at
a small learning rate, BatchNorm frozen because reduced layers carry it folded into B and b; the
pruned model itself competes as epoch 0; selection on validation, test once). The question is how
much further the budget goes when some retraining is allowed: the last column says whether the
fine-tuned model is back within 0.5 points of the unpruned one on validation.
"""),
("code", """
ft_rows = []
for (tag, m, b), s in searches.items():
    if b not in finetune["budgets"]:
        continue
    out = run_dir_for(run_root, tag, m) / "prune" / (s["prune_dir"].split("/")[-1] + "_finetune")
    f = finetuned_run(s["prune_dir"] + "/pruned.pt", available[tag]["spec"], out, epochs=finetune["epochs"],
                      max_steps=finetune["max_steps"], lr=finetune["lr"], batch_size=finetune["batch_size"],
                      progress=False)
    ft_rows.append({"data": tag, "model": m, "budget pp": b, "Δparams %": 100 * (s["params_after"] / s["params_before"] - 1),
                    "val unpruned": s["val_acc_before"], "val pruned": s["val_acc_after"],
                    "val fine-tuned": 100 * f["val_acc"], "test unpruned": s["test_acc_before"],
                    "test pruned": s["test_acc_after"], "test fine-tuned": 100 * f["test_acc"],
                    "best epoch": f["best_epoch"],
                    "within 0.5 pp after fine-tuning": 100 * f["val_acc"] >= s["val_acc_before"] - 0.5})
finetuned = pd.DataFrame(ft_rows)
finetuned.round(2)
"""),
("markdown", """
## Pruning and step scale together

Prune first (at 0.5 points, or the smallest budget), then sweep step-scale lists on both the
unpruned and the pruned model: accuracy against MACs per input sample. The front is chosen on
validation accuracy; the test accuracy of the front's points is computed once, for those points.
"""),
("code", """
b0 = 0.5 if 0.5 in budgets else min(budgets)
pts = []
for tag, ds in available.items():
    data = load_data(ds["spec"])
    for m in ds["models"]:
        base, meta, _ = load_run(run_dir_for(run_root, tag, m))
        pruned, _ = load_checkpoint(searches[tag, m, b0]["prune_dir"] + "/pruned.pt")
        d = data.restrict_to(meta["classes"])
        xv, yv = d.val.tensors(*meta["norm"])
        if max_val:
            xv, yv = xv[:max_val], yv[:max_val]
        cands = step_scale_candidates(len(base.layers))[:max_step_scales or None]
        for kind, model in (("unpruned", base), (f"pruned {b0} pp", pruned)):
            for sc in cands:
                model.set_step_scale(sc)
                pts.append({"data": tag, "model": m, "kind": kind, "step scale": str(sc), "scale": sc,
                            "kMAC/sample": cost_report(model)["macs_per_sample"] / 1e3,
                            "val acc %": 100 * accuracy(predict(model, xv, batch_size=4), yv)})
            model.set_step_scale([1] * len(model.layers))
front = pd.DataFrame(pts)
front["front"] = False
for (tag, m), g in front.groupby(["data", "model"]):
    front.loc[g.index, "front"] = pareto_mask(g["kMAC/sample"], g["val acc %"])
test_acc = []
for i, r in front.iterrows():                   # the test split, once, for the front's points only
    if not r["front"]:
        test_acc.append(np.nan)
        continue
    run_dir = run_dir_for(run_root, r["data"], r["model"])
    model, meta = (load_run(run_dir)[:2] if r["kind"] == "unpruned"
                   else load_checkpoint(searches[r["data"], r["model"], b0]["prune_dir"] + "/pruned.pt"))
    d = load_data(available[r["data"]]["spec"]).restrict_to(meta["classes"])
    xt, yt = d.test.tensors(*meta["norm"])
    model.set_step_scale(r["scale"])
    test_acc.append(100 * accuracy(predict(model, xt, batch_size=4), yt))
front["test acc %"] = test_acc
fig, axes = plt.subplots(1, len(keys), figsize=(4.3 * len(keys), 3.5), squeeze=False)
for ax, (tag, m) in zip(axes[0], keys):
    g = front[(front.data == tag) & (front.model == m)]
    for kind, h in g.groupby("kind"):
        ax.plot(h["kMAC/sample"], h["val acc %"], "o" if kind == "unpruned" else "s", mfc="none", label=kind)
    f = g[g.front].sort_values("kMAC/sample")
    ax.step(f["kMAC/sample"], f["val acc %"], "k-", where="post", lw=0.8, label="front (val)")
    ax.plot(f["kMAC/sample"], f["test acc %"], "k x", label="front: test")
    ax.set(xscale="log", title=f"{m} on {tag}", xlabel="kMAC per input sample", ylabel="accuracy %")
    ax.legend(fontsize=6)
fig.tight_layout()
front[front.front].drop(columns=["scale", "front"]).round(2)
"""),
]

DEPLOY = [
("markdown", """
# Deployment: export, C++ and its speed

A trained (or pruned) model at a step-scale list is folded into an *export dict* (SPEC §9): Λ̄ at
s_ℓ·Δ, B̄ and b̄ with BatchNorm folded in, C, Re c, skip, the cumulative step scale, and the decoder
with the input normalisation folded into the first layer. `sedge.export.reference_logits` runs it in
float64 NumPy; `sedge.cpp.generate_cpp` writes a self-contained C++17 project with the weights as
constant arrays. The C++ has two paths: a **streaming** API (push one sample, read the logits; layer
ℓ updates every s_ℓ samples and computes its output only when layer ℓ+1 or the time mean consumes
it) and a **whole-clip** path that processes the clip in blocks, so that the input and output
projections of every layer become small dense matrix products (register-blocked 6×16 kernels).
This chapter checks parity against PyTorch on the whole test split (and against the float64 NumPy
reference on a few clips; the tests hold NumPy to PyTorch within 1e-9), and measures size and speed.

Every configuration is also deployed in **fixed point** (`sedge.fixed_point`, `sedge export
--fixed-point`): int8 weights with a power-of-two scale per output column, int16 states and
activations, the poles Λ̄ in Q15 rounded toward zero (so |λ̄_q| ≤ |λ̄| < 1: no quantised mode becomes
unstable), int32 accumulators, and one float dequantisation of the logits at the end. The scales are
calibrated on training clips, never on test clips. Why int16 states rather than int8: a slow mode's
state is a sum over ~1/(1 − |λ̄|) steps, many for poles near the unit circle, and its per-step increment must still
register next to it; why int8 weights: they are 4× smaller and carry the memory.
"""),
("params", """
run_root = "runs/ci"
datasets = {"synthetic": {"spec": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10", "models": ["tiny"]}}
step_scales = {"3": [[1, 1, 1], [1, 9, 54]]}   # per layer count: the step-scale lists to deploy
pruned = {"budget_pp": 2.0, "step_fraction": 0.25, "max_val": 16}   # the pruning-chapter search to deploy too
max_clips = 16                  # test clips for parity and accuracy (null: the whole test split)
reference_clips = 8             # clips also run through the float64 NumPy reference
timing_reps = 3
fixed_point = {"calib_clips": 8, "headroom": 1.25}    # training clips that set the fixed-point scales
"""),
("code", """
import json
import subprocess
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import soundfile as sf
import torch

from sedge.cost import layer_shapes, macs_per_sample
from sedge.cpp import CppModel, best_cpu_seconds, build_cli, build_shared, generate_cpp
from sedge.cpp_fixed import generate_cpp_fixed
from sedge.data import load_data
from sedge.experiments import load_run, pruned_run, run_dir_for
from sedge.export import export_dict, reference_logits
from sedge.fixed_point import fixed_logits, quantise
from sedge.pareto import pareto_mask
from sedge.paths import MINI_SPEECH_COMMANDS
from sedge.train import load_checkpoint, predict

torch.set_num_threads(2)
print(json.dumps(dict(run_root=run_root, datasets=datasets, step_scales=step_scales, pruned=pruned, max_clips=max_clips,
                      reference_clips=reference_clips, timing_reps=timing_reps, fixed_point=fixed_point), indent=1))
available = {t: d for t, d in datasets.items() if not (d["spec"].startswith("mini") and not MINI_SPEECH_COMMANDS.exists())}
work = Path(tempfile.mkdtemp(prefix="sedge-deploy-"))

def raw_and_normalised(split, norm):
    x, y = split.tensors(*norm)
    x, y = (x[:max_clips], y[:max_clips]) if max_clips else (x, y)
    return x * norm[1] + norm[0], x, y.numpy()     # raw waveform in [-1, 1] (what the C++ reads), model input, labels
"""),
("markdown", """
## Parity and speed per model, pruning and step scale

For every configuration: the export is generated and compiled (`-O3 -march=native`), the test clips
run through PyTorch, the NumPy reference and both C++ paths. *max rel. err.* is the largest logit
difference over the largest logit magnitude; *top-1 agree* is the share of clips where C++ and
PyTorch pick the same class. Times are process CPU time for one 1-s clip (best of a few runs, one
thread); the real-time factor is that time over one second.
"""),
("code", """
rows, fixed_rows, probe = [], [], None
for tag, ds in available.items():
    data = load_data(ds["spec"])
    for m in ds["models"]:
        run_dir = run_dir_for(run_root, tag, m)
        base, meta, _ = load_run(run_dir)
        s = pruned_run(run_dir, ds["spec"], budget_pp=pruned["budget_pp"], step_fraction=pruned["step_fraction"],
                       max_val=pruned["max_val"], progress=False)
        small, _ = load_checkpoint(s["prune_dir"] + "/pruned.pt")
        d_split = data.restrict_to(meta["classes"])
        raw_t, x_t, y_t = raw_and_normalised(d_split.test, meta["norm"])
        calib = d_split.train.waves[: fixed_point["calib_clips"]].astype(np.float64) / 32768   # training clips only
        for kind, model in (("unpruned", base), (f"pruned {pruned['budget_pp']} pp", small)):
            for sc in step_scales[str(len(model.layers))]:
                d = export_dict(model, sc, norm=tuple(meta["norm"]), classes=meta["classes"])
                proj = generate_cpp(d, work / f"{tag}_{m}_{kind.split()[0]}_{'-'.join(map(str, sc))}")
                cpp = CppModel(build_shared(proj))
                pt = predict(model.set_step_scale(sc), x_t, batch_size=8).numpy()
                ref = reference_logits(d, raw_t[:reference_clips].numpy().astype(np.float64))
                out = cpp.classify(raw_t.numpy())
                streamed = cpp.classify(raw_t[:4].numpy(), path="stream")
                scale = np.abs(pt).max()
                one = raw_t[:1].numpy()
                rows.append({"data": tag, "model": m, "kind": kind, "step scale": str(sc), "states": [l.P for l in model.layers],
                             "max rel. err. C++ vs PyTorch": np.abs(out - pt).max() / scale,
                             "max rel. err. NumPy vs PyTorch": np.abs(ref - pt[:reference_clips]).max() / scale,
                             "max rel. err. stream vs block": np.abs(streamed - out[:4]).max() / np.abs(out[:4]).max(),
                             "top-1 agree %": 100 * float((out.argmax(1) == pt.argmax(1)).mean()),
                             "test acc % (C++)": 100 * float((out.argmax(1) == y_t).mean()),
                             "weights B": cpp.weight_bytes, "state B": cpp.state_bytes,
                             "MMAC/clip (C++ conv.)": macs_per_sample(layer_shapes(model), model.cfg.n_classes, sc, "cpp") * 16e3 / 1e6,
                             "µs/clip": 1e6 * best_cpu_seconds(lambda: cpp.classify(one), timing_reps),
                             "µs/clip streaming": 1e6 * best_cpu_seconds(lambda: cpp.classify(one, path="stream"), timing_reps),
                             "clips": len(y_t)})
                rows[-1]["RTF"] = rows[-1]["µs/clip"] / 1e6
                q = quantise(d, calib, headroom=fixed_point["headroom"])
                fx = CppModel(build_shared(generate_cpp_fixed(q, Path(str(proj) + "_fixed"))))
                fx_out = fx.classify(raw_t.numpy())
                fx_ref = fixed_logits(q, raw_t[:reference_clips].numpy())
                fixed_rows.append({"data": tag, "model": m, "kind": kind, "step scale": str(sc),
                                   "test acc % float": rows[-1]["test acc % (C++)"],
                                   "test acc % fixed": 100 * float((fx_out.argmax(1) == y_t).mean()),
                                   "top-1 agree % fixed vs float": 100 * float((fx_out.argmax(1) == out.argmax(1)).mean()),
                                   "max rel. err. fixed vs float": np.abs(fx_out - out).max() / np.abs(out).max(),
                                   "C++ == integer NumPy": bool(np.array_equal(fx_out[:reference_clips], fx_ref)),
                                   "weights B float": cpp.weight_bytes, "weights B fixed": fx.weight_bytes,
                                   "state B float": cpp.state_bytes, "state B fixed": fx.state_bytes,
                                   "µs/clip float (streaming)": rows[-1]["µs/clip streaming"],
                                   "µs/clip fixed": 1e6 * best_cpu_seconds(lambda: fx.classify(one), timing_reps)})
                probe = probe or (proj, d_split.test, meta["classes"])
            model.set_step_scale([1] * len(model.layers))
deploy = pd.DataFrame(rows)
assert (deploy["max rel. err. C++ vs PyTorch"] <= 1e-4).all(), "C++ parity broken"
deploy.drop(columns=["states"]).round(6)
"""),
("markdown", """
## Size and latency next to the authors' microcontroller figures

The authors report, on a Cortex-M4F, 103.5 s per clip for `full` (95.19 % on Speech Commands) and
0.289 s for `tiny` at [1, 9, 54] (88.01 %, 12.1 MFLOP) — a different processor class, quoted for
scale only. On one core of this machine:
"""),
("code", """
summary = deploy[["data", "model", "kind", "step scale", "weights B", "state B", "MMAC/clip (C++ conv.)", "µs/clip",
                  "µs/clip streaming", "RTF", "test acc % (C++)"]].copy()
summary["GMAC/s"] = summary["MMAC/clip (C++ conv.)"] / summary["µs/clip"] * 1e3
summary.round(3)
"""),
("markdown", """
## Fixed point against float32

The same configurations in integer arithmetic. *C++ == integer NumPy* checks the generated integer
program against `sedge.fixed_point.fixed_logits` bit for bit on the first clips; the accuracy drop
is the fixed-point test accuracy minus the float32 one, both computed by C++ on the same clips.
Weights bytes count every constant array as the C++ stores it (int8 weights, int16 poles, int32
biases, one byte per shift count); the state is the streaming state (int16 modes and the int64
time sum against float32 modes and sum). The fixed-point program is a straightforward per-sample
loop (the target is a microcontroller without a vector unit for floats), so its µs compare with
the float streaming path.
"""),
("code", """
fixed = pd.DataFrame(fixed_rows)
assert fixed["C++ == integer NumPy"].all(), "integer C++ differs from the integer reference"
fixed["acc. drop pp"] = fixed["test acc % float"] - fixed["test acc % fixed"]
fixed["weights saving ×"] = fixed["weights B float"] / fixed["weights B fixed"]
fixed.round(4)
"""),
("code", """
print(f"fixed point over {len(fixed)} configurations: accuracy drop mean {fixed['acc. drop pp'].mean():.2f} pp "
      f"(range {fixed['acc. drop pp'].min():.2f} to {fixed['acc. drop pp'].max():.2f}); top-1 agreement with float "
      f"{fixed['top-1 agree % fixed vs float'].min():.1f}–{fixed['top-1 agree % fixed vs float'].max():.1f} %; "
      f"weights {fixed['weights saving ×'].min():.2f}–{fixed['weights saving ×'].max():.2f}× smaller; "
      f"state {(fixed['state B float'] / fixed['state B fixed']).min():.2f}–{(fixed['state B float'] / fixed['state B fixed']).max():.2f}× smaller")
"""),
("markdown", """
## Accuracy against latency

Every deployed configuration: test accuracy as computed by the C++ program against µs per clip —
float32 (whole-clip path; open markers) and fixed point (filled). The line joins the configurations
no other one beats on both.
"""),
("code", """
points = pd.concat([deploy[["data", "model", "kind", "step scale", "µs/clip", "test acc % (C++)"]].assign(arith="float32"),
                    fixed.rename(columns={"µs/clip fixed": "µs/clip", "test acc % fixed": "test acc % (C++)"})
                    [["data", "model", "kind", "step scale", "µs/clip", "test acc % (C++)"]].assign(arith="fixed")])
fig, axes = plt.subplots(1, len(available), figsize=(5.5 * len(available), 3.8), squeeze=False)
for ax, tag in zip(axes[0], available):
    g = points[points.data == tag].reset_index(drop=True)
    for (m, kind, arith), h in g.groupby(["model", "kind", "arith"]):
        ax.plot(h["µs/clip"], h["test acc % (C++)"], "o" if kind == "unpruned" else "s",
                mfc="none" if arith == "float32" else None, label=f"{m} {kind} {arith}")
    front = g[pareto_mask(g["µs/clip"], g["test acc % (C++)"])].sort_values("µs/clip")
    ax.step(front["µs/clip"], front["test acc % (C++)"], "k-", where="post", lw=0.8, label="front")
    ax.set(xscale="log", title=tag, xlabel="µs per 1-s clip (one core)", ylabel="test accuracy % (C++)")
    ax.legend(fontsize=6)
fig.tight_layout()
"""),
("markdown", """
## Running the exported program on a WAV file

`sedge export --checkpoint RUN/best.pt --step-scale 1,9,54 --out DIR --build` writes the project and
compiles `DIR/sedge_classify`; the same project builds with CMake (`cmake -B build && cmake --build
build`). Here the last configuration above classifies one test clip written as a 16-bit WAV:
"""),
("code", """
proj, split, classes = probe
exe = build_cli(proj)
wav = work / "clip.wav"
sf.write(wav, split.waves[0], 16000, subtype="PCM_16")
out = subprocess.run([str(exe), str(wav)], capture_output=True, text=True, check=True).stdout.splitlines()
print(f"$ {exe.name} clip.wav   (true label: {classes[split.labels[0]]})")
print("\\n".join(out[:4]), "\\n...")
"""),
]


FILTERS = [
("markdown", """
# Passive similarity-based filter pruning of a CNN

Singh & Plumbley (Interspeech 2022) prune the convolution filters of the DCASE 2021 Task 1A baseline
CNN *passively*, from the weights alone: each filter W_f (C_in × 7 × 7) is read as a 49 × C_in
matrix, its rank-1 SVD's left singular vector u_f is its signature, and a greedy pass over pairs of
nearest signatures (cosine distance, ascending) keeps one filter of each close pair and marks the
other redundant (SPEC §10, `sedge.baselines.filter_pruning`). The redundant filters are removed
**physically** — the conv's output channels, its BatchNorm, and the next layer's input channels —
and the smaller network is fine-tuned, with the checkpoint chosen on validation (the paper's code
chose it on the test split; we do not).

Here the CNN reads 40 log-mel bands × 50 frames (a 1-s clip, 40 ms windows, 20 ms hop; input shape
1 × 40 × 50) of the same keyword splits as S-Edge; its second pool is 4 × 10 instead of 4 × 100 so
that the flattened size, and so the parameter count (46,246 at 10 classes, counted as Keras and the
paper count them), stay the paper's. As in the paper, C1, C2 and C3 are pruned alone and in
combinations. Parameters are given as the paper counts them (BatchNorm: 4 numbers per channel) and
as trainable parameters; MACs both as the paper counts them (only the pruned layers' own MACs) and
for the whole network (the next layer's inputs shrink too).
"""),
("params", """
run_root = "runs/ci"
datasets = {"synthetic": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10"}
train = {"epochs": 1, "max_steps": 2, "lr": 0.003, "batch_size": 32}       # the DCASE CNN itself
finetune = {"epochs": 1, "max_steps": 2, "lr": 0.0005, "batch_size": 32}   # after pruning
layer_sets = [[2], [1, 2, 3]]                                             # conv layers pruned together
max_fraction = 0.5                                                        # at most this share of a layer goes
"""),
("code", """
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from sedge.baselines.experiments import baseline_run, dcase_costs, filter_pruned_run
from sedge.baselines.filter_pruning import filter_signatures
from sedge.baselines.train import load_baseline
from sedge.experiments import run_dir_for
from sedge.pareto import pareto_mask
from sedge.paths import MINI_SPEECH_COMMANDS

torch.set_num_threads(2)
print(json.dumps(dict(run_root=run_root, datasets=datasets, train=train, finetune=finetune, layer_sets=layer_sets,
                      max_fraction=max_fraction), indent=1))
available = {t: s for t, s in datasets.items() if not (s.startswith("mini") and not MINI_SPEECH_COMMANDS.exists())}
"""),
("markdown", """
## The trained CNN

Adam with a cosine schedule on the training split; the epoch with the best validation accuracy is
kept and tested once. A finished run is read back from its folder.
"""),
("code", """
trained = {}
for tag, spec in available.items():
    trained[tag] = baseline_run("dcase", spec, run_dir_for(run_root, tag, "dcase"), **train, progress=False)
pd.DataFrame([{"data": t, "classes": s["arch"]["kwargs"]["n_classes"], "best epoch": s["best_epoch"],
               "val acc %": 100 * s["val_acc"], "test acc %": 100 * s["test_acc"],
               "params (paper count)": dcase_costs(load_baseline(s["run_dir"] + "/best.pt")[0])["params_keras"],
               "train min": s["train_seconds"] / 60} for t, s in trained.items()]).round(2)
"""),
("markdown", """
## Which filters look alike

Cosine distances between the rank-1 signatures of C2's filters in the trained network (first data
set); the filters the greedy pass marks redundant are the red ticks.
"""),
("code", """
from sedge.baselines.filter_pruning import redundant_filters
tag0 = next(iter(trained))
cnn, _ = load_baseline(trained[tag0]["run_dir"] + "/best.pt")
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
for ax, i in zip(axes, (1, 2, 3)):
    w = getattr(cnn, f"conv{i}").weight
    sig = filter_signatures(w)
    im = ax.imshow(1 - sig @ sig.T, cmap="viridis", vmin=0, vmax=2)
    red = redundant_filters(w, max_fraction)
    ax.set_xticks(red, labels=[str(r) for r in red], color="red", fontsize=6)
    ax.set(title=f"C{i}: {len(red)} of {w.shape[0]} redundant", xlabel="filter", ylabel="filter")
fig.colorbar(im, ax=axes, label="cosine distance")
"""),
("markdown", """
## Pruning C1, C2, C3 and their combinations

*before* is the trained CNN, *pruned* the smaller network with no retraining, *fine-tuned* the best
validation epoch after fine-tuning (the pruned network competes as epoch 0, so fine-tuning never
makes validation worse).
"""),
("code", """
rows = []
for tag, spec in available.items():
    for layers in layer_sets:
        r = filter_pruned_run(trained[tag]["run_dir"], spec, tuple(layers), **finetune, max_fraction=max_fraction,
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
results.round(2)
"""),
("markdown", """
## Next to the paper

The paper prunes the same CNN on DCASE 2021 Task 1A (acoustic scenes, 10 classes, 10-s clips), so
only the *relative* figures carry over: which layers have redundant filters, how much of the cost
goes, and how much accuracy the fine-tuned network keeps.
"""),
("code", """
paper = pd.DataFrame([{"data": "paper (DCASE21 1A)", "pruned": "C2", "channels": "16→11→32",
                       "Δparams % (paper count)": -25.0, "ΔMACs % (pruned layers, paper)": -27.0,
                       "test % before": 48.58, "test % fine-tuned": 47.61}])
cols = ["data", "pruned", "channels", "Δparams % (paper count)", "ΔMACs % (pruned layers, paper)", "test % before",
        "test % fine-tuned"]
pd.concat([paper[cols], results[results.pruned == "C2"][cols]]).round(2)
"""),
("markdown", """
## Accuracy against parameters and MACs

Every pruned network after fine-tuning, with the unpruned CNN (star); the line is the front of
networks no other one beats on both cost and test accuracy.
"""),
("code", """
fig, axes = plt.subplots(len(available), 2, figsize=(10, 3.4 * len(available)), squeeze=False)
for row, tag in zip(axes, available):
    g = results[results.data == tag]
    u = filter_pruned_run(trained[tag]["run_dir"], available[tag], tuple(layer_sets[0]), **finetune,
                          max_fraction=max_fraction, progress=False)["unpruned"]
    for ax, (col, base) in zip(row, (("params (paper count)", u["params_keras"]), ("MMACs", u["macs"]["total"] / 1e6))):
        ax.plot(g[col], g["test % fine-tuned"], "o", mfc="none")
        for _, r in g.iterrows():
            ax.annotate(r["pruned"], (r[col], r["test % fine-tuned"]), fontsize=7)
        ax.plot([base], [100 * u["test_acc"]], "k*", ms=10, label="unpruned")
        pts = pd.concat([g[[col, "test % fine-tuned"]], pd.DataFrame({col: [base], "test % fine-tuned": [100 * u["test_acc"]]})])
        front = pts[pareto_mask(pts[col].to_numpy(), pts["test % fine-tuned"].to_numpy())].sort_values(col)
        ax.step(front[col], front["test % fine-tuned"], "k-", where="post", lw=0.8)
        ax.set(title=tag, xlabel=col, ylabel="test accuracy %")
        ax.legend(fontsize=7)
fig.tight_layout()
"""),
]


CONVEXITY = [
("markdown", """
# Convexity-guided layer pruning

Dorszewski, Tětková & Hansen (2024) prune whole layers of transformer speech models: a layer whose
classes form *convex* regions in its representation already separates them, and the layers after
the convexity peak can go, with fine-tuning after. The graph convexity of a layer (SPEC §10,
`sedge.baselines.convexity`): one vector per clip (the time mean of the layer's output), a
10-nearest-neighbour graph with Euclidean edge lengths, and for sampled same-class pairs the share
of the shortest path's interior nodes that carry the same class (a direct edge scores 1, no path 0);
the layer's score is the mean × 100. We compute it on **validation** clips, keep the layers up to
the peak, put the classifier on the last kept layer (S-Edge: a fresh decoder, since the width
changes; the transformer keeps its classifier) and fine-tune with validation selection.

Two families: the S-Edge models of the training chapter, and a small transformer encoder trained
here on raw-audio frames (25-ms frames → 40 tokens, 4 pre-norm blocks of width 48). The S-Edge
result is set next to pruning by model order reduction (the iterative-pruning chapter) at the same
validation budget.
"""),
("params", """
run_root = "runs/ci"
datasets = {"synthetic": {"spec": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10", "models": ["tiny"],
                          "mor_models": ["tiny"]}}
transformer = {"epochs": 1, "max_steps": 2, "lr": 0.003, "batch_size": 32}      # training the transformer
finetune_sedge = {"epochs": 1, "max_steps": 2, "lr": 0.002, "batch_size": 8}     # after dropping S-Edge layers
finetune_transformer = {"epochs": 1, "max_steps": 2, "lr": 0.001, "batch_size": 32}
mor = {"budgets": [2.0], "step_fraction": 0.25, "max_val": 16}                  # the pruning chapter's searches
max_val = None                                                                  # validation clips for convexity (None: all)
"""),
("code", """
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from sedge.baselines.experiments import baseline_run, convexity_pruned_run
from sedge.experiments import load_run, pruned_run, run_dir_for
from sedge.pareto import pareto_mask
from sedge.paths import MINI_SPEECH_COMMANDS

torch.set_num_threads(2)
print(json.dumps(dict(run_root=run_root, datasets=datasets, transformer=transformer, finetune_sedge=finetune_sedge,
                      finetune_transformer=finetune_transformer, mor=mor, max_val=max_val), indent=1))
available = {t: d for t, d in datasets.items() if not (d["spec"].startswith("mini") and not MINI_SPEECH_COMMANDS.exists())}
"""),
("markdown", """
## Layer-wise convexity

S-Edge models come from the training chapter (their cached runs); the transformer is trained here
(Adam, cosine schedule, validation selection). The marker is each model's peak.
"""),
("code", """
results = {}
for tag, ds in available.items():
    for m in ds["models"]:
        results[(tag, f"S-Edge {m}")] = convexity_pruned_run(run_dir_for(run_root, tag, m), ds["spec"], "sedge",
                                                             **finetune_sedge, max_val=max_val, progress=False)
    t = baseline_run("transformer", ds["spec"], run_dir_for(run_root, tag, "transformer"), **transformer, progress=False)
    results[(tag, "transformer")] = convexity_pruned_run(t["run_dir"], ds["spec"], "transformer", **finetune_transformer,
                                                         max_val=max_val, progress=False)
fig, axes = plt.subplots(1, len(available), figsize=(5.5 * len(available), 3.6), squeeze=False)
for ax, tag in zip(axes[0], available):
    for (t, name), r in results.items():
        if t != tag:
            continue
        line, = ax.plot(range(1, r["layers"] + 1), r["scores"], "o-", label=name)
        ax.plot([r["keep"]], [r["scores"][r["keep"] - 1]], "*", ms=14, color=line.get_color())
    ax.set(title=tag, xlabel="layer", ylabel="graph convexity (validation)", ylim=(0, 100))
    ax.legend(fontsize=7)
fig.tight_layout()
"""),
("markdown", """
## Pruning after the peak, next to model order reduction

*truncated* is the network cut after the peak before fine-tuning (for S-Edge with its new, untrained
decoder), *fine-tuned* the validation-selected result. Parameters of S-Edge by the paper's formula;
of the transformer, every trainable parameter. Where the peak is the last layer, the method prunes
nothing. The MOR rows are the iterative-pruning searches at the listed validation budgets, without
fine-tuning.
"""),
("code", """
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
for tag, ds in available.items():
    for m in ds.get("mor_models", []):
        for b in mor["budgets"]:
            p = pruned_run(run_dir_for(run_root, tag, m), ds["spec"], budget_pp=b, step_fraction=mor["step_fraction"],
                           max_val=mor["max_val"], progress=False)
            rows.append({"data": tag, "model": f"S-Edge {m}", "method": f"MOR ≤ {b} pp", "layers": len(p["states_after"]),
                         "params": p["params_after"], "val %": p["val_acc_after"], "test %": p["test_acc_after"]})
table = pd.DataFrame(rows)
first = table[table.method == "unpruned"].set_index(["data", "model"])["params"]
table["Δparams %"] = [100 * (r.params / first[(r.data, r.model)] - 1) for r in table.itertuples()]
table.sort_values(["data", "model"], kind="stable").round(2)
"""),
("markdown", """
## Accuracy against parameters

Every model and pruning result per data set; the line is the front no other point beats on both.
The paper reports large layer reductions of transformer speech models at no loss of accuracy, and
sometimes gains; what carries over to these far smaller models is read off here.
"""),
("code", """
fig, axes = plt.subplots(1, len(available), figsize=(5.5 * len(available), 3.8), squeeze=False)
marks = {"unpruned": "o", "convexity, fine-tuned": "s", "convexity, truncated": "x"}
for ax, tag in zip(axes[0], available):
    g = table[table.data == tag].reset_index(drop=True)
    for (name, method), h in g.groupby(["model", "method"]):
        ax.plot(h["params"], h["test %"], marks.get(method, "^"), mfc="none", label=f"{name}: {method}")
    ok = g[g.method != "convexity, truncated"]
    front = ok[pareto_mask(ok["params"].to_numpy(), ok["test %"].to_numpy())].sort_values("params")
    ax.step(front["params"], front["test %"], "k-", where="post", lw=0.8)
    ax.set(xscale="log", title=tag, xlabel="parameters", ylabel="test accuracy %")
    ax.legend(fontsize=6)
fig.tight_layout()
"""),
]


XNOR = [
("markdown", """
# Pruning and quantisation against XNOR-Net binarisation

Mohaimenuzzaman, Bergmeir & Meyer compress the raw-audio CNN ACDNet two ways (SPEC §10): by
**pruning and quantisation** (95 % global magnitude pruning with the masks re-applied while
fine-tuning, structured channel pruning, retraining, 8-bit post-training quantisation: 4.74 M →
≈131 k parameters, *Micro-ACDNet*), and by **XNOR-Net** binarisation (first conv and last linear in
float; every other conv as BN → sign with a straight-through gradient → a conv with weights
sign(W)·α, α = mean|W| per filter). Their finding: XNOR-Net stays close to the float network for few
classes — with 32× less weight memory and ≈58× less computation — but falls behind as the number
of classes grows, where pruning and quantisation win.

Here (`sedge.baselines.acdnet`, `sedge.baselines.compress`): the ACDNet family on 1-s 16 kHz clips
(SFEB: conv 1×9 stride 2 → conv 1×5 stride 2 → max-pool 1×40; its 64 × 100 output is the image of the
TFEB: five stages of 3×3 convs with 2×2 pools, a 1×1 conv to the classes, global average, linear).
**Cost model** of the binary networks, as the paper states it: a binary MAC counts 1/64 of a float
MAC (*effective MACs*), a binary weight 1 bit and a float weight 32 bits. The int8 network counts
1 byte per weight plus float32 per-channel scales and biases. Our quantisation is a well-defined
own fake-quant with an integer export (symmetric int8 weights per output channel, asymmetric uint8
activations calibrated on training clips), since `torch.ao.quantization` is deprecated.
"""),
("params", """
run_root = "runs/ci"
datasets = {"synthetic": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10"}   # float vs XNOR on each
micro = {"sfeb": [8, 64], "widths": [8, 16, 16, 32, 32, 48, 48, 64, 64]}          # the micro-sized network
base = {"sfeb": [8, 64], "widths": [16, 32, 32, 64, 64, 128, 128, 256, 256]}      # the network that is compressed
train = {"epochs": 1, "max_steps": 2, "lr": 0.003, "batch_size": 32}
compress = {"on": ["synthetic"], "sparsity": 0.95, "keep_fraction": 0.5, "calib_clips": 16,
            "finetune": {"epochs": 1, "max_steps": 2, "lr": 0.001, "batch_size": 32}}
"""),
("code", """
import json

import matplotlib.pyplot as plt
import pandas as pd
import torch

from sedge.baselines.acdnet import cost
from sedge.baselines.experiments import XNOR_VARIANTS, baseline_run, compressed_run
from sedge.baselines.train import load_baseline
from sedge.data import load_data
from sedge.experiments import run_dir_for
from sedge.paths import MINI_SPEECH_COMMANDS

torch.set_num_threads(2)
print(json.dumps(dict(run_root=run_root, datasets=datasets, micro=micro, base=base, train=train, compress=compress), indent=1))
available = {t: s for t, s in datasets.items() if not (s.startswith("mini") and not MINI_SPEECH_COMMANDS.exists())}
"""),
("markdown", """
## Float against XNOR at different class counts

The same micro-sized network trained in float and as XNOR-Net on every data set (validation
selection, test once). A third network is an ablation, not the paper's variant: XNOR with the
SFEB's second conv kept in float too. Binarising that conv turns band-passed raw audio into its
sign, and the 1×40 max-pool after it then sees only a few distinct values; the ablation shows how
much of XNOR's loss comes from that one layer.
"""),
("code", """
rows = []
for tag, spec in available.items():
    for network, (name, variant) in XNOR_VARIANTS.items():
        s = baseline_run("acdnet", spec, run_dir_for(run_root, tag, name), **train, progress=False,
                         kwargs={**micro, **variant})
        c = cost(load_baseline(s["run_dir"] + "/best.pt")[0])
        curve = pd.read_csv(s["run_dir"] + "/metrics.csv")
        rows.append({"data": tag, "classes": len(load_data(spec).classes), "network": network,
                     "val %": 100 * s["val_acc"], "test %": 100 * s["test_acc"], "params": c["params"],
                     "weight kB (cost model)": c["weight_bits"] / 8e3, "MMACs": c["macs"] / 1e6,
                     "effective MMACs": c["macs_effective"] / 1e6, "train min": s["train_seconds"] / 60,
                     "curve": 100 * curve["val_acc"].to_numpy()})
xnor_table = pd.DataFrame(rows)
curves = xnor_table.pop("curve")
xnor_table.round(2)
"""),
("code", """
gap = xnor_table.pivot_table(index=["data", "classes"], columns="network", values="test %").reset_index()
gap["chance %"] = 100 / gap["classes"]
gap["XNOR − float (pp)"] = gap["XNOR"] - gap["float"]
# how much of the float network's gain over chance an XNOR network keeps (1: all of it, 0: none)
gap["XNOR share of float's gain"] = (gap["XNOR"] - gap["chance %"]) / (gap["float"] - gap["chance %"])
gap["float-SFEB XNOR share"] = (gap["XNOR, float SFEB"] - gap["chance %"]) / (gap["float"] - gap["chance %"])
f = xnor_table[xnor_table.network == "float"].set_index("data")
x = xnor_table[xnor_table.network == "XNOR"].set_index("data")
gap["weight memory ÷"] = (f["weight kB (cost model)"] / x["weight kB (cost model)"]).reindex(gap["data"]).to_numpy()
gap["effective MACs ÷"] = (f["effective MMACs"] / x["effective MMACs"]).reindex(gap["data"]).to_numpy()
display(gap.sort_values("classes").round(2))
g = gap.sort_values("classes")
fig, axes = plt.subplots(1, 1 + len(g), figsize=(4.2 + 2.6 * len(g), 3.4), squeeze=False)
ax = axes[0, 0]
ax.plot(g["classes"], g["float"], "o-", label="float")
ax.plot(g["classes"], g["XNOR"], "s-", label="XNOR")
ax.plot(g["classes"], g["XNOR, float SFEB"], "^--", label="XNOR, float SFEB")
ax.plot(g["classes"], g["chance %"], ":", color="grey", label="chance")
for _, r in g.iterrows():
    ax.annotate(r["data"], (r["classes"], r["float"]), fontsize=7)
ax.set(xlabel="classes", ylabel="test accuracy %", title="micro ACDNet: float vs XNOR")
ax.legend(fontsize=7)
for ax, (_, r) in zip(axes[0, 1:], g.iterrows()):           # validation accuracy per epoch: how far from converged
    for network, style in zip(XNOR_VARIANTS, ("-", "--", "-.")):
        i = xnor_table.index[(xnor_table.data == r["data"]) & (xnor_table.network == network)][0]
        ax.plot(range(1, len(curves[i]) + 1), curves[i], style, label=network)
    ax.axhline(r["chance %"], ls=":", color="grey")
    ax.set(xlabel="epoch", title=f"{r['data']} ({r['classes']} classes)", ylabel="val %")
axes[0, 1].legend(fontsize=7)
fig.tight_layout()
for col in ("XNOR share of float's gain", "float-SFEB XNOR share"):
    print(col, "by class count:", g[["classes", col]].round(2).to_numpy().tolist())
"""),
("markdown", """
Read the gap next to the float accuracy and to chance (one over the class count): accuracies at
different class counts are not on one scale, so the table also gives the *share of the float
network's gain over chance* that the XNOR network keeps, (XNOR − chance) / (float − chance). The
paper's claim is that this share is high for few classes and falls as classes are added. Every data
set gets the same number of epochs (at most `max_steps` batches each, so the smallest set sees the
fewest batches); the learning curves show how far from converged each network stopped — the
paper's claim concerns converged networks. Where the float network itself stays near chance, a
small gap means both failed, not that XNOR kept up; XNOR networks also need more steps than float
ones before they leave chance (the straight-through gradient is zero wherever a pre-activation
leaves [−1, 1]).
"""),
("markdown", """
## The pruning and quantisation path

The larger float network is trained, then pruned by global weight magnitude (the masks re-applied
after every fine-tuning step), then slimmed by structured channel pruning (per conv the channels
with the largest L1 norm stay — channels magnitude pruning emptied go first), fine-tuned, and
finally quantised to 8 bits. Every fine-tuning keeps the best validation epoch, the previous
model competing as epoch 0.
"""),
("code", """
stage_rows = []
for tag in [t for t in compress["on"] if t in available]:
    s = baseline_run("acdnet", available[tag], run_dir_for(run_root, tag, "acdnet_base"), **train, progress=False,
                     kwargs={**base, "xnor": False})
    r = compressed_run(s["run_dir"], available[tag], sparsity=compress["sparsity"], keep_fraction=compress["keep_fraction"],
                       calib_clips=compress["calib_clips"], **compress["finetune"], progress=False)
    for stage, v in r["stages"].items():
        stored = v["nonzero_params"] if stage == "magnitude" else v["params"]     # sparse storage only after magnitude pruning
        stage_rows.append({"data": tag, "stage": stage, "params": v["params"], "non-zero params": v["nonzero_params"],
                           "weight kB": v.get("int8_bytes", 4 * stored) / 1e3, "MMACs": v["macs"] / 1e6,
                           "val %": 100 * v["val_acc"], "test %": 100 * v["test_acc"]})
stages = pd.DataFrame(stage_rows)
stages.round(2)
"""),
("markdown", """
*weight kB* counts the non-zero float32 weights after magnitude pruning (an ideal sparse storage,
indices not counted), every float32 weight of the dense channel-pruned network, and the int8 bytes
with their scales for the quantised one. Next to the
micro XNOR network on the same data, the last stage is the paper's comparison point: memory and
computation against accuracy.
"""),
("code", """
if len(stages):
    both = []
    for tag in stages.data.unique():
        q = stages[(stages.data == tag) & (stages.stage == "int8")].iloc[0]
        xr = xnor_table[(xnor_table.data == tag) & (xnor_table.network == "XNOR")].iloc[0]
        fr = xnor_table[(xnor_table.data == tag) & (xnor_table.network == "float")].iloc[0]
        both += [{"data": tag, "network": "pruned + int8", "weight kB": q["weight kB"], "MMACs (effective)": q["MMACs"], "test %": q["test %"]},
                 {"data": tag, "network": "micro XNOR", "weight kB": xr["weight kB (cost model)"], "MMACs (effective)": xr["effective MMACs"], "test %": xr["test %"]},
                 {"data": tag, "network": "micro float", "weight kB": fr["weight kB (cost model)"], "MMACs (effective)": fr["effective MMACs"], "test %": fr["test %"]}]
    display(pd.DataFrame(both).round(2))
"""),
]


COMPARISON = [
("markdown", """
# Every method on the same data

One table and one set of fronts for every network of the previous chapters: S-Edge trained, pruned
by model order reduction (with and without fine-tuning) and by convexity-guided layer pruning; the
DCASE CNN and its filter-pruned variants; the frame transformer and its layer-pruned variant; the
micro ACDNet in float and as XNOR-Net, and the larger ACDNet along the pruning-and-quantisation
path. Everything is read back from the cached stages those chapters computed (`sedge.compare.collect`
makes the same calls), on the same splits, with every model chosen on validation.

Counting conventions, each as its paper counts: S-Edge parameters by the paper's formula and MACs
per 1-s clip at step scale 1; the other networks' trainable parameters (non-zero ones after
magnitude pruning) and the MACs of their convolutions, linear layers and attention — the DCASE
CNN's log-mel front end is not counted, which flatters it; *effective* MACs count a binary MAC as
1/64 (the XNOR cost model). Weight memory counts 32 bits per float weight, 8 per int8 weight, 1 per
binary weight.
"""),
("params", """
profile = "ci"          # whose chapters are compared: the same profile the book was built with
timing_reps = 3         # C++ timing of the S-Edge networks (best of, process CPU time)
"""),
("code", """
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from sedge.compare import collect
from sedge.cpp import CppModel, best_cpu_seconds, build_shared, generate_cpp
from sedge.export import export_dict
from sedge.pareto import pareto_mask
from sedge.train import load_checkpoint

torch.set_num_threads(2)
print(json.dumps(dict(profile=profile, timing_reps=timing_reps)))
df = collect(profile)
df.drop(columns=["checkpoint"]).round(2)
"""),
("markdown", """
## Accuracy against parameters and against computation

Per data set; the black line joins the networks no other one beats on both cost and test accuracy.
"""),
("code", """
families = sorted(df.family.unique())
colours = dict(zip(families, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
tags = list(dict.fromkeys(df.data))
fig, axes = plt.subplots(len(tags), 2, figsize=(11, 3.8 * len(tags)), squeeze=False)
for row, tag in zip(axes, tags):
    g = df[df.data == tag].reset_index(drop=True)
    for ax, col, label in ((row[0], "params", "parameters"), (row[1], "effective macs", "MACs per clip (binary = 1/64)")):
        for fam, h in g.groupby("family"):
            trained = h.method == "trained"
            ax.plot(h[col][trained], h["test %"][trained], "o", color=colours[fam], label=f"{fam} (trained)")
            ax.plot(h[col][~trained], h["test %"][~trained], "x", color=colours[fam], label=f"{fam} (compressed)")
        front = g[pareto_mask(g[col].to_numpy(), g["test %"].to_numpy())].sort_values(col)
        ax.step(front[col], front["test %"], "k-", where="post", lw=0.8)
        ax.set(xscale="log", title=tag, xlabel=label, ylabel="test accuracy %")
    row[0].legend(fontsize=6)
fig.tight_layout()
"""),
("code", """
fronts = []
for tag in tags:
    g = df[df.data == tag].reset_index(drop=True)
    for col in ("params", "effective macs"):
        for _, r in g[pareto_mask(g[col].to_numpy(), g["test %"].to_numpy())].sort_values(col).iterrows():
            fronts.append({"data": tag, "front": col, "family": r.family, "model": r.model, "method": r.method,
                           "cost": r[col], "test %": r["test %"]})
pd.DataFrame(fronts).round(2)
"""),
("markdown", """
## S-Edge against C++ latency

Every S-Edge network of the table exported at step scale 1 and run by the generated C++ (whole-clip
path, one thread, process CPU time per 1-s clip). The other families have no deployed C++ here, so
only S-Edge has this axis.
"""),
("code", """
work = Path(tempfile.mkdtemp(prefix="sedge-compare-"))
lat = []
one = np.random.default_rng(0).uniform(-0.1, 0.1, (1, 16000)).astype(np.float32)   # latency does not depend on content
for i, r in df[df.family == "S-Edge"].reset_index(drop=True).iterrows():
    model, meta = load_checkpoint(r.checkpoint)
    d = export_dict(model, [1] * len(model.layers), norm=tuple(meta["norm"]), classes=meta["classes"])
    cpp = CppModel(build_shared(generate_cpp(d, work / f"m{i}")))
    lat.append({**r.drop("checkpoint").to_dict(), "µs/clip": 1e6 * best_cpu_seconds(lambda: cpp.classify(one), timing_reps)})
lat = pd.DataFrame(lat)
fig, axes = plt.subplots(1, len(tags), figsize=(5.5 * len(tags), 3.6), squeeze=False)
for ax, tag in zip(axes[0], tags):
    g = lat[lat.data == tag]
    for m, h in g.groupby("model"):
        ax.plot(h["µs/clip"], h["test %"], "o", mfc="none", label=m)
    if len(g):
        front = g[pareto_mask(g["µs/clip"].to_numpy(), g["test %"].to_numpy())].sort_values("µs/clip")
        ax.step(front["µs/clip"], front["test %"], "k-", where="post", lw=0.8)
    ax.set(xscale="log", title=tag, xlabel="C++ µs per 1-s clip", ylabel="test accuracy %")
    ax.legend(fontsize=7)
fig.tight_layout()
lat[["data", "model", "method", "params", "µs/clip", "test %"]].round(1)
"""),
("markdown", """
## Next to each paper's own numbers

The papers measured on other data (Speech Commands with 35 words; DCASE 2021 acoustic scenes;
ESC-10/ESC-50 and others) and at full training budgets, so absolute accuracies do not carry over;
the relative figures — how much a method removes, and at what cost in accuracy — are what can be
set side by side.
"""),
("code", """
def pct(a, b):
    return 100 * (a / b - 1)

claims = []
for tag in tags:
    g = df[df.data == tag]
    se = g[(g.family == "S-Edge") & (g.method == "trained")]
    if len(se):
        claims.append({"claim": "S-Edge: 141 k–8 k parameters at 94.9–90.0 % (GSC, 35 words)", "data": tag,
                       "ours": f"{se.params.max():,.0f}–{se.params.min():,.0f} parameters at {se['test %'].max():.1f}–{se['test %'].min():.1f} %"})
    mor = g[g.method == "MOR ≤ 0.5 pp"]
    if len(mor):
        base = se.set_index("model")
        big, small = mor.loc[mor.params.idxmax()], mor.loc[mor.params.idxmin()]
        claims.append({"claim": "MOR within 0.5 pp: −36.1 % (largest) / −5.8 % (smallest), no retraining", "data": tag,
                       "ours": f"{pct(big.params, base.params[big.model]):.1f} % ({big.model}) / "
                               f"{pct(small.params, base.params[small.model]):.1f} % ({small.model})"})
    cnn = g[g.family == "DCASE CNN"]
    c2 = cnn[cnn.method.str.startswith("filter pruning C2 ")]
    if len(c2):
        b = cnn[cnn.method == "trained"].iloc[0]
        claims.append({"claim": "filter pruning C2: 16→11 filters, −25 % parameters, 48.58 → 47.61 %", "data": tag,
                       "ours": f"{c2.iloc[0].model}, {pct(c2.iloc[0].params, b.params):.1f} % parameters, "
                               f"{b['test %']:.1f} → {c2.iloc[0]['test %']:.1f} %"})
    acd = g[(g.family == "ACDNet") & (g.model == "micro")]
    if {"trained", "XNOR-Net"} <= set(acd.method):
        f, x = acd[acd.method == "trained"].iloc[0], acd[acd.method == "XNOR-Net"].iloc[0]
        claims.append({"claim": "XNOR-Net: 32× less memory, 58× less computation; close to float for few classes", "data": tag,
                       "ours": f"{f['weight bits'] / x['weight bits']:.0f}× memory, {f['effective macs'] / x['effective macs']:.0f}× "
                               f"effective MACs; XNOR − float = {x['test %'] - f['test %']:+.1f} pp"})
    for fam in ("S-Edge", "transformer"):
        cv = g[(g.family == fam) & g.method.str.startswith("convexity")]
        for _, r in cv.iterrows():
            b = g[(g.family == fam) & (g.method == "trained") & ((g.model == r.model) if fam == "S-Edge" else True)].iloc[0]
            claims.append({"claim": "convexity layer pruning: large layer reductions at no loss", "data": tag,
                           "ours": f"{fam} {r.model}: {r.method}, {pct(r.params, b.params):.0f} % parameters, "
                                   f"{b['test %']:.1f} → {r['test %']:.1f} %"})
pd.set_option("display.max_colwidth", 200)
pd.DataFrame(claims)
"""),
("markdown", """
## What carries over

Read with the tables above (their numbers are recomputed with every build). What can carry over
are the *mechanisms*: whether model order reduction removes states within the validation budget,
whether similar filters exist and can be removed and recovered by fine-tuning, the memory and
effective-computation factors of binarisation under its cost model, and where in a stack the
convexity peaks (for many stacks it rises to the last layer, and then the method removes nothing).
Absolute accuracies do not carry over: the budgets here are CPU-minutes per network, under which
the networks learn at very different speeds — compare the trained rows of each family — so the
cross-family fronts say which family learns fastest on two cores, not which wins when trained to
convergence as in the papers. The same holds for the XNOR gap across class counts: it tests the
paper's claim only where the float network is well above chance. The C++ latencies are best of a
few runs on a shared machine; rows of the same model and parameter count are the same network,
and their spread shows the timing noise.
"""),
]


for name, cells in (("01_training", TRAINING), ("02_step_scale", STEP), ("03_balanced_truncation", TRUNCATION),
                   ("04_iterative_pruning", PRUNING), ("05_deployment", DEPLOY),
                   ("06_filter_pruning", FILTERS), ("07_convexity", CONVEXITY),
                   ("08_xnor", XNOR), ("09_comparison", COMPARISON)):
    (HERE / f"{name}.ipynb").write_text(json.dumps(nb(cells), indent=1) + "\n")
    print("wrote", name)
