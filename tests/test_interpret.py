import numpy as np
import torch

from sedge.models.interpret import frequency_response, step_scale_candidates
from sedge.models.layer import SEdgeLayer
from sedge.models.model import validate_step_scale


def test_frequency_response_matches_a_simulated_sinusoid():
    """Drive the layer's linear part with a long cosine and compare amplitude and phase with G(ω)."""
    torch.manual_seed(0)
    layer = SEdgeLayer(2, 5, 3, batchnorm=False).double().eval()
    with torch.no_grad():
        layer.lambda_re.copy_(-torch.rand(5, dtype=torch.float64) * 50 - 5)
        layer.lambda_im.copy_(torch.rand(5, dtype=torch.float64) * 300)
        layer.log_step.fill_(np.log(1e-2))
    f, G = frequency_response(layer, n=64)
    k = 20
    w = 2 * np.pi * f[k] / 16000
    t = np.arange(4000)
    u = torch.zeros(1, 4000, 2, dtype=torch.float64)
    u[0, :, 0] = torch.from_numpy(np.cos(w * t))
    with torch.no_grad():
        lam_bar, B_bar, _ = layer.discretise()
        C = layer.output_matrix().to(torch.complex128)
        x = torch.zeros(5, dtype=torch.complex128)
        ys = []
        for n in range(4000):
            x = lam_bar * x + B_bar[:, 0] * u[0, n, 0]
            ys.append((C @ x).real.numpy())
    y = np.array(ys)[-1000:]                            # steady state
    expected = np.real(G[k, :, 0][None, :] * np.exp(1j * w * t[-1000:])[:, None])
    assert np.allclose(y, expected, atol=1e-6 * np.abs(G[k]).max() + 1e-9)


def test_step_scale_candidates_are_valid_and_include_the_rate_table():
    for n in (3, 6):
        c = step_scale_candidates(n)
        assert [1] * n in c and [2] * n in c and [4] * n in c
        assert all(validate_step_scale(s, n) == s for s in c)
        assert len({tuple(s) for s in c}) == len(c)
