"""Every method on the same data in one table (SPEC §10–11).

:func:`collect` reads back the cached stages of the training, iterative-pruning, filter-pruning,
convexity and XNOR chapters at one profile's parameters (the same calls those chapters make, so
nothing is recomputed once they have run) and returns one row per trained or compressed network:

    data, family, model, method, params, MACs per clip, effective MACs per clip, val %, test %,
    checkpoint (S-Edge rows: the file to deploy)

Counting conventions, one per family, as each paper counts: S-Edge parameters by the paper's
formula (SPEC §6) and MACs per 1-s clip at step scale 1; CNN and transformer parameters are the
trainable ones (after magnitude pruning the non-zero ones: an ideal sparse storage; the channel-pruned
and quantised networks are dense) and MACs those of the convolutions, linear layers and attention (the DCASE CNN's
log-mel front end not counted); effective MACs count a binary MAC as 1/64 (XNOR cost model), else
equal the MACs.
"""
from __future__ import annotations

from pathlib import Path

from .book import load_profile
from .experiments import finetuned_run, load_run, pruned_run, run_dir_for
from .paths import MINI_SPEECH_COMMANDS

SAMPLES = 16_000


def _available(spec: str) -> bool:
    return not (spec.startswith("mini") and not MINI_SPEECH_COMMANDS.exists())


def _sedge_rows(P: dict, progress: bool) -> list[dict]:
    import json

    from .baselines.experiments import convexity_pruned_run
    from .cost import cost_report
    rows = []
    tr, pr = P["01_training"], P["04_iterative_pruning"]
    for tag, ds in tr["datasets"].items():
        if not _available(ds["spec"]):
            continue
        for m in ds.get("models", tr["models"]):
            run_dir = run_dir_for(tr["run_root"], tag, m)
            model, _, _ = load_run(run_dir)
            s = json.loads((run_dir / "summary.json").read_text())
            c = cost_report(model, [1] * len(model.layers))
            rows.append({"data": tag, "family": "S-Edge", "model": m, "method": "trained", "params": c["params_paper"],
                         "macs": c["mmac_per_clip"] * 1e6, "val %": 100 * s["val_acc"], "test %": 100 * s["test_acc"],
                         "checkpoint": str(run_dir / "best.pt")})
    for tag, ds in pr["datasets"].items():
        if not _available(ds["spec"]):
            continue
        for m in ds["models"]:
            run_dir = run_dir_for(pr["run_root"], tag, m)
            for b in pr["budgets"]:
                s = pruned_run(run_dir, ds["spec"], budget_pp=b, step_fraction=pr["step_fraction"], max_val=pr["max_val"],
                               progress=progress)
                rows.append({"data": tag, "family": "S-Edge", "model": m, "method": f"MOR ≤ {b:g} pp",
                             "params": s["params_after"], "macs": s["macs_after"] * SAMPLES, "val %": s["val_acc_after"],
                             "test %": s["test_acc_after"], "checkpoint": s["prune_dir"] + "/pruned.pt"})
                if b in pr["finetune"]["budgets"]:
                    ft = pr["finetune"]
                    out = run_dir / "prune" / (Path(s["prune_dir"]).name + "_finetune")
                    f = finetuned_run(s["prune_dir"] + "/pruned.pt", ds["spec"], out, epochs=ft["epochs"],
                                      max_steps=ft["max_steps"], lr=ft["lr"], batch_size=ft["batch_size"], progress=progress)
                    rows.append({**rows[-1], "method": f"MOR ≤ {b:g} pp + fine-tuning", "val %": 100 * f["val_acc"],
                                 "test %": 100 * f["test_acc"], "checkpoint": str(out / "best.pt")})
    cv = P["07_convexity"]
    for tag, ds in cv["datasets"].items():
        if not _available(ds["spec"]):
            continue
        for m in ds["models"]:
            run_dir = run_dir_for(cv["run_root"], tag, m)
            r = convexity_pruned_run(run_dir, ds["spec"], "sedge", **cv["finetune_sedge"], max_val=cv["max_val"],
                                     progress=progress)
            if r["keep"] < r["layers"]:
                small, _, _ = load_run(run_dir / "convexity" / "finetune")
                rows.append({"data": tag, "family": "S-Edge", "model": m, "method": f"convexity: {r['keep']} of {r['layers']} layers",
                             "params": r["params_pruned"], "macs": cost_report(small, [1] * len(small.layers))["mmac_per_clip"] * 1e6,
                             "val %": 100 * r["val_acc_finetuned"], "test %": 100 * r["test_acc_finetuned"],
                             "checkpoint": str(run_dir / "convexity" / "finetune" / "best.pt")})
    return rows


def _baseline_rows(P: dict, progress: bool) -> list[dict]:
    from .baselines.acdnet import cost as acd_cost
    from .baselines.experiments import (XNOR_VARIANTS, baseline_run, compressed_run, convexity_pruned_run,
                                        dcase_costs, filter_pruned_run)
    from .baselines.train import load_baseline
    rows = []
    fp = P["06_filter_pruning"]
    for tag, spec in fp["datasets"].items():
        if not _available(spec):
            continue
        s = baseline_run("dcase", spec, run_dir_for(fp["run_root"], tag, "dcase"), **fp["train"], progress=progress)
        c = dcase_costs(load_baseline(s["run_dir"] + "/best.pt")[0])
        rows.append({"data": tag, "family": "DCASE CNN", "model": "16-16-32", "method": "trained", "params": c["params"],
                     "macs": c["macs"]["total"], "val %": 100 * s["val_acc"], "test %": 100 * s["test_acc"]})
        for layers in fp["layer_sets"]:
            r = filter_pruned_run(s["run_dir"], spec, tuple(layers), **fp["finetune"], max_fraction=fp["max_fraction"],
                                  progress=progress)
            rows.append({"data": tag, "family": "DCASE CNN", "model": "-".join(map(str, r["pruned"]["channels"])),
                         "method": "filter pruning " + "+".join(f"C{i}" for i in layers) + " + fine-tuning",
                         "params": r["pruned"]["params"], "macs": r["pruned"]["macs"]["total"],
                         "val %": 100 * r["finetuned"]["val_acc"], "test %": 100 * r["finetuned"]["test_acc"]})
    cv = P["07_convexity"]
    for tag, ds in cv["datasets"].items():
        if not _available(ds["spec"]):
            continue
        t = baseline_run("transformer", ds["spec"], run_dir_for(cv["run_root"], tag, "transformer"), **cv["transformer"],
                         progress=progress)
        r = convexity_pruned_run(t["run_dir"], ds["spec"], "transformer", **cv["finetune_transformer"],
                                 max_val=cv["max_val"], progress=progress)
        rows.append({"data": tag, "family": "transformer", "model": f"{r['layers']} blocks", "method": "trained",
                     "params": r["params"], "macs": r["macs"], "val %": 100 * r["val_acc"], "test %": 100 * r["test_acc"]})
        if r["keep"] < r["layers"]:
            rows.append({"data": tag, "family": "transformer", "model": f"{r['keep']} blocks",
                         "method": f"convexity: {r['keep']} of {r['layers']} blocks", "params": r["params_pruned"],
                         "macs": r["macs_pruned"], "val %": 100 * r["val_acc_finetuned"], "test %": 100 * r["test_acc_finetuned"]})
    xn = P["08_xnor"]
    for tag, spec in xn["datasets"].items():
        if not _available(spec):
            continue
        for network, (name, variant) in XNOR_VARIANTS.items():
            s = baseline_run("acdnet", spec, run_dir_for(xn["run_root"], tag, name), **xn["train"], progress=progress,
                             kwargs={**xn["micro"], **variant})
            c = acd_cost(load_baseline(s["run_dir"] + "/best.pt")[0])
            method = "trained" if network == "float" else network.replace("XNOR", "XNOR-Net")
            rows.append({"data": tag, "family": "ACDNet", "model": "micro", "method": method,
                         "params": c["params"], "macs": c["macs"], "effective macs": c["macs_effective"],
                         "weight bits": c["weight_bits"], "val %": 100 * s["val_acc"], "test %": 100 * s["test_acc"]})
        if tag in xn["compress"]["on"]:
            cp = xn["compress"]
            s = baseline_run("acdnet", spec, run_dir_for(xn["run_root"], tag, "acdnet_base"), **xn["train"],
                             progress=progress, kwargs={**xn["base"], "xnor": False})
            r = compressed_run(s["run_dir"], spec, sparsity=cp["sparsity"], keep_fraction=cp["keep_fraction"],
                               calib_clips=cp["calib_clips"], **cp["finetune"], progress=progress)
            names = {"float": "trained", "magnitude": f"magnitude {cp['sparsity']:.0%}",
                     "channels": "+ channel pruning", "int8": "+ int8 quantisation"}
            for stage, v in r["stages"].items():
                n = v["nonzero_params"] if stage == "magnitude" else v["params"]   # sparse only after magnitude pruning
                rows.append({"data": tag, "family": "ACDNet", "model": "base", "method": names[stage],
                             "params": n, "macs": v["macs"], "weight bits": 8 * v["int8_bytes"] if "int8_bytes" in v else 32 * n,
                             "val %": 100 * v["val_acc"], "test %": 100 * v["test_acc"]})
    return rows


def collect(profile: str, progress: bool = False):
    """One row per network of every chapter at ``profile`` (a pandas DataFrame; see module docstring)."""
    import pandas as pd
    P = load_profile(profile)
    df = pd.DataFrame(_sedge_rows(P, progress) + _baseline_rows(P, progress))
    if "effective macs" not in df:
        df["effective macs"] = float("nan")
    df["effective macs"] = df["effective macs"].fillna(df["macs"])
    if "weight bits" not in df:
        df["weight bits"] = float("nan")
    df["weight bits"] = df["weight bits"].fillna(32 * df["params"])
    return df
