"""Command-line interface: ``sedge <command> --help`` explains each command."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DATA_HELP = ("dataset: 'synthetic[:n_speakers=120,snr_db=5,...]' (offline default), 'mini' (the real 8-word "
             "excerpt beside the project), 'folder:ROOT' (any Speech-Commands-layout folder) or 'gsc:ROOT' "
             "('gsc+download:ROOT' downloads Speech Commands v0.02 with torchaudio)")

from sedge.memory import keep_freed_memory
from sedge.training.device import DEVICE_HELP  # light: torch is imported only when a device is resolved


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,6; got {text!r}")
    if not values:
        raise argparse.ArgumentTypeError("expected comma-separated integers such as 1,2,6; got nothing")
    return values


CLIP_SAMPLES = 16_000     # sedge.data.CLIP_SAMPLES, repeated here so that argument errors answer fast


def _step_scale(text: str) -> list[int]:
    """Cumulative per-layer factors, each between 1 and the clip length (a larger one leaves a layer no sample)."""
    values = _ints(text)
    bad = [v for v in values if not 1 <= v <= CLIP_SAMPLES]
    if bad:
        raise argparse.ArgumentTypeError(f"step scale {text!r}: factors must lie in 1…{CLIP_SAMPLES} (the clip "
                                         f"length in samples); got {bad}")
    return values


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def check_arguments(a: argparse.Namespace) -> None:
    """Refuse impossible values before any data is loaded or any folder created."""
    if getattr(a, "lr", None) is not None:
        _require(a.lr > 0, f"--lr must be > 0, got {a.lr}")
    for name in ("epochs", "batch_size", "max_steps", "max_val", "calib_clips", "step", "gramian_clips"):
        v = getattr(a, name, None)
        if v is not None and not isinstance(v, list):
            _require(v >= 1, f"--{name.replace('_', '-')} must be ≥ 1, got {v}")
    if getattr(a, "dropout", None) is not None:
        _require(0 <= a.dropout < 1, f"--dropout must be in [0, 1), got {a.dropout}")
    if getattr(a, "budget", None) is not None:
        _require(a.budget >= 0, f"--budget must be ≥ 0 accuracy points, got {a.budget}")
    if getattr(a, "step_fraction", None) is not None:
        _require(0 <= a.step_fraction < 1, f"--step-fraction must be in [0, 1), got {a.step_fraction}")
    if getattr(a, "screen", None) is not None:
        _require(a.screen >= 0, f"--screen must be ≥ 0 validation clips (0: no screening), got {a.screen}")
    if getattr(a, "batch", None) is not None:
        _require(a.batch >= 1, f"--batch must be ≥ 1 move per whole-split confirmation, got {a.batch}")
        _require(a.batch == 1 or a.screen > 0, f"--batch {a.batch} takes moves on the screen's estimates: "
                                               "give --screen N (N > 0 validation clips) too")
    if getattr(a, "refit_clips", None) is not None:
        _require(a.refit_clips >= 0, f"--refit-clips must be ≥ 0 training clips (0: no refit), got {a.refit_clips}")
        _require(a.refit_clips == 0 or a.method != "matchdc",
                 "--refit-clips replaces C and c; --method matchdc fixes the DC gain with a feed-through instead: "
                 "use --method truncate or data with it")
    if getattr(a, "checkpoint_minutes", None) is not None:
        _require(a.checkpoint_minutes >= 0, f"--checkpoint-minutes must be ≥ 0, got {a.checkpoint_minutes}")
    if a.command == "reduce" and a.method == "data":
        _require(bool(a.data), "--method data weights the truncation by training clips: give --data "
                               "(the data the checkpoint was trained on)")
    if a.command == "export":
        _require(not Path(a.out).is_file(), f"--out {a.out} is an existing file; expected a folder for the C++ project")


def cmd_train(a: argparse.Namespace) -> int:
    import torch.distributed as dist
    import os
    from sedge.models.config import TrainConfig, model_config
    from sedge.data import load_data
    from sedge.data.augment import parse_augment
    from sedge.training.loop import TrainingStopped
    from sedge.training.train import train
    augment = parse_augment(a.augment)                   # a bad option fails before the data load
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    data = load_data(a.data)
    cfg = model_config(a.model, n_classes=len(data.classes), dropout=a.dropout, rzoh=not a.no_rzoh)
    tcfg = TrainConfig(lr=a.lr, batch_size=a.batch_size, epochs=a.epochs, seed=a.seed,
                       max_steps_per_epoch=a.max_steps, augment=augment.to_dict() if augment else None)
    try:
        summary = train(cfg, data, tcfg, a.out, data_spec=a.data, device=a.device,
                        checkpoint_minutes=a.checkpoint_minutes)
    except TrainingStopped as stopped:                   # Ctrl-C or kill: last.pt holds the position
        print(stopped, file=sys.stderr)
        return 128 + stopped.signum
    print(json.dumps(summary, indent=1))
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from sedge.data import load_data
    from sedge.training.checkpoints import read_checkpoint
    from sedge.training.evaluation import accuracy, confusion_matrix, predict
    ck = read_checkpoint(a.checkpoint)               # S-Edge or baseline: the same evaluation
    model, meta = ck.model, ck.meta
    if a.step_scale:
        if ck.family != "sedge":
            raise ValueError(f"--step-scale applies to S-Edge checkpoints; {a.checkpoint} is a {ck.family_name} checkpoint")
        model.set_step_scale(a.step_scale)
    data = load_data(a.data).restrict_to(meta["classes"])
    if a.split is None:              # a folder other than the training data: every clip counts
        a.split = "test" if a.data == meta.get("data") else "all"
    names = ["train", "val", "test"] if a.split == "all" else [a.split]
    parts = [data.split(n) for n in names]
    if sum(len(p) for p in parts) == 0:
        print(f"error: split {a.split!r} of {a.data} has no clips with labels the model knows", file=sys.stderr)
        return 2
    tensors = [p.tensors(*meta["norm"]) for p in parts if len(p)]
    x, y = torch.cat([t[0] for t in tensors]), torch.cat([t[1] for t in tensors])
    logits = predict(model.to(a.device), x, progress=True)
    pred = logits.argmax(1).numpy()
    present = sorted(set(y.tolist()))
    cm = confusion_matrix(pred, y.numpy(), len(meta["classes"]))
    names = [meta["classes"][i] for i in present]
    print(f"{a.split} accuracy on {len(y)} clips ({len(present)} of the model's {len(meta['classes'])} labels): "
          f"{100 * accuracy(logits, y):.2f} %   " + (f"step scale {model.step_scale}" if ck.family == "sedge"
                                                      else ck.family_name))
    w = max(len(n) for n in names) + 1
    print(" " * w + " ".join(f"{n[:5]:>5}" for n in names))
    for i, n in zip(present, names):
        print(f"{n:>{w - 1}} " + " ".join(f"{cm[i, j]:5d}" for j in present))
    if a.json:
        Path(a.json).write_text(json.dumps({"accuracy": accuracy(logits, y), "labels": names,
                                            "confusion": cm[np.ix_(present, present)].tolist()}, indent=1))
    return 0


def _states(text: str) -> list[int | None]:
    try:
        return [None if v in ("", "-", "keep") else int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected complex states per layer such as 20,-,6 ('-' keeps a "
                                         f"layer); got {text!r}") from None


METHOD_HELP = ("'truncate': balanced truncation (python-control balred, the paper's); 'matchdc': keeps the DC "
               "gain with a feed-through D (counted as parameters); 'data': balanced truncation weighted by what "
               "each layer is fed (its state moments on training clips instead of white noise; ours)")
GRAMIAN_HELP = "training clips (seeded random subset) behind the data-weighted Gramians of --method data (default 128)"


def cmd_reduce(a: argparse.Namespace) -> int:
    from sedge.models.cost import cost_report
    from sedge.compress.reduction import reduce_model
    from sedge.training.checkpoints import load_checkpoint, save_checkpoint
    model, meta = load_checkpoint(a.checkpoint)
    if len(a.states) != len(model.layers):
        raise ValueError(f"--states has {len(a.states)} entries; the model has {len(model.layers)} layers")
    gramians = None
    if a.method == "data":
        from sedge.compress.reduction import state_covariances
        from sedge.data import load_data
        from sedge.pipeline.experiments import gramian_clip_tensor
        data = load_data(a.data).restrict_to(meta["classes"])
        n = {} if a.gramian_clips is None else {"n": a.gramian_clips}
        gramians = state_covariances(model, gramian_clip_tensor(data, meta["norm"], **n))
    reduced = reduce_model(model, [None if k is None else 2 * k for k in a.states], a.method, gramians)
    before, after = cost_report(model), cost_report(reduced)
    print(f"states {[l.P for l in model.layers]} → {[l.P for l in reduced.layers]}; params (paper formula) "
          f"{before['params_paper']:,} → {after['params_paper']:,}; MACs/sample {before['macs_per_sample']:,.0f} → "
          f"{after['macs_per_sample']:,.0f}")
    keep = {k: meta[k] for k in ("classes", "norm", "data") if k in meta}
    save_checkpoint(Path(a.out), reduced, {**keep, "reduced_from": str(a.checkpoint), "method": a.method})
    print(f"wrote {a.out}")
    return 0


def cmd_prune(a: argparse.Namespace) -> int:
    from sedge.pipeline.experiments import prune_checkpoint
    summary = prune_checkpoint(a.checkpoint, a.data, a.out, budget_pp=a.budget, objective=a.objective, step=a.step,
                               step_fraction=a.step_fraction, method=a.method, max_val=a.max_val,
                               device=a.device, screen=a.screen, batch=a.batch, refit_clips=a.refit_clips,
                               **({} if a.gramian_clips is None else {"gramian_clips": a.gramian_clips}))
    summary.pop("steps")
    print(json.dumps(summary, indent=1))
    print(f"wrote {a.out}/pruned.pt, steps.csv, summary.json")
    return 0


def cmd_finetune(a: argparse.Namespace) -> int:
    from sedge.pipeline.experiments import finetuned_run
    summary = finetuned_run(a.checkpoint, a.data, a.out, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size,
                            max_steps=a.max_steps, device=a.device)
    print(json.dumps(summary, indent=1))
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from sedge.deploy.cpp import build_cli, build_shared, generate_cpp
    from sedge.deploy.export import export_dict, save_export
    from sedge.training.checkpoints import read_checkpoint
    ck = read_checkpoint(a.checkpoint)
    if ck.family != "sedge":
        raise ValueError(f"{a.checkpoint} is a {ck.family_name} checkpoint: the C++ export is generated for "
                         f"S-Edge checkpoints only (`sedge evaluate` and `sedge cost` take every family)")
    model, meta = ck.model, ck.meta
    d = export_dict(model, a.step_scale or list(model.step_scale), norm=tuple(meta.get("norm", (0.0, 1.0))),
                    classes=meta.get("classes"))
    out = Path(a.out)
    save_export(d, out / "export.npz")
    if a.fixed_point:
        import numpy as np

        from sedge.deploy.cpp_fixed import generate_cpp_fixed
        from sedge.data import load_data
        from sedge.compress.fixed_point import quantise
        spec = a.calib_data or meta.get("data")
        if not spec:
            raise SystemExit(f"{a.checkpoint} does not name its training data: pass --calib-data")
        train = load_data(spec).restrict_to(meta["classes"]).train
        calib = train.waves[: a.calib_clips].astype(np.float32) / 32768
        q = quantise(d, calib, weight_bits=a.weight_bits)
        generate_cpp_fixed(q, out)
        print(f"fixed point (int{a.weight_bits} weights, int32 states) calibrated on {len(calib)} training clips "
              f"of {spec!r}")
    else:
        generate_cpp(d, out)
    print(f"wrote {out / 'export.npz'} and the C++17 project in {out} (step scale {d['step_scale']})")
    if a.build:
        print(f"built {build_shared(out)} and {build_cli(out)}")
    return 0


def cmd_cost(a: argparse.Namespace) -> int:
    from sedge.models.config import model_config
    from sedge.models.cost import cost_report
    from sedge.models.model import build_model
    if a.checkpoint:                                 # any family, counted as its paper counts it
        from sedge.training.checkpoint_cost import checkpoint_cost
        from sedge.training.checkpoints import read_checkpoint
        print(json.dumps(checkpoint_cost(read_checkpoint(a.checkpoint), a.step_scale or None), indent=1))
        return 0
    else:
        model = build_model(model_config(a.model, n_classes=a.classes))
    if a.step_scale:
        model.set_step_scale(a.step_scale)
    print(json.dumps(cost_report(model), indent=1))
    return 0


def cmd_data(a: argparse.Namespace) -> int:
    from sedge.data import load_data
    print(json.dumps(load_data(a.data).summary(), indent=1))
    return 0


def cmd_baseline(a: argparse.Namespace) -> int:
    from sedge.pipeline.baseline_experiments import baseline_run
    kwargs = {}
    if a.kind == "acdnet":
        from sedge.models.acdnet import ACDNET_WIDTHS, MICRO_WIDTHS
        kwargs = {"widths": list(MICRO_WIDTHS if a.micro else ACDNET_WIDTHS), "xnor": a.xnor}
        if a.float_sfeb:
            if not a.xnor:
                raise ValueError("--float-sfeb applies to --xnor networks only")
            kwargs["binary_sfeb"] = False
    elif a.xnor or a.micro or a.float_sfeb:
        raise ValueError("--xnor, --micro and --float-sfeb apply to --kind acdnet only")
    s = baseline_run(a.kind, a.data, a.out, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size,
                     max_steps=a.max_steps, seed=a.seed, kwargs=kwargs, device=a.device)
    print(json.dumps(s, indent=1))
    return 0


def cmd_prune_filters(a: argparse.Namespace) -> int:
    from sedge.pipeline.baseline_experiments import filter_pruned_run
    r = filter_pruned_run(a.run, a.data, tuple(a.layers), epochs=a.epochs, lr=a.lr, batch_size=a.batch_size,
                          max_steps=a.max_steps, max_fraction=a.max_fraction, device=a.device)
    print(json.dumps(r, indent=1))
    return 0


def cmd_compress(a: argparse.Namespace) -> int:
    from sedge.pipeline.baseline_experiments import compressed_run
    r = compressed_run(a.run, a.data, sparsity=a.sparsity, keep_fraction=a.keep_fraction, epochs=a.epochs, lr=a.lr,
                       batch_size=a.batch_size, max_steps=a.max_steps, calib_clips=a.calib_clips,
                       device=a.device)
    print(json.dumps(r, indent=1))
    return 0


def cmd_prune_layers(a: argparse.Namespace) -> int:
    from sedge.pipeline.baseline_experiments import convexity_pruned_run
    r = convexity_pruned_run(a.run, a.data, a.family, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size,
                             max_steps=a.max_steps, max_val=a.max_val, device=a.device)
    print(json.dumps(r, indent=1))
    return 0


def cmd_book(a: argparse.Namespace) -> int:
    from sedge.pipeline.book import run_book
    return run_book(profile=a.profile, only=a.only, build=not a.no_build, force=a.force, assignments=a.set,
                    out=a.out, replace=a.replace)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sedge", description="S-Edge state space models for raw-audio keyword "
                                "spotting: train, evaluate, cost, and build the reproducible book.",
                                epilog="Environment: SEDGE_CACHE — generated/decoded data (default "
                                "$XDG_CACHE_HOME/sedge, i.e. ~/.cache/sedge); SEDGE_RUNS — runs started by the "
                                "notebooks (default runs/ in the repository); SEDGE_KERNEL=0 — skip the fused "
                                "C++ CPU kernel (chunked scan instead); TORCH_EXTENSIONS_DIR — where the kernel "
                                "is compiled and cached (default ~/.cache/torch_extensions); "
                                "SEDGE_KEEP_FREED_MEMORY=0 — let glibc unmap freed large blocks (default: "
                                "kept for reuse, faster on CPU; sedge.memory).")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a zoo model with the paper's recipe (SPEC §4)",
                       description="Train a zoo model; resumes from OUT/last.pt after an interruption. Ctrl-C or "
                                   "kill (SIGINT/SIGTERM) stops after the current batch with last.pt written "
                                   "(a second one stops at once). "
                                   "Runs under torchrun (DDP, gloo on CPU) unchanged.")
    t.add_argument("--model", default="tiny", choices=["full", "l", "m", "s", "tiny"])
    t.add_argument("--data", default="synthetic", help=DATA_HELP)
    t.add_argument("--epochs", type=int, default=40)
    t.add_argument("--lr", type=float, default=0.002, help="η for the SSM group (the rest gets 4η)")
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--dropout", type=float, default=0.0,
                   help="training-time dropout of whole output channels of each S-Edge layer "
                        "(probability; default 0, the paper's recipe)")
    t.add_argument("--no-rzoh", action="store_true",
                   help="train without random zero-order hold (the ablation of step-scale robustness; "
                        "default: RZOH on, as in the paper)")
    t.add_argument("--seed", type=int, default=1234)
    t.add_argument("--max-steps", type=int, default=None, help="cap the batches per epoch (smoke runs)")
    t.add_argument("--out", required=True, help="run folder: metrics.csv, best.pt, last.pt, summary.json")
    t.add_argument("--augment", default="none",
                   help="training-clip augmentation: none (the paper's recipe), default (shift ±0.1 s, gain ±6 dB, "
                        "noise at 10-30 dB SNR on half the clips, speed ±10 %%) or key=value pairs, e.g. "
                        "shift=0.1,gain_db=6,noise_p=0.5,snr_min_db=10,snr_max_db=30,speed=0.1")
    t.add_argument("--checkpoint-minutes", type=float, default=5.0,
                   help="also write last.pt inside an epoch every this many minutes (resume point)")
    t.add_argument("--device", default="auto", help=DEVICE_HELP)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="accuracy and confusion matrix of a checkpoint on a dataset",
                       description="Evaluate a checkpoint on any dataset, restricted to the labels the model knows.")
    e.add_argument("--checkpoint", required=True,
                   help="a .pt file of any family: S-Edge (best.pt, pruned.pt) or a baseline (DCASE CNN, ACDNet, "
                        "XNOR ACDNet, transformer)")
    e.add_argument("--data", default="synthetic", help=DATA_HELP)
    e.add_argument("--split", default=None, choices=["train", "val", "test", "all"],
                   help="which clips to score: all of them (the default for data other than the model's "
                        "training data) or one split (default: test, for the model's own data)")
    e.add_argument("--step-scale", type=_step_scale, default=None, help="cumulative per-layer factors, e.g. 1,2,6")
    e.add_argument("--json", default=None, help="also write the result to this JSON file")
    e.add_argument("--device", default="auto", help=DEVICE_HELP)
    e.set_defaults(func=cmd_evaluate)

    c = sub.add_parser("cost", help="parameters and MACs of a zoo model or of a checkpoint of any family",
                       description="Parameters and MACs per 1-s clip. Without --checkpoint: a zoo model (paper and "
                                   "deployed counts, both MAC conventions). With it: any checkpoint, counted as its "
                                   "family's paper counts (S-Edge paper formula; DCASE CNN Keras counts; ACDNet "
                                   "XNOR-effective MACs and weight bits; transformer projections and attention).")
    c.add_argument("--model", default="tiny", choices=["full", "l", "m", "s", "tiny"])
    c.add_argument("--classes", type=int, default=35)
    c.add_argument("--checkpoint", default=None, help="cost of a trained (or pruned) checkpoint of any family instead")
    c.add_argument("--step-scale", type=_step_scale, default=None, help="cumulative per-layer factors, e.g. 1,2,6")
    c.set_defaults(func=cmd_cost)

    r = sub.add_parser("reduce", help="balanced truncation of a checkpoint's layers to given orders (SPEC §7)",
                       description="Reduce every layer of a checkpoint to the given number of complex states by "
                                   "balanced truncation (python-control, continuous time) and save the result.")
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--states", type=_states, required=True,
                   help="complex states per layer, e.g. 24,12,- ('-' keeps a layer)")
    r.add_argument("--method", default="truncate", choices=["truncate", "matchdc", "data"], help=METHOD_HELP)
    r.add_argument("--data", default=None, help="the checkpoint's data, for --method data (training clips only)")
    r.add_argument("--gramian-clips", type=int, default=None, help=GRAMIAN_HELP)
    r.add_argument("--out", required=True, help="output checkpoint (.pt)")
    r.set_defaults(func=cmd_reduce)

    q = sub.add_parser("prune", help="iterative pruning by balanced truncation within an accuracy budget (SPEC §8)",
                       description="Greedy layer-wise order reduction on the validation split within --budget "
                                   "accuracy points; the test split is evaluated once, for the final model. Writes "
                                   "pruned.pt, steps.csv and summary.json to --out.")
    q.add_argument("--checkpoint", required=True)
    q.add_argument("--data", default="synthetic", help=DATA_HELP)
    q.add_argument("--budget", type=float, default=0.5, help="allowed validation accuracy loss in points")
    q.add_argument("--objective", default="params", choices=["params", "macs"])
    q.add_argument("--step", type=int, default=1, help="complex states removed per move (at least)")
    q.add_argument("--step-fraction", type=float, default=0.0,
                   help="moves of ⌈fraction · P⌉ states of each layer's original order P when that is larger "
                        "than --step (fewer rounds on big models)")
    q.add_argument("--method", default="truncate", choices=["truncate", "matchdc", "data"], help=METHOD_HELP)
    q.add_argument("--gramian-clips", type=int, default=None, help=GRAMIAN_HELP)
    q.add_argument("--screen", type=int, default=0,
                   help="rank each round's candidates on this many validation clips (a seeded random subset) "
                        "before confirming them on the whole split, one at a time, best first: fewer whole-split "
                        "evaluations, every accepted step still confirmed (default 0: every candidate on the "
                        "whole split, the book's exact greedy search)")
    q.add_argument("--batch", type=int, default=1,
                   help="with --screen: take up to this many moves on the screen's estimates alone and confirm "
                        "where they end with one whole-split evaluation (halved on failure); the steps inside "
                        "a batch are recorded unmeasured (default 1: every step confirmed)")
    q.add_argument("--refit-clips", type=int, default=0,
                   help="refit every candidate's output map C, c by least squares to the original layer's output "
                        "on this many training clips (ours: no labels, no gradient steps; not with --method "
                        "matchdc; default 0: the plain reduction)")
    q.add_argument("--max-val", type=int, default=None, help="use at most this many validation clips")
    q.add_argument("--out", required=True, help="output folder (a finished search there is reused)")
    q.add_argument("--device", default="auto", help=DEVICE_HELP)
    q.set_defaults(func=cmd_prune)

    f = sub.add_parser("finetune", help="briefly retrain a (pruned) checkpoint, selected on validation",
                       description="Fine-tune a checkpoint with the paper's recipe at a small learning rate and "
                                   "BatchNorm frozen; the starting checkpoint competes as epoch 0; the test split is "
                                   "evaluated once. Writes best.pt, metrics and summary.json to --out.")
    f.add_argument("--checkpoint", required=True)
    f.add_argument("--data", default="synthetic", help=DATA_HELP)
    f.add_argument("--epochs", type=int, default=2)
    f.add_argument("--lr", type=float, default=5e-5,
                   help="η for the SSM group, the rest gets 4η (default 5e-5: chosen on validation by "
                        "tools/finetune_lr_sweep.py; 1e-3 throws a trained model off its minimum)")
    f.add_argument("--batch-size", type=int, default=16)
    f.add_argument("--max-steps", type=int, default=None, help="batches per epoch (default: all)")
    f.add_argument("--out", required=True)
    f.add_argument("--device", default="auto", help=DEVICE_HELP)
    f.set_defaults(func=cmd_finetune)

    x = sub.add_parser("export", help="export a checkpoint (versioned .npz) and generate its C++17 project",
                       description="Fold the model at a step-scale list into an export dict (export.npz) and write "
                                   "a self-contained C++17 project (header, source, WAV CLI, CMakeLists.txt, README).")
    x.add_argument("--checkpoint", required=True, help="an S-Edge checkpoint (best.pt or pruned.pt)")
    x.add_argument("--step-scale", type=_step_scale, default=None, help="cumulative per-layer factors, e.g. 1,9,54")
    x.add_argument("--out", required=True, help="output folder")
    x.add_argument("--build", action="store_true", help="also compile the shared library and the CLI program")
    x.add_argument("--fixed-point", action="store_true",
                   help="generate the integer C++ (int8 or int16 weights, int32 states, int16 activations, "
                        "power-of-two scales calibrated on training clips) instead of float32; export.npz stays the "
                        "float model")
    x.add_argument("--weight-bits", type=int, choices=(8, 16), default=8,
                   help="fixed-point weight width: 8 (3.4x smaller than float32) or 16 (closer to float: on the "
                        "trained tiny >=99 %% top-1 agreement against 97.5-98 %% for 8)")
    x.add_argument("--calib-data", default=None,
                   help="data spec for the calibration clips (default: the data the checkpoint was trained on)")
    x.add_argument("--calib-clips", type=int, default=32, help="training clips used for calibration (default 32)")
    x.set_defaults(func=cmd_export)

    bl = sub.add_parser("baseline", help="train a comparison baseline (SPEC §10) on the same splits as S-Edge",
                        description="Train a baseline (dcase: the DCASE 2021 Task 1A CNN on log-mel; transformer: a small encoder over 25-ms frames; acdnet: the "
                                    "raw-audio ACDNet) with Adam and a cosine schedule, select on validation, test once. "
                                    "A finished run with the same configuration is reused; an interrupted one resumes.")
    bl.add_argument("--kind", default="dcase", choices=["dcase", "acdnet", "transformer"])
    bl.add_argument("--data", default="synthetic", help=DATA_HELP)
    bl.add_argument("--epochs", type=int, default=30)
    bl.add_argument("--lr", type=float, default=0.001)
    bl.add_argument("--batch-size", type=int, default=32)
    bl.add_argument("--max-steps", type=int, default=None, help="cap the batches per epoch (smoke runs)")
    bl.add_argument("--seed", type=int, default=0)
    bl.add_argument("--micro", action="store_true", help="acdnet: the micro widths (8…64) instead of ACDNet's (32…512)")
    bl.add_argument("--xnor", action="store_true", help="acdnet: XNOR-Net binary convs (first conv and last linear float)")
    bl.add_argument("--float-sfeb", action="store_true",
                    help="acdnet --xnor: also keep the second raw-audio conv in float (an ablation of the paper's variant)")
    bl.add_argument("--out", required=True, help="run folder (best.pt, metrics.csv, summary.json)")
    bl.add_argument("--device", default="auto", help=DEVICE_HELP)
    bl.set_defaults(func=cmd_baseline)

    cp = sub.add_parser("compress", help="magnitude pruning → channel pruning → int8 quantisation of a float ACDNet",
                        description="The compression path of Mohaimenuzzaman et al.: global magnitude pruning (masks "
                                    "re-applied while fine-tuning), structured channel pruning (largest L1 norm kept), "
                                    "fine-tuning, 8-bit post-training quantisation. Writes RUN/compress_s*_k*/result.json.")
    cp.add_argument("--run", required=True, help="a folder made by `sedge baseline --kind acdnet`")
    cp.add_argument("--data", default="synthetic", help=DATA_HELP)
    cp.add_argument("--sparsity", type=float, default=0.95)
    cp.add_argument("--keep-fraction", type=float, default=0.25, help="channels kept per conv by structured pruning")
    cp.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs after each pruning step")
    cp.add_argument("--lr", type=float, default=0.001)
    cp.add_argument("--batch-size", type=int, default=32)
    cp.add_argument("--max-steps", type=int, default=None)
    cp.add_argument("--calib-clips", type=int, default=64, help="training clips that calibrate the int8 activations")
    cp.add_argument("--device", default="auto", help=DEVICE_HELP)
    cp.set_defaults(func=cmd_compress)

    pl = sub.add_parser("prune-layers", help="convexity-guided layer pruning of an S-Edge or transformer run",
                        description="Graph convexity of every layer on validation clips, layers after the peak "
                                    "dropped, fine-tuning with validation selection (Dorszewski et al. 2024). "
                                    "Writes RUN/convexity/result.json.")
    pl.add_argument("--run", required=True, help="a run folder (sedge train, or sedge baseline --kind transformer)")
    pl.add_argument("--family", required=True, choices=["sedge", "transformer"])
    pl.add_argument("--data", default="synthetic", help=DATA_HELP)
    pl.add_argument("--epochs", type=int, default=2)
    pl.add_argument("--lr", type=float, default=0.002)
    pl.add_argument("--batch-size", type=int, default=16)
    pl.add_argument("--max-steps", type=int, default=None)
    pl.add_argument("--max-val", type=int, default=None, help="validation clips for the convexity (default: all)")
    pl.add_argument("--device", default="auto", help=DEVICE_HELP)
    pl.set_defaults(func=cmd_prune_layers)

    pf = sub.add_parser("prune-filters", help="passive similarity filter pruning of a trained DCASE CNN, then fine-tuning",
                        description="Remove the filters the rank-1 SVD similarity marks redundant (Singh & Plumbley "
                                    "2022) from the given conv layers, physically, then fine-tune with validation "
                                    "selection. Writes RUN/filters/c<layers>/result.json.")
    pf.add_argument("--run", required=True, help="a folder made by `sedge baseline --kind dcase`")
    pf.add_argument("--data", default="synthetic", help=DATA_HELP)
    pf.add_argument("--layers", type=_ints, default=[2], help="conv layers to prune, e.g. 2 or 1,2,3")
    pf.add_argument("--epochs", type=int, default=10)
    pf.add_argument("--lr", type=float, default=0.0005)
    pf.add_argument("--batch-size", type=int, default=32)
    pf.add_argument("--max-steps", type=int, default=None)
    pf.add_argument("--max-fraction", type=float, default=0.5, help="at most this share of a layer's filters goes")
    pf.add_argument("--device", default="auto", help=DEVICE_HELP)
    pf.set_defaults(func=cmd_prune_filters)

    d = sub.add_parser("data", help="generate/load a dataset and print its split sizes")
    d.add_argument("--data", default="synthetic", help=DATA_HELP)
    d.set_defaults(func=cmd_data)

    b = sub.add_parser("book", help="execute stale notebooks with Papermill, then build the Jupyter Book",
                       description="Execute every chapter whose source, parameters or library changed (or those "
                                   "of --only) with Papermill into book/, then build the Jupyter Book. book/ is the "
                                   "quick profile's; another profile (scratch: the whole chain from nothing, tiny only "
                                   "and short budgets; paper) executes into variants/<profile>/, and with --set the "
                                   "chapters run with single values changed into variants/<profile>-<digest>/ (or "
                                   "--out); there, stages already computed with another configuration are kept, "
                                   "never overwritten.",
                       epilog="Example: sedge book --profile quick --only 01_training --set epochs=20 "
                              "--set 'models=[m]' --set run_root=runs/variant. Each chapter documents its "
                              "parameters in its parameters cell (and in the table under its title).")
    b.add_argument("--profile", default="quick", help="parameter profile from notebooks/profiles.yml (ci, quick, scratch, paper)")
    b.add_argument("--only", nargs="*", default=None, help="run only these chapters (stems, e.g. 01_training)")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one parameter of the selected chapters (value read as YAML: epochs=20, "
                        "models=[tiny,s], epochs={mini: 20}); repeatable")
    b.add_argument("--out", default=None, help="folder of the book executed with --set values or another "
                                               "profile (default variants/<profile>[-<digest of the values>])")
    b.add_argument("--replace", action="store_true", help="execute the --set values (or another profile) into "
                                                          "book/ itself, recomputing the profile's stages in place")
    b.add_argument("--force", action="store_true", help="re-run even notebooks that are up to date")
    b.add_argument("--no-build", action="store_true", help="execute notebooks but skip jupyter-book build")
    b.set_defaults(func=cmd_book)

    a = p.parse_args(argv)
    keep_freed_memory()             # big tensors reuse freed heap instead of fresh zeroed pages (sedge.memory)
    try:
        check_arguments(a)
        if getattr(a, "device", None) is not None:          # refuse an unavailable device before any work
            from sedge.training.device import resolve_device
            a.device = str(resolve_device(a.device))
        return a.func(a)
    except (ValueError, FileNotFoundError, RuntimeError) as err:   # DataError, ReductionError, CompilerError
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
