"""The diagonal linear recurrence at the heart of every S-Edge layer (SPEC §1).

For a per-state complex pole ``a`` and an input sequence ``v`` the layer state obeys

    x_k = a ⊙ x_{k-1} + v_k,    x_{-1} = 0,    so    x_k = Σ_{j≤k} a^{k-j} v_j.

Training evaluates all k with a *chunked* scan: the sequence is cut into chunks of T
samples; each chunk is scanned from a zero state (T vectorised steps over all chunks at
once); the chunk-end states form a recurrence of the same kind with pole a^T, solved
recursively; finally every chunk adds its carried-in state, x_{cT+t} += a^{t+1} S_{c−1}.
Work is O(L) per level and the number of Python steps is about T·log_T(L).

The backward pass is the same recurrence run backwards in time with conj(a):

    ∂ℒ/∂v_j = Σ_{k≥j} conj(a)^{k-j} g_k,    ∂ℒ/∂a = Σ_k conj(x_{k-1}) ⊙ ∂ℒ/∂v_k,

where g is PyTorch's (conjugate Wirtinger) gradient of the output. Only the output x is
kept for the backward pass, so memory is one complex (B, L, P) tensor per layer.
"""
from __future__ import annotations

import torch

CHUNK = 32


def chunked_scan(a: torch.Tensor, v: torch.Tensor, chunk: int = CHUNK, reverse: bool = False) -> torch.Tensor:
    """x_k = a x_{k−1} + v_k along dim 1 of ``v`` (B, L, P) (``reverse``: x_k = a x_{k+1} + v_k).

    Returns a new tensor; ``v`` is not modified.
    """
    B, L, P = v.shape
    n_chunks = -(-L // chunk)
    if n_chunks * chunk == L:
        x = v.clone(memory_format=torch.contiguous_format)
    else:                                            # pad at the end (or the start, in reverse)
        x = v.new_zeros(B, n_chunks * chunk, P)
        (x[:, n_chunks * chunk - L:] if reverse else x[:, :L]).copy_(v)
    x = x.view(B, n_chunks, chunk, P)
    steps = range(chunk - 2, -1, -1) if reverse else range(1, chunk)
    d = 1 if reverse else -1
    for t in steps:
        x[:, :, t].addcmul_(x[:, :, t + d], a)
    if n_chunks > 1:
        edge = 0 if reverse else -1                  # the chunk's last state in scan order
        ends = chunked_scan(a ** chunk, x[:, :, edge], chunk, reverse)
        k = torch.arange(1, chunk + 1, device=v.device, dtype=a.real.dtype)
        powers = a ** (k.flip(0) if reverse else k)[:, None]                # (T, P)
        if reverse:
            x[:, :-1].addcmul_(powers, ends[:, 1:, None, :])
        else:
            x[:, 1:].addcmul_(powers, ends[:, :-1, None, :])
    x = x.view(B, n_chunks * chunk, P)
    return x[:, n_chunks * chunk - L:] if reverse else x[:, :L]


class _DiagScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = chunked_scan(a.detach(), v.detach())
        ctx.save_for_backward(a, x)
        return x

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        a, x = ctx.saved_tensors
        gv = chunked_scan(a.conj(), g, reverse=True)                        # reverse-time recurrence
        ga = None
        if ctx.needs_input_grad[0]:
            B, L, P = x.shape
            ga = torch.linalg.vecdot(x[:, :-1].reshape(-1, P), gv[:, 1:].reshape(-1, P), dim=0) \
                if B == 1 else torch.linalg.vecdot(x[:, :-1], gv[:, 1:], dim=1).sum(0)
        return ga, gv


def diag_scan(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Run x_k = a ⊙ x_{k-1} + v_k over dim 1 of ``v`` (B, L, P) from a zero state."""
    if v.shape[-1] != a.shape[-1]:
        raise ValueError(f"diag_scan: v has {v.shape[-1]} states, a has {a.shape[-1]}")
    if not torch.is_complex(v):
        v = v.to(a.dtype)
    return _DiagScan.apply(a, v)


def diag_scan_loop(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Reference: the same recurrence as a plain sequential loop (tests, benchmarks)."""
    x = torch.zeros_like(v[:, 0])
    out = []
    for v_k in v.unbind(1):
        x = a * x + v_k
        out.append(x)
    return torch.stack(out, 1)
