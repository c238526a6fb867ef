import pytest
import torch

from sedge.models.dcase_cnn import DcaseCNN, conv_macs, keras_param_count
from sedge.compress.filter_pruning import masks_for, prune_filters, redundant_filters


def test_paper_parameter_count_at_10_classes():
    assert keras_param_count(DcaseCNN(10)) == 46_246


def test_duplicated_filters_are_the_ones_removed():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 16, 7)
    with torch.no_grad():
        conv.weight[5] = 2.0 * conv.weight[3]          # same pattern, other scale
        conv.weight[11] = -conv.weight[8]              # same pattern, other sign
    red = redundant_filters(conv.weight)
    assert len(set(red) & {3, 5}) == 1 and len(set(red) & {8, 11}) == 1
    assert len(red) <= 8


def test_pruned_network_equals_masked_original():
    torch.manual_seed(1)
    model = DcaseCNN(10).eval()
    for bn in (model.bn1, model.bn2, model.bn3):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    remove = {1: [0, 7], 2: redundant_filters(model.conv2.weight), 3: [4, 5, 31]}
    small = prune_filters(model, remove)
    x = torch.randn(3, 16000)
    with torch.no_grad():
        assert torch.allclose(small(x), model(x, masks=masks_for(model, remove)), atol=1e-5)
    assert small.channels == (14, 16 - len(remove[2]), 29)
    assert keras_param_count(small) < keras_param_count(model)
    assert conv_macs(small)["conv2"] < conv_macs(model)["conv2"]


def test_prune_errors():
    model = DcaseCNN(10)
    with pytest.raises(ValueError, match="cannot remove"):
        prune_filters(model, {1: [16]})
    with pytest.raises(ValueError, match="disconnect"):
        prune_filters(model, {2: list(range(16))})
