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
datasets = {"synthetic": {"spec": "synthetic:n_speakers=10,words=yes+no+up+down,snr_db=10", "epochs": 1, "max_steps": 2},
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
    for m in models:
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
    for m in models:
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
datasets = {"synthetic": "synthetic:n_speakers=10,words=yes+no+up+down,snr_db=10"}
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

for name, cells in (("01_training", TRAINING), ("02_step_scale", STEP)):
    (HERE / f"{name}.ipynb").write_text(json.dumps(nb(cells), indent=1) + "\n")
    print("wrote", name)
