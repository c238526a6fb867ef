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
# # Pruning and quantisation against XNOR-Net binarisation
#
# Mohaimenuzzaman, Bergmeir & Meyer compress the raw-audio CNN ACDNet two ways: by
# **pruning and quantisation** (95 % global magnitude pruning with the masks re-applied while
# fine-tuning, structured channel pruning, retraining, 8-bit post-training quantisation: 4.74 M →
# ≈131 k parameters, *Micro-ACDNet*), and by **XNOR-Net** binarisation (first conv and last linear in
# float; every other conv as BN → sign with a straight-through gradient → a conv with weights
# sign(W)·α, α = mean|W| per filter). Their finding: XNOR-Net stays close to the float network for few
# classes — with 32× less weight memory and ≈58× less computation — but falls behind as the number
# of classes grows, where pruning and quantisation win.
#
# Here (`sedge.models.acdnet`, `sedge.compress.prune_quantise`): the ACDNet family on 1-s 16 kHz clips
# (SFEB: conv 1×9 stride 2 → conv 1×5 stride 2 → max-pool 1×40; its 64 × 100 output is the image of the
# TFEB: five stages of 3×3 convs with 2×2 pools, a 1×1 conv to the classes, global average, linear).
# **Cost model** of the binary networks, as the paper states it: a binary MAC counts 1/64 of a float
# MAC (*effective MACs*), a binary weight 1 bit and a float weight 32 bits. The int8 network counts
# 1 byte per weight plus float32 per-channel scales and biases. Our quantisation is a well-defined
# own fake-quant with an integer export (symmetric int8 weights per output channel, asymmetric uint8
# activations calibrated on training clips), since `torch.ao.quantization` is deprecated.

# %% tags=["parameters"]
run_root = "runs/ci"                 # folder of the ACDNet runs
datasets = {"synthetic": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10"}  # dataset tag → data spec: float vs XNOR on each
micro_sfeb = [8, 64]                 # the micro-sized network: its two SFEB conv widths
micro_widths = [8, 16, 16, 32, 32, 48, 48, 64, 64]  # and its TFEB conv widths
base_sfeb = [8, 64]                  # the network that is compressed: its SFEB widths
base_widths = [16, 32, 32, 64, 64, 128, 128, 256, 256]  # and its TFEB widths
epochs = 1                           # training epochs of every network, per dataset
batches_per_epoch = 2                # batches per epoch (None: the whole training split), per dataset
lr = 0.003                           # learning rate
batch_size = 32                      # clips per batch
compress_on = ["synthetic"]          # datasets on which the base network is compressed
sparsity = 0.95                      # share of weights removed by magnitude pruning
keep_fraction = 0.5                  # share of channels kept by channel pruning
calib_clips = 16                     # training clips that calibrate the int8 activations
finetune_epochs = 1                  # fine-tuning epochs after each compression step
finetune_batches_per_epoch = 2       # fine-tuning batches per epoch (None: all)
finetune_lr = 0.001                  # fine-tuning learning rate
finetune_batch_size = 32             # fine-tuning clips per batch
device = "cpu"                       # where to train: cpu, cuda[:N] or auto

# %%
from sedge.pipeline.parameters import check_namespace, for_data
check_namespace(globals(), "08_xnor")

import math

import matplotlib.pyplot as plt
import pandas as pd
import torch

from sedge.report.plots import book_style, label_points, legend_below, panels, plain_log_ticks, show_table
from sedge.models.acdnet import cost
from sedge.pipeline.baseline_experiments import XNOR_VARIANTS, baseline_run, compressed_run
from sedge.training.baselines import load_baseline
from sedge.data import available_datasets, load_data
from sedge.pipeline.experiments import run_dir_for

torch.set_num_threads(2)
book_style()
available = available_datasets(datasets)


def steps_per_epoch(tag: str) -> int:
    """Batches per epoch on dataset ``tag``: the whole training split, at most ``batches_per_epoch``."""
    per_epoch = math.ceil(len(load_data(available[tag]).train) / batch_size)
    cap = for_data(batches_per_epoch, tag, "batches_per_epoch")
    return min(per_epoch, cap) if cap else per_epoch


def recipe(tag: str) -> dict:
    """The training recipe of every network on dataset ``tag`` (epochs and batches may differ per dataset)."""
    return dict(epochs=for_data(epochs, tag, "epochs"), max_steps=for_data(batches_per_epoch, tag, "batches_per_epoch"),
                lr=lr, batch_size=batch_size, device=device)


micro = dict(sfeb=micro_sfeb, widths=micro_widths)
base = dict(sfeb=base_sfeb, widths=base_widths)

# %% [markdown]
# ## Float against XNOR at different class counts
#
# The same micro-sized network trained in float and as XNOR-Net on every data set (validation
# selection, test once). A third network is an ablation, not the paper's variant: XNOR with the
# SFEB's second conv kept in float too. Binarising that conv turns band-passed raw audio into its
# sign, and the 1×40 max-pool after it then sees only a few distinct values; the ablation shows how
# much of XNOR's loss comes from that one layer.

# %%
rows = []
for tag, spec in available.items():
    for network, (name, variant) in XNOR_VARIANTS.items():
        s = baseline_run("acdnet", spec, run_dir_for(run_root, tag, name), **recipe(tag), progress=False,
                         kwargs={**micro, **variant})
        c = cost(load_baseline(s["run_dir"] + "/best.pt")[0])
        curve = pd.read_csv(s["run_dir"] + "/metrics.csv")
        rows.append({"data": tag, "classes": len(load_data(spec).classes), "network": network,
                     "val %": 100 * s["val_acc"], "test %": 100 * s["test_acc"], "params": c["params"],
                     "weight kB (cost model)": c["weight_bits"] / 8e3, "MMACs": c["macs"] / 1e6,
                     "effective MMACs": c["macs_effective"] / 1e6, "steps": len(curve) * steps_per_epoch(tag),
                     "train min": s["train_seconds"] / 60,
                     "curve": 100 * curve["val_acc"].to_numpy()})
xnor_table = pd.DataFrame(rows)
curves = xnor_table.pop("curve")
show_table(xnor_table, ["data", "network"])

# %%
gap = xnor_table.pivot_table(index=["data", "classes"], columns="network", values="test %").reset_index()
gap = gap.rename(columns={n: f"{n} test %" for n in XNOR_VARIANTS}).sort_values("classes").reset_index(drop=True)
gap["chance %"] = 100 / gap["classes"]
gap["XNOR − float (pp)"] = gap["XNOR test %"] - gap["float test %"]
# how much of the float network's gain over chance an XNOR network keeps (100 %: all of it, 0 %: none)
gain = gap["float test %"] - gap["chance %"]
gap["XNOR share of float's gain %"] = 100 * (gap["XNOR test %"] - gap["chance %"]) / gain
gap["float-SFEB XNOR share of float's gain %"] = 100 * (gap["XNOR, float SFEB test %"] - gap["chance %"]) / gain
f = xnor_table[xnor_table.network == "float"].set_index("data")
x = xnor_table[xnor_table.network == "XNOR"].set_index("data")
gap["weight memory ÷"] = (f["weight kB (cost model)"] / x["weight kB (cost model)"]).reindex(gap["data"]).to_numpy()
gap["effective MACs ÷"] = (f["effective MMACs"] / x["effective MMACs"]).reindex(gap["data"]).to_numpy()
keys = ["data", "classes"]
show_table(gap[keys + ["chance %", *(f"{n} test %" for n in XNOR_VARIANTS), "XNOR − float (pp)"]], keys)
show_table(gap[keys + ["XNOR share of float's gain %", "float-SFEB XNOR share of float's gain %", "weight memory ÷",
                       "effective MACs ÷"]], keys)
colour = {n: f"C{i}" for i, n in enumerate(XNOR_VARIANTS)}      # one colour per network in every panel
fig, axes = panels(1 + len(gap), height=3.2)
ax = axes[0]
for network, style in zip(XNOR_VARIANTS, ("o-", "s-", "^--")):
    ax.plot(gap["classes"], gap[f"{network} test %"], style, color=colour[network], label=network)
ax.plot(gap["classes"], gap["chance %"], ":", color="grey", label="chance")
ax.set(xlabel="classes", ylabel="test accuracy %", title="micro ACDNet: float vs XNOR",
       xlim=(0, 1.35 * gap["classes"].max()))
for ax, (_, r) in zip(axes[1:], gap.iterrows()):           # validation accuracy per epoch: how far from converged
    for network, style in zip(XNOR_VARIANTS, ("o-", "s-", "^--")):
        i = xnor_table.index[(xnor_table.data == r["data"]) & (xnor_table.network == network)][0]
        ax.plot(range(1, len(curves[i]) + 1), curves[i], style[1:], color=colour[network])
    ax.axhline(r["chance %"], ls=":", color="grey")
    ax.set(xlabel="epoch", title=f"{r['data']} ({r['classes']} classes)", ylabel="validation accuracy %")
legend_below(fig, axes, ncol=4)
_ = label_points(axes[0], gap["classes"], gap["float test %"], gap["data"], fontsize=8)

# %% [markdown]
# Read the gap next to the float accuracy and to chance (one over the class count): accuracies at
# different class counts are not on one scale, so the table also gives the *share of the float
# network's gain over chance* that the XNOR network keeps, (XNOR − chance) / (float − chance). The
# paper's claim is that this share is high for few classes and falls as classes are added. The
# paper's claim concerns converged networks, so the budget is counted in steps, not epochs: each
# data set gets its own number of whole epochs (`epochs` per dataset) so that every network sees
# about the same number of batches (the *steps* column), and the learning curves show whether the
# networks had stopped improving by then. Where the float network itself stays near chance, a
# small gap means both failed, not that XNOR kept up; XNOR networks also need more steps than float
# ones before they leave chance (the straight-through gradient is zero wherever a pre-activation
# leaves [−1, 1]).

# %% [markdown]
# ## The pruning and quantisation path
#
# The larger float network is trained, then pruned by global weight magnitude (the masks re-applied
# after every fine-tuning step), then slimmed by structured channel pruning (per conv the channels
# with the largest L1 norm stay — channels magnitude pruning emptied go first), fine-tuned, and
# finally quantised to 8 bits. Every fine-tuning keeps the best validation epoch, the previous
# model competing as epoch 0.

# %%
stage_rows = []
for tag in [t for t in compress_on if t in available]:
    s = baseline_run("acdnet", available[tag], run_dir_for(run_root, tag, "acdnet_base"), **recipe(tag), progress=False,
                     kwargs={**base, "xnor": False})
    r = compressed_run(s["run_dir"], available[tag], sparsity=sparsity, keep_fraction=keep_fraction,
                       calib_clips=calib_clips, epochs=finetune_epochs, max_steps=finetune_batches_per_epoch,
                       lr=finetune_lr, batch_size=finetune_batch_size, device=device, progress=False)
    for stage, v in r["stages"].items():
        stored = v["nonzero_params"] if stage == "magnitude" else v["params"]     # sparse storage only after magnitude pruning
        stage_rows.append({"data": tag, "stage": stage, "params": v["params"], "non-zero params": v["nonzero_params"],
                           "weight B": v.get("int8_bytes", 4 * stored), "MMACs": v["macs"] / 1e6,
                           "val %": 100 * v["val_acc"], "test %": 100 * v["test_acc"]})
stages = pd.DataFrame(stage_rows)
stages.round(2)

# %% [markdown]
# *weight B* counts the bytes of the non-zero float32 weights after magnitude pruning (an ideal
# sparse storage, indices not counted), of every float32 weight of the dense channel-pruned network,
# and the int8 bytes with their scales for the quantised one. Next to the micro XNOR network on the
# same data, the last stage is the paper's comparison point: memory and
# computation against accuracy.

# %%
if len(stages):
    both = []
    for tag in stages.data.unique():
        q = stages[(stages.data == tag) & (stages.stage == "int8")].iloc[0]
        xr = xnor_table[(xnor_table.data == tag) & (xnor_table.network == "XNOR")].iloc[0]
        fr = xnor_table[(xnor_table.data == tag) & (xnor_table.network == "float")].iloc[0]
        both += [{"data": tag, "network": "pruned + int8", "weight kB": q["weight B"] / 1e3, "MMACs (effective)": q["MMACs"], "test %": q["test %"]},
                 {"data": tag, "network": "micro XNOR", "weight kB": xr["weight kB (cost model)"], "MMACs (effective)": xr["effective MMACs"], "test %": xr["test %"]},
                 {"data": tag, "network": "micro float", "weight kB": fr["weight kB (cost model)"], "MMACs (effective)": fr["effective MMACs"], "test %": fr["test %"]}]
    display(pd.DataFrame(both).round(2))
