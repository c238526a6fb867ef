"""ACDNet-family raw-audio CNN scaled to 1-s 16 kHz clips, and its XNOR-Net variant (SPEC §10;
Mohaimenuzzaman, Bergmeir, Meyer).

Spectral feature extraction block (SFEB): Conv 1×9 stride 2 (c₁) → BN → ReLU → Conv 1×5 stride 2
(c₂) → BN → ReLU → MaxPool 1×pool. Its c₂ × T output is read as a one-channel c₂ × T image by the
temporal feature extraction block (TFEB): pairs of 3×3 convs (BN, ReLU) with 2×2 max pools, then
Dropout, a 1×1 conv to n_classes, global average pooling and a linear layer. ``widths`` scales the
TFEB (ACDNet: 32, 64, 64, 128, 128, 256, 256, 512, 512; the micro variant is much narrower).

XNOR variant: the first conv and the last linear stay float; every other conv becomes
BN → sign(x) (straight-through estimator: gradient 1 where |x| < 1, else 0) → conv with weights
sign(W)·α, α = mean|W| per output filter. ``binary_sfeb=False`` also keeps the SFEB's second conv in
float (an ablation, not the paper's variant): its binarised input is the sign of band-passed raw
audio, and the 1×pool max-pool after it sees only a few distinct values.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

ACDNET_WIDTHS = (32, 64, 64, 128, 128, 256, 256, 512, 512)
MICRO_WIDTHS = (8, 16, 16, 32, 32, 48, 48, 64, 64)


class SignSTE(torch.autograd.Function):
    """sign(x) forward; straight-through gradient 1_{|x|<1} backward."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return g * (x.abs() < 1).to(g.dtype)


class BinaryConv2d(nn.Conv2d):
    """XNOR conv: BN → sign (STE) on the input, weights sign(W)·α with α = mean|W| per filter."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.in_norm = nn.BatchNorm2d(self.in_channels)

    def binary_weight(self) -> torch.Tensor:
        alpha = self.weight.abs().mean(dim=(1, 2, 3), keepdim=True)
        return SignSTE.apply(self.weight) * alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(SignSTE.apply(self.in_norm(x)), self.binary_weight(), self.bias, self.stride, self.padding)


def _conv(binary: bool, c_in: int, c_out: int, k, stride=1, padding=0) -> nn.Conv2d:
    cls = BinaryConv2d if binary else nn.Conv2d
    return cls(c_in, c_out, k, stride=stride, padding=padding, bias=False)


class ACDNet(nn.Module):
    def __init__(self, n_classes: int, sfeb: tuple[int, int] = (8, 64), widths: tuple[int, ...] = ACDNET_WIDTHS,
                 pool: int = 40, dropout: float = 0.2, xnor: bool = False, binary_sfeb: bool = True) -> None:
        super().__init__()
        c1, c2 = sfeb
        self.xnor = xnor
        self.sfeb = nn.Sequential(
            nn.Conv2d(1, c1, (1, 9), stride=(1, 2), bias=False), nn.BatchNorm2d(c1), nn.ReLU(),   # stays float
            _conv(xnor and binary_sfeb, c1, c2, (1, 5), stride=(1, 2)), nn.BatchNorm2d(c2), nn.ReLU(),
            nn.MaxPool2d((1, pool)))
        layers: list[nn.Module] = []
        c_in = 1
        for i, w in enumerate(widths):
            layers += [_conv(xnor, c_in, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
            if i % 2 == 0:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            c_in = w
        layers += [nn.Dropout(dropout), _conv(xnor, c_in, n_classes, 1), nn.BatchNorm2d(n_classes), nn.ReLU(),
                   nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.tfeb = nn.Sequential(*layers)
        self.fc = nn.Linear(n_classes, n_classes)                                             # stays float

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        h = self.sfeb(wave[:, None, None, :])           # (B, c2, 1, T)
        h = h.permute(0, 2, 1, 3)                       # (B, 1, c2, T): channels become the image height
        return self.fc(self.tfeb(h))


def conv_layers(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


@torch.no_grad()
def cost(model: ACDNet, length: int = 16000) -> dict[str, float]:
    """Parameters, weight bits and MACs (forward hooks on one clip). XNOR cost model: a binary MAC
    counts 1/64 of a float MAC and a binary weight 1 bit (float weights 32 bits)."""
    macs = {"float": 0, "binary": 0}
    def hook(m, inp, out):
        n = out.numel() // out.shape[0] * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        macs["binary" if isinstance(m, BinaryConv2d) else "float"] += n
    handles = [m.register_forward_hook(hook) for m in conv_layers(model)]
    was = model.training
    model.eval()(torch.zeros(1, length))
    model.train(was)
    for h in handles:
        h.remove()
    macs["float"] += model.fc.in_features * model.fc.out_features
    binary_w = sum(m.weight.numel() for m in conv_layers(model) if isinstance(m, BinaryConv2d))
    params = sum(p.numel() for p in model.parameters())
    return {"params": params, "binary_params": binary_w,
            "weight_bits": 32 * (params - binary_w) + binary_w,
            "macs": macs["float"] + macs["binary"], "macs_effective": macs["float"] + macs["binary"] / 64}
