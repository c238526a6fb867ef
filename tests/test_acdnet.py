import copy

import pytest
import torch

from sedge.baselines.acdnet import MICRO_WIDTHS, ACDNet, BinaryConv2d, SignSTE, cost
from sedge.baselines.compress import (apply_masks, fake_quant, magnitude_masks, quantise_model, quantise_weight,
                                      quantised_bytes, sparsity_of, activation_qparams)


def micro(xnor=False, n=8):
    torch.manual_seed(0)
    return ACDNet(n, sfeb=(4, 16), widths=MICRO_WIDTHS, xnor=xnor)


def test_forward_shapes_and_float_ends_in_xnor():
    x = torch.randn(2, 16000)
    for xnor in (False, True):
        m = micro(xnor)
        assert m(x).shape == (2, 8)
    m = micro(True)
    convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert not isinstance(convs[0], BinaryConv2d) and all(isinstance(c, BinaryConv2d) for c in convs[1:])


def test_sign_ste():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
    y = SignSTE.apply(x)
    assert y.tolist() == [-1, -1, 1, 1, 1]
    y.sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 0]


def test_binary_weights_are_sign_times_mean_abs():
    conv = BinaryConv2d(3, 4, 3)
    w = conv.binary_weight()
    alpha = conv.weight.abs().mean(dim=(1, 2, 3))
    assert torch.allclose(w.abs().amax(dim=(1, 2, 3)), alpha) and torch.allclose(w.abs().amin(dim=(1, 2, 3)), alpha)


def test_xnor_cost_model():
    f, b = cost(micro(False)), cost(micro(True))
    assert f["binary_params"] == 0 and b["binary_params"] > 0
    assert b["weight_bits"] < f["weight_bits"] / 8
    assert b["macs_effective"] < f["macs_effective"] / 4 and b["macs"] == f["macs"]


def test_magnitude_pruning_masks_survive_fine_tuning():
    m = micro()
    masks = magnitude_masks(m, 0.9)
    apply_masks(m, masks)
    assert sparsity_of(m) == pytest.approx(0.9, abs=0.01)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    m(torch.randn(2, 16000)).sum().backward()
    opt.step()
    apply_masks(m, masks)
    assert sparsity_of(m) == pytest.approx(0.9, abs=0.01)
    with pytest.raises(ValueError):
        magnitude_masks(m, 1.0)


def test_int8_quantisation_is_close_and_small():
    w = torch.randn(5, 3, 3, 3)
    q, s = quantise_weight(w)
    assert q.dtype == torch.int8 and (q.abs() <= 127).all()
    assert torch.allclose(q.float() * s[:, None, None, None], w, atol=float(s.max()) / 2 + 1e-7)
    sc, z = activation_qparams(-1.0, 3.0)
    x = torch.linspace(-1, 3, 50)
    assert (fake_quant(x, sc, z) - x).abs().max() <= sc / 2 + 1e-6
    m = micro().eval()
    ref = copy.deepcopy(m)
    calib = torch.randn(16, 16000)
    qm = quantise_model(m, calib)
    x = torch.randn(4, 16000)
    with torch.no_grad():
        out, want = qm(x), ref(x)
    assert (out - want).abs().max() < 0.1 * want.abs().max() + 1e-3
    assert quantised_bytes(qm) < 0.3 * 4 * sum(p.numel() for p in ref.parameters())
