"""The S-Edge layer: a causal, diagonal, complex MIMO state space layer (SPEC §1–2).

Continuous parameters Λ ∈ ℂ^P, Δ = step_scale·exp(log_step), B ∈ ℂ^{P×d_in}, b ∈ ℂ^P,
C ∈ ℂ^{H×P}, c ∈ ℂ^H. Zero-order hold with the bias discretised together with B:

    Λ̄ = exp(Λ ⊙ Δ),    [B̄ | b̄] = ((Λ̄ − 1) / Λ) ⊙ [B | b]

    x_k = Λ̄ ⊙ x_{k−1} + B̄ BN(u_k) + b̄,    y_k = Re(C x_k + c)
    out_k = Dropout1d(LeakyReLU_0.01(y_k)) + W_skip u_k

Stability projection before every use: Re Λ ← −|Re Λ|, Im Λ ← |Im Λ|.
Tensors are channel-last: ``u`` is (batch, time, d_in).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from sedge.models import kernel
from sedge.models.init import init_ssm, renormalise_rows
from sedge.models.scan import diag_scan

LEAKY_SLOPE = 0.01


class _LeakyReluAdd(torch.autograd.Function):
    """out = LeakyReLU(y) + s in two passes, keeping only the sign mask of y for backward."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = F.leaky_relu(y, LEAKY_SLOPE)
        ctx.save_for_backward(out > 0)
        return out.add_(s)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (positive,) = ctx.saved_tensors
        gy = torch.where(positive, g, g * LEAKY_SLOPE) if ctx.needs_input_grad[0] else None
        return gy, g
SSM_PARAM_NAMES = ("lambda_re", "lambda_im", "log_step", "B_re", "B_im", "b_re", "b_im", "C_re", "C_im", "c_re", "c_im")


class SEdgeLayer(nn.Module):
    """One S-Edge layer with P complex states, input width d_in and output width H."""

    def __init__(self, d_in: int, P: int, H: int, *, trainable_skip: bool = True, batchnorm: bool = True,
                 init: str = "orthogonal", dropout: float = 0.0, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not trainable_skip and d_in not in (1, H):
            raise ValueError(f"identity skip needs d_in == H or d_in == 1, got d_in={d_in}, H={H}")
        self.d_in, self.P, self.H = d_in, P, H
        for name, value in init_ssm(P, d_in, H, init, generator).items():
            # Im c is stored (the paper counts it) but cannot affect y = Re(Cx + c): frozen.
            setattr(self, name, nn.Parameter(value, requires_grad=name != "c_im"))
        self.skip: nn.Linear | None = None
        if trainable_skip:
            self.skip = nn.Linear(d_in, H, bias=False)
            renormalise_rows(self.skip.weight)
        self.norm = nn.BatchNorm1d(d_in) if batchnorm else None
        self.dropout = dropout
        # Post-training step scale (SPEC §2): decimate the input by `decimate`, scale Δ by `delta_scale`.
        self.decimate = 1
        self.delta_scale = 1
        # Optional feed-through D (H × (d_in+1)), present only after matched-DC order reduction.
        self.feedthrough: nn.Parameter | None = None

    # ---- parameters in complex form -------------------------------------------------
    def eigenvalues(self) -> torch.Tensor:
        """Λ after the stability projection."""
        return torch.complex(-self.lambda_re.abs(), self.lambda_im.abs())

    def step(self) -> torch.Tensor:
        """Δ = delta_scale · exp(log_step)."""
        return self.delta_scale * torch.exp(self.log_step)

    def discretise(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ZOH: (Λ̄, B̄, b̄) at the current step scale (BN not folded)."""
        lam = self.eigenvalues()
        lam_bar = torch.exp(lam * self.step())
        coef = (lam_bar - 1) / lam
        B = torch.complex(self.B_re, self.B_im)
        b = torch.complex(self.b_re, self.b_im)
        return lam_bar, coef[:, None] * B, coef * b

    def output_matrix(self) -> torch.Tensor:
        return torch.complex(self.C_re, self.C_im)

    def norm_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode BN as z = scale ⊙ u + shift (identity when BN is off)."""
        if self.norm is None:
            return torch.ones(self.d_in), torch.zeros(self.d_in)
        n = self.norm
        scale = n.weight / torch.sqrt(n.running_var + n.eps)
        return scale, n.bias - n.running_mean * scale

    @torch.no_grad()
    def fold_norm(self, B: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fold eval-mode BN into an input map: B z + b with z = scale ⊙ u + shift equals
        B' u + b' with B' = B·diag(scale), b' = b + B·shift (used by the reduction and the export)."""
        scale, shift = self.norm_affine()
        scale, shift = scale.to(B.real.dtype), shift.to(B.real.dtype)
        return B * scale[None, :], b + B @ shift.to(B.dtype)

    # ---- forward paths --------------------------------------------------------------
    def _skip(self, u: torch.Tensor) -> torch.Tensor:
        return self.skip(u) if self.skip is not None else u

    def _channel_dropout(self, y: torch.Tensor) -> torch.Tensor:
        if not self.training or self.dropout == 0:
            return y
        keep = torch.rand(y.shape[0], 1, y.shape[2], device=y.device) >= self.dropout
        return y * keep / (1 - self.dropout)

    def _feedthrough(self, z: torch.Tensor) -> torch.Tensor:
        D = self.feedthrough
        return z @ D[:, :-1].T + D[:, -1]

    def input_map(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[B̄ | b̄] as one real matrix (2P, d_in) and bias (2P,), rows interleaved (Re, Im) per
        state, so that one matmul yields v = B̄z + b̄ laid out as a complex (…, P) tensor."""
        lam_bar, B_bar, b_bar = self.discretise()
        W = torch.view_as_real(B_bar).transpose(1, 2).reshape(2 * self.P, self.d_in)
        return lam_bar, W, torch.view_as_real(b_bar).reshape(2 * self.P)

    def output_map(self) -> torch.Tensor:
        """Re(C x) = [Re C, −Im C] · [Re x; Im x] as one (H, 2P) matrix interleaved like x."""
        return torch.stack((self.C_re, -self.C_im), dim=2).reshape(self.H, 2 * self.P)

    def linear_part_scan(self, z: torch.Tensor, lam_bar: torch.Tensor, W_in: torch.Tensor,
                         b_in: torch.Tensor) -> torch.Tensor:
        """y = Re(C x) + c, x_k = Λ̄ x_{k−1} + W_in z_k + b_in, with the chunked scan of :mod:`sedge.models.scan`
        (any device; the reference of the fused CPU operator)."""
        v = torch.view_as_complex(F.linear(z, W_in, b_in).unflatten(-1, (self.P, 2)))
        x = diag_scan(lam_bar, v)
        return F.linear(torch.view_as_real(x).flatten(-2), self.output_map(), self.c_re)

    def norm_scale_shift(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """BN(u) = scale ⊙ u + shift per channel, differentiable; None without BN.

        In train mode scale = γ/√(σ² + ε), shift = β − μ·scale with the batch statistics μ, σ² over
        (batch, time), and the running statistics are updated as nn.BatchNorm1d does (momentum,
        unbiased σ²); in eval mode (or a frozen BN) the running statistics are used. Applying BN
        this way lets it be folded into the input map (see :meth:`forward`)."""
        n = self.norm
        if n is None:
            return None
        if n.training:
            var, mean = kernel.channel_moments(u)
            with torch.no_grad():
                count = u.shape[0] * u.shape[1]
                m = n.momentum if n.momentum is not None else 1.0 / float(n.num_batches_tracked + 1)
                n.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                n.running_var.mul_(1 - m).add_(var.detach() * count / max(count - 1, 1), alpha=m)
                n.num_batches_tracked.add_(1)
        else:
            mean, var = n.running_mean, n.running_var
        scale = n.weight * torch.rsqrt(var + n.eps)
        return scale, n.bias - mean * scale

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Parallel path over a whole sequence: u (B, L, d_in) → (B, ⌈L/decimate⌉, H).

        BN is folded into the input map: B̄ BN(u) + b̄ = (B̄·diag(scale)) u + (b̄ + B̄ shift)."""
        if self.decimate > 1:
            u = u[:, ::self.decimate]
        lam_bar, W_in, b_in = self.input_map()
        affine = self.norm_scale_shift(u)
        if affine is not None:
            scale, shift = affine
            W_in, b_in = W_in * scale, b_in + W_in @ shift
        fused = u.device.type == "cpu" and u.dtype in (torch.float32, torch.float64) and kernel.available()
        plain = self.feedthrough is None and not (self.training and self.dropout > 0)
        if fused and plain:           # one operator for the whole layer: the (B, L, P) state is never stored
            return kernel.ssm_layer(u, torch.view_as_real(lam_bar), W_in, b_in, self.output_map(), self.c_re,
                                    self.skip.weight if self.skip is not None else None,
                                    epilogue=True, slope=LEAKY_SLOPE)
        if fused:
            y = kernel.ssm_layer(u, torch.view_as_real(lam_bar), W_in, b_in, self.output_map(), self.c_re)
        else:
            y = self.linear_part_scan(u, lam_bar, W_in, b_in)
        if self.feedthrough is not None:
            y = y + self._feedthrough(u if affine is None else u * affine[0] + affine[1])
        if self.training and self.dropout > 0:
            return self._channel_dropout(F.leaky_relu(y, LEAKY_SLOPE)) + self._skip(u)
        return _LeakyReluAdd.apply(y, self._skip(u))

    def stream_step(self, u_k: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One sample of the recurrence (eval mode): u_k (B, d_in), state x (B, P) → (out_k, x)."""
        scale, shift = self.norm_affine()
        z = u_k * scale + shift
        lam_bar, B_bar, b_bar = self.discretise()
        x = lam_bar * x + z.to(B_bar.dtype) @ B_bar.T + b_bar
        y = (x @ self.output_matrix().T).real + self.c_re
        if self.feedthrough is not None:
            y = y + self._feedthrough(z)
        return F.leaky_relu(y, LEAKY_SLOPE) + self._skip(u_k), x

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, P={self.P}, H={self.H}, skip={'trainable' if self.skip is not None else 'identity'}, "
                f"bn={self.norm is not None}, decimate={self.decimate}, delta_scale={self.delta_scale}")
