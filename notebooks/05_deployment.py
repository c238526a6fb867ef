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
# # Deployment: export, C++ and its speed
#
# A trained (or pruned) model at a step-scale list is folded into an *export dict*: Λ̄ at
# s_ℓ·Δ, B̄ and b̄ with BatchNorm folded in, C, Re c, skip, the cumulative step scale, and the decoder
# with the input normalisation folded into the first layer. `sedge.deploy.export.reference_logits` runs it in
# float64 NumPy; `sedge.deploy.cpp.generate_cpp` writes a self-contained C++17 project with the weights as
# constant arrays. The C++ has two paths: a **streaming** API (push one sample, read the logits; layer
# ℓ updates every s_ℓ samples and computes its output only when layer ℓ+1 or the time mean consumes
# it) and a **whole-clip** path that processes the clip in blocks, so that the input and output
# projections of every layer become small dense matrix products (register-blocked 6×16 kernels).
# This chapter checks parity against PyTorch on the whole test split (and against the float64 NumPy
# reference on a few clips; the tests hold NumPy to PyTorch within 1e-9), and measures size and speed.
#
# Every configuration is also deployed in **fixed point** (`sedge.compress.fixed_point`, `sedge export
# --fixed-point`): int8 — or int16 — weights with a power-of-two scale per output column, int16
# activations, int32 states with one scale per layer, the poles Λ̄ in Q30 rounded toward zero (so
# |λ̄_q| ≤ |λ̄| < 1: no quantised mode becomes unstable), int64 accumulators, and one float
# dequantisation of the logits at the end. The scales are calibrated on training clips, never on test
# clips. Why int32 states: a slow mode's state is a sum over ~1/(1 − |λ̄|) steps — about 5,000 for
# the slowest mode of the trained `tiny` — and its per-step increment must still register next to it;
# int16 states (this chapter's first version) kept 3 bits of it and agreed with float32 on only
# 53–75 % of the trained `tiny`'s test clips. Why one state scale per layer: a scale per mode has to
# be folded into C, which spreads C's rows over three orders of magnitude and lets an int8 column
# scale zero the small ones. Why two weight widths: int8 weights are 4× smaller than float32 and
# carry the memory; int16 weights cost twice that and are closer to float.

# %% tags=["parameters"]
run_root = "runs/ci"            # the training chapter's run folder
datasets = {"synthetic": "synthetic:n_speakers=20,words=yes+no+up+down,snr_db=10"}  # dataset tag → data spec
models = ["tiny"]               # trained models to deploy, per dataset
step_scales = {"3": [[1, 1, 1], [1, 9, 54]]}  # layer count → the step-scale lists to deploy
pruned_budget_pp = 2.0          # the pruning chapter's search whose pruned model is deployed too: its budget,
pruned_step_fraction = 0.25     # its move size,
pruned_max_val = 16             # and its validation clips (None: all)
max_clips = 16                  # test clips for parity and accuracy (None: the whole test split)
reference_clips = 8             # clips also run through the float64 NumPy reference
timing_reps = 3                 # timing repetitions (best of)
calib_clips = 8                 # training clips that set the fixed-point scales
headrooms = [2.0, 4.0]          # fixed-point range margins over the largest calibration value to try; chosen on validation
fixed_weight_bits = [8, 16]     # fixed-point weight widths to deploy (8 and/or 16)

# %%
from sedge.pipeline.parameters import check_namespace, for_data
check_namespace(globals(), "05_deployment")

import subprocess
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import soundfile as sf
import torch

from sedge.report.plots import book_style, legend_below, panels, plain_log_ticks, show_table
from sedge.models.cost import layer_shapes, macs_per_sample
from sedge.deploy.cpp import STATE_MULTIPLE, CppModel, build_cli, build_shared, generate_cpp, interleaved_cpu_seconds
from sedge.deploy.cpp_fixed import generate_cpp_fixed
from sedge.data import available_datasets, load_data
from sedge.pipeline.experiments import load_run, pruned_run, run_dir_for
from sedge.deploy.export import export_dict, reference_logits
from sedge.compress.fixed_point import fixed_logits, quantise
from sedge.report.pareto import pareto_mask
from sedge.training.checkpoints import load_checkpoint
from sedge.training.evaluation import predict

torch.set_num_threads(2)
book_style()
available = available_datasets(datasets)
work = Path(tempfile.mkdtemp(prefix="sedge-deploy-"))

def raw_and_normalised(split, norm):
    x, y = split.tensors(*norm)
    x, y = (x[:max_clips], y[:max_clips]) if max_clips else (x, y)
    return x * norm[1] + norm[0], x, y.numpy()     # raw waveform in [-1, 1] (what the C++ reads), model input, labels


# %% [markdown]
# ## Parity and speed per model, pruning and step scale
#
# For every configuration: the export is generated and compiled (`-O3 -march=native`), the test clips
# run through PyTorch, the NumPy reference and both C++ paths. *max rel. err.* is the largest logit
# difference over the largest logit magnitude; *top-1 agree* is the share of clips where C++ and
# PyTorch pick the same class. Times are process CPU time for one 1-s clip (best of a few runs, one
# thread), every program timed once per round over three rounds so that load on the machine slows
# them alike; the real-time factor is that time over one second. The C++ pads each layer's states
# to a multiple of 8 with zero states (same output, whole 8-float vectors), so a pruned layer runs
# no more vector operations than its parent (pruned against unpruned times are compared below);
# memory counts the padding.

# %% tags=["hide-input"]
rows, fixed_rows, headroom_rows, probe, timed = [], [], [], None, {}
for tag, spec in available.items():
    data = load_data(spec)
    for m in for_data(models, tag, "models"):
        run_dir = run_dir_for(run_root, tag, m)
        base, meta, _ = load_run(run_dir)
        s = pruned_run(run_dir, spec, budget_pp=pruned_budget_pp, step_fraction=pruned_step_fraction,
                       max_val=pruned_max_val, progress=False)
        small, _ = load_checkpoint(s["prune_dir"] + "/pruned.pt")
        d_split = data.restrict_to(meta["classes"])
        raw_t, x_t, y_t = raw_and_normalised(d_split.test, meta["norm"])
        raw_v, _, y_v = raw_and_normalised(d_split.val, meta["norm"])      # the fronts below are chosen on these
        calib = d_split.train.waves[: calib_clips].astype(np.float64) / 32768   # training clips only
        # the fixed-point range margin, per weight width: the one whose program agrees with float32 on
        # the most validation clips (unpruned, first step-scale list); a tie goes to the larger margin
        sc0 = step_scales[str(len(base.layers))][0]
        d0 = export_dict(base, sc0, norm=tuple(meta["norm"]), classes=meta["classes"])
        float_val = CppModel(build_shared(generate_cpp(d0, work / f"{tag}_{m}_headroom"))).classify(raw_v.numpy()).argmax(1)
        headroom = {}
        for bits in fixed_weight_bits:
            tried = {}
            for h in headrooms:
                q = quantise(d0, calib, headroom=h, weight_bits=bits)
                fx = CppModel(build_shared(generate_cpp_fixed(q, work / f"{tag}_{m}_headroom{h:g}_int{bits}")))
                tried[h] = 100 * float((fx.classify(raw_v.numpy()).argmax(1) == float_val).mean())
            headroom[bits] = max(tried, key=lambda h: (tried[h], h))
            headroom_rows.append({"data": tag, "model": m, "weights": f"int{bits}",
                                  **{f"val agree % at headroom {h:g}": a for h, a in tried.items()},
                                  "chosen headroom": headroom[bits]})
        for kind, model in (("unpruned", base), (f"pruned {pruned_budget_pp} pp", small)):
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
                rows.append({"data": tag, "model": m, "kind": kind, "step scale": "-".join(map(str, sc)), "states": [l.P for l in model.layers],
                             "max rel. err. C++ vs PyTorch": np.abs(out - pt).max() / scale,
                             "max rel. err. NumPy vs PyTorch": np.abs(ref - pt[:reference_clips]).max() / scale,
                             "max rel. err. stream vs block": np.abs(streamed - out[:4]).max() / np.abs(out[:4]).max(),
                             "top-1 agree %": 100 * float((out.argmax(1) == pt.argmax(1)).mean()),
                             "val acc % (C++)": 100 * float((cpp.classify(raw_v.numpy()).argmax(1) == y_v).mean()),
                             "test acc % (C++)": 100 * float((out.argmax(1) == y_t).mean()),
                             "weights B": cpp.weight_bytes, "state B": cpp.state_bytes,
                             "MMAC/clip (C++ conv.)": macs_per_sample(layer_shapes(model), model.cfg.n_classes, sc, "cpp") * 16e3 / 1e6,
                             "clips": len(y_t)})
                timed[len(rows) - 1, "µs/clip"] = lambda cpp=cpp, one=one: cpp.classify(one)
                timed[len(rows) - 1, "µs/clip streaming"] = lambda cpp=cpp, one=one: cpp.classify(one, path="stream")
                for bits in fixed_weight_bits:
                    q = quantise(d, calib, headroom=headroom[bits], weight_bits=bits)
                    fx = CppModel(build_shared(generate_cpp_fixed(q, Path(f"{proj}_fixed{bits}"))))
                    fx_out = fx.classify(raw_t.numpy())
                    fx_ref = fixed_logits(q, raw_t[:reference_clips].numpy())
                    fixed_rows.append({"data": tag, "model": m, "kind": kind, "step scale": "-".join(map(str, sc)), "weights": f"int{bits}",
                                       "headroom": headroom[bits],
                                       "test acc % float": rows[-1]["test acc % (C++)"],
                                       "val acc % fixed": 100 * float((fx.classify(raw_v.numpy()).argmax(1) == y_v).mean()),
                                       "test acc % fixed": 100 * float((fx_out.argmax(1) == y_t).mean()),
                                       "top-1 agree % fixed vs float": 100 * float((fx_out.argmax(1) == out.argmax(1)).mean()),
                                       "max rel. err. fixed vs float": np.abs(fx_out - out).max() / np.abs(out).max(),
                                       "C++ == integer NumPy": bool(np.array_equal(fx_out[:reference_clips], fx_ref)),
                                       "weights B float": cpp.weight_bytes, "weights B fixed": fx.weight_bytes,
                                       "state B float": cpp.state_bytes, "state B fixed": fx.state_bytes,
                                       "_float_row": len(rows) - 1})
                    timed["fixed", len(fixed_rows) - 1] = lambda fx=fx, one=one: fx.classify(one)
                probe = probe or (proj, d_split.test, meta["classes"])
            model.set_step_scale([1] * len(model.layers))
for (i, column), seconds in interleaved_cpu_seconds(timed, timing_reps).items():   # every program, round after round
    if i == "fixed":
        fixed_rows[column]["µs/clip fixed"] = 1e6 * seconds
    else:
        rows[i][column] = 1e6 * seconds
for r in rows:
    r["RTF"] = r["µs/clip"] / 1e6
for f in fixed_rows:
    f["µs/clip float (streaming)"] = rows[f.pop("_float_row")]["µs/clip streaming"]
deploy = pd.DataFrame(rows)
assert (deploy["max rel. err. C++ vs PyTorch"] <= 1e-4).all(), "C++ parity broken"
parity = deploy.groupby(["data", "model", "kind"], sort=False).agg(
    **{"configurations": ("step scale", "size"), "clips": ("clips", "first"),
       "worst rel. err. C++ vs PyTorch": ("max rel. err. C++ vs PyTorch", "max"),
       "worst rel. err. NumPy vs PyTorch": ("max rel. err. NumPy vs PyTorch", "max"),
       "worst rel. err. stream vs block": ("max rel. err. stream vs block", "max"),
       "lowest top-1 agree %": ("top-1 agree %", "min")}).reset_index()
show_table(parity, ["data", "model", "kind"])

# %% [markdown]
# Each row above is the worst over the model's step-scale lists. Every configuration on its own
# (click to show):

# %% tags=["hide-output"]
show_table(deploy[["data", "model", "kind", "step scale", "states", "max rel. err. C++ vs PyTorch",
                   "max rel. err. NumPy vs PyTorch", "max rel. err. stream vs block", "top-1 agree %", "clips"]],
           ["data", "model", "kind", "step scale"])

# %% [markdown]
# ## Size and latency next to the authors' microcontroller figures
#
# The authors report, on a Cortex-M4F, 103.5 s per clip for `full` (95.19 % on Speech Commands) and
# 0.289 s for `tiny` at [1, 9, 54] (88.01 %, 12.1 MFLOP) — a different processor class, quoted for
# scale only. On one core of this machine:

# %%
summary = deploy[["data", "model", "kind", "step scale", "weights B", "state B", "MMAC/clip (C++ conv.)", "µs/clip",
                  "µs/clip streaming", "test acc % (C++)"]].copy()
show_table(summary, ["data", "model", "kind", "step scale"])
gmacs = deploy["MMAC/clip (C++ conv.)"] / deploy["µs/clip"] * 1e3
print(f"real-time factor (µs per clip / 10⁶): {deploy['RTF'].min():.1e} to {deploy['RTF'].max():.1e}\n"
      f"whole-clip throughput: {gmacs.min():.2f}–{gmacs.max():.2f} GMAC/s on one core")

# %% [markdown]
# **Pruned against unpruned.** The pruned model next to its parent at the same step scale, both
# timed in the same rounds. The C++ pads every layer to a multiple of 8 states, so pruning only
# saves time where a layer's order falls below a multiple of 8 (*padded states* differ); where the
# padded orders are the same, the two programs do the same work and a ratio near 1 is the timing
# noise of this machine.

# %%
unpruned, pruned = deploy[deploy["kind"] == "unpruned"], deploy[deploy["kind"] != "unpruned"]
pairs = unpruned.merge(pruned, on=["data", "model", "step scale"], suffixes=(" unpruned", " pruned"))
padded = lambda states: [-(-p // STATE_MULTIPLE) * STATE_MULTIPLE for p in states]   # noqa: E731
speed = pd.DataFrame({
    "data": pairs["data"], "model": pairs["model"], "step scale": pairs["step scale"],
    "padded states unpruned": pairs["states unpruned"].map(padded).map(str),
    "padded states pruned": pairs["states pruned"].map(padded).map(str),
    "MMAC pruned / unpruned ×": pairs["MMAC/clip (C++ conv.) pruned"] / pairs["MMAC/clip (C++ conv.) unpruned"],
    "time pruned / unpruned × (whole clip)": pairs["µs/clip pruned"] / pairs["µs/clip unpruned"],
    "time pruned / unpruned × (streaming)": pairs["µs/clip streaming pruned"] / pairs["µs/clip streaming unpruned"]})
show_table(speed, ["data", "model", "step scale"])
ratios = speed[["time pruned / unpruned × (whole clip)", "time pruned / unpruned × (streaming)"]].to_numpy()
print(f"time pruned / unpruned over {len(speed)} pairs and both paths: {ratios.min():.3f}–{ratios.max():.3f}× "
      f"(median {np.median(ratios):.3f}×)")

# %% [markdown]
# ## Fixed point against float32
#
# The same configurations in integer arithmetic. *C++ == integer NumPy* checks the generated integer
# program against `sedge.compress.fixed_point.fixed_logits` bit for bit on the first clips; the accuracy drop
# is the fixed-point test accuracy minus the float32 one, both computed by C++ on the same clips.
# Weights bytes count every constant array as the C++ stores it (int8 or int16 weights, int32 poles,
# int32 or int64 biases, one byte per shift count); the state is the streaming state (int32 modes and
# the int64 time sum against float32 modes and sum: the same size). The fixed-point program is a straightforward per-sample
# loop (the target is a microcontroller without a vector unit for floats), so its µs compare with
# the float streaming path.
#
# Every activation and state scale leaves a margin (the *headroom*) over the largest value seen on
# the calibration clips: a larger margin saturates less on unseen clips, a smaller one keeps more
# bits. Because the scales are powers of two, each doubling of the margin gives up one bit. The
# margin is chosen on validation, per model and weight width: the one whose program agrees with the
# float32 program on the most validation clips (unpruned model, first step-scale list; a tie goes to
# the larger margin), then used for every configuration of that model:

# %%
show_table(pd.DataFrame(headroom_rows), ["data", "model", "weights"])

# %% [markdown]
# With those margins, every configuration against its float32 program on the test clips:

# %%
fixed = pd.DataFrame(fixed_rows)
assert fixed["C++ == integer NumPy"].all(), "integer C++ differs from the integer reference"
fixed["acc. drop pp"] = fixed["test acc % float"] - fixed["test acc % fixed"]
fixed["weights saving ×"] = fixed["weights B float"] / fixed["weights B fixed"]
fixed["state fixed / float ×"] = fixed["state B fixed"] / fixed["state B float"]
fixed["time fixed / float streaming ×"] = fixed["µs/clip fixed"] / fixed["µs/clip float (streaming)"]
per_model = fixed.groupby(["data", "model", "weights"], sort=False).agg(
    **{"configurations": ("step scale", "size"),
       "lowest top-1 agree % fixed vs float": ("top-1 agree % fixed vs float", "min"),
       "largest acc. drop pp": ("acc. drop pp", "max"),
       "weights saving × (min)": ("weights saving ×", "min"),
       "state fixed / float × (max)": ("state fixed / float ×", "max"),
       "time fixed / float streaming × (median)": ("time fixed / float streaming ×", "median")}).reset_index()
show_table(per_model, ["data", "model", "weights"])
for w, g in fixed.groupby("weights", sort=False):
    print(f"{w} weights, {len(g)} configurations:\n"
          f"  accuracy drop mean {g['acc. drop pp'].mean():.2f} pp (range {g['acc. drop pp'].min():.2f} to "
          f"{g['acc. drop pp'].max():.2f})\n"
          f"  top-1 agreement with float {g['top-1 agree % fixed vs float'].min():.1f}–"
          f"{g['top-1 agree % fixed vs float'].max():.1f} %\n"
          f"  weights {g['weights saving ×'].min():.2f}–{g['weights saving ×'].max():.2f}× smaller than float32\n"
          f"  state {g['state fixed / float ×'].min():.2f}–{g['state fixed / float ×'].max():.2f}× the float32 state "
          f"(int32 modes, int64 time sum, padded to whole vectors)")

# %% [markdown]
# Every configuration and weight width on its own (click to show):

# %% tags=["hide-output"]
show_table(fixed[["data", "model", "kind", "step scale", "weights", "test acc % float", "test acc % fixed",
                  "acc. drop pp", "top-1 agree % fixed vs float", "max rel. err. fixed vs float",
                  "weights B fixed", "state B fixed", "µs/clip fixed", "µs/clip float (streaming)"]],
           ["data", "model", "kind", "step scale", "weights"])

# %% [markdown]
# ## Accuracy against latency
#
# Every deployed configuration: test accuracy as computed by the C++ program against µs per clip —
# colour is the model, the marker says pruned (square) or not (circle), the fill the arithmetic:
# float32 whole-clip path (open), fixed point with int8 weights (filled) and int16 weights (half
# filled). The line joins the configurations
# no other one beats on both speed and *validation* accuracy (the front is chosen on validation;
# the line and the points show their test accuracy, measured once).

# %%
cols = ["data", "model", "kind", "step scale", "µs/clip", "val acc % (C++)", "test acc % (C++)"]
fixed_points = fixed.rename(columns={"µs/clip fixed": "µs/clip", "val acc % fixed": "val acc % (C++)",
                                     "test acc % fixed": "test acc % (C++)"})
points = pd.concat([deploy[cols].assign(arith="float32"),
                    fixed_points[cols].assign(arith="fixed " + fixed_points["weights"])])
from matplotlib.lines import Line2D
fill = {"float32": "none", "fixed int8": "full", "fixed int16": "left"}
marker = {"unpruned": "o", f"pruned {pruned_budget_pp} pp": "s"}
model_names = list(dict.fromkeys(points["model"]))
colour = {m: f"C{i}" for i, m in enumerate(model_names)}          # one colour per model, every panel
fig, axes = panels(len(available), ncols=1, height=3.6)
for ax, tag in zip(axes, available):
    g = points[points.data == tag].reset_index(drop=True)
    for (m, kind, arith), h in g.groupby(["model", "kind", "arith"]):
        ax.plot(h["µs/clip"], h["test acc % (C++)"], marker[kind], color=colour[m], fillstyle=fill[arith],
                ms=6, ls="none")
    front = g[pareto_mask(g["µs/clip"].to_numpy(), g["val acc % (C++)"].to_numpy())].sort_values("µs/clip")
    ax.step(front["µs/clip"], front["test acc % (C++)"], "k-", where="post", lw=0.8)
    ax.set(xscale="log", title=f"{tag}: test accuracy against C++ time", xlabel="µs per 1-s clip (one core)",
           ylabel="test accuracy % (C++)")
    plain_log_ticks(ax)
key = ([Line2D([], [], color=colour[m], marker="o", ls="none", label=m) for m in model_names]
       + [Line2D([], [], color="0.3", marker=mk, ls="none", fillstyle="none", label=k) for k, mk in marker.items()]
       + [Line2D([], [], color="0.3", marker="o", ls="none", fillstyle=f, label=a) for a, f in fill.items()]
       + [Line2D([], [], color="k", lw=0.8, label="front (chosen on validation)")])
for h in key:
    axes[0].add_line(h)
legend_below(fig, axes, ncol=4)

# %% [markdown]
# ## Running the exported program on a WAV file
#
# `sedge export --checkpoint RUN/best.pt --step-scale 1,9,54 --out DIR --build` writes the project and
# compiles `DIR/sedge_classify`; the same project builds with CMake (`cmake -B build && cmake --build
# build`). Here the last configuration above classifies one test clip written as a 16-bit WAV:

# %%
proj, split, classes = probe
exe = build_cli(proj)
wav = work / "clip.wav"
sf.write(wav, split.waves[0], 16000, subtype="PCM_16")
out = subprocess.run([str(exe), str(wav)], capture_output=True, text=True, check=True).stdout.splitlines()
print(f"$ {exe.name} clip.wav   (true label: {classes[split.labels[0]]})")
print("\n".join(out[:4]), "\n...")
