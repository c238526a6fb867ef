import math

import numpy as np
import pytest
import scipy.linalg
import torch

from sedge.models.config import PAPER_PARAMS, ModelConfig, model_config
from sedge.models.cost import deployed_params, layer_shapes, macs_per_sample, cost_report
from sedge.models.init import hippo_normal
from sedge.models.layer import SEdgeLayer
from sedge.models.model import build_model, hold_in_place, rzoh_hold, zero_order_hold, validate_step_scale


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_paper_parameter_counts_exact(name):
    assert cost_report(build_model(model_config(name)))["params_paper"] == PAPER_PARAMS[name]


def test_macs_match_paper():
    full = cost_report(build_model(model_config("full")))
    tiny = cost_report(build_model(model_config("tiny")))
    assert full["mmac_per_clip"] == pytest.approx(2200, rel=1e-3)
    assert tiny["mmac_per_clip"] == pytest.approx(95.9, rel=1e-3)
    # the C++ convention runs the output projection at the next layer's (lower) rate
    shapes = layer_shapes(build_model(model_config("tiny")))
    s = [1, 9, 54]
    assert macs_per_sample(shapes, 35, s, "cpp") < macs_per_sample(shapes, 35, s, "paper")
    assert macs_per_sample(shapes, 35, [1, 1, 1], "cpp") == macs_per_sample(shapes, 35, [1, 1, 1], "paper")


def test_deployed_count_matches_stored_tensors():
    m = build_model(model_config("tiny"))
    n = 0
    for l in m.layers:   # Λ̄, B̄ (BN folded), b̄, C, Re c, skip
        n += 2 * l.P + l.B_re.numel() * 2 + 2 * l.P + l.C_re.numel() * 2 + l.H + l.skip.weight.numel()
    n += sum(p.numel() for p in m.decoder.parameters())
    assert deployed_params(layer_shapes(m), 35) == n


def test_hippo_eigenvalues_match_spec():
    lam, _ = hippo_normal(8)
    pos = np.sort(lam.imag[lam.imag > 0])
    assert np.allclose(lam.real, -0.5)
    assert np.allclose(pos, [0.427, 1.958, 5.354, 19.857], atol=1e-3)


def test_zoh_discretisation_matches_matrix_exponential():
    layer = SEdgeLayer(2, 3, 4, batchnorm=False).double()
    lam_bar, B_bar, b_bar = layer.discretise()
    lam = layer.eigenvalues().detach().numpy()
    dt = layer.step().detach().numpy()
    Bfull = torch.complex(torch.cat([layer.B_re, layer.b_re[:, None]], 1),
                          torch.cat([layer.B_im, layer.b_im[:, None]], 1)).detach().numpy()
    for p in range(3):   # exact ZOH of the scalar system via the augmented matrix exponential
        M = np.zeros((4, 4), complex)
        M[0, 0] = lam[p] * dt[p]
        M[0, 1:] = Bfull[p] * dt[p]
        E = scipy.linalg.expm(M)
        assert np.isclose(E[0, 0], lam_bar[p].item())
        assert np.allclose(E[0, 1:3], B_bar[p].detach().numpy())
        assert np.isclose(E[0, 3], b_bar[p].item())


def test_stability_projection():
    layer = SEdgeLayer(1, 4, 2)
    with torch.no_grad():
        layer.lambda_re.copy_(torch.tensor([1.0, -2.0, 3.0, 0.5]))
        layer.lambda_im.copy_(torch.tensor([-1.0, 2.0, -3.0, 0.0]))
    lam = layer.eigenvalues()
    assert (lam.real <= 0).all() and (lam.imag >= 0).all()
    assert (layer.discretise()[0].abs() <= 1).all()


def _randomise_bn(model):
    for l in model.layers:
        if l.norm is not None:
            l.norm.running_mean.uniform_(-0.2, 0.2)
            l.norm.running_var.uniform_(0.5, 2)
            l.norm.weight.data.uniform_(0.5, 1.5)
            l.norm.bias.data.uniform_(-0.1, 0.1)


SMALL_IDENTITY = ModelConfig("small-id", (8, 8), (6, 6), trainable_skip=False, batchnorm=False, init="s5", n_classes=5)


@pytest.mark.parametrize("cfg,scales", [
    (model_config("tiny", n_classes=7), [[1, 1, 1], [1, 2, 6], [2, 4, 8], [1, 5, 20]]),
    (SMALL_IDENTITY, [[1, 1], [3, 6]]),
])
def test_streaming_equals_parallel(cfg, scales):
    torch.manual_seed(0)
    model = build_model(cfg, seed=1).double().eval()
    _randomise_bn(model)
    x = torch.randn(2, 241, dtype=torch.float64)
    for s in scales:
        model.set_step_scale(s)
        assert torch.allclose(model(x), model.stream(x), atol=1e-10), s


def test_step_scale_is_exact_for_held_input():
    """Under ZOH, running a layer at step k on u[::k] equals step 1 on the held input (SPEC §2)."""
    layer = SEdgeLayer(3, 5, 4, batchnorm=False).double().eval()
    u = torch.randn(2, 60, 3, dtype=torch.float64)
    k = 4
    held = zero_order_hold(u, k)
    y1 = layer(held)
    layer.decimate, layer.delta_scale = k, k
    yk = layer(u)
    assert torch.allclose(y1[:, k - 1::k], yk, atol=1e-10)


def test_step_scale_validation():
    with pytest.raises(ValueError, match="multiple"):
        validate_step_scale([1, 3, 4], 3)
    with pytest.raises(ValueError, match="3 cumulative"):
        validate_step_scale([1, 2], 3)
    with pytest.raises(ValueError, match="positive"):
        validate_step_scale([0, 2, 4], 3)


def test_rzoh_hold_distribution():
    g = torch.Generator().manual_seed(0)
    holds = [rzoh_hold(1.0, g) for _ in range(4000)]
    assert set(holds) <= {1, 2, 4, 8, 16, 32, 64, 128}
    assert 0.45 < np.mean([h >= 2 for h in holds]) < 0.55          # P(U < 1/2)
    assert 0.2 < np.mean([h >= 4 for h in holds]) < 0.3            # P(U < 1/4)
    assert np.mean([rzoh_hold(0.02, g) >= 2 for _ in range(4000)]) < 0.03   # P(U < p/2) = 0.01
    x = torch.arange(10.).view(1, 10, 1)
    assert zero_order_hold(x, 4).flatten().tolist() == [0, 0, 0, 0, 4, 4, 4, 4, 8, 8]


@pytest.mark.parametrize("L, d", [(64, 4), (64, 64), (60, 8), (64, 1)])
def test_hold_in_place_is_the_zero_order_hold(L, d):
    """The in-place hold of training (no held copy) gives the values and gradients of
    :func:`zero_order_hold`, writes into its input where L divides by d, and copies otherwise."""
    w = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    u = torch.randn(2, L, 3, dtype=torch.float64)
    g = torch.randn(2, L, 5, dtype=torch.float64)
    results = []
    for hold in (zero_order_hold, hold_in_place):
        x = u @ w
        ptr = x.data_ptr()
        held = hold(x, d)
        if hold is hold_in_place:
            assert (held.data_ptr() == ptr) == (L % d == 0)
        results.append((held.detach().clone(), torch.autograd.grad(held, w, g)[0]))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    # the gradient goes to the first sample of each group only
    leaf = (u @ w).detach().requires_grad_(True)
    (gx,) = torch.autograd.grad(hold_in_place(leaf * 1.0, d), leaf, g)
    if d > 1 and L % d == 0:
        assert gx.view(2, L // d, d, 5)[:, :, 1:].abs().max() == 0


def test_training_forward_backward_runs_with_rzoh_and_dropout():
    cfg = model_config("tiny", n_classes=4, dropout=0.1)
    m = build_model(cfg, seed=0).train()
    out = m(torch.randn(3, 400))
    out.sum().backward()
    assert out.shape == (3, 4)
    assert all(p.grad is not None for p in m.ssm_parameters() if p.requires_grad)
    assert m.layers[0].lambda_re.grad.abs().sum() > 0


def test_init_schemes():
    m = build_model(model_config("tiny"), seed=0)
    l0 = m.layers[0]
    assert torch.allclose(l0.lambda_re, torch.full((32,), -0.5))
    assert torch.allclose(l0.lambda_im, torch.linspace(0, 16, 32))
    step = torch.exp(l0.log_step)
    assert (step >= 1e-3 - 1e-9).all() and (step <= 1e-1 + 1e-9).all()
    W = m.layers[1].C_re
    assert torch.allclose(W.T @ W, torch.eye(W.shape[1]) / 3, atol=1e-5) or torch.allclose(
        W @ W.T, torch.eye(W.shape[0]) / 3, atol=1e-5)
    assert torch.allclose(m.decoder.weight.norm(dim=1), torch.full((35,), math.sqrt(1 / 3)))
    full = build_model(model_config("full"), seed=0)
    assert full.layers[0].skip is None and full.layers[0].norm is None
