"""The fused S-Edge layer operator ``sedge::ssm_layer_forward`` / ``_backward`` (CPU, C++).

One custom operator computes the linear part of a layer from its (BatchNorm-ed) input z:

    y_k = Re(C x_k) + c,    x_k = Λ̄ ⊙ x_{k−1} + B̄ z_k + b̄,    x_{−1} = 0

with [B̄ | b̄] = ``W_in`` (2P, d_in) / ``b_in`` (2P,) and C = ``W_out`` (H, 2P) in the interleaved real
layouts of :meth:`sedge.models.layer.SEdgeLayer.input_map` / ``output_map``, and Λ̄ as ``view_as_real`` (P, 2).
The forward keeps only the state entering each chunk of ``CHUNK`` samples; the backward recomputes a
chunk's states from it and runs the adjoint recurrence with conj(Λ̄) (see ``ssm_cpu.cpp``).

The source is compiled once per machine with the system C++ compiler by
``torch.utils.cpp_extension`` (cached under ``$TORCH_EXTENSIONS_DIR``, default
``~/.cache/torch_extensions``), with OpenMP so that ``at::parallel_for`` spreads the batch over
torch's threads; a compiler without OpenMP gets the serial build (same arithmetic, one thread).
Without a compiler, or with ``SEDGE_KERNEL=0``, :func:`available` is False after one warning and
callers use the chunked scan of :mod:`sedge.models.scan` instead.

The thread count changes only the order of the float64 sums of the BatchNorm moments
(``channel_moments``); gradients are summed per sequence and then in batch order, so at one thread
the OpenMP build computes bit for bit what the serial build computes.
Autograd, ``torch.compile`` (a fake kernel gives shapes) and DDP see an ordinary operator.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import sys
import warnings
from pathlib import Path

import torch

CHUNK = 256                                  # samples per checkpointed chunk
SOURCE = Path(__file__).with_name("ssm_cpu.cpp")
CFLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-std=c++17"]
OPENMP = ["-fopenmp"]                        # added to CFLAGS and the link when the compiler has it

_state: dict[str, object] = {"loaded": None, "error": None, "off": 0}


class KernelUnavailable(RuntimeError):
    """The fused CPU kernel could not be built or loaded."""


def _build_name(flags: list[str]) -> str:
    """Extension name keyed by the source, the flags, torch and the CPU (a cache shared across
    machines never serves a binary built for another instruction set)."""
    h = hashlib.sha1(SOURCE.read_bytes())
    h.update(" ".join(flags).encode())
    h.update(torch.__version__.encode())
    h.update(platform.machine().encode())
    try:
        flags = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags"))
        h.update(flags.encode())
    except (OSError, StopIteration):
        pass
    return f"sedge_ssm_{h.hexdigest()[:12]}"


def _load() -> None:
    import logging
    # Importing cpp_extension on a machine without CUDA logs "No CUDA runtime is found" (irrelevant to
    # a CPU build) into every chapter's output; only its errors are kept.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import cpp_extension
    try:
        _build(cpp_extension, CFLAGS + OPENMP, OPENMP)
    except Exception:                               # e.g. a compiler without OpenMP: the serial build
        _build(cpp_extension, CFLAGS, [])           # (raises if there is no compiler at all)
        warnings.warn("sedge: the fused CPU kernel does not build with OpenMP here; using the serial "
                      "build (one thread per process, same results)", RuntimeWarning, stacklevel=3)
    _register_python_side()


def _build(cpp_extension, cflags: list[str], ldflags: list[str]) -> None:
    name = _build_name(cflags)
    build_dir = Path(cpp_extension._get_build_directory(name, verbose=False))
    if not (build_dir / f"{name}.so").exists():
        print(f"sedge: compiling the fused S-Edge CPU kernel (once; cached in {build_dir}) …",
              file=sys.stderr, flush=True)
    cpp_extension.load(name=name, sources=[str(SOURCE)], extra_cflags=cflags, extra_ldflags=ldflags,
                       is_python_module=False, verbose=False)


@contextlib.contextmanager
def disabled():
    """Within this block :func:`available` is False: callers take the chunked-scan path (tests and
    benchmarks compare both paths in one process)."""
    _state["off"] = int(_state["off"]) + 1
    try:
        yield
    finally:
        _state["off"] = int(_state["off"]) - 1


def available() -> bool:
    """Build/load the kernel on first call; False (after one warning) when it cannot be had."""
    if _state["off"]:
        return False
    if _state["loaded"] is None:
        if os.environ.get("SEDGE_KERNEL", "1") == "0":
            _state["loaded"], _state["error"] = False, "disabled by SEDGE_KERNEL=0"
        else:
            try:
                _load()
                _state["loaded"] = True
            except Exception as e:                       # no compiler, no ninja, a build error …
                _state["loaded"], _state["error"] = False, f"{type(e).__name__}: {e}"
                lines = [l for l in str(_state["error"]).splitlines() if l.strip()]
                brief = " | ".join([l for l in lines if "error" in l.lower()][:3] or lines[-1:])[:400]
                warnings.warn(f"sedge: the fused CPU kernel is unavailable ({brief}); "
                              "falling back to the chunked scan (slower, same results)", RuntimeWarning,
                              stacklevel=2)
    return bool(_state["loaded"])


def unavailable_reason() -> str | None:
    return None if available() else str(_state["error"])


def _register_python_side() -> None:
    """Fake (shape) kernels for torch.compile and the autograd formula of the forward op."""
    op = "sedge::ssm_layer_forward"

    @torch.library.register_fake(op)
    def _(z, a, W_in, b_in, W_out, c, W_skip, epilogue, slope, chunk):
        B, L, _ = z.shape
        n_chunks = max(1, -(-L // chunk))
        mask_bytes = -(-chunk * W_out.shape[0] // 8)     # the sign of y, one bit per element, per chunk
        mask = z.new_empty((B, n_chunks, mask_bytes) if epilogue else (0, 0, 0), dtype=torch.uint8)
        return z.new_empty(B, L, W_out.shape[0]), z.new_empty(B, n_chunks, 2, a.shape[0]), mask

    @torch.library.register_fake("sedge::ssm_layer_backward")
    def _(gout, z, a, W_in, b_in, W_out, c, W_skip, epilogue, slope, ckpt, mask, chunk):
        return tuple(torch.empty_like(t) for t in (z, a, W_in, b_in, W_out, c, W_skip))

    def setup_context(ctx, inputs, output):
        z, a, W_in, b_in, W_out, c, W_skip, epilogue, slope, chunk = inputs
        ctx.save_for_backward(z, a, W_in, b_in, W_out, c, W_skip, output[1], output[2])
        ctx.epilogue, ctx.slope, ctx.chunk = epilogue, slope, chunk
        ctx.mark_non_differentiable(output[1], output[2])

    def backward(ctx, gout, _gckpt, _gmask):
        z, a, W_in, b_in, W_out, c, W_skip, ckpt, mask = ctx.saved_tensors
        grads = torch.ops.sedge.ssm_layer_backward(gout, z, a, W_in, b_in, W_out, c, W_skip, ctx.epilogue,
                                                   ctx.slope, ckpt, mask, ctx.chunk)
        return (*grads, None, None, None)

    torch.library.register_autograd(op, backward, setup_context=setup_context)

    @torch.library.register_fake("sedge::channel_moments")
    def _(u):
        return u.new_empty(u.shape[-1]), u.new_empty(u.shape[-1])


class _ChannelMoments(torch.autograd.Function):
    """(σ², μ) per channel over all leading dims; ∂ℒ/∂u = (∂ℒ/∂μ + 2 ∂ℒ/∂σ² ⊙ (u − μ)) / N."""

    @staticmethod
    def forward(ctx, u):  # type: ignore[override]
        if u.device.type == "cpu" and available():
            var, mean = torch.ops.sedge.channel_moments(u)
        else:
            var, mean = torch.var_mean(u, dim=tuple(range(u.dim() - 1)), correction=0)
        ctx.save_for_backward(u, mean)
        return var, mean

    @staticmethod
    def backward(ctx, gvar, gmean):  # type: ignore[override]
        u, mean = ctx.saved_tensors
        n = u.numel() // u.shape[-1]
        gvar = torch.zeros_like(mean) if gvar is None else gvar
        gmean = torch.zeros_like(mean) if gmean is None else gmean
        return torch.addcmul((gmean - 2 * gvar * mean) / n, u, 2 * gvar / n)


def channel_moments(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Biased variance and mean of every channel (last dim) of ``u`` over all other dims, differentiable
    (BatchNorm's batch statistics; one float64 pass on the CPU kernel, torch.var_mean elsewhere)."""
    return _ChannelMoments.apply(u)


def ssm_layer(z: torch.Tensor, a: torch.Tensor, W_in: torch.Tensor, b_in: torch.Tensor, W_out: torch.Tensor,
              c: torch.Tensor, skip: torch.Tensor | None = None, *, epilogue: bool = False,
              slope: float = 0.01, chunk: int = CHUNK) -> torch.Tensor:
    """The fused layer for z (B, L, d_in) with ``a`` = view_as_real(Λ̄).

    ``epilogue=False``: y = Re(C x) + c (B, L, H). ``epilogue=True``: LeakyReLU_slope(y) + S z with S =
    ``skip`` (H, d_in), or the identity (d_in = H) / a broadcast of the one input channel when ``skip``
    is None."""
    if not available():
        raise KernelUnavailable(f"the fused CPU kernel is unavailable: {_state['error']}")
    W_skip = skip if skip is not None else z.new_empty(0, 0)
    return torch.ops.sedge.ssm_layer_forward(z, a, W_in, b_in, W_out, c, W_skip, epilogue, slope, chunk)[0]
