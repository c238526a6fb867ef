"""The fused CPU layer operator (sedge.models.kernel) against the chunked scan and the sequential loop."""
import contextlib
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

import sedge.models.layer
from sedge.models import kernel
from sedge.models.layer import LEAKY_SLOPE, SEdgeLayer
from sedge.compress.reduction import reduce_layer
from sedge.models.scan import diag_scan, diag_scan_loop

pytestmark = pytest.mark.skipif(not kernel.available(), reason=f"no fused kernel: {kernel.unavailable_reason()}")


def random_op_inputs(B, L, d, P, H, dtype, seed=0, skip=True):
    g = torch.Generator().manual_seed(seed)
    r = 0.7 + 0.29 * torch.rand(P, generator=g, dtype=dtype)
    theta = 3 * torch.rand(P, generator=g, dtype=dtype)
    a = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1)
    tensors = [torch.randn(B, L, d, generator=g, dtype=dtype), a,
               torch.randn(2 * P, d, generator=g, dtype=dtype) / d ** 0.5, torch.randn(2 * P, generator=g, dtype=dtype),
               torch.randn(H, 2 * P, generator=g, dtype=dtype) / P ** 0.5, torch.randn(H, generator=g, dtype=dtype)]
    if skip:
        tensors.append(torch.randn(H, d, generator=g, dtype=dtype))
    return [t.requires_grad_() for t in tensors]


def reference(z, a, W_in, b_in, W_out, c, skip=None, *, epilogue=False, scan=diag_scan):
    """The same maths with the chunked scan (or the sequential loop): v = W_in z + b_in, x_k = a x_{k−1} + v_k."""
    P = a.shape[0]
    v = torch.view_as_complex(F.linear(z, W_in, b_in).unflatten(-1, (P, 2)).contiguous())
    x = scan(torch.view_as_complex(a.contiguous()), v)
    y = F.linear(torch.view_as_real(x).flatten(-2), W_out, c)
    if not epilogue:
        return y
    return F.leaky_relu(y, LEAKY_SLOPE) + (F.linear(z, skip) if skip is not None else z)


def rel(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


@pytest.mark.parametrize("epilogue,skip", [(False, False), (True, True), (True, False)])
@pytest.mark.parametrize("d", [1, 8])
def test_gradcheck_float64(epilogue, skip, d):
    H = 8 if skip or d == 1 else d
    inputs = random_op_inputs(2, 37, d, 6, H, torch.float64, skip=skip)
    if not skip:
        fn = lambda *t: kernel.ssm_layer(*t, epilogue=epilogue, chunk=16)  # noqa: E731
    else:
        fn = lambda *t: kernel.ssm_layer(*t[:6], t[6], epilogue=epilogue, chunk=16)  # noqa: E731
    assert torch.autograd.gradcheck(fn, tuple(inputs))


@pytest.mark.parametrize("shape", [(2, 300, 1, 8, 96), (3, 257, 8, 96, 8), (2, 513, 32, 40, 64), (1, 100, 32, 17, 32)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_chunked_scan_and_loop(shape, dtype):
    B, L, d, P, H = shape
    inputs = random_op_inputs(B, L, d, P, H, dtype, seed=sum(shape))
    gout = torch.randn(B, L, H, dtype=dtype, generator=torch.Generator().manual_seed(1))
    out = kernel.ssm_layer(*inputs[:6], inputs[6], epilogue=True, chunk=64)     # L not a multiple of 64
    grads = torch.autograd.grad(out, inputs, gout)
    scans = [diag_scan, diag_scan_loop] if dtype == torch.float64 else [diag_scan]
    tol = 1e-11 if dtype == torch.float64 else 1e-5
    for scan in scans:
        ref = reference(*inputs[:6], inputs[6], epilogue=True, scan=scan)
        ref_grads = torch.autograd.grad(ref, inputs, gout)
        assert rel(out, ref) < tol
        for name, g, r in zip(["z", "a", "W_in", "b_in", "W_out", "c", "skip"], grads, ref_grads):
            assert rel(g, r) < tol, name


def test_op_registration_checks():
    """Schema, fake (torch.compile) kernel and autograd registration as torch.library checks them."""
    inputs = random_op_inputs(2, 20, 3, 4, 5, torch.float32)
    for epilogue in (False, True):
        torch.library.opcheck(torch.ops.sedge.ssm_layer_forward.default,
                              (*inputs, epilogue, LEAKY_SLOPE, 8))


def layer_grads(layer, u, fused):
    with contextlib.nullcontext() if fused else kernel.disabled():
        torch.manual_seed(0)
        out = layer(u)
        params = [u] + [p for p in layer.parameters() if p.requires_grad]
        return out.detach(), torch.autograd.grad(out, params, torch.linspace(-1, 1, out.numel()).view_as(out).to(u))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("cfg", [(1, 32, 8, True, 1), (8, 16, 32, True, 3), (32, 8, 32, False, 2)])
def test_layer_paths_agree(cfg, train):
    """The whole layer (BN folded, LeakyReLU, skip; step-scaled) on both paths, float64."""
    d, P, H, skip, scale = cfg
    layer = SEdgeLayer(d, P, H, trainable_skip=skip).double().train(train)
    layer.decimate, layer.delta_scale = scale, scale
    u = torch.randn(3, 401, d, dtype=torch.float64, requires_grad=True)
    (o1, g1), (o0, g0) = layer_grads(layer, u, True), layer_grads(layer, u, False)
    assert rel(o1, o0) < 1e-11
    assert all(rel(a, b) < 1e-9 for a, b in zip(g1, g0))


def test_batchnorm_fold_matches_module():
    """Train-mode batch statistics and the running-statistics update equal nn.BatchNorm1d's."""
    layer = SEdgeLayer(4, 6, 5).double().train()
    ref = torch.nn.BatchNorm1d(4).double().train()
    ref.load_state_dict(layer.norm.state_dict())
    u = torch.randn(3, 50, 4, dtype=torch.float64) * 3 + 1
    scale, shift = layer.norm_scale_shift(u)
    z_ref = ref(u.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(u * scale + shift, z_ref, atol=1e-12)
    assert torch.allclose(layer.norm.running_mean, ref.running_mean)
    assert torch.allclose(layer.norm.running_var, ref.running_var)


@pytest.mark.parametrize("method", ["truncate", "matchdc"])
def test_reduced_layers_with_real_modes_and_feedthrough(method):
    """Reduced layers (real modes; matched DC adds a feed-through D) take the fused linear part."""
    torch.manual_seed(3)
    layer = SEdgeLayer(4, 6, 5).double().eval()
    with torch.no_grad():
        layer.lambda_im[:2] = 0.0                        # exactly real poles, as trained layers keep
    reduced = reduce_layer(layer, 7, method).double().eval()
    assert (reduced.lambda_im.abs() < 1e-12).any()
    if method == "matchdc":
        assert reduced.feedthrough is not None
    u = torch.randn(2, 150, 4, dtype=torch.float64, requires_grad=True)
    (o1, g1), (o0, g0) = layer_grads(reduced, u, True), layer_grads(reduced, u, False)
    assert rel(o1, o0) < 1e-11 and all(rel(a, b) < 1e-9 for a, b in zip(g1, g0))


def test_channel_moments():
    u = (torch.randn(4, 300, 7, dtype=torch.float64) * 5 + 2).requires_grad_()
    var, mean = kernel.channel_moments(u)
    rv, rm = torch.var_mean(u, dim=(0, 1), correction=0)
    assert torch.allclose(var, rv) and torch.allclose(mean, rm)
    g = torch.randn(7, dtype=torch.float64)
    assert torch.allclose(torch.autograd.grad((var * g + mean).sum(), u)[0],
                          torch.autograd.grad((rv * g + rm).sum(), u)[0])


def test_fallback_without_compiler(tmp_path):
    """No compiler: one clear warning, then the chunked scan, never a crash."""
    script = textwrap.dedent("""
        import warnings, torch
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            from sedge.models.layer import SEdgeLayer
            from sedge.models import kernel
            layer = SEdgeLayer(1, 4, 3).train()
            out = layer(torch.randn(2, 50, 1))
            out.sum().backward()
            layer(torch.randn(2, 50, 1))
        ours = [w for w in caught if "fused CPU kernel is unavailable" in str(w.message)]
        print(len(ours), kernel.available(), bool(torch.isfinite(out).all()))
        print(ours[0].message if ours else "")
    """)
    env = dict(os.environ, CXX=str(tmp_path / "no-such-compiler"), TORCH_EXTENSIONS_DIR=str(tmp_path / "ext"))
    env.pop("SEDGE_KERNEL", None)
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    first, message = res.stdout.strip().splitlines()[:2]
    assert first == "1 False True"
    assert "falling back to the chunked scan" in message


def test_serial_build_without_openmp(tmp_path):
    """A compiler that rejects -fopenmp: the serial build, one warning, and the fused path still on."""
    cxx = tmp_path / "cxx-without-openmp"
    cxx.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && { echo "no OpenMP" >&2; exit 1; }; done\n'
                   'exec g++ "$@"\n')
    cxx.chmod(0o755)
    script = textwrap.dedent("""
        import warnings, torch
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            from sedge.models import kernel
            ok = kernel.available()
        print(ok, sum("does not build with OpenMP" in str(w.message) for w in caught),
              sum("unavailable" in str(w.message) for w in caught))
    """)
    env = dict(os.environ, CXX=str(cxx), TORCH_EXTENSIONS_DIR=str(tmp_path / "ext"))
    env.pop("SEDGE_KERNEL", None)
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "True 1 0"


def test_fused_path_is_the_default_on_cpu(monkeypatch):
    calls = []
    real = kernel.ssm_layer
    monkeypatch.setattr(sedge.models.layer.kernel, "ssm_layer", lambda *a, **k: calls.append(1) or real(*a, **k))
    SEdgeLayer(1, 4, 3).train()(torch.randn(2, 20, 1))
    assert calls
