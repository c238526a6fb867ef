"""Cached stages of the comparison baselines, shared by the notebooks and the CLI (SPEC §10).

Same convention as :mod:`sedge.pipeline.experiments` (:mod:`sedge.pipeline.stages`): calling a stage again with the
same key — configuration, input checkpoint, data and the code it runs — reads the finished result.
"""
from __future__ import annotations

import json
from pathlib import Path

from sedge.data import load_data
from sedge.paths import atomic_write_json, portable
from sedge.pipeline.stages import begin, commit, finished, stage_key
from sedge.training.evaluation import accuracy, predict
from sedge.models.dcase_cnn import conv_macs, keras_param_count
from sedge.compress.filter_pruning import prune_filters, redundant_filters
from sedge.training.baselines import build_baseline, load_baseline, train_baseline


#: The library code each kind of stage runs (its key holds their fingerprint).
BASELINE_CODE = ("sedge.training.baselines",)
FILTER_CODE = ("sedge.compress.filter_pruning", "sedge.training.baselines")
CONVEXITY_CODE = ("sedge.compress.layer_pruning", "sedge.training.baselines", "sedge.models.cost")
COMPRESS_CODE = ("sedge.compress.prune_quantise", "sedge.training.baselines")

#: The micro ACDNet networks of the XNOR chapter: label → (run folder name, ACDNet keyword arguments).
XNOR_VARIANTS: dict[str, tuple[str, dict]] = {
    "float": ("acdnet_micro", {"xnor": False}),
    "XNOR": ("acdnet_micro_xnor", {"xnor": True}),                                    # the paper's variant
    "XNOR, float SFEB": ("acdnet_micro_xnor_fsfeb", {"xnor": True, "binary_sfeb": False}),   # ablation
}


def baseline_run(kind: str, data_spec: str, run_dir: str | Path, *, epochs: int, lr: float,
                 batch_size: int = 32, max_steps: int | None = None, seed: int = 0, kwargs: dict | None = None,
                 progress: bool = True, device: str = "cpu") -> dict:
    """Train baseline ``kind`` on ``data_spec`` into ``run_dir`` unless already done (the notebooks use
    :func:`sedge.pipeline.experiments.run_dir_for`, i.e. ``root/<data_tag>_<kind>``)."""
    run_dir = Path(run_dir)
    data = load_data(data_spec)
    kwargs = {"n_classes": len(data.classes), **(kwargs or {})}
    config = {"kind": kind, "kwargs": kwargs, "data": data_spec, "dataset": data.summary(), "epochs": epochs,
              "lr": lr, "batch_size": batch_size, "max_steps": max_steps, "seed": seed}
    key = stage_key(config, data=data_spec, code=BASELINE_CODE)
    if finished(run_dir, key, ("summary.json", "best.pt"), legacy_config=config):
        return {**json.loads((run_dir / "summary.json").read_text()), "run_dir": str(run_dir)}
    begin(run_dir, key)
    model = build_baseline(kind, seed=seed, **kwargs)     # seeded: the same initial weights on every rerun
    summary = train_baseline(model, data, run_dir, epochs=epochs, lr=lr, batch_size=batch_size, max_steps=max_steps,
                             seed=seed, data_spec=data_spec, progress=progress, device=device)
    commit(run_dir, key, ("summary.json", "best.pt"))
    return {**summary, "run_dir": str(run_dir)}


def dcase_costs(model) -> dict:
    """Parameter counts (paper/Keras: BN 4 per channel; trainable) and MACs per layer of a DCASE CNN."""
    return {"params_keras": keras_param_count(model), "params": sum(p.numel() for p in model.parameters()),
            "macs": conv_macs(model), "channels": list(model.channels)}


def filter_pruned_run(run_dir: str | Path, data_spec: str, layers: tuple[int, ...], *, epochs: int, lr: float,
                      batch_size: int = 32, max_steps: int | None = None, max_fraction: float = 0.5, seed: int = 0,
                      progress: bool = True, device: str = "cpu") -> dict:
    """Passive filter pruning of conv layers ``layers`` (1, 2, 3) of a trained DCASE CNN, then fine-tuning
    with validation selection (the pruned model competes as epoch 0). Cached under
    ``run_dir/filters/c<layers>``. Returns costs before/after and accuracies before/after fine-tuning."""
    run_dir = Path(run_dir)
    if not layers or not set(layers) <= {1, 2, 3}:
        raise ValueError(f"layers must be a non-empty subset of (1, 2, 3), got {layers}")
    layers = tuple(sorted(set(layers)))
    out = run_dir / "filters" / ("c" + "".join(map(str, layers)))
    config = {"checkpoint": portable(run_dir / "best.pt"), "data": data_spec, "layers": list(layers), "epochs": epochs,
              "lr": lr, "batch_size": batch_size, "max_steps": max_steps, "max_fraction": max_fraction, "seed": seed}
    key = stage_key(config, inputs={"checkpoint": run_dir / "best.pt"}, data=data_spec, code=FILTER_CODE)
    if finished(out, key, ("result.json", "best.pt"), legacy_config=config):
        return {**json.loads((out / "result.json").read_text()), "out": str(out)}
    begin(out, key)
    model, meta = load_baseline(run_dir / "best.pt")
    if model.arch["kind"] != "dcase":
        raise ValueError(f"{run_dir}: filter pruning is defined for the DCASE CNN, not {model.arch['kind']!r}")
    data = load_data(data_spec).restrict_to(meta["classes"])
    remove = {i: redundant_filters(getattr(model, f"conv{i}").weight, max_fraction) for i in layers}
    small = prune_filters(model, remove).eval()
    small.arch = {"kind": "dcase", "kwargs": {**model.arch["kwargs"], "channels": tuple(small.channels)}}
    x_val, y_val = data.val.tensors(*meta["norm"])
    x_test, y_test = data.test.tensors(*meta["norm"])
    before = {"val_acc": accuracy(predict(model, x_val), y_val), "test_acc": accuracy(predict(model, x_test), y_test)}
    pruned = {"val_acc": accuracy(predict(small, x_val), y_val), "test_acc": accuracy(predict(small, x_test), y_test)}
    tuned = train_baseline(small, data, out, epochs=epochs, lr=lr, batch_size=batch_size, max_steps=max_steps,
                           seed=seed, init_competes=True, data_spec=data_spec, progress=progress,
                           device=device)
    result = {"layers": list(layers), "removed": {str(i): r for i, r in remove.items()},
              "unpruned": {**before, **dcase_costs(model)}, "pruned": {**pruned, **dcase_costs(small)},
              "finetuned": {"val_acc": tuned["val_acc"], "test_acc": tuned["test_acc"], "best_epoch": tuned["best_epoch"],
                            "train_seconds": tuned["train_seconds"]}}
    atomic_write_json(out / "result.json", result)
    commit(out, key, ("result.json", "best.pt"))
    return {**result, "out": str(out)}


def transformer_macs(model, clip_samples: int = 16000) -> int:
    """MACs of one clip through the frame transformer: embedding, per block the q/k/v/out projections
    (4 T d²), attention scores and mixing (2 T² d) and the feed-forward (2 T d ff), the classifier."""
    T, d = clip_samples // model.frame, model.embed.out_features
    per_block = sum(4 * T * d * d + 2 * T * T * d + 2 * T * d * b.linear1.out_features for b in model.blocks)
    return T * model.frame * d + per_block + d * model.classifier.out_features


def convexity_pruned_run(run_dir: str | Path, data_spec: str, family: str, *, epochs: int, lr: float,
                         batch_size: int = 16, max_steps: int | None = None, max_val: int | None = None,
                         progress: bool = True, device: str = "cpu") -> dict:
    """Convexity-guided layer pruning of the trained model in ``run_dir`` (``family``: ``"sedge"`` or
    ``"transformer"``): layer-wise convexity on validation clips, layers after the peak dropped,
    fine-tuning with validation selection. Cached in ``run_dir/convexity``."""
    from sedge.models.cost import layer_shapes, paper_params
    from sedge.pipeline.experiments import finetuned_run
    from sedge.training.checkpoints import load_checkpoint, save_checkpoint
    from sedge.compress.layer_pruning import convexity_profile, layers_to_keep, truncate_sedge, truncate_transformer
    if family not in ("sedge", "transformer"):
        raise ValueError(f"family must be 'sedge' or 'transformer', got {family!r}")
    run_dir = Path(run_dir)
    out = run_dir / "convexity"
    config = {"run": portable(run_dir), "data": data_spec, "family": family, "epochs": epochs, "lr": lr,
              "batch_size": batch_size, "max_steps": max_steps, "max_val": max_val}
    key = stage_key(config, inputs={"checkpoint": run_dir / "best.pt"}, data=data_spec, code=CONVEXITY_CODE)
    if finished(out, key, ("result.json",), legacy_config=config):
        return json.loads((out / "result.json").read_text())
    begin(out, key)
    if family == "sedge":
        model, meta = load_checkpoint(run_dir / "best.pt")
        params = lambda m: paper_params(layer_shapes(m), m.cfg.n_classes)       # noqa: E731
        depth = len(model.layers)
    else:
        model, meta = load_baseline(run_dir / "best.pt")
        params = lambda m: sum(p.numel() for p in m.parameters())               # noqa: E731
        depth = len(model.blocks)
    data = load_data(data_spec).restrict_to(meta["classes"])
    x_val, y_val = data.val.tensors(*meta["norm"])
    x_test, y_test = data.test.tensors(*meta["norm"])
    sel = slice(None, max_val)
    scores = convexity_profile(model, x_val[sel], y_val[sel].numpy())
    keep = layers_to_keep(scores)
    run_summary = json.loads((run_dir / "summary.json").read_text())
    result = {"family": family, "scores": scores, "layers": depth, "keep": keep, "params": params(model),
              "val_acc": run_summary["val_acc"], "test_acc": run_summary["test_acc"]}
    if family == "transformer":
        result["macs"] = transformer_macs(model)
    if keep < depth:
        small = truncate_sedge(model, keep) if family == "sedge" else truncate_transformer(model, keep)
        small.eval()
        result.update({"params_pruned": params(small),
                       "val_acc_truncated": accuracy(predict(small, x_val), y_val),
                       "test_acc_truncated": accuracy(predict(small, x_test), y_test)})
        if family == "sedge":
            save_checkpoint(out / "truncated.pt", small, {k: meta[k] for k in ("classes", "norm", "data") if k in meta})
            tuned = finetuned_run(out / "truncated.pt", data_spec, out / "finetune", epochs=epochs, lr=lr,
                                  batch_size=batch_size, max_steps=max_steps, progress=progress)
        else:
            result["macs_pruned"] = transformer_macs(small)
            tuned = train_baseline(small, data, out / "finetune", epochs=epochs, lr=lr, batch_size=batch_size,
                                   max_steps=max_steps, init_competes=True, data_spec=data_spec, progress=progress,
                                   device=device)
        result.update({"val_acc_finetuned": tuned["val_acc"], "test_acc_finetuned": tuned["test_acc"],
                       "finetune_best_epoch": tuned["best_epoch"]})
    atomic_write_json(out / "result.json", result)
    commit(out, key, ("result.json",))
    return result


def compressed_run(run_dir: str | Path, data_spec: str, *, sparsity: float, keep_fraction: float, epochs: int,
                   lr: float, batch_size: int = 32, max_steps: int | None = None, calib_clips: int = 64,
                   progress: bool = True, device: str = "cpu") -> dict:
    """The compression path of Mohaimenuzzaman et al. on the float ACDNet in ``run_dir`` (SPEC §10):

    1. global magnitude pruning to ``sparsity``, fine-tuned with the masks re-applied after every step;
    2. structured channel pruning keeping ``keep_fraction`` of every feature conv's channels (largest
       L1 norm), fine-tuned;
    3. 8-bit post-training quantisation (int8 weights per channel, uint8 activations calibrated on
       ``calib_clips`` training clips).

    Every fine-tuning selects on validation with the previous model competing as epoch 0. Cached in
    ``run_dir/compress_s<sparsity>_k<keep>``; returns cost and accuracy after each stage."""
    import copy

    from sedge.models.acdnet import cost
    from sedge.compress.prune_quantise import apply_masks, magnitude_masks, prune_channels, quantise_model, quantised_bytes
    run_dir = Path(run_dir)
    out = run_dir / f"compress_s{sparsity:g}_k{keep_fraction:g}"
    config = {"run": portable(run_dir), "data": data_spec, "sparsity": sparsity, "keep_fraction": keep_fraction,
              "epochs": epochs, "lr": lr, "batch_size": batch_size, "max_steps": max_steps, "calib_clips": calib_clips}
    key = stage_key(config, inputs={"checkpoint": run_dir / "best.pt"}, data=data_spec, code=COMPRESS_CODE)
    if finished(out, key, ("result.json",), legacy_config=config):
        return json.loads((out / "result.json").read_text())
    begin(out, key)
    base, meta = load_baseline(run_dir / "best.pt")
    if base.arch["kind"] != "acdnet" or base.xnor:
        raise ValueError(f"{run_dir}: the compression path starts from a float ACDNet")
    data = load_data(data_spec).restrict_to(meta["classes"])
    x_val, y_val = data.val.tensors(*meta["norm"])
    x_test, y_test = data.test.tensors(*meta["norm"])
    ft = dict(epochs=epochs, lr=lr, batch_size=batch_size, max_steps=max_steps, init_competes=True,
              data_spec=data_spec, progress=progress, device=device)

    def describe(model, **extra):
        c = cost(model)
        nonzero = sum(int((p != 0).sum()) for p in model.parameters())
        return {"params": c["params"], "nonzero_params": nonzero, "macs": c["macs"], "float_bytes": 4 * c["params"],
                "val_acc": accuracy(predict(model, x_val), y_val), "test_acc": accuracy(predict(model, x_test), y_test),
                **extra}

    stages = {"float": describe(base)}
    masks = magnitude_masks(base, sparsity)
    sparse = copy.deepcopy(base)
    apply_masks(sparse, masks)
    train_baseline(sparse, data, out / "magnitude", after_step=lambda m: apply_masks(m, masks), **ft)
    sparse, _ = load_baseline(out / "magnitude" / "best.pt")
    stages["magnitude"] = describe(sparse)
    slim = prune_channels(sparse, keep_fraction)
    train_baseline(slim, data, out / "channels", **ft)
    slim, _ = load_baseline(out / "channels" / "best.pt")
    stages["channels"] = describe(slim)
    calib = data.train.tensors(*meta["norm"])[0][:calib_clips]
    q = quantise_model(copy.deepcopy(slim), calib)
    stages["int8"] = {**stages["channels"], "val_acc": accuracy(predict(q, x_val), y_val),
                      "test_acc": accuracy(predict(q, x_test), y_test), "int8_bytes": quantised_bytes(q)}
    result = {"sparsity": sparsity, "keep_fraction": keep_fraction, "widths": list(slim.arch["kwargs"]["widths"]),
              "stages": stages}
    atomic_write_json(out / "result.json", result)
    commit(out, key, ("result.json",))
    return result
