"""Looking inside trained layers: step-scale candidates and layer frequency responses (SPEC §2)."""
from __future__ import annotations

import numpy as np
import torch

from sedge.data.base import SAMPLE_RATE

# Step-scale lists reported by the authors' C++ experiments (SPEC §11), by layer count.
PAPER_STEP_SCALES = {
    3: [[1, 2, 6], [1, 5, 20], [1, 9, 54]],
    6: [[1, 1, 1, 2, 4, 12], [1, 1, 4, 8, 16, 32], [1, 2, 14, 14, 42, 42], [1, 2, 2, 6, 18, 54]],
}


def step_scale_candidates(n_layers: int) -> list[list[int]]:
    """Uniform 16/8/4 kHz lists, a geometric one, and the paper's lists for this depth."""
    out = [[k] * n_layers for k in (1, 2, 4)]
    out.append([2 ** i for i in range(n_layers)])
    out.append([min(2 ** (i + 1), 2 ** (n_layers)) for i in range(n_layers)])
    out += PAPER_STEP_SCALES.get(n_layers, [])
    seen, unique = set(), []
    for s in out:
        if tuple(s) not in seen:
            seen.add(tuple(s))
            unique.append(s)
    return unique


@torch.no_grad()
def frequency_response(layer, n: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Frequency response of a layer's linear part (no LeakyReLU, no skip, eval-mode BN folded).

    For real inputs, y = Re(C x) with x_k = Λ̄ x_{k−1} + B̄ z_k, so with w = e^{iω}

        G(ω) = ½ [C diag(1/(1 − Λ̄ w⁻¹)) B̄ + C̄ diag(1/(1 − Λ̄* w⁻¹)) B̄*]      (H × d_in)

    Returns frequencies in Hz at the layer's own rate (16 kHz / s_ℓ) and G of shape (n, H, d_in).
    """
    lam_bar, B_bar, _ = layer.discretise()
    scale, _ = layer.norm_affine()
    lam = lam_bar.to(torch.complex128).numpy()
    B = (B_bar * scale.to(B_bar.real.dtype)).to(torch.complex128).numpy()
    C = layer.output_matrix().to(torch.complex128).numpy()
    w = np.linspace(1e-3, np.pi, n)
    zinv = np.exp(-1j * w)[:, None]
    d1 = 1.0 / (1.0 - lam[None, :] * zinv)                    # (n, P)
    d2 = 1.0 / (1.0 - lam.conj()[None, :] * zinv)
    G = 0.5 * (np.einsum("hp,fp,pd->fhd", C, d1, B) + np.einsum("hp,fp,pd->fhd", C.conj(), d2, B.conj()))
    rate = SAMPLE_RATE / layer.delta_scale
    return w / (2 * np.pi) * rate, G
