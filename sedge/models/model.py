"""The S-Edge classifier: L layers → mean over time → Linear (SPEC §1–3).

Also holds the two things that act across layers: random zero-order hold (RZOH, a
training-time regulariser) and the post-training step scale (layer-wise downsampling).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from sedge.models.config import ModelConfig
from sedge.models.init import renormalise_rows
from sedge.models.layer import SEdgeLayer

RZOH_MIN_R = 1e-3
RZOH_MAX_HOLD = 128


def rzoh_probabilities(n_layers: int) -> list[float]:
    """p_ℓ = round(ℓ / L, 2) for ℓ = 1 … L (SPEC §2)."""
    return [round(l / n_layers, 2) for l in range(1, n_layers + 1)]


def rzoh_hold(p: float, generator: torch.Generator | None = None) -> int:
    """Draw the hold length d of RZOH: r = U(0,1)/p, d = 2^⌊−log₂ r⌋ capped at 128; 1 = no hold."""
    r = torch.rand((), generator=generator).item() / p
    if r < RZOH_MIN_R or r >= 1.0:
        return 1
    d = 2 ** math.floor(-math.log2(r))
    return int(min(d, RZOH_MAX_HOLD)) if d >= 2 else 1


def zero_order_hold(x: torch.Tensor, d: int) -> torch.Tensor:
    """x[:, o::d] = x[:, ::d] for o = 1 … d−1 along dim 1 (the whole batch at once)."""
    if d <= 1:
        return x
    B, L = x.shape[:2]
    n = -(-L // d)
    if n * d != L:
        x = torch.cat([x, x[:, -1:].expand(B, n * d - L, *x.shape[2:])], dim=1)
    held = x.view(B, n, d, *x.shape[2:])[:, :, :1].expand(B, n, d, *x.shape[2:])
    return held.reshape(B, n * d, *x.shape[2:])[:, :L]


class _HoldInPlace(torch.autograd.Function):
    """:func:`zero_order_hold` written into x itself (L divisible by d): the held copy of a whole layer
    output (98 MB per layer of ``full`` at batch 16) is never allocated. Backward: the gradient of
    x[:, j·d] is the sum of the d held gradients, every other sample gets 0."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, d: int) -> torch.Tensor:  # type: ignore[override]
        groups = x.view(x.shape[0], x.shape[1] // d, d, *x.shape[2:])
        groups[:, :, 1:] = groups[:, :, :1]
        ctx.mark_dirty(x)
        ctx.d = d
        return x

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        d = ctx.d
        groups = g.reshape(g.shape[0], g.shape[1] // d, d, *g.shape[2:])   # a view where it can be (the
        out = torch.zeros(groups.shape, dtype=g.dtype, device=g.device)      # mean's gradient is stride 0)
        out[:, :, :1] = groups.sum(dim=2, keepdim=True)
        return out.view(g.shape), None


def hold_in_place(x: torch.Tensor, d: int) -> torch.Tensor:
    """:func:`zero_order_hold` in place where it can be (contiguous x, L divisible by d); the same
    values and gradients. x must not be needed unheld afterwards."""
    if d <= 1:
        return x
    if not x.is_contiguous() or x.shape[1] % d or x._base is not None:
        return zero_order_hold(x, d)
    return _HoldInPlace.apply(x, d)


def validate_step_scale(step_scale: list[int] | tuple[int, ...], n_layers: int) -> list[int]:
    """Cumulative factors s_1 … s_L, each a positive multiple of the previous (SPEC §2)."""
    s = [int(v) for v in step_scale]
    if len(s) != n_layers:
        raise ValueError(f"step scale {s}: expected {n_layers} cumulative factors, one per layer")
    prev = 1
    for i, v in enumerate(s):
        if v < 1 or v % prev:
            raise ValueError(f"step scale {s}: factor {i + 1} ({v}) must be a positive multiple of {prev}")
        prev = v
    return s


class SEdgeModel(nn.Module):
    """An S-Edge classifier built from a :class:`ModelConfig`."""

    def __init__(self, cfg: ModelConfig, seed: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        if seed is not None:
            torch.manual_seed(seed)        # for the nn.Linear/BN defaults below
        d_in = 1
        layers = []
        for P, H in zip(cfg.states, cfg.widths):
            layers.append(SEdgeLayer(d_in, P, H, trainable_skip=cfg.trainable_skip, batchnorm=cfg.batchnorm,
                                     init=cfg.init, dropout=cfg.dropout, generator=g))
            d_in = H
        self.layers = nn.ModuleList(layers)
        self.decoder = nn.Linear(d_in, cfg.n_classes)
        renormalise_rows(self.decoder.weight)
        self.rzoh_p = rzoh_probabilities(len(layers))
        self.step_scale = [1] * len(layers)

    # ---- step scale -------------------------------------------------------------------
    def set_step_scale(self, step_scale: list[int] | tuple[int, ...]) -> "SEdgeModel":
        """Apply cumulative per-layer factors: layer ℓ decimates by s_ℓ/s_{ℓ−1} and scales Δ by s_ℓ."""
        s = validate_step_scale(step_scale, len(self.layers))
        prev = 1
        for layer, v in zip(self.layers, s):
            layer.decimate, layer.delta_scale = v // prev, v
            prev = v
        self.step_scale = s
        return self

    # ---- forward paths ----------------------------------------------------------------
    def features(self, wave: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Outputs of every layer (B, L_ℓ, H_ℓ) for waveforms (B, L)."""
        x = wave.unsqueeze(-1) if wave.dim() == 2 else wave
        outs = []
        for i, layer in enumerate(self.layers[:upto]):
            x = layer(x)
            if self.training and self.cfg.rzoh:
                x = hold_in_place(x, rzoh_hold(self.rzoh_p[i]))   # x is the layer's own output
            outs.append(x)
        return outs

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) for waveforms (B, L)."""
        return self.decoder(self.features(wave)[-1].mean(dim=1))

    @torch.no_grad()
    def stream(self, wave: torch.Tensor) -> torch.Tensor:
        """Sample-by-sample inference (eval mode): layer ℓ runs at samples t with t mod s_ℓ = 0."""
        if self.training:
            raise RuntimeError("stream() is an inference path: call model.eval() first")
        B, L = wave.shape
        states = [torch.zeros(B, l.P, dtype=torch.complex64 if wave.dtype == torch.float32 else torch.complex128)
                  for l in self.layers]
        total = torch.zeros(B, self.layers[-1].H, dtype=wave.dtype)
        count = 0
        for t in range(L):
            u = wave[:, t:t + 1]
            for i, (layer, s) in enumerate(zip(self.layers, self.step_scale)):
                if t % s:
                    break
                u, states[i] = layer.stream_step(u, states[i])
            else:
                total += u
                count += 1
        return self.decoder(total / count)

    # ---- optimiser groups (SPEC §4) ---------------------------------------------------
    def ssm_parameters(self) -> list[nn.Parameter]:
        from sedge.models.layer import SSM_PARAM_NAMES
        return [getattr(l, n) for l in self.layers for n in SSM_PARAM_NAMES]


def build_model(cfg: ModelConfig, seed: int | None = None) -> SEdgeModel:
    return SEdgeModel(cfg, seed)
