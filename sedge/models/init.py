"""Initialisation schemes of the S-Edge layer (SPEC §1).

* ``orthogonal`` (L, M, S, Tiny): Λ = −0.5 + i·linspace(0, ⌊P/2⌋, P); Re and Im of B and C are
  each orthogonal with gain √(1/3) (a single input channel draws B ~ N(0, 1/3));
  b, c ~ U[0, 1).
* ``s5`` (Full): the normal part of HiPPO-LegS in blocks of 8, whose eigenvalues are
  −0.5 ± iω; one member of every conjugate pair is kept, B = V⁻¹·lecun_normal and
  C = 2·lecun_normal·V.
"""
from __future__ import annotations

import math

import numpy as np
import torch

GAIN = math.sqrt(1.0 / 3.0)
HIPPO_BLOCK = 8


def hippo_normal(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of the normal part of HiPPO-LegS of size ``n``.

    A_nk = −√(2n+1)√(2k+1) (n > k), −(n+1) (n = k); S = A + p pᵀ with p_n = √(n + ½)
    equals −½·I plus a skew-symmetric matrix, so its eigenvalues are −½ + iω.
    """
    q = np.sqrt(2 * np.arange(n) + 1.0)
    a = -np.tril(np.outer(q, q), -1) - np.diag(np.arange(n) + 1.0)
    p = np.sqrt(np.arange(n) + 0.5)
    s = a + np.outer(p, p)
    skew = (s - s.T) / 2
    w, v = np.linalg.eigh(-1j * skew)          # skew = i·(−i·skew); −i·skew is Hermitian
    lam = -0.5 + 1j * w
    return lam, v


def s5_eigen(P: int) -> tuple[np.ndarray, np.ndarray]:
    """Kept eigenvalues (P,) and the block-diagonal eigenvector matrix (2P, P) for S5 init."""
    if P % (HIPPO_BLOCK // 2):
        raise ValueError(f"S5 init needs P divisible by {HIPPO_BLOCK // 2}, got P={P}")
    lam_b, v_b = hippo_normal(HIPPO_BLOCK)
    keep = lam_b.imag > 0
    n_blocks = P // keep.sum()
    lam = np.tile(lam_b[keep], n_blocks)
    V = np.zeros((HIPPO_BLOCK * n_blocks, P), dtype=complex)
    k = int(keep.sum())
    for i in range(n_blocks):
        V[i * HIPPO_BLOCK:(i + 1) * HIPPO_BLOCK, i * k:(i + 1) * k] = v_b[:, keep]
    return lam, V


def init_ssm(P: int, d_in: int, H: int, scheme: str, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Return float32 tensors Λ (re, im), B (re, im), C (re, im), b, c and log_step."""
    g = generator

    def uniform(*shape):
        return torch.rand(*shape, generator=g)

    out: dict[str, torch.Tensor] = {}
    if scheme == "orthogonal":
        out["lambda_re"] = torch.full((P,), -0.5)
        out["lambda_im"] = torch.linspace(0, P // 2, P)
        for name, shape in (("B", (P, d_in)), ("C", (H, P))):
            for part in ("re", "im"):
                w = torch.empty(shape)
                if min(shape) == 1:
                    w.normal_(0.0, GAIN, generator=g)
                else:
                    torch.nn.init.orthogonal_(w, gain=GAIN, generator=g)
                out[f"{name}_{part}"] = w
    elif scheme == "s5":
        lam, V = s5_eigen(P)
        n = V.shape[0]
        Vinv = V.conj().T                                              # V is unitary per block
        b0 = torch.randn(n, d_in, generator=g).double().numpy() / math.sqrt(d_in)
        c0 = (torch.randn(H, n, generator=g).double().numpy()
              + 1j * torch.randn(H, n, generator=g).double().numpy()) / math.sqrt(n)
        B = Vinv @ b0
        C = 2.0 * (c0 @ V)
        out["lambda_re"] = torch.tensor(lam.real, dtype=torch.float32)
        out["lambda_im"] = torch.tensor(lam.imag, dtype=torch.float32)
        out["B_re"], out["B_im"] = (torch.tensor(B.real, dtype=torch.float32), torch.tensor(B.imag, dtype=torch.float32))
        out["C_re"], out["C_im"] = (torch.tensor(C.real, dtype=torch.float32), torch.tensor(C.imag, dtype=torch.float32))
    else:
        raise ValueError(f"unknown init scheme {scheme!r}")
    out["b_re"], out["b_im"] = uniform(P), uniform(P)
    out["c_re"], out["c_im"] = uniform(H), uniform(H)
    out["log_step"] = uniform(P) * (math.log(1e-1) - math.log(1e-3)) + math.log(1e-3)
    return out


def renormalise_rows(w: torch.Tensor, norm: float = GAIN) -> None:
    """In place: scale every row of ``w`` to L2 norm ``norm``."""
    with torch.no_grad():
        w.mul_(norm / w.norm(dim=1, keepdim=True).clamp_min(1e-12))
