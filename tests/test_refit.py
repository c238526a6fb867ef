"""Least-squares output refit of reduced layers (sedge.compress.refit)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from sedge.compress.pruning import prune
from sedge.compress.reduction import ReductionError, reduce_layer
from sedge.compress.refit import OutputRefit, refit_output, states_and_output
from sedge.models.layer import LEAKY_SLOPE, SEdgeLayer
from sedge.models.model import SEdgeModel

from helpers import MICRO


def random_layer(d_in: int, P: int, H: int, seed: int) -> SEdgeLayer:
    """A float64 layer with BatchNorm whose running statistics are not the identity."""
    torch.manual_seed(seed)
    layer = SEdgeLayer(d_in, P, H, generator=torch.Generator().manual_seed(seed)).double().eval()
    with torch.no_grad():
        layer.norm.running_mean.uniform_(-0.5, 0.5)
        layer.norm.running_var.uniform_(0.5, 2.0)
        layer.norm.weight.uniform_(0.5, 1.5)
        layer.norm.bias.uniform_(-0.2, 0.2)
        layer.c_re.uniform_(-0.3, 0.3)
    return layer


def inputs(n: int, T: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, T, d, generator=g, dtype=torch.float64)
    return torch.cumsum(u, dim=1) / T ** 0.5 + 0.3 * u          # coloured, like a layer's real input


@pytest.mark.parametrize("decimate", [1, 2])
def test_states_and_output_is_the_layers_pre_activation(decimate):
    layer = random_layer(3, 6, 5, seed=1)
    layer.decimate = decimate
    u = inputs(2, 101, 3, seed=2)
    _, y = states_and_output(layer, u)
    with torch.no_grad():
        direct = layer(u)
    assert torch.allclose(F.leaky_relu(y, LEAKY_SLOPE) + layer.skip(u[:, ::decimate]), direct, rtol=1e-9, atol=1e-11)


def test_refitting_the_layer_to_itself_returns_its_own_output_map():
    layer = random_layer(3, 6, 5, seed=3)
    same = refit_output(layer, copy.deepcopy(layer), inputs(8, 300, 3, seed=4))
    assert torch.allclose(same.C_re, layer.C_re, atol=1e-6) and torch.allclose(same.C_im, layer.C_im, atol=1e-6)
    assert torch.allclose(same.c_re, layer.c_re, atol=1e-6)


def squared_error(original, reduced, u) -> float:
    return float(((states_and_output(original, u)[1] - states_and_output(reduced, u)[1]) ** 2).sum())


def test_a_refitted_truncation_is_the_least_squares_output_map():
    layer = random_layer(4, 8, 6, seed=5)
    u = inputs(6, 400, 4, seed=6)
    reduced = reduce_layer(layer, 6)                          # 3 of 8 complex states: lossy
    fitted = refit_output(layer, reduced, u)
    assert (fitted.P, fitted.lambda_re.tolist(), fitted.B_re.tolist()) == \
        (reduced.P, reduced.lambda_re.tolist(), reduced.B_re.tolist())           # only C and c change
    best = squared_error(layer, fitted, u)
    assert best < 0.9 * squared_error(layer, reduced, u)
    g = torch.Generator().manual_seed(7)
    for _ in range(5):                                        # no nearby output map does better on the same clips
        other = copy.deepcopy(fitted)
        with torch.no_grad():
            for p in (other.C_re, other.C_im, other.c_re):
                p.add_(1e-3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        assert squared_error(layer, other, u) > best


def test_refit_refuses_a_feedthrough_and_empty_clips():
    layer = random_layer(2, 4, 3, seed=8)
    with pytest.raises(ReductionError, match="matchdc"):
        refit_output(layer, reduce_layer(layer, 4, "matchdc"), inputs(2, 50, 2, seed=9))
    with pytest.raises(ReductionError, match="no input clips"):
        refit_output(layer, reduce_layer(layer, 4), inputs(0, 50, 2, seed=9))


def test_a_refitted_search_ends_in_refitted_reductions_within_the_budget():
    torch.manual_seed(0)
    model = SEdgeModel(MICRO).double().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(30, 300, generator=g, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)                                # the model's own labels: base accuracy 100 %
    clips = torch.randn(6, 300, generator=g, dtype=torch.float64)
    res = prune(model, x, y, budget_pp=10.0, progress=False, refit_clips=clips)
    assert res.steps[-1].val_acc >= 90.0 - 1e-9 and len(res.steps) > 1
    refit = OutputRefit(model, clips)
    expected = copy.deepcopy(model)
    for i, p in enumerate(l.P for l in res.model.layers):
        if p < model.layers[i].P:
            # the asked order: the final P, or more where real eigenvalues merged (a micro layer has 4 states)
            asked = next(k for k in range(p, model.layers[i].P + 1) if reduce_layer(model.layers[i], 2 * k).P == p)
            expected.layers[i] = refit(i, reduce_layer(model.layers[i], 2 * asked))
            assert torch.allclose(res.model.layers[i].C_re, expected.layers[i].C_re)
    with torch.no_grad():
        assert 100 * float((res.model(x).argmax(1) == y).float().mean()) == pytest.approx(res.steps[-1].val_acc)
    with pytest.raises(ReductionError, match="refit"):
        prune(model, x, y, method="matchdc", refit_clips=clips)
