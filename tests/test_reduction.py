"""Balanced truncation of S-Edge layers (SPEC §7): every check here can fail."""
import dataclasses

import control
import numpy as np
import pytest
import scipy.linalg
import torch

from sedge.models.config import model_config
from sedge.models.layer import SEdgeLayer
from sedge.models.model import build_model
from sedge.compress.reduction import (ReductionError, balanced_truncation, hankel_singular_values, layer_system,
                             reduce_layer, reduce_layer_orders, reduce_model)


def trained_like_layer(d_in=3, P=6, H=4, seed=0, bn=True) -> SEdgeLayer:
    """A layer with spread-out poles and non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    layer = SEdgeLayer(d_in, P, H, batchnorm=bn).double().eval()
    with torch.no_grad():
        layer.lambda_re.copy_(-torch.rand(P, dtype=torch.float64) * 2 - 0.05)
        layer.lambda_im.copy_(torch.rand(P, dtype=torch.float64) * 20)
        layer.log_step.uniform_(np.log(1e-2), np.log(1e-1))
        if bn:
            layer.norm.running_mean.uniform_(-0.3, 0.3)
            layer.norm.running_var.uniform_(0.5, 2.0)
            layer.norm.weight.uniform_(0.5, 1.5)
            layer.norm.bias.uniform_(-0.2, 0.2)
    return layer


def linear_part(layer: SEdgeLayer, u: torch.Tensor) -> torch.Tensor:
    """y = Re(Cx + c) (+ D) of the layer, without nonlinearity and skip, in eval mode."""
    z = u * layer.norm_affine()[0] + layer.norm_affine()[1]
    lam_bar, W_in, b_in = layer.input_map()
    v = torch.view_as_complex(torch.nn.functional.linear(z, W_in, b_in).unflatten(-1, (layer.P, 2)))
    from sedge.models.scan import diag_scan_loop
    x = diag_scan_loop(lam_bar, v)
    y = torch.nn.functional.linear(torch.view_as_real(x).flatten(-2), layer.output_map(), layer.c_re)
    if layer.feedthrough is not None:
        y = y + layer._feedthrough(z)
    return y


def freq_response(A, B, C, w, D=None):
    I = np.eye(A.shape[0])
    G = np.stack([C @ np.linalg.solve(1j * wk * I - A, B) for wk in w])
    return G + (D if D is not None else 0)


def test_full_order_reproduces_the_layer():
    layer = trained_like_layer()
    full = reduce_layer(layer, 2 * layer.P)
    u = torch.randn(2, 300, 3, dtype=torch.float64)
    with torch.no_grad():
        ref, out = layer(u), full(u)
    assert full.P == layer.P
    assert torch.linalg.norm(out - ref) / torch.linalg.norm(ref) < 1e-5


@pytest.mark.parametrize("seed", range(6))
def test_full_order_with_an_exactly_real_pole(seed):
    """Trained layers keep one state with Im Λ = 0 exactly (the linspace(0, …) init; |·| has no
    gradient there): a double real pole of the real realisation, which LAPACK may return as λ ± i·1e-17
    with complex eigenvectors. Full order must still reproduce the layer."""
    layer = trained_like_layer(seed=seed)
    with torch.no_grad():
        layer.lambda_im[0] = 0.0
        layer.lambda_im[3] = 0.0
    full = reduce_layer(layer, 2 * layer.P)
    u = torch.randn(2, 300, 3, dtype=torch.float64)
    with torch.no_grad():
        ref, out = layer(u), full(u)
    assert torch.linalg.norm(out - ref) / torch.linalg.norm(ref) < 1e-8


def test_reduced_layer_carries_no_batchnorm_and_keeps_float64(tmp_path):
    layer = trained_like_layer()
    small = reduce_layer(layer, 7)
    assert small.norm is None and small.lambda_re.dtype == torch.float64
    u = torch.randn(2, 200, 3, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(small.train()(u), small.eval()(u))     # no batch statistics in train mode
    model = build_model(model_config("tiny", n_classes=3), seed=0).eval()
    model.layers[0] = reduce_layer(model.layers[0], 40)
    model.cfg = type(model.cfg).from_dict({**model.cfg.to_dict(), "states": tuple(l.P for l in model.layers)})
    from sedge.training.checkpoints import load_checkpoint, save_checkpoint
    save_checkpoint(tmp_path / "m.pt", model, {})
    again, _ = load_checkpoint(tmp_path / "m.pt")
    x = torch.randn(2, 1600)
    with torch.no_grad():
        assert torch.allclose(again(x), model(x), atol=1e-6)


def test_reduced_layer_is_stable_and_an_ordinary_layer():
    layer = trained_like_layer()
    small = reduce_layer(layer, 6)
    assert isinstance(small, SEdgeLayer) and small.P <= 6 and small.P >= 3
    lam_bar = small.discretise()[0]
    assert (lam_bar.abs() < 1).all()
    assert (small.eigenvalues().real < 0).all()
    # it trains ...
    small.train()
    small(torch.randn(2, 50, 3, dtype=torch.float64)).sum().backward()
    assert small.B_re.grad is not None
    # ... streams like the parallel path, at a step scale
    small.eval()
    small.decimate, small.delta_scale = 2, 2
    u = torch.randn(1, 40, 3, dtype=torch.float64)
    with torch.no_grad():
        x = torch.zeros(1, small.P, dtype=torch.complex128)
        steps = []
        for k in range(0, 40, 2):
            y, x = small.stream_step(u[:, k], x)
            steps.append(y)
        assert torch.allclose(torch.stack(steps, 1), small(u), atol=1e-10)


def test_error_bound_on_a_dense_frequency_grid():
    layer = trained_like_layer(P=8)
    system = layer_system(layer)
    hsv = hankel_singular_values(system)
    w = np.concatenate([[0.0], np.logspace(-5, 2, 3000)])
    G = freq_response(system.A, system.B, system.C, w)
    for k in (2, 5, 8, 11):
        rs = balanced_truncation(system.to_control(), k)
        Gr = freq_response(np.asarray(rs.A), np.asarray(rs.B), np.asarray(rs.C), w)
        err = max(np.linalg.norm(G[i] - Gr[i], 2) for i in range(len(w)))
        bound = 2 * hsv[k:].sum()
        assert err <= bound * (1 + 1e-6), (k, err, bound)
        assert err > 0.05 * hsv[k]        # the bound is not vacuous: truncation really changes G


def test_hankel_singular_values_match_closed_form_gramians():
    """Independent: the real realisation equals the complex-diagonal system of order 2P with states
    (x, x̄), A = diag(a, ā), B = [B; B̄], C = [C/2, C̄/2], whose Gramians are closed-form."""
    layer = trained_like_layer(P=7)
    system = layer_system(layer)
    P = layer.P
    Ac = system.A[:P, :P].diagonal() + 1j * system.A[P:, :P].diagonal()
    Bc = system.B[:P] + 1j * system.B[P:]
    Cc = system.C[:, :P] - 1j * system.C[:, P:]
    a = np.concatenate([Ac, Ac.conj()])
    Bf = np.concatenate([Bc, Bc.conj()])
    Cf = np.concatenate([Cc / 2, Cc.conj() / 2], axis=1)
    Wc = -(Bf @ Bf.conj().T) / (a[:, None] + a.conj()[None, :])
    Wo = -(Cf.conj().T @ Cf) / (a.conj()[:, None] + a[None, :])
    closed = np.sort(np.sqrt(np.abs(np.linalg.eigvals(Wc @ Wo))))[::-1]
    hsv = hankel_singular_values(system)
    assert np.allclose(hsv, closed, rtol=1e-6)
    # and scipy's Lyapunov solvers on the real realisation agree too
    Wc2 = scipy.linalg.solve_continuous_lyapunov(system.A, -system.B @ system.B.T)
    Wo2 = scipy.linalg.solve_continuous_lyapunov(system.A.T, -system.C.T @ system.C)
    lyap = np.sort(np.sqrt(np.abs(np.linalg.eigvals(Wc2 @ Wo2))))[::-1]
    assert np.allclose(hsv, lyap, rtol=1e-6)


def test_reduction_commutes_with_step_scale():
    """Truncating the system at step scale s equals time-scaling the truncation at step 1:
    G_s(jω) = G_1(jω / s), and the Hankel singular values are the same."""
    layer = trained_like_layer(P=6)
    s = 4
    sys1, sys_s = layer_system(layer, 1), layer_system(layer, s)
    assert np.allclose(hankel_singular_values(sys1), hankel_singular_values(sys_s), rtol=1e-8)
    r1 = balanced_truncation(sys1.to_control(), 5)
    rs = balanced_truncation(sys_s.to_control(), 5)
    w = np.logspace(-3, 1.5, 200)
    G1 = freq_response(np.asarray(r1.A), np.asarray(r1.B), np.asarray(r1.C), w / s)
    Gs = freq_response(np.asarray(rs.A), np.asarray(rs.B), np.asarray(rs.C), w)
    assert np.allclose(G1, Gs, rtol=1e-6, atol=1e-9)
    # and on the layer: a (full-order) reduced layer keeps the step-scale semantics of the original
    full = reduce_layer(layer, 2 * layer.P)
    for lay in (layer, full):
        lay.decimate, lay.delta_scale = s, s
    u = torch.randn(1, 400, 3, dtype=torch.float64)
    with torch.no_grad():
        ref = layer(u)
        assert torch.linalg.norm(full(u) - ref) / torch.linalg.norm(ref) < 1e-5


def test_matchdc_carries_a_counted_feedthrough():
    from sedge.models.cost import layer_shapes, paper_params
    layer = trained_like_layer(P=6)
    red = reduce_layer(layer, 4, method="matchdc")
    assert red.feedthrough is not None and red.feedthrough.shape == (layer.H, layer.d_in + 1)
    # DC gain of the linear part is preserved exactly by matched-DC truncation
    u = torch.ones(1, 4000, 3, dtype=torch.float64)
    with torch.no_grad():
        y0, y1 = linear_part(layer, u)[0, -1], linear_part(red, u)[0, -1]
    assert torch.allclose(y0, y1, rtol=1e-4, atol=1e-8)
    model = build_model(model_config("tiny", n_classes=3))
    model.layers[2] = reduce_layer(model.layers[2], 8, method="matchdc")
    shapes = layer_shapes(model)
    assert shapes[2].feedthrough
    without = shapes[:2] + [dataclasses.replace(shapes[2], feedthrough=False)]
    assert paper_params(shapes, 3) - paper_params(without, 3) == 64 * (32 + 1)
    # at full order nothing is discarded, so matched DC needs no feed-through
    assert reduce_layer(layer, 2 * layer.P, method="matchdc").feedthrough is None


def test_discrete_systems_are_refused():
    layer = trained_like_layer(P=3)
    system = layer_system(layer)
    discrete = control.ss(system.A, system.B, system.C, 0, dt=1)
    with pytest.raises(ReductionError, match="continuous-time"):
        balanced_truncation(discrete, 2)
    with pytest.raises(ReductionError, match="continuous-time"):
        hankel_singular_values(type("S", (), {"to_control": lambda self: discrete})())


def test_order_errors():
    layer = trained_like_layer(P=3)
    with pytest.raises(ReductionError, match="out of range"):
        reduce_layer(layer, 7)
    with pytest.raises(ReductionError, match="out of range"):
        reduce_layer(layer, 0)
    with pytest.raises(ReductionError, match="method"):
        balanced_truncation(layer_system(layer).to_control(), 2, method="fast")


def test_candidates_come_from_the_original_realisation():
    layer = trained_like_layer(P=6)
    a, b = reduce_layer_orders(layer, [8, 4])
    direct = reduce_layer(layer, 4)
    u = torch.randn(1, 200, 3, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(b(u), direct(u), atol=1e-8)
    assert a.P >= b.P


def test_reduce_model_keeps_a_loadable_config(tmp_path):
    from sedge.training.checkpoints import load_checkpoint, save_checkpoint
    model = build_model(model_config("tiny", n_classes=5), seed=0).eval()
    small = reduce_model(model, [None, 20, 10])
    assert small.cfg.states == tuple(l.P for l in small.layers)
    save_checkpoint(tmp_path / "r.pt", small, {"classes": list("abcde"), "norm": (0.0, 1.0)})
    again, _ = load_checkpoint(tmp_path / "r.pt")
    x = torch.randn(2, 500)
    with torch.no_grad():
        assert torch.allclose(again(x), small(x), atol=1e-6)


def test_truncation_errors_match_a_direct_solve_and_respect_the_bound():
    from sedge.compress.reduction import truncation_errors
    layer = trained_like_layer(P=8)
    w = np.concatenate([[0.0], np.logspace(-4, 1.5, 400)])
    rows = truncation_errors(layer, [3, 7, 16], w)
    system = layer_system(layer)
    G = freq_response(system.A, system.B, system.C, w)
    rs = balanced_truncation(system.to_control(), 7)
    Gr = freq_response(np.asarray(rs.A), np.asarray(rs.B), np.asarray(rs.C), w)
    direct = max(np.linalg.norm(G[i] - Gr[i], 2) for i in range(len(w)))
    assert rows[1]["measured"] == pytest.approx(direct, rel=1e-8)
    assert all(r["measured"] <= r["bound"] * (1 + 1e-6) + 1e-9 for r in rows)
    assert rows[0]["measured"] > rows[2]["measured"] and rows[2]["measured"] < 1e-9     # full order: exact


# ---- data-weighted balanced truncation (method "data", ours) ------------------------------------
def _white_noise_gramian(system) -> np.ndarray:
    """The ordinary controllability Gramian: A P + P Aᵀ = −B Bᵀ."""
    return scipy.linalg.solve_continuous_lyapunov(system.A, -system.B @ system.B.T)


def test_state_covariance_is_the_second_moment_of_the_layers_state():
    from sedge.compress.reduction import continuous_modes, state_covariance
    layer = trained_like_layer(d_in=2, P=3, H=2)
    u = torch.randn(3, 50, 2, dtype=torch.float64)
    a, Bc, _ = continuous_modes(layer)
    lam_bar, W = np.exp(a), ((np.exp(a) - 1) / a)[:, None] * Bc
    moment = np.zeros((6, 6))
    for n in range(3):                                          # the recurrence, one sample at a time
        x = np.zeros(3, complex)
        for t in range(50):
            x = lam_bar * x + W @ np.append(u[n, t].numpy(), 1.0)
            xr = np.concatenate([x.real, x.imag])
            moment += np.outer(xr, xr)
    assert np.allclose(state_covariance(layer, u, batch=2), moment / 150, rtol=1e-10, atol=1e-14)


def test_data_weighted_truncation_with_the_white_noise_gramian_is_balanced_truncation():
    from sedge.compress.reduction import data_weighted_truncation
    layer = trained_like_layer()
    system = layer_system(layer)
    sigma, [(A, B, C)] = data_weighted_truncation(system, _white_noise_gramian(system), [6])
    assert np.allclose(sigma, hankel_singular_values(system), rtol=1e-6)
    ref = balanced_truncation(system.to_control(), 6)
    w = np.linspace(0, 5, 200)                                  # same transfer function as balred's truncation
    G, Gref = freq_response(A, B, C, w), freq_response(np.asarray(ref.A), np.asarray(ref.B), np.asarray(ref.C), w)
    assert np.abs(G - Gref).max() < 1e-6 * np.abs(Gref).max()


def test_data_weighted_truncation_at_full_order_reproduces_the_layer():
    from sedge.compress.reduction import state_covariance
    layer = trained_like_layer()
    u = torch.randn(2, 300, 3, dtype=torch.float64)
    full = reduce_layer(layer, 2 * layer.P, method="data", gramian=state_covariance(layer, u))
    with torch.no_grad():
        ref, out = layer(u), full(u)
    assert torch.linalg.norm(out - ref) / torch.linalg.norm(ref) < 1e-5


def test_data_weighting_keeps_what_the_inputs_excite():
    """Fed a slow signal, the data-weighted truncation keeps the slow modes that plain balanced
    truncation (which weights all frequencies alike) gives up for faster, stronger ones."""
    from sedge.compress.reduction import state_covariance
    torch.manual_seed(3)
    layer = SEdgeLayer(1, 6, 3, batchnorm=False).double().eval()
    with torch.no_grad():
        layer.lambda_re.fill_(-0.02)
        layer.lambda_im.copy_(torch.tensor([0.01, 0.03, 0.5, 0.8, 1.2, 2.0], dtype=torch.float64))
        layer.log_step.zero_()
        layer.B_re.copy_(torch.tensor([[0.05], [0.05], [1.0], [1.0], [1.0], [1.0]], dtype=torch.float64))
        layer.B_im.zero_()
    t = torch.arange(4000, dtype=torch.float64)
    u = (torch.sin(0.01 * t) + torch.sin(0.031 * t + 1)).reshape(1, -1, 1)
    gram = state_covariance(layer, u)
    with torch.no_grad():
        ref = linear_part(layer, u)
        err = {m: float(torch.linalg.norm(linear_part(reduce_layer(layer, 4, method=m, gramian=gram), u) - ref)
                        / torch.linalg.norm(ref)) for m in ("truncate", "data")}
    assert err["data"] < 0.2 * err["truncate"], err


def test_data_weighted_truncation_needs_a_gramian_of_rank_at_least_the_order():
    from sedge.compress.reduction import state_covariance
    layer = trained_like_layer(bn=False)
    with torch.no_grad():
        layer.b_re.zero_()
        layer.b_im.zero_()
    silent = state_covariance(layer, torch.zeros(1, 100, 3, dtype=torch.float64))   # nothing excites the states
    with pytest.raises(ReductionError, match="rank"):
        reduce_layer(layer, 4, method="data", gramian=silent)
    with pytest.raises(ReductionError, match="Gramian"):
        reduce_layer(layer, 4, method="data")
    with pytest.raises(ReductionError, match="one of"):
        reduce_layer(layer, 4, method="hankel")


def test_state_covariances_follow_the_model_layer_by_layer():
    from sedge.compress.reduction import state_covariance, state_covariances
    model = build_model(model_config("tiny", 3, states=(4, 3, 2), widths=(3, 4, 5)), seed=0).double().eval()
    x = torch.randn(3, 200, dtype=torch.float64)
    grams = state_covariances(model, x, batch=2)
    with torch.no_grad():
        h1 = model.layers[0](x.unsqueeze(-1))
    assert len(grams) == 3 and grams[1].shape == (6, 6)
    assert np.allclose(grams[1], state_covariance(model.layers[1], h1), rtol=1e-10)
