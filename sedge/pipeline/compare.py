"""Every method on the same data in one table (SPEC §10–11).

:func:`collect` reads back the cached stages of the training, iterative-pruning, filter-pruning,
convexity and XNOR chapters at one profile's parameters (the same calls those chapters make, read
only: a missing stage is an error naming it, never a retrain) and returns one row per trained or compressed network:

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

from sedge.pipeline.profiles import chapter_values
from sedge.data import available_datasets
from sedge.pipeline.experiments import finetuned_run, load_run, pruned_run, run_dir_for, stages_readonly
from sedge.pipeline.parameters import for_data

SAMPLES = 16_000


def _recipe(P: dict, tag: str, prefix: str = "") -> dict:
    """A chapter's training-stage keywords (epochs, batches per epoch, lr, batch size) under ``prefix``
    for dataset ``tag``: a chapter may give any of them per dataset (``epochs: {mini: 25, …}``), as
    the chapter itself resolves them (:func:`sedge.pipeline.parameters.for_data`)."""
    value = {k: for_data(P[f"{prefix}{k}"], tag, f"{prefix}{k}") for k in ("epochs", "batches_per_epoch", "lr", "batch_size")}
    return dict(epochs=value["epochs"], max_steps=value["batches_per_epoch"], lr=value["lr"], batch_size=value["batch_size"])


def _sedge_rows(P: dict, progress: bool) -> list[dict]:
    import json

    from sedge.pipeline.baseline_experiments import convexity_pruned_run
    from sedge.models.cost import cost_report
    rows = []
    tr, pr = P["01_training"], P["04_iterative_pruning"]
    for tag, spec in available_datasets(tr["datasets"]).items():
        for m in for_data(tr["models"], tag, "models"):
            run_dir = run_dir_for(tr["run_root"], tag, m)
            model, _, _ = load_run(run_dir)
            s = json.loads((run_dir / "summary.json").read_text())
            c = cost_report(model, [1] * len(model.layers))
            rows.append({"data": tag, "family": "S-Edge", "model": m, "method": "trained", "params": c["params_paper"],
                         "macs": c["mmac_per_clip"] * 1e6, "val %": 100 * s["val_acc"], "test %": 100 * s["test_acc"],
                         "checkpoint": str(run_dir / "best.pt")})
    for tag, spec in available_datasets(pr["datasets"]).items():
        for m in for_data(pr["models"], tag, "models"):
            run_dir = run_dir_for(pr["run_root"], tag, m)
            for b in pr["budgets"]:
                s = pruned_run(run_dir, spec, budget_pp=b, step_fraction=pr["step_fraction"], max_val=pr["max_val"],
                               progress=progress)
                rows.append({"data": tag, "family": "S-Edge", "model": m, "method": f"MOR ≤ {b:g} pp",
                             "params": s["params_after"], "macs": s["macs_after"] * SAMPLES, "val %": s["val_acc_after"],
                             "test %": s["test_acc_after"], "checkpoint": s["prune_dir"] + "/pruned.pt"})
                if b in pr["finetune_budgets"]:
                    out = run_dir / "prune" / (Path(s["prune_dir"]).name + "_finetune")
                    f = finetuned_run(s["prune_dir"] + "/pruned.pt", spec, out, **_recipe(pr, tag, "finetune_"),
                                      progress=progress)
                    rows.append({**rows[-1], "method": f"MOR ≤ {b:g} pp + fine-tuning", "val %": 100 * f["val_acc"],
                                 "test %": 100 * f["test_acc"], "checkpoint": str(out / "best.pt")})
            for b in pr["data_weighted_budgets"]:
                s = pruned_run(run_dir, spec, budget_pp=b, step_fraction=pr["step_fraction"], max_val=pr["max_val"],
                               method="data", gramian_clips=pr["gramian_clips"], progress=progress)
                rows.append({"data": tag, "family": "S-Edge", "model": m, "method": f"MOR data-weighted ≤ {b:g} pp",
                             "params": s["params_after"], "macs": s["macs_after"] * SAMPLES, "val %": s["val_acc_after"],
                             "test %": s["test_acc_after"], "checkpoint": s["prune_dir"] + "/pruned.pt"})
    cv = P["07_convexity"]
    for tag, spec in available_datasets(cv["datasets"]).items():
        for m in for_data(cv["models"], tag, "models"):
            run_dir = run_dir_for(cv["run_root"], tag, m)
            r = convexity_pruned_run(run_dir, spec, "sedge", **_recipe(cv, tag, "finetune_sedge_"), max_val=cv["max_val"],
                                     progress=progress)
            if r["keep"] < r["layers"]:
                small, _, _ = load_run(run_dir / "convexity" / "finetune")
                rows.append({"data": tag, "family": "S-Edge", "model": m, "method": f"convexity: {r['keep']} of {r['layers']} layers",
                             "params": r["params_pruned"], "macs": cost_report(small, [1] * len(small.layers))["mmac_per_clip"] * 1e6,
                             "val %": 100 * r["val_acc_finetuned"], "test %": 100 * r["test_acc_finetuned"],
                             "checkpoint": str(run_dir / "convexity" / "finetune" / "best.pt")})
    return rows


def _baseline_rows(P: dict, progress: bool) -> list[dict]:
    from sedge.models.acdnet import cost as acd_cost
    from sedge.pipeline.baseline_experiments import (XNOR_VARIANTS, baseline_run, compressed_run, convexity_pruned_run,
                                        dcase_costs, filter_pruned_run)
    from sedge.training.baselines import load_baseline
    rows = []
    fp = P["06_filter_pruning"]
    for tag, spec in available_datasets(fp["datasets"]).items():
        s = baseline_run("dcase", spec, run_dir_for(fp["run_root"], tag, "dcase"), **_recipe(fp, tag), progress=progress)
        c = dcase_costs(load_baseline(s["run_dir"] + "/best.pt")[0])
        rows.append({"data": tag, "family": "DCASE CNN", "model": "16-16-32", "method": "trained", "params": c["params"],
                     "macs": c["macs"]["total"], "val %": 100 * s["val_acc"], "test %": 100 * s["test_acc"]})
        for layers in fp["layer_sets"]:
            r = filter_pruned_run(s["run_dir"], spec, tuple(layers), **_recipe(fp, tag, "finetune_"),
                                  max_fraction=fp["max_fraction"], progress=progress)
            rows.append({"data": tag, "family": "DCASE CNN", "model": "-".join(map(str, r["pruned"]["channels"])),
                         "method": "filter pruning " + "+".join(f"C{i}" for i in layers) + " + fine-tuning",
                         "params": r["pruned"]["params"], "macs": r["pruned"]["macs"]["total"],
                         "val %": 100 * r["finetuned"]["val_acc"], "test %": 100 * r["finetuned"]["test_acc"]})
    cv = P["07_convexity"]
    for tag, spec in available_datasets(cv["datasets"]).items():
        t = baseline_run("transformer", spec, run_dir_for(cv["run_root"], tag, "transformer"),
                         **_recipe(cv, tag, "transformer_"), progress=progress)
        r = convexity_pruned_run(t["run_dir"], spec, "transformer", **_recipe(cv, tag, "finetune_transformer_"),
                                 max_val=cv["max_val"], progress=progress)
        rows.append({"data": tag, "family": "transformer", "model": f"{r['layers']} blocks", "method": "trained",
                     "params": r["params"], "macs": r["macs"], "val %": 100 * r["val_acc"], "test %": 100 * r["test_acc"]})
        if r["keep"] < r["layers"]:
            rows.append({"data": tag, "family": "transformer", "model": f"{r['keep']} blocks",
                         "method": f"convexity: {r['keep']} of {r['layers']} blocks", "params": r["params_pruned"],
                         "macs": r["macs_pruned"], "val %": 100 * r["val_acc_finetuned"], "test %": 100 * r["test_acc_finetuned"]})
    xn = P["08_xnor"]
    for tag, spec in available_datasets(xn["datasets"]).items():
        for network, (name, variant) in XNOR_VARIANTS.items():
            s = baseline_run("acdnet", spec, run_dir_for(xn["run_root"], tag, name), **_recipe(xn, tag), progress=progress,
                             kwargs={"sfeb": xn["micro_sfeb"], "widths": xn["micro_widths"], **variant})
            c = acd_cost(load_baseline(s["run_dir"] + "/best.pt")[0])
            method = "trained" if network == "float" else network.replace("XNOR", "XNOR-Net")
            rows.append({"data": tag, "family": "ACDNet", "model": "micro", "method": method,
                         "params": c["params"], "macs": c["macs"], "effective macs": c["macs_effective"],
                         "weight bits": c["weight_bits"], "val %": 100 * s["val_acc"], "test %": 100 * s["test_acc"]})
        if tag in xn["compress_on"]:
            s = baseline_run("acdnet", spec, run_dir_for(xn["run_root"], tag, "acdnet_base"), **_recipe(xn, tag),
                             progress=progress, kwargs={"sfeb": xn["base_sfeb"], "widths": xn["base_widths"], "xnor": False})
            r = compressed_run(s["run_dir"], spec, sparsity=xn["sparsity"], keep_fraction=xn["keep_fraction"],
                               calib_clips=xn["calib_clips"], **_recipe(xn, tag, "finetune_"), progress=progress)
            names = {"float": "trained", "magnitude": f"magnitude {xn['sparsity']:.0%}",
                     "channels": "+ channel pruning", "int8": "+ int8 quantisation"}
            for stage, v in r["stages"].items():
                n = v["nonzero_params"] if stage == "magnitude" else v["params"]   # sparse only after magnitude pruning
                rows.append({"data": tag, "family": "ACDNet", "model": "base", "method": names[stage],
                             "params": n, "macs": v["macs"], "weight bits": 8 * v["int8_bytes"] if "int8_bytes" in v else 32 * n,
                             "val %": 100 * v["val_acc"], "test %": 100 * v["test_acc"]})
    return rows


def collect(profile: str, progress: bool = False):
    """One row per network of every chapter at ``profile`` (a pandas DataFrame; see module docstring).
    Only reads: a stage the chapters have not computed is a :class:`~sedge.pipeline.experiments.StageMissing`
    error naming it."""
    import pandas as pd
    chapters = ("01_training", "04_iterative_pruning", "06_filter_pruning", "07_convexity", "08_xnor")
    P = {c: chapter_values(profile, c) for c in chapters}
    with stages_readonly():                # read back what the chapters computed; never train here
        df = pd.DataFrame(_sedge_rows(P, progress) + _baseline_rows(P, progress))
    if "effective macs" not in df:
        df["effective macs"] = float("nan")
    df["effective macs"] = df["effective macs"].fillna(df["macs"])
    if "weight bits" not in df:
        df["weight bits"] = float("nan")
    df["weight bits"] = df["weight bits"].fillna(32 * df["params"])
    return df
