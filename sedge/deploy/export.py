"""Export of a trained S-Edge model for deployment, and its float64 NumPy reference (SPEC §9).

The export dict is the model at one step-scale list with everything folded that can be:

    per layer ℓ:  Λ̄ = exp(Λ Δ s_ℓ),  B̄ and b̄ with eval-mode BatchNorm folded in
                  (B̄ z + b̄ with z = a ⊙ u + o  →  B̄' = B̄ diag(a),  b̄' = b̄ + B̄ o),
                  C, Re c, skip W (None = identity), D (matched-DC feed-through, if any),
                  the decimation s_ℓ / s_{ℓ−1} and the cumulative step s_ℓ;
    input:        u = (wave − mean) / std  as  u = in_scale · wave + in_shift;
    decoder:      logits = W · mean_t(h_t) + b; for a 16,000-sample clip the time mean is folded
                  into W_clip = W / T_L with T_L = ⌈16000 / s_L⌉ outputs of the last layer.

Saved as ``.npz`` (arrays) with a JSON header under the key ``header`` (format name and version).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
from scipy.signal import lfilter

from sedge.data.base import CLIP_SAMPLES
from sedge.paths import atomic_write_bytes

FORMAT = "sedge-export"
VERSION = 1
LEAKY_SLOPE = 0.01


@torch.no_grad()
def export_dict(model, step_scale: list[int] | None = None, norm: tuple[float, float] = (0.0, 1.0),
                classes: list[str] | None = None) -> dict:
    """The deployable description of ``model`` at ``step_scale`` (float64 arrays)."""
    model = model.eval()
    if step_scale is not None:
        model.set_step_scale(step_scale)
    layers = []
    for layer in model.layers:
        lam_bar, B_bar, b_bar = (t.to(torch.complex128) for t in layer.discretise())
        B_fold, b_fold = (t.numpy() for t in layer.fold_norm(B_bar, b_bar))
        lam_bar = lam_bar.numpy()
        scale, shift = (t.double().numpy() for t in layer.norm_affine())
        entry = {
            "P": layer.P, "H": layer.H, "d_in": layer.d_in,
            "decimate": int(layer.decimate), "step": int(layer.delta_scale),
            "lam_bar": lam_bar, "B": B_fold, "b": b_fold,
            "C": layer.output_matrix().to(torch.complex128).numpy(),
            "c": layer.c_re.double().numpy(),
            "skip": None if layer.skip is None else layer.skip.weight.double().numpy(),
            "D": None,
        }
        if layer.feedthrough is not None:   # D acts on z = a⊙u + o: fold like B
            D = layer.feedthrough.double().numpy()
            entry["D"] = np.concatenate([D[:, :-1] * scale[None, :], (D[:, -1] + D[:, :-1] @ shift)[:, None]], 1)
        layers.append(entry)
    s_last = model.step_scale[-1]
    n_out = -(-CLIP_SAMPLES // s_last)
    W = model.decoder.weight.double().numpy()
    mean, std = norm
    return {"format": FORMAT, "version": VERSION, "step_scale": list(model.step_scale),
            "n_classes": model.cfg.n_classes, "classes": classes or [str(i) for i in range(model.cfg.n_classes)],
            "in_scale": 1.0 / std, "in_shift": -mean / std, "layers": layers,
            "decoder_W": W, "decoder_b": model.decoder.bias.double().numpy(),
            "clip_samples": CLIP_SAMPLES, "clip_outputs": n_out, "decoder_W_clip": W / n_out}


def save_export(d: dict, path: str | Path) -> None:
    """Write an export dict as .npz: arrays by name, everything else in a JSON header."""
    arrays, header_layers = {}, []
    for i, l in enumerate(d["layers"]):
        meta = {}
        for k, v in l.items():
            if isinstance(v, np.ndarray):
                arrays[f"layer{i}_{k}"] = v
            else:
                meta[k] = v
        header_layers.append(meta)
    for k in ("decoder_W", "decoder_b", "decoder_W_clip"):
        arrays[k] = d[k]
    header = {k: v for k, v in d.items() if k not in ("layers", "decoder_W", "decoder_b", "decoder_W_clip")}
    header["layers"] = header_layers
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)

    def write(f):
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        f.write(buf.getvalue())
    atomic_write_bytes(Path(path), write)


def load_export(path: str | Path) -> dict:
    z = np.load(path)
    if "header" not in z:
        raise ValueError(f"{path}: not a sedge export (no header)")
    header = json.loads(bytes(z["header"]).decode())
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ValueError(f"{path}: format {header.get('format')!r} version {header.get('version')!r}; "
                         f"expected {FORMAT!r} version {VERSION}")
    layers = []
    for i, meta in enumerate(header["layers"]):
        l = dict(meta)
        for k in ("lam_bar", "B", "b", "C", "c", "skip", "D"):
            key = f"layer{i}_{k}"
            l[k] = z[key] if key in z else l.get(k)
        layers.append(l)
    d = {**header, "layers": layers}
    for k in ("decoder_W", "decoder_b", "decoder_W_clip"):
        d[k] = z[k]
    return d


def reference_features(d: dict, wave: np.ndarray, trace=None) -> np.ndarray:
    """Last-layer outputs (N, T_L, H_L) of the float64 reference for waveforms (N, L).

    ``trace(i, name, array)``, when given, sees every intermediate: layer i's ``"input"`` (after
    decimation), its complex ``"state"`` x (N, T, P) and its ``"output"`` (what fixed-point
    calibration measures)."""
    u = (np.asarray(wave, np.float64) * d["in_scale"] + d["in_shift"])[..., None]
    for i, l in enumerate(d["layers"]):
        u = u[:, ::l["decimate"]]
        if trace:
            trace(i, "input", u)
        v = u @ l["B"].T + l["b"]                                        # (N, T, P) complex
        x = np.empty_like(v)
        for p in range(l["P"]):                                          # x_k = Λ̄ x_{k−1} + v_k
            x[:, :, p] = lfilter([1.0], [1.0, -l["lam_bar"][p]], v[:, :, p], axis=1)
        if trace:
            trace(i, "state", x)
        y = (x @ l["C"].T).real + l["c"]
        if l["D"] is not None:
            y = y + u @ l["D"][:, :-1].T + l["D"][:, -1]
        skip = u @ l["skip"].T if l["skip"] is not None else u
        u = np.where(y > 0, y, LEAKY_SLOPE * y) + skip
        if trace:
            trace(i, "output", u)
    return u


def reference_logits(d: dict, wave: np.ndarray) -> np.ndarray:
    """Float64 NumPy inference over an export dict: logits (N, n_classes)."""
    h = reference_features(d, wave)
    return h.mean(axis=1) @ d["decoder_W"].T + d["decoder_b"]
