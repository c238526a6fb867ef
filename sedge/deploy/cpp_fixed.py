"""Generated C++17 for the fixed-point model (int8/int16 weights, int32 states; :mod:`sedge.compress.fixed_point`).

Same files and the same C API as :func:`sedge.deploy.cpp.generate_cpp` — float waveform in, float logits
out — so :class:`sedge.deploy.cpp.CppModel`, ``main.cpp`` and the CMake project serve both. Inside, the
sample becomes 16-bit PCM and everything up to the decoder's single dequantisation is integer
arithmetic that equals :func:`sedge.compress.fixed_point.fixed_logits` bit for bit. There is one path:
the whole-clip call runs the streaming step over the clip (on a microcontroller the samples arrive
one at a time anyway).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sedge.deploy.cpp import _CMAKE, _MAIN, c_api_header, stream_step_calls
from sedge.compress.fixed_point import IN_SH, LAMBDA_FRAC, LEAKY_Q15, weight_bytes


_CTYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t",
           np.dtype(np.int64): "int64_t"}


def _arr(name: str, values) -> str:
    """A constant array in the C type of the quantiser's dtype (int8/int16 weights, int32/int64 biases)."""
    return _int_arr(name, _CTYPES[np.asarray(values).dtype], values)


def _int_arr(name: str, ctype: str, values) -> str:
    flat = np.asarray(values).astype(np.int64).ravel()
    body = ",".join(str(int(v)) for v in flat) if flat.size else "0"
    return f"alignas(64) static const {ctype} {name}[{max(flat.size, 1)}] = {{{body}}};\n"


def _dbl_arr(name: str, values) -> str:
    body = ",".join(f"{float(v):.17e}" for v in np.ravel(values))
    return f"static const double {name}[{np.size(values)}] = {{{body}}};\n"


_HELPERS = r"""
// rshift(a, s): rounding shift right by s (left by -s), exactly sedge.compress.fixed_point.rshift.
static inline int64_t rsh(int64_t a, int s) {
    return s >= 0 ? (a + ((int64_t(1) << s) >> 1)) >> s : a * (int64_t(1) << -s);
}
static inline int16_t sat16(int64_t a) { return a > 32767 ? 32767 : (a < -32768 ? -32768 : static_cast<int16_t>(a)); }
static inline int32_t sat32(int64_t a) {
    return a > INT32_MAX ? INT32_MAX : (a < INT32_MIN ? INT32_MIN : static_cast<int32_t>(a));
}
"""


def generate_cpp_fixed(q: dict, out_dir: str | Path) -> Path:
    """Write the fixed-point C++ project for quantised model ``q`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    L = len(q["layers"])
    steps = [l["step"] for l in q["layers"]]
    weights, code, offsets = [], [], [0]
    for i, l in enumerate(q["layers"]):
        P, H, DIN = l["P"], l["H"], l["d_in"]
        P2 = 2 * P
        offsets.append(offsets[-1] + P)
        weights += [_arr(f"L{i}_BW", l["BW"]), _arr(f"L{i}_bv", l["bv"]),
                    _int_arr(f"L{i}_shv", "int8_t", l["sh_v"]), _arr(f"L{i}_lr", l["lam_re"]),
                    _arr(f"L{i}_li", l["lam_im"]), _arr(f"L{i}_CW", l["CW"]),
                    _int_arr(f"L{i}_shy", "int8_t", l["sh_y"]), _arr(f"L{i}_c", l["c"]),
                    _int_arr(f"L{i}_shs", "int8_t", l["sh_s"])]
        if l["skip"] is not None:
            weights.append(_arr(f"L{i}_SW", l["skip"]))
            skip = (f"int64_t sa[{H}] = {{}};\n    for (int j = 0; j < {DIN}; ++j) {{ const int64_t uj = u[j]; "
                    f"for (int h = 0; h < {H}; ++h) sa[h] += uj * L{i}_SW[j * {H} + h]; }}\n"
                    f"    #define SKIP(h) rsh(sa[h], L{i}_shs[h])")
        else:
            skip = f"#define SKIP(h) rsh(u[{'0' if DIN == 1 else 'h'}], L{i}_shs[h])"
        feed = ""
        if l["D"] is not None:
            weights += [_arr(f"L{i}_DW", l["D"]), _arr(f"L{i}_Db", l["Db"]),
                        _int_arr(f"L{i}_shd", "int8_t", l["sh_d"])]
            feed = (f"for (int h = 0; h < {H}; ++h) {{ int64_t a = L{i}_Db[h]; "
                    f"for (int j = 0; j < {DIN}; ++j) a += int64_t(u[j]) * L{i}_DW[j * {H} + h]; y[h] += rsh(a, L{i}_shd[h]); }}")
        recur = (f"for (int p = 0; p < {P}; ++p) {{\n"
                 f"        const int64_t r = xr[p], m = xi[p], lr = L{i}_lr[p], li = L{i}_li[p];\n"
                 f"        xr[p] = sat32(rsh(lr * r - li * m, {LAMBDA_FRAC}) + rsh(a[p], L{i}_shv[p]));\n"
                 f"        xi[p] = sat32(rsh(lr * m + li * r, {LAMBDA_FRAC}) + rsh(a[{P} + p], L{i}_shv[{P} + p]));\n"
                 f"    }}")
        code.append(f"""
// Layer {i}: x <- sat32(rshift(lam x, {LAMBDA_FRAC}) + rshift(bv + u BW, shv)) every {steps[i]} samples.
static inline void update{i}(int32_t* __restrict xr, int32_t* __restrict xi, const int16_t* __restrict u) {{
    int64_t a[{P2}];
    for (int p = 0; p < {P2}; ++p) a[p] = L{i}_bv[p];
    for (int j = 0; j < {DIN}; ++j) {{ const int64_t uj = u[j]; for (int p = 0; p < {P2}; ++p) a[p] += uj * L{i}_BW[j * {P2} + p]; }}
    {recur}
}}
static inline void emit{i}(const int32_t* __restrict xr, const int32_t* __restrict xi, const int16_t* __restrict u,
                          int16_t* __restrict out) {{
    int64_t acc[{H}] = {{}};
    for (int p = 0; p < {P}; ++p) {{
        const int64_t r = xr[p], m = xi[p];
        for (int h = 0; h < {H}; ++h) acc[h] += r * L{i}_CW[p * {H} + h] + m * L{i}_CW[({P} + p) * {H} + h];
    }}
    int64_t y[{H}];
    for (int h = 0; h < {H}; ++h) y[h] = rsh(acc[h], L{i}_shy[h]) + L{i}_c[h];
    {feed}
    {skip}
    for (int h = 0; h < {H}; ++h) {{
        const int64_t act = y[h] > 0 ? y[h] : rsh({LEAKY_Q15} * y[h], 15);
        out[h] = sat16(act + SKIP(h));
    }}
    #undef SKIP
}}
""")
    HL = q["layers"][-1]["H"]
    total_p = offsets[-1]
    calls = stream_step_calls(steps, offsets, [l["d_in"] for l in q["layers"]], "int16_t")
    header = c_api_header(f"fixed-point S-Edge model (int{q['weight_bits']} weights, int32 states), {L} layers,\n"
                          f"step scale {steps}, {q['n_classes']} classes.",
                          push="one 16 kHz sample in [-1, 1] (becomes 16-bit PCM)", classify="whole clip",
                          classify_stream="the same (one path)")
    source = f"""// Generated by sedge. Self-contained C++17, integer arithmetic (see sedge/compress/fixed_point.py for the scales).
#include "sedge_model.h"
#include <cmath>
#include <climits>
#include <cstdint>
#include <cstring>
#include <new>

namespace {{
constexpr int N_CLASSES = {q['n_classes']};
constexpr int CLIP_SAMPLES = {q['clip_samples']};
constexpr int64_t IN_MUL = {q['in_mul']}LL, IN_ADD = {q['in_add']}LL;
constexpr int IN_SH = {IN_SH};
{''.join(weights)}
{_arr('DEC_W', q['decoder_W'])}
{_dbl_arr('DEC_SCALE', q['decoder_scale'])}
{_dbl_arr('DEC_B', q['decoder_b'])}
{_HELPERS}
{''.join(code)}
struct State {{
    int32_t xr[{max(total_p, 1)}];
    int32_t xi[{max(total_p, 1)}];
    int64_t acc[{HL}];
    long t;
    long count;
}};

void step(State* st, float sample) {{
    const long t = st->t++;
    const int64_t pcm = sat16(static_cast<int64_t>(std::nearbyint(sample * 32768.0f)));
    int16_t u0[1] = {{sat16(rsh(pcm * IN_MUL + IN_ADD, IN_SH))}};
    int16_t last[{HL}];
{chr(10).join(calls)}
    for (int h = 0; h < {HL}; ++h) st->acc[h] += last[h];
    st->count += 1;
}}
}}  // namespace

extern "C" {{
int sedge_n_classes(void) {{ return N_CLASSES; }}
int sedge_clip_samples(void) {{ return CLIP_SAMPLES; }}
std::size_t sedge_state_bytes(void) {{ return sizeof(State); }}
std::size_t sedge_weight_bytes(void) {{ return {weight_bytes(q)}; }}
void sedge_reset(void* s) {{ std::memset(s, 0, sizeof(State)); }}
void* sedge_new(void) {{ State* s = new (std::nothrow) State; if (s) sedge_reset(s); return s; }}
void sedge_free(void* s) {{ delete static_cast<State*>(s); }}
void sedge_push(void* s, float sample) {{ step(static_cast<State*>(s), sample); }}
void sedge_logits(const void* s, float* logits) {{
    const State* st = static_cast<const State*>(s);
    for (int k = 0; k < N_CLASSES; ++k) {{
        int64_t dot = 0;
        for (int h = 0; h < {HL}; ++h) dot += st->acc[h] * DEC_W[k * {HL} + h];
        logits[k] = st->count ? static_cast<float>(static_cast<double>(dot) * DEC_SCALE[k] / static_cast<double>(st->count) + DEC_B[k])
                              : static_cast<float>(DEC_B[k]);
    }}
}}
void sedge_classify_stream(const float* wave, int n, float* logits) {{
    State st;
    sedge_reset(&st);
    for (int i = 0; i < n; ++i) step(&st, wave[i]);
    sedge_logits(&st, logits);
}}
void sedge_classify(const float* wave, int n, float* logits) {{ sedge_classify_stream(wave, n, logits); }}
}}
"""
    (out / "sedge_model.h").write_text(header)
    (out / "sedge_model.cpp").write_text(source)
    (out / "main.cpp").write_text(_MAIN.replace("@CLASSES@", ", ".join(f'"{c}"' for c in q["classes"])))
    (out / "CMakeLists.txt").write_text(_CMAKE)
    (out / "README.md").write_text(_README.format(L=L, steps=steps, n=q["n_classes"], wb=weight_bytes(q),
                                                  bits=q["weight_bits"]))
    return out


_README = """# Generated S-Edge model, fixed point

{L} layers, cumulative step scale {steps}, {n} classes, {wb} bytes of weights (int{bits} weights, Q30 poles,
int32 states, int16 activations, int32/int64 biases; scales as powers of two, documented in
sedge/compress/fixed_point.py).
Generated by `sedge export --fixed-point`; no dependencies beyond a C++17 compiler.

    cmake -B build && cmake --build build      # or: g++ -O3 -std=c++17 main.cpp sedge_model.cpp -o sedge_classify
    ./build/sedge_classify clip.wav           # 16 kHz mono WAV → the top class, then every logit

C API (`sedge_model.h`): as the float32 export. Samples in [-1, 1] are rounded to 16-bit PCM; all
arithmetic up to the final dequantisation of the logits is integer.
"""
