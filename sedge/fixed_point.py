"""Fixed-point variant of an export dict: int8 weights, int16 states and activations (SPEC §9).

Why this split (the "16×8" scheme of CMSIS-NN's s16 kernels, which a Cortex-M4 runs with its
16-bit SIMD multiply-accumulates):

* **int8 weights** (B̄, C, skip, D, decoder) carry 4× less memory than float32, with one scale per
  output column, so a column of small weights keeps its resolution;
* **int16 states and activations**: the state of a slow mode is a long sum (its gain is up to
  1/(1 − |λ̄|)), and 8 bits cannot hold it next to the per-step increment v_k;
* **Λ̄ in Q15 (int16)**, rounded *toward zero*: |λ̄| ≈ 1 − 10⁻³ for slow modes, which int8 would
  turn into 1 (unstable) or 0.99 (10× faster decay); truncating each part keeps |λ̄_q| ≤ |λ̄| < 1,
  so every quantised mode stays stable.

Scales are powers of two: a tensor with ``f`` fractional bits stores q = round(x · 2^f), so every
rescale is a rounding shift ``rshift(a, s) = ⌊(a + 2^(s−1)) / 2^s⌋`` (s > 0) or a·2^(−s) (s ≤ 0), and
saturation ``sat16`` clamps to [−32768, 32767]. Fractional bits of activations and states come from
calibration clips (float64 reference, :func:`sedge.export.reference_features`): the largest f with
``headroom · max|x| · 2^f ≤ 2^15``. States get one f per mode (the recurrence is diagonal, and the
2^(−f_p) is folded into C); inputs and outputs of a layer one f each. One step of layer ℓ
(integers throughout; accumulators int32 — |a| ≤ 2^30 is guaranteed by a bound checked at quantisation time):

    a_j   = bv_j + Σ_i u_i BW_ij                          v_j = rshift(a_j, sh_v_j)
    x'_p  = sat16(rshift(λr_p xr_p − λi_p xi_p, 15) + v_p)  (and the imaginary part likewise)
    y_h   = rshift(Σ_p x_p CW_ph, sh_y_h) + c_h  [+ rshift(Db_h + Σ_i u_i DW_ih, sh_d_h)]
    out_h = sat16(leaky(y_h) + skip_h),   leaky(y) = y (y > 0) else rshift(328 y, 15)   (0.01 ≈ 328/2^15)

The input is the 16-bit PCM sample, normalised in integers: u₀ = sat16(rshift(pcm · in_mul + in_add,
in_sh)). The decoder sums int16 outputs over time in int64 and dequantises once:
logit_c = (Σ_h S_h W_ch) · 2^(−f_L − f_c) / T + b_c, in float64. :func:`fixed_logits` is the
integer NumPy reference; the generated C++ (:mod:`sedge.cpp_fixed`) reproduces it bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

from .export import reference_features

FORMAT = "sedge-export-fixed-16x8"
VERSION = 1
LEAKY_Q15 = 328                       # round(0.01 · 2^15)
IN_SH = 16                            # fractional bits of the input normalisation multiplier
ACC_LIMIT = 2**30                     # int32 accumulators, with room for a rounding offset (see cpp_fixed)


def rshift(a, s):
    """Rounding arithmetic shift right by s (left by −s) on int64 arrays; s may be an array."""
    a = np.asarray(a, np.int64)
    s = np.asarray(s, np.int64)
    sp, sn = np.maximum(s, 0), np.maximum(-s, 0)
    return (a * (np.int64(1) << sn) + ((np.int64(1) << sp) >> 1)) >> sp


def sat16(a):
    return np.clip(a, -32768, 32767).astype(np.int64)


def _act_frac(max_abs: float, headroom: float) -> int:
    """Largest f with headroom · max|x| · 2^f ≤ 2^15 (15 when the tensor is all zero)."""
    if max_abs <= 0:
        return 15
    return int(math.floor(15 - math.log2(headroom * max_abs)))


def _weight_q8(W: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights with one power-of-two scale per slice along ``axis`` (the output columns).

    Returns (q, f) with q = round(W · 2^f) in [−127, 127] and f the per-column fractional bits."""
    W = np.asarray(W, np.float64)
    m = np.abs(W).max(axis=axis, keepdims=True)
    f = np.where(m > 0, np.floor(np.log2(127.0 / np.where(m > 0, m, 1.0))), 0).astype(np.int64)
    q = np.clip(np.rint(W * np.exp2(f)), -127, 127).astype(np.int8)
    return q, f.squeeze(axis)


def _bias_q32(b: np.ndarray, frac: np.ndarray, what: str) -> np.ndarray:
    q = np.rint(np.asarray(b, np.float64) * np.exp2(frac))
    if np.abs(q).max(initial=0) > ACC_LIMIT:
        raise ValueError(f"{what}: bias does not fit an int32 accumulator at {frac.max()} fractional bits")
    return q.astype(np.int32)


def _check_acc(q: np.ndarray, in_bound: int, bias: np.ndarray | None, what: str) -> None:
    """Worst case of Σ_i |u_i| |W_ij| + |bias_j| with |u_i| ≤ in_bound must fit int32."""
    worst = np.abs(q.astype(np.int64)).sum(axis=0) * in_bound
    if bias is not None:
        worst = worst + np.abs(bias.astype(np.int64))
    if worst.max(initial=0) > ACC_LIMIT:
        raise ValueError(f"{what}: the int32 accumulator can overflow (worst case {int(worst.max())})")


def calibrate(d: dict, waves: np.ndarray) -> dict:
    """Largest magnitudes of every layer's input, output and (per mode) state on ``waves`` (N, L)."""
    stats: dict = {}

    def trace(i, name, a):
        if name == "state":
            m = np.maximum(np.abs(a.real).max(axis=(0, 1)), np.abs(a.imag).max(axis=(0, 1)))
        else:
            m = float(np.abs(a).max())
        stats[(i, name)] = np.maximum(stats.get((i, name), 0), m)

    for k in range(0, len(waves), 8):                      # a few clips at a time: states are N·T·P complex
        reference_features(d, np.asarray(waves[k:k + 8], np.float64), trace=trace)
    return stats


def quantise(d: dict, calib_waves: np.ndarray, headroom: float = 1.25) -> dict:
    """The fixed-point model of export dict ``d``, scaled on calibration clips ``calib_waves``
    (raw waveforms in [−1, 1], never test clips). See the module docstring for the arithmetic."""
    if len(calib_waves) == 0:
        raise ValueError("quantise: calibration needs at least one clip")
    stats = calibrate(d, calib_waves)
    f_in = _act_frac(stats[(0, "input")], headroom)
    layers = []
    f_u = f_in
    for i, l in enumerate(d["layers"]):
        P, H, DIN = l["P"], l["H"], l["d_in"]
        f_out = _act_frac(stats[(i, "output")], headroom)
        f_x = np.array([_act_frac(m, headroom) for m in np.atleast_1d(stats[(i, "state")])], np.int64)
        f_x2 = np.concatenate([f_x, f_x])
        BW = np.concatenate([l["B"].real.T, l["B"].imag.T], axis=1)              # d_in × 2P
        BWq, fB = _weight_q8(BW, axis=0)
        bv = _bias_q32(np.concatenate([l["b"].real, l["b"].imag]), f_u + fB, f"layer {i} b̄")
        _check_acc(BWq, 32768, bv, f"layer {i} B̄")
        CW = np.concatenate([l["C"].real.T, -l["C"].imag.T], axis=0) * np.exp2(-f_x2)[:, None]   # 2^(−f_p) folded
        CWq, fC = _weight_q8(CW, axis=0)
        _check_acc(CWq, 32768, None, f"layer {i} C")
        lam = l["lam_bar"]
        q = {"P": P, "H": H, "d_in": DIN, "decimate": l["decimate"], "step": l["step"],
             "f_u": f_u, "f_out": f_out, "f_x": f_x,
             "BW": BWq, "bv": bv, "sh_v": f_u + fB - f_x2,
             "lam_re": np.trunc(lam.real * 32768).clip(-32767, 32767).astype(np.int16),
             "lam_im": np.trunc(lam.imag * 32768).clip(-32767, 32767).astype(np.int16),
             "CW": CWq, "sh_y": fC - f_out, "c": _bias_q32(l["c"], np.full(H, f_out), f"layer {i} c"),
             "skip": None, "sh_s": np.full(H, f_u - f_out, np.int64), "D": None, "Db": None, "sh_d": None}
        if l["skip"] is not None:
            q["skip"], fS = _weight_q8(l["skip"].T, axis=0)                     # d_in × H
            _check_acc(q["skip"], 32768, None, f"layer {i} skip")
            q["sh_s"] = f_u + fS - f_out
        if l["D"] is not None:
            q["D"], fD = _weight_q8(l["D"][:, :-1].T, axis=0)
            q["Db"] = _bias_q32(l["D"][:, -1], f_u + fD, f"layer {i} D")
            _check_acc(q["D"], 32768, q["Db"], f"layer {i} D")
            q["sh_d"] = f_u + fD - f_out
        layers.append(q)
        f_u = f_out
    Wq, fW = _weight_q8(d["decoder_W"].T, axis=0)                                # H_L × classes
    in_scale_q = d["in_scale"] * 2.0 ** (f_in - 15 + IN_SH)
    return {"format": FORMAT, "version": VERSION, "step_scale": list(d["step_scale"]), "n_classes": d["n_classes"],
            "classes": list(d["classes"]), "clip_samples": d["clip_samples"], "headroom": headroom,
            "calibration_clips": len(calib_waves), "f_in": f_in,
            "in_mul": int(round(in_scale_q)), "in_add": int(round(d["in_shift"] * 2.0 ** (f_in + IN_SH))),
            "layers": layers, "decoder_W": np.ascontiguousarray(Wq.T), "decoder_f": fW,
            "decoder_scale": np.exp2(-(f_u + fW).astype(np.float64)), "decoder_b": np.asarray(d["decoder_b"], np.float64)}


def _project(u: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Σ_i u_i W_ij exactly, (N, T, d_in) int × (d_in, M) int8 → int64. Integer sums stay exact in float64
    while |sum| < 2^53, which the int32 accumulator bound guarantees."""
    return np.rint(u.astype(np.float64) @ W.astype(np.float64)).astype(np.int64)


def fixed_features(q: dict, waves: np.ndarray) -> np.ndarray:
    """Integer outputs (N, T_L, H_L) of the last layer for raw waveforms (N, L) in [−1, 1]."""
    pcm = np.clip(np.rint(np.asarray(waves, np.float64) * 32768), -32768, 32767).astype(np.int64)
    u = sat16(rshift(pcm * q["in_mul"] + q["in_add"], IN_SH))[..., None]
    for l in q["layers"]:
        u = u[:, ::l["decimate"]]
        P = l["P"]
        v = rshift(_project(u, l["BW"]) + l["bv"], l["sh_v"])                   # (N, T, 2P)
        lr, li = l["lam_re"].astype(np.int64), l["lam_im"].astype(np.int64)
        xr = np.zeros((len(u), P), np.int64)
        xi = np.zeros_like(xr)
        X = np.empty((len(u), u.shape[1], 2 * P), np.int64)
        for k in range(u.shape[1]):                                              # the recurrence, in Q15
            xr, xi = (sat16(rshift(lr * xr - li * xi, 15) + v[:, k, :P]),
                      sat16(rshift(lr * xi + li * xr, 15) + v[:, k, P:]))
            X[:, k, :P], X[:, k, P:] = xr, xi
        y = rshift(_project(X, l["CW"]), l["sh_y"]) + l["c"]
        if l["D"] is not None:
            y = y + rshift(_project(u, l["D"]) + l["Db"], l["sh_d"])
        if l["skip"] is not None:
            s = rshift(_project(u, l["skip"]), l["sh_s"])
        else:
            s = rshift(np.broadcast_to(u, y.shape), l["sh_s"])
        u = sat16(np.where(y > 0, y, rshift(LEAKY_Q15 * y, 15)) + s)
    return u


def fixed_logits(q: dict, waves: np.ndarray) -> np.ndarray:
    """Logits (N, n_classes) of the integer model: the float64 dequantisation of the time sum."""
    h = fixed_features(q, waves)
    S = h.sum(axis=1)                                                             # int64 time sums
    dot = S @ q["decoder_W"].T.astype(np.int64)
    return (dot.astype(np.float64) * q["decoder_scale"] / h.shape[1] + q["decoder_b"]).astype(np.float32)


def weight_bytes(q: dict) -> int:
    """Bytes of every constant array of the fixed-point model (as the C++ stores them; one byte per
    shift count, float32 decoder scale and bias)."""
    n = 0
    for l in q["layers"]:
        for k in ("BW", "bv", "lam_re", "lam_im", "CW", "c", "skip", "D", "Db"):
            if l[k] is not None:
                n += l[k].nbytes
        n += sum(np.size(l[k]) for k in ("sh_v", "sh_y", "sh_s", "sh_d") if l[k] is not None)
    return n + q["decoder_W"].nbytes + 4 * (len(q["decoder_scale"]) + len(q["decoder_b"]))
