"""Fixed-point variant of an export dict: int8 (or int16) weights, int16 activations, int32 states (SPEC §9).

Why this split (the arithmetic a Cortex-M4 runs natively: 16-bit SIMD multiply-accumulates and
single-cycle 32 × 32 → 64-bit ``SMLAL``):

* **weights** (B̄, C, skip, D, decoder) in ``weight_bits`` = 8 (4× less memory than float32) or 16
  bits, with one power-of-two scale per output column, so a column of small weights keeps its
  resolution;
* **int16 activations** (layer inputs and outputs);
* **int32 states, one scale per layer**: the state of a slow mode is a long sum (its gain is up to
  1/(1 − |λ̄|), about 5,000 in a trained `tiny`), so the per-step increment v_k is 12 bits below the
  state's range, and 16 bits would leave it 3. Sixteen extra bits keep it exact enough. One scale
  per layer (not per mode) keeps C a plain weight matrix: folding a per-mode scale 2^(−f_p) into C
  spreads its rows over 2^10 and an int8 column scale set by the largest row zeroes the others
  (on the trained `tiny` that cost 20–45 % of top-1 agreement with float32);
* **Λ̄ in Q30 (int32)**, rounded *toward zero*: |λ̄| ≈ 1 − 2·10⁻⁴ for the slowest trained modes, so
  a Q15 pole (resolution 3·10⁻⁵) would move its time constant by up to 16 %; truncating each part
  keeps |λ̄_q| ≤ |λ̄| < 1, so every quantised mode stays stable.

Scales are powers of two: a tensor with ``f`` fractional bits stores q = round(x · 2^f), so every
rescale is a rounding shift ``rshift(a, s) = ⌊(a + 2^(s−1)) / 2^s⌋`` (s > 0) or a·2^(−s) (s ≤ 0);
``sat16`` / ``sat32`` clamp to the signed range. Fractional bits come from calibration clips
(float64 reference, :func:`sedge.deploy.export.reference_features`): for an int16 tensor the largest f with
``headroom · max|x| · 2^f ≤ 2^15``; a layer's state gets that f of its largest mode plus 16 (int32).
One step of layer ℓ (integers throughout; accumulators int64, bounded at quantisation time):

    a_j   = bv_j + Σ_i u_i BW_ij                                    v_j = rshift(a_j, sh_v_j)
    x'_p  = sat32(rshift(λr_p xr_p − λi_p xi_p, 30) + v_p)  (and the imaginary part likewise)
    y_h   = rshift(Σ_p x_p CW_ph, sh_y_h) + c_h  [+ rshift(Db_h + Σ_i u_i DW_ih, sh_d_h)]
    out_h = sat16(leaky(y_h) + skip_h),   leaky(y) = y (y > 0) else rshift(328 y, 15)   (0.01 ≈ 328/2^15)

The input is the 16-bit PCM sample, normalised in integers: u₀ = sat16(rshift(pcm · in_mul + in_add,
in_sh)). The decoder sums int16 outputs over time in int64 and dequantises once:
logit_c = (Σ_h S_h W_ch) · 2^(−f_L − f_c) / T + b_c, in float64. :func:`fixed_logits` is the
integer NumPy reference; the generated C++ (:mod:`sedge.deploy.cpp_fixed`) reproduces it bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

from sedge.deploy.export import reference_features

FORMAT = "sedge-export-fixed"
VERSION = 2
LEAKY_Q15 = 328                       # round(0.01 · 2^15)
IN_SH = 16                            # fractional bits of the input normalisation multiplier
LAMBDA_FRAC = 30                      # Q30 poles
STATE_EXTRA = 16                      # fractional bits of an int32 state beyond those of an int16 tensor
ACC_LIMIT = 2**62                     # int64 accumulators, with room for a rounding offset
WEIGHT_BITS = (8, 16)


def rshift(a, s):
    """Rounding arithmetic shift right by s (left by −s) on int64 arrays; s may be an array."""
    a = np.asarray(a, np.int64)
    s = np.asarray(s, np.int64)
    sp, sn = np.maximum(s, 0), np.maximum(-s, 0)
    return (a * (np.int64(1) << sn) + ((np.int64(1) << sp) >> 1)) >> sp


def sat16(a):
    return np.clip(a, -32768, 32767).astype(np.int64)


def sat32(a):
    return np.clip(a, -2**31, 2**31 - 1).astype(np.int64)


def _act_frac(max_abs: float, headroom: float) -> int:
    """Largest f with headroom · max|x| · 2^f ≤ 2^15 (15 when the tensor is all zero)."""
    if max_abs <= 0:
        return 15
    return int(math.floor(15 - math.log2(headroom * max_abs)))


def _weight_q(W: np.ndarray, axis: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``bits``-bit weights with one power-of-two scale per slice along ``axis`` (the output columns).

    Returns (q, f) with q = round(W · 2^f) in [−(2^(bits−1) − 1), 2^(bits−1) − 1] and f the
    per-column fractional bits."""
    W = np.asarray(W, np.float64)
    top = 2 ** (bits - 1) - 1
    m = np.abs(W).max(axis=axis, keepdims=True)
    f = np.where(m > 0, np.floor(np.log2(top / np.where(m > 0, m, 1.0))), 0).astype(np.int64)
    q = np.clip(np.rint(W * np.exp2(f)), -top, top).astype(np.int8 if bits == 8 else np.int16)
    return q, f.squeeze(axis)


def _bias_q(b: np.ndarray, frac: np.ndarray, what: str) -> np.ndarray:
    """A bias at the fractional bits ``frac`` of its accumulator: int32 when every value fits, else int64."""
    q = np.rint(np.asarray(b, np.float64) * np.exp2(frac))
    top = np.abs(q).max(initial=0)
    if top > ACC_LIMIT:
        raise ValueError(f"{what}: bias does not fit an int64 accumulator at {frac.max()} fractional bits")
    return q.astype(np.int32 if top < 2**31 else np.int64)


def _check_acc(q: np.ndarray, in_bound: int, bias: np.ndarray | None, what: str) -> None:
    """Worst case of Σ_i |u_i| |W_ij| + |bias_j| with |u_i| ≤ in_bound must fit the int64 accumulator."""
    worst = np.abs(q.astype(np.int64)).sum(axis=0).astype(np.float64) * in_bound
    if bias is not None:
        worst = worst + np.abs(bias.astype(np.float64))
    if worst.max(initial=0) > ACC_LIMIT:
        raise ValueError(f"{what}: the int64 accumulator can overflow (worst case {worst.max():.3g})")


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


def _pole_q30(x: np.ndarray) -> np.ndarray:
    return np.trunc(x * 2.0**LAMBDA_FRAC).clip(-(2**31 - 1), 2**31 - 1).astype(np.int32)


def quantise(d: dict, calib_waves: np.ndarray, headroom: float = 4.0, weight_bits: int = 8) -> dict:
    """The fixed-point model of export dict ``d``, scaled on calibration clips ``calib_waves``
    (raw waveforms in [−1, 1], never test clips), with ``weight_bits``-bit weights (8 or 16).
    See the module docstring for the arithmetic."""
    if len(calib_waves) == 0:
        raise ValueError("quantise: calibration needs at least one clip")
    if weight_bits not in WEIGHT_BITS:
        raise ValueError(f"quantise: weight_bits must be one of {WEIGHT_BITS}, got {weight_bits!r}")
    wq = lambda W, axis: _weight_q(W, axis, weight_bits)          # noqa: E731
    stats = calibrate(d, calib_waves)
    f_in = _act_frac(stats[(0, "input")], headroom)
    layers = []
    f_u = f_in
    for i, l in enumerate(d["layers"]):
        P, H, DIN = l["P"], l["H"], l["d_in"]
        f_out = _act_frac(stats[(i, "output")], headroom)
        f_s = _act_frac(float(np.max(stats[(i, "state")])), headroom) + STATE_EXTRA
        BW = np.concatenate([l["B"].real.T, l["B"].imag.T], axis=1)              # d_in × 2P
        BWq, fB = wq(BW, 0)
        bv = _bias_q(np.concatenate([l["b"].real, l["b"].imag]), f_u + fB, f"layer {i} b̄")
        _check_acc(BWq, 2**15, bv, f"layer {i} B̄")
        CW = np.concatenate([l["C"].real.T, -l["C"].imag.T], axis=0)             # 2P × H
        CWq, fC = wq(CW, 0)
        _check_acc(CWq, 2**31, None, f"layer {i} C")
        lam = l["lam_bar"]
        q = {"P": P, "H": H, "d_in": DIN, "decimate": l["decimate"], "step": l["step"],
             "f_u": f_u, "f_out": f_out, "f_s": f_s,
             "BW": BWq, "bv": bv, "sh_v": f_u + fB - f_s,
             "lam_re": _pole_q30(lam.real), "lam_im": _pole_q30(lam.imag),
             "CW": CWq, "sh_y": f_s + fC - f_out, "c": _bias_q(l["c"], np.full(H, f_out), f"layer {i} c"),
             "skip": None, "sh_s": np.full(H, f_u - f_out, np.int64), "D": None, "Db": None, "sh_d": None}
        if l["skip"] is not None:
            q["skip"], fS = wq(l["skip"].T, 0)                                   # d_in × H
            _check_acc(q["skip"], 2**15, None, f"layer {i} skip")
            q["sh_s"] = f_u + fS - f_out
        if l["D"] is not None:
            q["D"], fD = wq(l["D"][:, :-1].T, 0)
            q["Db"] = _bias_q(l["D"][:, -1], f_u + fD, f"layer {i} D")
            _check_acc(q["D"], 2**15, q["Db"], f"layer {i} D")
            q["sh_d"] = f_u + fD - f_out
        layers.append(q)
        f_u = f_out
    Wq, fW = wq(d["decoder_W"].T, 0)                                             # H_L × classes
    in_scale_q = d["in_scale"] * 2.0 ** (f_in - 15 + IN_SH)
    return {"format": FORMAT, "version": VERSION, "weight_bits": weight_bits, "step_scale": list(d["step_scale"]),
            "n_classes": d["n_classes"], "classes": list(d["classes"]), "clip_samples": d["clip_samples"],
            "headroom": headroom, "calibration_clips": len(calib_waves), "f_in": f_in,
            "in_mul": int(round(in_scale_q)), "in_add": int(round(d["in_shift"] * 2.0 ** (f_in + IN_SH))),
            "layers": layers, "decoder_W": np.ascontiguousarray(Wq.T), "decoder_f": fW,
            "decoder_scale": np.exp2(-(f_u + fW).astype(np.float64)), "decoder_b": np.asarray(d["decoder_b"], np.float64)}


def _project(u: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Σ_i u_i W_ij exactly, (N, T, d_in) int × (d_in, M) int → int64 (integer matmul: a state projection
    reaches 2^54, beyond the integers float64 holds exactly)."""
    return np.matmul(u.astype(np.int64), W.astype(np.int64))


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
        for k in range(u.shape[1]):                                              # the recurrence, Q30 poles
            xr, xi = (sat32(rshift(lr * xr - li * xi, LAMBDA_FRAC) + v[:, k, :P]),
                      sat32(rshift(lr * xi + li * xr, LAMBDA_FRAC) + v[:, k, P:]))
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
    shift count, float32 decoder scale and bias; biases int32 or int64, poles int32)."""
    n = 0
    for l in q["layers"]:
        for k in ("BW", "bv", "lam_re", "lam_im", "CW", "c", "skip", "D", "Db"):
            if l[k] is not None:
                n += l[k].nbytes
        n += sum(np.size(l[k]) for k in ("sh_v", "sh_y", "sh_s", "sh_d") if l[k] is not None)
    return n + q["decoder_W"].nbytes + 4 * (len(q["decoder_scale"]) + len(q["decoder_b"]))
