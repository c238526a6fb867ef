import copy

import pytest
import torch

from sedge.models.acdnet import MICRO_WIDTHS, ACDNet, BinaryConv2d, SignSTE, cost
from sedge.compress.prune_quantise import (apply_masks, fake_quant, magnitude_masks, quantise_model, quantise_weight,
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


def test_float_sfeb_ablation_keeps_both_raw_audio_convs_float():
    torch.manual_seed(0)
    m = ACDNet(8, sfeb=(4, 16), widths=MICRO_WIDTHS, xnor=True, binary_sfeb=False)
    convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert [isinstance(c, BinaryConv2d) for c in convs[:3]] == [False, False, True]
    assert all(isinstance(c, BinaryConv2d) for c in convs[2:])
    assert cost(micro(True))["macs_effective"] < cost(m)["macs_effective"] < cost(micro(False))["macs_effective"]


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


def test_channel_pruning_removes_dead_channels_exactly():
    from sedge.compress.prune_quantise import prune_channels
    from sedge.training.baselines import build_baseline
    torch.manual_seed(0)
    m = build_baseline("acdnet", n_classes=4, sfeb=(4, 16), widths=MICRO_WIDTHS).eval()
    convs = [c for c in m.tfeb if isinstance(c, torch.nn.Conv2d)][:-1]
    bns = [b for b in m.tfeb if isinstance(b, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for c, b in zip(convs, bns):          # the second half of every conv's channels is dead: zero weights,
            half = c.out_channels // 2          # and a BN that maps 0 to 0, so removing them changes nothing
            c.weight[half:] = 0
            b.bias[half:] = 0
            b.running_mean[half:] = 0
    small = prune_channels(m, 0.5).eval()
    assert [c.out_channels for c in small.tfeb if isinstance(c, torch.nn.Conv2d)][:-1] == [w // 2 for w in MICRO_WIDTHS]
    x = torch.randn(3, 16000)
    with torch.no_grad():
        assert torch.allclose(small(x), m(x), atol=1e-5)
    with pytest.raises(ValueError, match="keep_fraction"):
        prune_channels(m, 0.0)


def test_compression_path_stage(tmp_path):
    from sedge.pipeline.baseline_experiments import baseline_run, compressed_run
    spec = "synthetic:n_speakers=20,words=yes+no+up"
    s = baseline_run("acdnet", spec, tmp_path / "a", epochs=1, lr=0.003, max_steps=1, progress=False,
                     kwargs={"sfeb": [4, 16], "widths": list(MICRO_WIDTHS)})
    r = compressed_run(s["run_dir"], spec, sparsity=0.9, keep_fraction=0.5, epochs=1, lr=0.001, max_steps=1,
                       calib_clips=8, progress=False)
    st = r["stages"]
    assert st["magnitude"]["nonzero_params"] < 0.2 * st["float"]["params"]
    assert st["channels"]["params"] < st["float"]["params"] and st["channels"]["macs"] < st["float"]["macs"]
    assert st["int8"]["int8_bytes"] < st["channels"]["float_bytes"] / 3
    assert st["magnitude"]["val_acc"] >= 0 and r["widths"] == [w // 2 for w in MICRO_WIDTHS]
