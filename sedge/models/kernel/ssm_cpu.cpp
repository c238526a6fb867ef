// Fused linear part of one S-Edge layer on the CPU, forward and backward (sedge.kernel).
//
// For one sequence z_0 … z_{L−1} (d_in real channels) and P complex states:
//
//     v_k = B̄ z_k + b̄          (W_in = [B̄ | b̄] as a real (2P, d_in) matrix, rows (Re, Im) per state)
//     x_k = Λ̄ ⊙ x_{k−1} + v_k,  x_{−1} = 0
//     y_k = Re(C x_k) + c       (W_out = [Re C, −Im C] as a real (H, 2P) matrix, columns (Re, Im))
//
// and, with the epilogue on, the layer output out_k = LeakyReLU(y_k) + S z_k (S = W_skip, (H, d_in),
// or the identity / a broadcast of the single input channel when W_skip is empty); it then also
// returns the sign mask of y for the backward pass (one bit per element). Without the epilogue out_k = y_k.
//
// Time is cut into chunks of T samples. The forward pass writes y and the state *entering* every
// chunk (B, n_chunks, 2, P) and nothing else: the (B, L, P) complex state is never stored. The
// backward pass visits the chunks last to first; it recomputes the chunk's states from its
// checkpoint, then runs the adjoint recurrence backwards in time with conj(Λ̄):
//
//     G_k = ∂ℒ/∂x_k = W_outᵀ g_k + conj(Λ̄) ⊙ G_{k+1}       (complex: ∂/∂Re + i ∂/∂Im)
//     ∂ℒ/∂Λ̄ = Σ_k conj(x_{k−1}) ⊙ G_k,   ∂ℒ/∂v_k = G_k,   ∂ℒ/∂z_k = W_inᵀ G_k
//     ∂ℒ/∂W_in = Σ_k G_k z_kᵀ,   ∂ℒ/∂W_out = Σ_k g_k x_kᵀ,   ∂ℒ/∂c = Σ_k g_k
//
// Inside a chunk only the two recurrences are sequential (4P multiply-adds per sample, vectorised
// over states); the six products (input and output maps and their gradients) are small dense
// matrix products over the chunk's T samples, computed by a register-blocked micro-kernel (GCC /
// Clang vector extensions, AVX-512 wide where the build machine has it and AVX2 otherwise; each sum
// runs in order, no -ffast-math, so the width changes no result). Work is parallel over the
// batch (at::parallel_for). Weight gradients are summed per chunk in the working precision and then
// into float64 per sequence, so float32 sums over 10⁵ samples stay accurate.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

// The sign mask of y that backward needs is stored one bit per element, packed per chunk: chunk c of
// sequence b owns bytes [(b·n_chunks + c)·mask_bytes, …), bit i of byte g is element 8g + i of the
// chunk's n·H values (time-major). A byte per element cost full 6 × 25 MB of a training step.
inline int64_t mask_bytes(int64_t chunk, int64_t H) { return (chunk * H + 7) / 8; }

// Pack n 0/1 bytes into ⌈n/8⌉ bytes. The multiply gathers byte i of a 64-bit word into bit 56 + i
// (every partial product lands on its own bit, so there are no carries).
inline void pack_bits(const uint8_t* __restrict src, int64_t n, uint8_t* __restrict dst) {
    const int64_t whole = n / 8;
    for (int64_t g = 0; g < whole; ++g) {
        uint64_t v;
        std::memcpy(&v, src + 8 * g, 8);
        dst[g] = (uint8_t)((v * 0x0102040810204080ULL) >> 56);
    }
    if (n % 8) {
        uint8_t byte = 0;
        for (int64_t i = 0; i < n % 8; ++i) byte |= (uint8_t)(src[8 * whole + i] << i);
        dst[whole] = byte;
    }
}

// The inverse: ⌈n/8⌉ packed bytes back to n 0/1 bytes.
inline void unpack_bits(const uint8_t* __restrict src, int64_t n, uint8_t* __restrict dst) {
    static const auto table = [] {
        std::array<uint64_t, 256> t{};
        for (int x = 0; x < 256; ++x)
            for (int i = 0; i < 8; ++i) t[x] |= (uint64_t)((x >> i) & 1) << (8 * i);
        return t;
    }();
    const int64_t whole = n / 8;
    for (int64_t g = 0; g < whole; ++g) std::memcpy(dst + 8 * g, &table[src[g]], 8);
    for (int64_t i = 0; i < n % 8; ++i) dst[8 * whole + i] = (src[whole] >> i) & 1;
}

namespace {

#ifdef __AVX512F__
constexpr int WIDE = 64;                        // one AVX-512 register
#else
constexpr int WIDE = 32;                        // one AVX2 register
#endif
constexpr int NARROW = 32;                      // the remaining columns in AVX2-sized vectors

template <typename S, int BYTES = WIDE>
struct Vec {
    using V [[gnu::vector_size(BYTES)]] = S;
    static constexpr int N = BYTES / sizeof(S);
    static inline V load(const S* p) { V v; std::memcpy(&v, p, BYTES); return v; }
    static inline void store(S* p, V v) { std::memcpy(p, &v, BYTES); }
    static inline V splat(S s) { return V{} + s; }          // one broadcast
};

// C[R × NV·lanes] += A[R × K] · W[K × NV·lanes]; A(r, p) = a[r·ars + p·acs], W row-major (ldw).
// With UNFUSED each product is rounded before it is added (a multiply and an add, not one fused
// multiply-add): the arithmetic of the scalar loop that used to compute the last columns.
template <typename S, int R, int NV, int BYTES, bool UNFUSED = false>
inline void micro(int K, const S* __restrict a, long ars, long acs, const S* __restrict w, long ldw,
                  S* __restrict c, long ldc) {
    using X = Vec<S, BYTES>;
    typename X::V acc[R][NV];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) acc[r][v] = X::load(c + r * ldc + v * X::N);
    for (int p = 0; p < K; ++p) {
        typename X::V wv[NV];
        for (int v = 0; v < NV; ++v) wv[v] = X::load(w + p * ldw + v * X::N);
        for (int r = 0; r < R; ++r) {
            const typename X::V s = X::splat(a[r * ars + p * acs]);
            for (int v = 0; v < NV; ++v) {
                if constexpr (UNFUSED) {
                    typename X::V prod = s * wv[v];
#if defined(__x86_64__) || defined(__i386__)
                    asm("" : "+v"(prod));                // the compiler cannot fuse through it
#endif
                    acc[r][v] += prod;
                } else {
                    acc[r][v] += s * wv[v];
                }
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) X::store(c + r * ldc + v * X::N, acc[r][v]);
}

// Columns [n0, n0 + NV·lanes) of C: rows in blocks of R (R·NV accumulators hide the FMA latency).
template <typename S, int R, int NV, int BYTES = WIDE>
inline void column_block(int M, int K, const S* a, long ars, long acs, const S* w, long ldw, S* c, long ldc) {
    int r = 0;
    for (; r + R <= M; r += R) micro<S, R, NV, BYTES>(K, a + r * ars, ars, acs, w, ldw, c + r * ldc, ldc);
    for (; r < M; ++r) micro<S, 1, NV, BYTES>(K, a + r * ars, ars, acs, w, ldw, c + r * ldc, ldc);
}

// The last T (< one narrow vector) columns of C[M × T] += A[M × K] · W[K × T]: through copies padded
// with zero columns to one narrow vector, so that they run through the vector micro-kernel as well (a
// scalar loop over them cost more than all the vector columns of a layer 42 or 54 wide). Each element
// is still c + Σ_p a·w in the same order; the zero columns only compute zeros.
template <typename S>
void tail_columns(int M, int K, int T, const S* a, long ars, long acs, const S* w, long ldw, S* c, long ldc) {
    constexpr int LN = Vec<S, NARROW>::N, R = 12;
    thread_local std::vector<S> wpad, cpad;
    wpad.assign((size_t)K * LN, S(0));
    cpad.assign((size_t)R * LN, S(0));
    for (int p = 0; p < K; ++p)
        for (int m = 0; m < T; ++m) wpad[(size_t)p * LN + m] = w[p * ldw + m];
    for (int r0 = 0; r0 < M; r0 += R) {
        const int rows = std::min(R, M - r0);
        for (int r = 0; r < rows; ++r)
            for (int m = 0; m < T; ++m) cpad[(size_t)r * LN + m] = c[(r0 + r) * ldc + m];
        if (rows == R) {
            micro<S, R, 1, NARROW, true>(K, a + r0 * ars, ars, acs, wpad.data(), LN, cpad.data(), LN);
        } else {
            for (int r = 0; r < rows; ++r)
                micro<S, 1, 1, NARROW, true>(K, a + (r0 + r) * ars, ars, acs, wpad.data(), LN, cpad.data() + r * LN, LN);
        }
        for (int r = 0; r < rows; ++r)
            for (int m = 0; m < T; ++m) c[(r0 + r) * ldc + m] = cpad[(size_t)r * LN + m];
    }
}

// C[M × N] += A[M × K] · W[K × N] (A with arbitrary strides, so Aᵀ needs no copy).
template <typename S>
void gemm_acc(int M, int K, int N, const S* a, long ars, long acs, const S* w, long ldw, S* c, long ldc) {
    constexpr int L = Vec<S>::N, LN = Vec<S, NARROW>::N;
    int n = 0;
    for (; n + 2 * L <= N; n += 2 * L) column_block<S, 6, 2>(M, K, a, ars, acs, w + n, ldw, c + n, ldc);
    for (; n + L <= N; n += L) column_block<S, 12, 1>(M, K, a, ars, acs, w + n, ldw, c + n, ldc);
    if constexpr (LN < L)
        for (; n + LN <= N; n += LN) column_block<S, 12, 1, NARROW>(M, K, a, ars, acs, w + n, ldw, c + n, ldc);
    if (n < N) tail_columns<S>(M, K, N - n, a, ars, acs, w + n, ldw, c + n, ldc);
}

template <typename S>
struct Weights {
    // De-interleaved copies of the maps: states as [Re 0…P−1 | Im 0…P−1] (2P = Q).
    int P, Q, H, d;
    std::vector<S> ar, ai;          // Λ̄ (P)
    std::vector<S> bin;             // b̄ (Q)
    std::vector<S> winT;            // (d, Q):  v = z · winT
    std::vector<S> winD;            // (Q, d):  ∂ℒ/∂z = G · winD
    std::vector<S> woutT;           // (Q, H):  y = x · woutT
    std::vector<S> woutD;           // (H, Q):  ∂ℒ/∂x = g · woutD
    std::vector<S> c;               // (H)
    bool has_skip = false;          // trainable skip S (H, d): out += z · skipT
    std::vector<S> skipT;           // (d, H)
    std::vector<S> skipD;           // (H, d)

    Weights(const at::Tensor& a, const at::Tensor& W_in, const at::Tensor& b_in, const at::Tensor& W_out,
            const at::Tensor& c_) {
        P = a.size(0); Q = 2 * P; d = W_in.size(1); H = W_out.size(0);
        auto A = a.contiguous(), Wi = W_in.contiguous(), bi = b_in.contiguous(), Wo = W_out.contiguous(),
             cc = c_.contiguous();
        const S *pa = A.data_ptr<S>(), *pwi = Wi.data_ptr<S>(), *pbi = bi.data_ptr<S>(), *pwo = Wo.data_ptr<S>();
        ar.resize(P); ai.resize(P); bin.resize(Q);
        winT.resize(d * Q); winD.resize(d * Q); woutT.resize(Q * H); woutD.resize(Q * H);
        c.assign(cc.data_ptr<S>(), cc.data_ptr<S>() + H);
        for (int p = 0; p < P; ++p) {
            ar[p] = pa[2 * p];
            ai[p] = pa[2 * p + 1];
            for (int part = 0; part < 2; ++part) {
                const int j = part * P + p, src = 2 * p + part;       // de-interleaved ← interleaved
                bin[j] = pbi[src];
                for (int i = 0; i < d; ++i) winT[i * Q + j] = winD[j * d + i] = pwi[src * d + i];
                for (int h = 0; h < H; ++h) woutT[j * H + h] = woutD[h * Q + j] = pwo[h * Q + src];
            }
        }
    }

    void set_skip(const at::Tensor& W_skip) {
        if (!W_skip.defined() || W_skip.numel() == 0) return;
        has_skip = true;
        auto Ws = W_skip.contiguous();
        const S* pw = Ws.data_ptr<S>();
        skipD.assign(pw, pw + H * d);
        skipT.resize(H * d);
        for (int h = 0; h < H; ++h)
            for (int i = 0; i < d; ++i) skipT[i * H + h] = pw[h * d + i];
    }
};

// States of one chunk in x (n rows of Q = [Re | Im]) from the entering state s (Q).
template <typename S>
void chunk_states(const Weights<S>& w, const S* z, int n, const S* s, S* __restrict x) {
    const int P = w.P, Q = w.Q, d = w.d;
    for (int t = 0; t < n; ++t) std::copy(w.bin.begin(), w.bin.end(), x + t * Q);
    if (d == 1) {
        for (int t = 0; t < n; ++t) {
            const S zt = z[t];
            S* __restrict xt = x + t * Q;
            const S* __restrict wt = w.winT.data();
#pragma omp simd
            for (int j = 0; j < Q; ++j) xt[j] += wt[j] * zt;
        }
    } else {
        gemm_acc<S>(n, d, Q, z, d, 1, w.winT.data(), Q, x, Q);
    }
    const S* __restrict ar = w.ar.data();
    const S* __restrict ai = w.ai.data();
    for (int t = 0; t < n; ++t) {
        const S* pr = t ? x + (t - 1) * Q : s;
        const S* pi = pr + P;
        S* __restrict vr = x + t * Q;
        S* __restrict vi = vr + P;
#pragma omp simd
        for (int p = 0; p < P; ++p) {
            const S nr = ar[p] * pr[p] - ai[p] * pi[p] + vr[p];
            const S ni = ar[p] * pi[p] + ai[p] * pr[p] + vi[p];
            vr[p] = nr;
            vi[p] = ni;
        }
    }
}

template <typename S>
void forward_impl(const at::Tensor& z, const Weights<S>& w, int64_t chunk, bool epilogue, double slope,
                  at::Tensor& y, at::Tensor& ckpt, at::Tensor& mask) {
    const int64_t B = z.size(0), L = z.size(1);
    const int Q = w.Q, H = w.H, d = w.d;
    const int64_t n_chunks = ckpt.size(1);
    const S* zp = z.data_ptr<S>();
    S* yp = y.data_ptr<S>();
    S* cp = ckpt.data_ptr<S>();
    uint8_t* mp = epilogue ? mask.data_ptr<uint8_t>() : nullptr;
    const S sl = (S)slope;
    const int64_t mbytes = mask_bytes(chunk, H);
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        std::vector<S> x(chunk * Q), s(Q);
        std::vector<uint8_t> signs(epilogue ? chunk * H : 0);
        for (int64_t b = b0; b < b1; ++b) {
            std::fill(s.begin(), s.end(), S(0));
            for (int64_t c = 0; c < n_chunks; ++c) {
                const int64_t t0 = c * chunk;
                const int n = (int)std::min<int64_t>(chunk, L - t0);
                std::copy(s.begin(), s.end(), cp + (b * n_chunks + c) * Q);
                const S* zc = zp + (b * L + t0) * d;
                chunk_states(w, zc, n, s.data(), x.data());
                S* yc = yp + (b * L + t0) * H;
                for (int t = 0; t < n; ++t) std::copy(w.c.begin(), w.c.end(), yc + t * H);
                gemm_acc<S>(n, Q, H, x.data(), Q, 1, w.woutT.data(), H, yc, H);
                if (epilogue) {
                    // Elementwise and branch-free, so that it vectorises (the sign of y is a coin flip
                    // a branch would mispredict half the time); the same values as the scalar form.
                    // (The slope is copied into a local first: read through the lambda's captured
                    // reference inside one arm of the select, it kept the loop scalar.)
                    uint8_t* __restrict mc = signs.data();
                    S* __restrict yk = yc;
                    const S slope_k = sl;
                    const int64_t nH = (int64_t)n * H;
#pragma omp simd
                    for (int64_t k = 0; k < nH; ++k) {
                        const S v = yk[k], leak = slope_k * v;
                        mc[k] = v > S(0);
                        yk[k] = v > S(0) ? v : leak;
                    }
                    uint8_t* packed = mp + (b * n_chunks + c) * mbytes;
                    pack_bits(mc, nH, packed);
                    std::fill(packed + (nH + 7) / 8, packed + mbytes, uint8_t(0));   // a short last chunk
                    if (w.has_skip) {
                        gemm_acc<S>(n, d, H, zc, d, 1, w.skipT.data(), H, yc, H);
                    } else if (d == 1) {                         // the one input channel, broadcast
                        for (int t = 0; t < n; ++t) {
                            const S zt = zc[t];
                            S* __restrict yt = yc + t * H;
#pragma omp simd
                            for (int h = 0; h < H; ++h) yt[h] += zt;
                        }
                    } else {                                     // identity (d = H)
#pragma omp simd
                        for (int64_t k = 0; k < nH; ++k) yk[k] += zc[k];
                    }
                }
                std::copy(x.begin() + (n - 1) * Q, x.begin() + n * Q, s.begin());
            }
        }
    });
}

template <typename S>
void backward_impl(const at::Tensor& gout, const at::Tensor& z, const Weights<S>& w, const at::Tensor& ckpt,
                   int64_t chunk, bool epilogue, double slope, const at::Tensor& mask, at::Tensor& gz, at::Tensor& acc) {
    // acc: (B, n_acc) float64, per sequence:
    // [ga_r P | ga_i P | gbin Q | gwinT d·Q | gwoutT Q·H | gc H | gskipT d·H (trainable skip only)]
    const int64_t B = z.size(0), L = z.size(1);
    const int P = w.P, Q = w.Q, H = w.H, d = w.d;
    const int64_t n_chunks = ckpt.size(1);
    const int64_t n_acc = acc.size(1);
    const S* zp = z.data_ptr<S>();
    const S* gop = gout.data_ptr<S>();
    const S* cp = ckpt.data_ptr<S>();
    const uint8_t* mp = epilogue ? mask.data_ptr<uint8_t>() : nullptr;
    const S sl = (S)slope;
    S* gzp = gz.data_ptr<S>();
    double* accp = acc.data_ptr<double>();
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        std::vector<S> x(chunk * Q), G(chunk * Q), carry(Q), part(n_acc), gyb(epilogue ? chunk * H : 0);
        std::vector<uint8_t> signs(epilogue ? chunk * H : 0);
        for (int64_t b = b0; b < b1; ++b) {
            double* accb = accp + b * n_acc;
            std::fill(carry.begin(), carry.end(), S(0));           // conj(Λ̄) ⊙ G_{k+1}
            for (int64_t c = n_chunks - 1; c >= 0; --c) {
                const int64_t t0 = c * chunk;
                const int n = (int)std::min<int64_t>(chunk, L - t0);
                const S* s = cp + (b * n_chunks + c) * Q;
                const S* zc = zp + (b * L + t0) * d;
                const S* goc = gop + (b * L + t0) * H;
                const S* gyc = goc;                           // ∂ℒ/∂y: through the activation if it is fused
                if (epilogue) {
                    const int64_t nH = (int64_t)n * H;
                    unpack_bits(mp + (b * n_chunks + c) * mask_bytes(chunk, H), nH, signs.data());
                    const uint8_t* __restrict mc = signs.data();
                    S* __restrict gk = gyb.data();
                    const S slope_k = sl;
#pragma omp simd
                    for (int64_t k = 0; k < nH; ++k) {
                        const S g = goc[k], leak = slope_k * g;
                        gk[k] = mc[k] ? g : leak;
                    }
                    gyc = gyb.data();
                }
                chunk_states(w, zc, n, s, x.data());
                std::fill(part.begin(), part.end(), S(0));
                S* ga_r = part.data();
                S* ga_i = ga_r + P;
                S* gbin = ga_i + P;
                S* gwinT = gbin + Q;
                S* gwoutT = gwinT + d * Q;
                S* gc = gwoutT + Q * H;
                S* gskipT = gc + H;
                // ∂ℒ/∂x from the output map: G = gy · woutD, then the adjoint recurrence in place.
                std::fill(G.begin(), G.begin() + n * Q, S(0));
                gemm_acc<S>(n, H, Q, gyc, H, 1, w.woutD.data(), Q, G.data(), Q);
                const S* __restrict ar = w.ar.data();
                const S* __restrict ai = w.ai.data();
                for (int t = n - 1; t >= 0; --t) {
                    S* __restrict Gr = G.data() + t * Q;
                    S* __restrict Gi = Gr + P;
                    const S* pr = t ? x.data() + (t - 1) * Q : s;
                    const S* pi = pr + P;
                    S* __restrict cr = carry.data();
                    S* __restrict ci = cr + P;
#pragma omp simd
                    for (int p = 0; p < P; ++p) {
                        const S gr = Gr[p] + cr[p], gi = Gi[p] + ci[p];
                        Gr[p] = gr;
                        Gi[p] = gi;
                        ga_r[p] += pr[p] * gr + pi[p] * gi;
                        ga_i[p] += pr[p] * gi - pi[p] * gr;
                        cr[p] = ar[p] * gr + ai[p] * gi;
                        ci[p] = ar[p] * gi - ai[p] * gr;
                    }
                }
                for (int t = 0; t < n; ++t) {
                    const S* Gt = G.data() + t * Q;
#pragma omp simd
                    for (int j = 0; j < Q; ++j) gbin[j] += Gt[j];
                    const S* gt = gyc + t * H;
#pragma omp simd
                    for (int h = 0; h < H; ++h) gc[h] += gt[h];
                }
                // ∂ℒ/∂W_out (as woutT, Q × H) += xᵀ · gy;  ∂ℒ/∂W_in (as winT, d × Q) += zᵀ · G
                gemm_acc<S>(Q, n, H, x.data(), 1, Q, gyc, H, gwoutT, H);
                gemm_acc<S>(d, n, Q, zc, 1, d, G.data(), Q, gwinT, Q);
                // ∂ℒ/∂z = G · winD
                S* gzc = gzp + (b * L + t0) * d;
                std::fill(gzc, gzc + (int64_t)n * d, S(0));
                gemm_acc<S>(n, Q, d, G.data(), Q, 1, w.winD.data(), d, gzc, d);
                if (epilogue && w.has_skip) {                 // out += z · Sᵀ
                    gemm_acc<S>(d, n, H, zc, 1, d, goc, H, gskipT, H);
                    gemm_acc<S>(n, H, d, goc, H, 1, w.skipD.data(), d, gzc, d);
                } else if (epilogue && d == 1) {              // the broadcast channel: Σ_h in order
                    for (int t = 0; t < n; ++t) {
                        S g = gzc[t];
                        for (int h = 0; h < H; ++h) g += goc[t * H + h];
                        gzc[t] = g;
                    }
                } else if (epilogue) {                        // identity (d = H)
                    S* __restrict gk = gzc;
                    const int64_t nH = (int64_t)n * H;
#pragma omp simd
                    for (int64_t k = 0; k < nH; ++k) gk[k] += goc[k];
                }
                for (int64_t k = 0; k < n_acc; ++k) accb[k] += (double)part[k];
            }
        }
    });
}

void check_inputs(const at::Tensor& z, const at::Tensor& a, const at::Tensor& W_in, const at::Tensor& b_in,
                  const at::Tensor& W_out, const at::Tensor& c, const at::Tensor& W_skip, bool epilogue,
                  int64_t chunk) {
    TORCH_CHECK(z.dim() == 3, "sedge::ssm_layer: z must be (batch, length, d_in), got ", z.sizes());
    const int64_t d = z.size(2), P = a.size(0), H = W_out.size(0);
    TORCH_CHECK(a.dim() == 2 && a.size(1) == 2, "sedge::ssm_layer: a must be (P, 2) = view_as_real(Λ̄)");
    TORCH_CHECK(W_in.dim() == 2 && W_in.size(0) == 2 * P && W_in.size(1) == d, "sedge::ssm_layer: W_in must be (2P, d_in)");
    TORCH_CHECK(b_in.numel() == 2 * P, "sedge::ssm_layer: b_in must have 2P entries");
    TORCH_CHECK(W_out.dim() == 2 && W_out.size(1) == 2 * P, "sedge::ssm_layer: W_out must be (H, 2P)");
    TORCH_CHECK(c.numel() == H, "sedge::ssm_layer: c must have H entries");
    TORCH_CHECK(chunk >= 1, "sedge::ssm_layer: chunk must be positive");
    TORCH_CHECK(W_skip.numel() == 0 || (W_skip.dim() == 2 && W_skip.size(0) == H && W_skip.size(1) == d),
                "sedge::ssm_layer: W_skip must be empty (identity skip) or (H, d_in)");
    TORCH_CHECK(!epilogue || W_skip.numel() > 0 || d == 1 || d == H, "sedge::ssm_layer: an identity skip needs d_in 1 or H");
    for (const at::Tensor* t : {&a, &W_in, &b_in, &W_out, &c, &W_skip})
        TORCH_CHECK(t->scalar_type() == z.scalar_type(), "sedge::ssm_layer: every input must have z's dtype");
    TORCH_CHECK(z.scalar_type() == at::kFloat || z.scalar_type() == at::kDouble,
                "sedge::ssm_layer: float32 or float64 only");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ssm_layer_forward(
    const at::Tensor& z_, const at::Tensor& a, const at::Tensor& W_in, const at::Tensor& b_in, const at::Tensor& W_out,
    const at::Tensor& c, const at::Tensor& W_skip, bool epilogue, double slope, int64_t chunk) {
    check_inputs(z_, a, W_in, b_in, W_out, c, W_skip, epilogue, chunk);
    auto z = z_.contiguous();
    const int64_t B = z.size(0), L = z.size(1), P = a.size(0), H = W_out.size(0);
    const int64_t n_chunks = std::max<int64_t>(1, (L + chunk - 1) / chunk);
    auto y = at::empty({B, L, H}, z.options());
    auto ckpt = at::zeros({B, n_chunks, 2, P}, z.options());
    auto mask = at::empty({epilogue ? B : 0, epilogue ? n_chunks : 0, epilogue ? mask_bytes(chunk, H) : 0},
                          z.options().dtype(at::kByte));
    if (L == 0) return {y, ckpt, mask};
    AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "ssm_layer_forward", [&] {
        Weights<scalar_t> w(a, W_in, b_in, W_out, c);
        w.set_skip(W_skip);
        forward_impl<scalar_t>(z, w, chunk, epilogue, slope, y, ckpt, mask);
    });
    return {y, ckpt, mask};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> ssm_layer_backward(
    const at::Tensor& gout_, const at::Tensor& z_, const at::Tensor& a, const at::Tensor& W_in, const at::Tensor& b_in,
    const at::Tensor& W_out, const at::Tensor& c, const at::Tensor& W_skip, bool epilogue, double slope,
    const at::Tensor& ckpt_, const at::Tensor& mask_, int64_t chunk) {
    check_inputs(z_, a, W_in, b_in, W_out, c, W_skip, epilogue, chunk);
    auto z = z_.contiguous(), gout = gout_.contiguous(), ckpt = ckpt_.contiguous(), mask = mask_.contiguous();
    const int64_t B = z.size(0), L = z.size(1), d = z.size(2), P = a.size(0), Q = 2 * P, H = W_out.size(0);
    const bool skip = epilogue && W_skip.numel() > 0;
    const int64_t n_acc = 2 * P + Q + d * Q + Q * H + H + (skip ? d * H : 0);
    auto gz = L > 0 ? at::empty_like(z) : at::zeros_like(z);
    auto acc = at::zeros({B, n_acc}, z.options().dtype(at::kDouble));
    if (L > 0) {
        AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "ssm_layer_backward", [&] {
            Weights<scalar_t> w(a, W_in, b_in, W_out, c);
            w.set_skip(W_skip);
            backward_impl<scalar_t>(gout, z, w, ckpt, chunk, epilogue, slope, mask, gz, acc);
        });
    }
    // Sum over sequences and return to the interleaved layouts of the inputs.
    auto s = acc.sum(0);
    int64_t o = 0;
    auto take = [&](int64_t n) { auto r = s.narrow(0, o, n); o += n; return r; };
    auto ga_r = take(P), ga_i = take(P);
    auto gbin = take(Q), gwinT = take(d * Q), gwoutT = take(Q * H), gc = take(H);
    auto dt = z.scalar_type();
    auto ga = at::stack({ga_r, ga_i}, 1).to(dt);
    auto gb_in = gbin.view({2, P}).t().reshape({Q}).to(dt);
    auto gW_in = gwinT.view({d, 2, P}).permute({2, 1, 0}).reshape({Q, d}).to(dt);
    auto gW_out = gwoutT.view({2, P, H}).permute({2, 1, 0}).reshape({H, Q}).to(dt);
    auto gW_skip = skip ? take(d * H).view({d, H}).t().contiguous().to(dt) : at::zeros_like(W_skip);
    return {gz, ga, gW_in, gb_in.view(b_in.sizes()), gW_out, gc.to(dt).view(c.sizes()), gW_skip};
}

// Per-channel mean and biased variance of u (…, d) over all leading dimensions, in one pass with
// float64 sums per thread (BatchNorm statistics: the slow part of torch.var_mean on channel-last data).
std::tuple<at::Tensor, at::Tensor> channel_moments(const at::Tensor& u_) {
    TORCH_CHECK(u_.dim() >= 1, "sedge::channel_moments: u must have a channel dimension");
    auto u = u_.contiguous();
    const int64_t d = u.size(-1), n = d ? u.numel() / d : 0;
    TORCH_CHECK(n > 0, "sedge::channel_moments: no samples");
    const int nt = at::get_num_threads();
    std::vector<double> sums((size_t)nt * 2 * d, 0.0);
    AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "channel_moments", [&] {
        const scalar_t* p = u.data_ptr<scalar_t>();
        const int64_t grain = std::max<int64_t>(1, n / nt + 1);
        at::parallel_for(0, n, grain, [&](int64_t r0, int64_t r1) {
            double* s1 = sums.data() + (size_t)at::get_thread_num() * 2 * d;
            double* s2 = s1 + d;
            for (int64_t r = r0; r < r1; ++r) {
                const scalar_t* row = p + r * d;
                for (int64_t i = 0; i < d; ++i) {
                    const double v = (double)row[i];
                    s1[i] += v;
                    s2[i] += v * v;
                }
            }
        });
    });
    auto mean = at::zeros({d}, u.options().dtype(at::kDouble)), var = at::zeros({d}, u.options().dtype(at::kDouble));
    double* pm = mean.data_ptr<double>();
    double* pv = var.data_ptr<double>();
    for (int t = 0; t < nt; ++t)
        for (int64_t i = 0; i < d; ++i) {
            pm[i] += sums[(size_t)t * 2 * d + i];
            pv[i] += sums[(size_t)t * 2 * d + d + i];
        }
    for (int64_t i = 0; i < d; ++i) {
        pm[i] /= (double)n;
        pv[i] = std::max(0.0, pv[i] / (double)n - pm[i] * pm[i]);
    }
    return {var.to(u.scalar_type()), mean.to(u.scalar_type())};
}

}  // namespace

TORCH_LIBRARY(sedge, m) {
    m.def("channel_moments(Tensor u) -> (Tensor, Tensor)");
    m.def("ssm_layer_forward(Tensor z, Tensor a, Tensor W_in, Tensor b_in, Tensor W_out, Tensor c, Tensor W_skip, "
          "bool epilogue, float slope, int chunk) -> (Tensor, Tensor, Tensor)");
    m.def("ssm_layer_backward(Tensor gout, Tensor z, Tensor a, Tensor W_in, Tensor b_in, Tensor W_out, Tensor c, "
          "Tensor W_skip, bool epilogue, float slope, Tensor ckpt, Tensor mask, int chunk) "
          "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(sedge, CPU, m) {
    m.impl("ssm_layer_forward", &ssm_layer_forward);
    m.impl("ssm_layer_backward", &ssm_layer_backward);
    m.impl("channel_moments", &channel_moments);
}
