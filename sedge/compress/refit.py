"""Least-squares output refit of a reduced S-Edge layer (ours, beyond the papers).

Balanced truncation keeps the reduced layer's C, c = C_r T, c: optimal in the worst case over
*all* inputs (the 2Σσ bound), not for the inputs the layer is actually fed. Keeping the reduced
layer's states x̂ (its Λ̄, B̄, b̄ untouched) and choosing its output map to match the *original*
layer's pre-activation y on training clips,

    min_{C, c}  Σ_n Σ_t ‖Re(C x̂[n, t]) + c − y[n, t]‖²,    y = Re(C_orig x) + c_orig,

is a linear least-squares problem in θ = [Re Cᵀ; −Im Cᵀ; cᵀ] with features φ = [Re x̂; Im x̂; 1]:
the normal equations (Σ φ φᵀ) θ = Σ φ yᵀ, accumulated and solved in float64. It uses no labels
and takes no gradient step: the target is the unpruned layer's own output, so the refit only
undoes truncation error on the kind of input the layer sees. Each layer is refitted alone, on its
inputs in the *original* model (layer-local, like the truncation itself). The parameter count is
unchanged (C and c keep their shapes).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from sedge.models.layer import SEdgeLayer
from sedge.models.scan import diag_scan

RIDGE = 1e-10          # relative ridge on the normal equations: λ = RIDGE · mean(diag Σ φ φᵀ)


@torch.no_grad()
def states_and_output(layer: SEdgeLayer, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's complex states x (N, T', P) and pre-activation y = Re(C x) + c [+ D z] (N, T', H)
    for inputs ``u`` (N, T, d_in) in eval mode (running BatchNorm statistics, step scale applied),
    computed in float64."""
    layer = copy.deepcopy(layer).double().eval()
    u = u.double()
    if layer.decimate > 1:
        u = u[:, ::layer.decimate]
    lam_bar, W_in, b_in = layer.input_map()
    affine = layer.norm_scale_shift(u)
    if affine is not None:
        W_in, b_in = W_in * affine[0], b_in + W_in @ affine[1]
    v = torch.view_as_complex(F.linear(u, W_in, b_in).unflatten(-1, (layer.P, 2)).contiguous())
    x = diag_scan(lam_bar, v)
    y = F.linear(torch.view_as_real(x).flatten(-2), layer.output_map(), layer.c_re)
    if layer.feedthrough is not None:
        y = y + layer._feedthrough(u if affine is None else u * affine[0] + affine[1])
    return x, y


@torch.no_grad()
def refit_output(original: SEdgeLayer, reduced: SEdgeLayer, u: torch.Tensor, batch: int = 8) -> SEdgeLayer:
    """A copy of ``reduced`` whose C and c minimise the squared distance of its pre-activation to
    ``original``'s on the inputs ``u`` (N, T, d_in) of the original layer (module docstring)."""
    from sedge.compress.reduction import ReductionError
    if reduced.feedthrough is not None:
        raise ReductionError("the refit replaces C and c; a layer reduced with 'matchdc' carries a feed-through D "
                             "that already fixes its DC gain: refit a 'truncate' or 'data' reduction instead")
    if (reduced.d_in, reduced.H) != (original.d_in, original.H):
        raise ReductionError(f"the reduced layer maps {reduced.d_in} → {reduced.H} channels, the original "
                             f"{original.d_in} → {original.H}: not a reduction of it")
    if len(u) == 0:
        raise ReductionError("no input clips given for the output refit")
    r, H = reduced.P, original.H
    gram = torch.zeros(2 * r + 1, 2 * r + 1, dtype=torch.float64)
    cross = torch.zeros(2 * r + 1, H, dtype=torch.float64)
    for s in range(0, len(u), batch):
        _, y = states_and_output(original, u[s:s + batch])
        x, _ = states_and_output(reduced, u[s:s + batch])
        phi = torch.cat([x.real, x.imag, torch.ones_like(x.real[..., :1])], dim=-1).reshape(-1, 2 * r + 1)
        gram += phi.T @ phi
        cross += phi.T @ y.reshape(-1, H)
    ridge = RIDGE * float(gram.diagonal().mean())
    theta = torch.linalg.solve(gram + ridge * torch.eye(2 * r + 1, dtype=torch.float64), cross)
    new = copy.deepcopy(reduced)
    dtype = new.C_re.dtype
    new.C_re.copy_(theta[:r].T.to(dtype))
    new.C_im.copy_((-theta[r:2 * r]).T.to(dtype))
    new.c_re.copy_(theta[2 * r].to(dtype))
    return new


class LayerInputs:
    """Every layer's input in ``model`` (eval mode, a frozen copy) for ``clips`` (N, T), computed on
    first use, batch by batch, and kept."""

    def __init__(self, model, clips: torch.Tensor, batch: int = 8):
        if len(clips) == 0:
            from sedge.compress.reduction import ReductionError
            raise ReductionError("no training clips given for the output refit")
        self.model = copy.deepcopy(model).cpu().eval()
        self.clips, self.batch = clips.cpu(), batch
        self.stored: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def __getitem__(self, i: int) -> torch.Tensor:
        if i not in self.stored:
            parts = []
            for s in range(0, len(self.clips), self.batch):
                h = self.clips[s:s + self.batch].unsqueeze(-1)
                for layer in self.model.layers[:i]:
                    h = layer(h)
                parts.append(h)
            self.stored[i] = torch.cat(parts)
        return self.stored[i]


class OutputRefit:
    """Refits reduced versions of ``model``'s layers on its own layer inputs for ``clips``
    (normalised training clips): ``refit(i, reduced)`` → :func:`refit_output` of layer i."""

    def __init__(self, model, clips: torch.Tensor, batch: int = 8):
        self.inputs = LayerInputs(model, clips, batch)
        self.batch = batch

    def __call__(self, i: int, reduced: SEdgeLayer) -> SEdgeLayer:
        return refit_output(self.inputs.model.layers[i], reduced, self.inputs[i], self.batch)
