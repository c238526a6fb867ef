import pytest
import torch

from sedge.models.scan import chunked_scan, diag_scan, diag_scan_loop


def poles(P, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.exp(torch.complex(-torch.rand(P, generator=g, dtype=dtype) * 0.2,
                                   torch.rand(P, generator=g, dtype=dtype) * 3))


@pytest.mark.parametrize("L", [1, 5, 32, 33, 64, 1000, 1025])
@pytest.mark.parametrize("chunk", [4, 32])
def test_chunked_scan_matches_loop(L, chunk):
    a = poles(3)
    v = torch.randn(2, L, 3, dtype=torch.complex128)
    ref = diag_scan_loop(a, v)
    assert torch.allclose(chunked_scan(a, v, chunk), ref, atol=1e-12)
    rev = diag_scan_loop(a, v.flip(1)).flip(1)
    assert torch.allclose(chunked_scan(a, v, chunk, reverse=True), rev, atol=1e-12)


def test_scan_gradients_are_exact():
    a = poles(3).requires_grad_()
    v = torch.randn(2, 70, 3, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(diag_scan, (a, v))
    g = torch.randn(2, 70, 3, dtype=torch.complex128)
    ga, gv = torch.autograd.grad(diag_scan(a, v), (a, v), g)
    ga_ref, gv_ref = torch.autograd.grad(diag_scan_loop(a, v), (a, v), g)
    assert torch.allclose(ga, ga_ref) and torch.allclose(gv, gv_ref)


def test_scan_rejects_mismatched_states():
    with pytest.raises(ValueError, match="states"):
        diag_scan(poles(3), torch.randn(1, 4, 2, dtype=torch.complex128))
