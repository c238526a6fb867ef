"""Model order reduction of S-Edge layers by balanced truncation (SPEC §7; EUSIPCO 2025).

A layer's linear part, with its BatchNorm folded into B and b and the bias as an extra constant
input, is the *sample-time continuous* system

    ẋ = A x + B_c [u; 1],    y = Re(C x),    A = diag(Δ ⊙ Λ),    B_c = Δ ⊙ [B' | b']

whose zero-order hold at unit sample time is exactly the layer's (Λ̄, [B̄ | b̄]). Its real
realisation of order 2P (x = x_r + i x_i)

    A_r = [[Re A, −Im A], [Im A, Re A]],    B_r = [Re B_c; Im B_c],    C_r = [Re C, −Im C]

is reduced with python-control's ``balred`` in continuous time — never in discrete time: its
discrete ``balred`` silently returns a wrong system, so only :func:`balanced_truncation` talks to
python-control and it refuses anything but a continuous system. The reduced system is
re-diagonalised (λ, V = eig(A_red); B ← V⁻¹B_red; C ← C_red V); one member (Im λ > 0) of every
conjugate pair is kept with its C column doubled; a real eigenvalue keeps its column and costs a
full complex state, except that two real modes with the same pole share one (see :func:`diagonalise`).
The result is a plain :class:`~sedge.models.layer.SEdgeLayer` with Δ = 1.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from sedge.models.layer import SEdgeLayer

MARGINAL_EPS = 1e-9            # modes with Re(Δλ) > −ε are clamped to −ε before reduction


class ReductionError(ValueError):
    """Bad input to the order reduction (order out of range, missing slycot, ...)."""


def _control():
    try:
        import control
        import slycot  # noqa: F401  (balred/hsvd need it)
    except ImportError as e:  # pragma: no cover - both are pinned dependencies
        raise ReductionError("balanced truncation needs python-control with slycot "
                             "(pip install control slycot)") from e
    return control


@dataclass
class LayerSystem:
    """Real realisation (A_r, B_r, C_r) of a layer's linear part; inputs are [u; 1]."""

    A: np.ndarray          # (2P, 2P)
    B: np.ndarray          # (2P, d_in + 1)
    C: np.ndarray          # (H, 2P)

    @property
    def order(self) -> int:
        return self.A.shape[0]

    def to_control(self):
        """The python-control StateSpace, explicitly continuous (dt = 0)."""
        control = _control()
        return control.ss(self.A, self.B, self.C, np.zeros((self.C.shape[0], self.B.shape[1])), dt=0)


@torch.no_grad()
def folded_input(layer: SEdgeLayer) -> tuple[np.ndarray, np.ndarray]:
    """Continuous B' and b' (complex, float64) with eval-mode BatchNorm folded in (``layer.fold_norm``)."""
    B = torch.complex(layer.B_re, layer.B_im).to(torch.complex128)
    b = torch.complex(layer.b_re, layer.b_im).to(torch.complex128)
    Bf, bf = layer.fold_norm(B, b)
    return Bf.numpy(), bf.numpy()


@torch.no_grad()
def layer_system(layer: SEdgeLayer, step_scale: float = 1.0) -> LayerSystem:
    """The sample-time continuous real realisation of ``layer`` with Δ = step_scale·exp(log_step).

    Reduction uses step scale 1: a time-scaled system has the same Hankel singular values and its
    truncation is the time-scaled truncation, so the reduced layer simply keeps the original's
    step scale (tested)."""
    a, Bc, C = continuous_modes(layer, step_scale)
    A_r = np.block([[np.diag(a.real), -np.diag(a.imag)], [np.diag(a.imag), np.diag(a.real)]])
    return LayerSystem(A_r, np.concatenate([Bc.real, Bc.imag]), np.concatenate([C.real, -C.imag], axis=1))


@torch.no_grad()
def continuous_modes(layer: SEdgeLayer, step_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The complex diagonal form of :func:`layer_system`: poles a = Δ ⊙ Λ (marginal modes clamped to
    Re a ≤ −ε), input matrix B_c = Δ ⊙ [B' | b'] (BN folded) and C, all complex128."""
    if layer.feedthrough is not None:
        raise ReductionError("layer already carries a feed-through D (it was reduced with 'matchdc'); "
                             "reduce the original layer instead")
    delta = step_scale * torch.exp(layer.log_step).double().numpy()
    a = layer.eigenvalues().to(torch.complex128).numpy() * delta
    a = np.where(a.real > -MARGINAL_EPS, -MARGINAL_EPS + 1j * a.imag, a)          # clamp marginal modes
    B, b = folded_input(layer)
    Bc = delta[:, None] * np.concatenate([B, b[:, None]], axis=1)
    return a, Bc, layer.output_matrix().to(torch.complex128).numpy()


def _require_continuous(sys) -> None:
    control = _control()
    if not isinstance(sys, control.StateSpace) or not control.isctime(sys, strict=True):
        raise ReductionError("balanced truncation is only done on continuous-time systems (dt = 0): "
                             "python-control 0.10's discrete balred silently returns a wrong system")


def hankel_singular_values(system: LayerSystem) -> np.ndarray:
    """Hankel singular values, descending (python-control ``hsvd``)."""
    sys = system.to_control()
    _require_continuous(sys)
    return np.asarray(_control().hsvd(sys))


def balanced_truncation(sys, orders: int | list[int], method: str = "truncate"):
    """``control.balred`` on a continuous-time StateSpace only (one order or a list of orders)."""
    _require_continuous(sys)
    if method not in ("truncate", "matchdc"):
        raise ReductionError(f"method must be 'truncate' or 'matchdc', got {method!r}")
    return _control().balred(sys, orders, method=method)


@torch.no_grad()
def state_covariance(layer: SEdgeLayer, u: torch.Tensor, batch: int = 8) -> np.ndarray:
    """The empirical controllability Gramian of ``layer`` under its actual inputs ``u`` (N, T, d_in):

        P_data = 1/(N·T) Σ_n Σ_t x_r[n, t] x_r[n, t]ᵀ,    x_r = [Re x; Im x],
        x_t = e^a ⊙ x_{t−1} + ((e^a − 1) / a) ⊙ B_c [u_t; 1],

    the second moment of the state of :func:`layer_system`'s continuous system sampled at unit time
    under zero-order-held input (which is the layer's own state at step scale 1; the bias input
    included). The white-noise controllability Gramian ∫ e^{At} B Bᵀ e^{Aᵀt} dt is the same moment
    under unit white noise on every input; P_data weights the modes by what the layer is fed."""
    moment, count = _state_moment(layer, u, batch)
    if count == 0:
        raise ReductionError("no input clips given for the data-weighted Gramian")
    return (moment / count).numpy()


@torch.no_grad()
def _state_moment(layer: SEdgeLayer, u: torch.Tensor, batch: int = 8) -> tuple[torch.Tensor, int]:
    """(Σ x_r x_rᵀ, number of samples) of :func:`state_covariance`."""
    from sedge.models.scan import chunked_scan
    a, Bc, _ = continuous_modes(layer)
    lam_bar = torch.as_tensor(np.exp(a))
    W = torch.as_tensor(((np.exp(a) - 1) / a)[:, None] * Bc)                 # (P, d_in + 1)
    P = len(a)
    moment, count = torch.zeros(2 * P, 2 * P, dtype=torch.float64), 0
    for s in range(0, len(u), batch):
        ub = u[s:s + batch].cpu().to(torch.complex128)
        x = chunked_scan(lam_bar, ub @ W[:, :-1].T + W[:, -1])
        xr = torch.cat([x.real, x.imag], dim=-1).reshape(-1, 2 * P)
        moment += xr.T @ xr
        count += xr.shape[0]
    return moment, count


@torch.no_grad()
def state_covariances(model, clips: torch.Tensor, batch: int = 8) -> list[np.ndarray]:
    """:func:`state_covariance` of every layer of ``model`` (eval mode) under its inputs when the model
    is fed ``clips`` (N, T), a batch of clips at a time (memory: one batch of layer inputs)."""
    if len(clips) == 0:
        raise ReductionError("no input clips given for the data-weighted Gramians")
    was_training = model.training
    model.eval()
    sums: list = [None] * len(model.layers)
    count = 0
    for s in range(0, len(clips), batch):
        h = clips[s:s + batch].unsqueeze(-1)
        for i, layer in enumerate(model.layers):
            m, c = _state_moment(layer, h, batch)
            sums[i] = m if sums[i] is None else sums[i] + m
            h = layer(h)
        count += c
    model.train(was_training)
    return [(m / count).numpy() for m in sums]


def _psd_factor(M: np.ndarray) -> np.ndarray:
    """L with L Lᵀ = M for a symmetric positive semi-definite M (eigenvalues below 0 set to 0)."""
    w, V = np.linalg.eigh((M + M.T) / 2)
    return V * np.sqrt(np.clip(w, 0.0, None))


def data_weighted_truncation(system: LayerSystem, gramian: np.ndarray, orders: list[int]
                             ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Input-weighted balanced truncation by the square-root method (ours, beyond the paper).

    With P_data = L_c L_cᵀ (:func:`state_covariance`) and the observability Gramian Q = L_o L_oᵀ of
    Aᵀ Q + Q A = −Cᵀ C, the SVD L_oᵀ L_c = U Σ Vᵀ gives the weighted Hankel singular values Σ, and
    the projection T = L_c V_k Σ_k^{−1/2}, W = L_o U_k Σ_k^{−1/2} (Wᵀ T = I) the order-k system

        A_k = Wᵀ A T,    B_k = Wᵀ B,    C_k = C T.

    States that the real inputs hardly excite are dropped even where unit white noise would excite
    them. Unlike plain balanced truncation, stability is not guaranteed: an unstable result raises
    :class:`ReductionError`. Returns (Σ, [(A_k, B_k, C_k) for k in orders])."""
    import scipy.linalg
    A, B, C = system.A, system.B, system.C
    n = system.order
    if gramian.shape != (n, n):
        raise ReductionError(f"the data Gramian has shape {gramian.shape}; the layer's real realisation "
                             f"has order {n}")
    Q = scipy.linalg.solve_continuous_lyapunov(A.T, -C.T @ C)
    Lc, Lo = _psd_factor(gramian), _psd_factor(Q)
    U, sigma, Vt = np.linalg.svd(Lo.T @ Lc)
    out = []
    for k in orders:
        if not 1 <= k <= n:
            raise ReductionError(f"order {k} out of range: the layer's real realisation has order {n}")
        if sigma[0] <= 0 or sigma[k - 1] <= 1e-13 * sigma[0]:
            rank = int((sigma > 1e-13 * sigma[0]).sum()) if sigma[0] > 0 else 0
            raise ReductionError(f"order {k} exceeds the numerical rank ({rank}) of the data-weighted Gramians "
                                 "(the clips excite fewer states): ask for a lower order or give more varied clips")
        s = 1.0 / np.sqrt(sigma[:k])
        T, W = Lc @ Vt[:k].T * s, Lo @ U[:, :k] * s
        Ak = W.T @ A @ T
        worst = float(np.linalg.eigvals(Ak).real.max())
        if worst >= 0:
            raise ReductionError(f"the data-weighted truncation to order {k} is unstable (max Re λ = {worst:.2e})")
        out.append((Ak, W.T @ B, C @ T))
    return sigma, out


@dataclass
class DiagonalForm:
    """A reduced system in S-Edge form: y = Re(C x) + D [u; 1], x' = diag(λ) x + B [u; 1]."""

    lam: np.ndarray        # (r,) complex, Im ≥ 0
    B: np.ndarray          # (r, d_in + 1) complex
    C: np.ndarray          # (H, r) complex (conjugate-pair columns already doubled)
    D: np.ndarray | None   # (H, d_in + 1) real, only for 'matchdc'

    @property
    def states(self) -> int:
        return len(self.lam)


def diagonalise(A: np.ndarray, B: np.ndarray, C: np.ndarray, D: np.ndarray | None = None,
                tol: float = 1e-9) -> DiagonalForm:
    """Back to S-Edge form: eigen-decompose A; keep Im λ > 0 of each conjugate pair with its C
    column doubled; real eigenvalues (real eigenvectors, so real B rows and C columns) each need a
    complex state, except that two real modes with the *same* pole share one: x = x₁ + i x₂ with
    B = b₁ + i b₂ and C = c₁ − i c₂ gives Re(C x) = c₁x₁ + c₂x₂ exactly."""
    lam, V = np.linalg.eig(A)
    scale = max(1.0, float(np.abs(lam).max(initial=0.0)))
    real = np.abs(lam.imag) <= tol * scale
    # A repeated real pole (a trained state with Im Λ = 0 exactly becomes a double real pole of the
    # real realisation) may come back from LAPACK as λ ± i·1e-17 with complex eigenvectors: replace
    # each cluster of equal real eigenvalues by a real basis of its eigenspace, the null space of
    # A − λI, so that its B rows and C columns are real and nothing is dropped below.
    V = V.astype(complex)
    order = sorted(np.flatnonzero(real), key=lambda i: lam[i].real)
    clusters: list[list[int]] = []
    for i in order:
        if clusters and abs(lam[i].real - lam[clusters[-1][-1]].real) <= tol * scale * 1e3:
            clusters[-1].append(i)
        else:
            clusters.append([i])
    for cl in clusters:
        value = float(np.mean(lam[cl].real))
        _, _, Vt = np.linalg.svd(A - value * np.eye(A.shape[0]))
        V[:, cl] = Vt[-len(cl):].T
        lam[cl] = value
    Bd = np.linalg.solve(V, B.astype(complex))
    Cd = C.astype(complex) @ V
    upper = ~real & (lam.imag > 0)
    if upper.sum() != (~real & (lam.imag < 0)).sum():
        raise ReductionError("reduced system is not real: unpaired complex eigenvalues")
    lams, Bs, Cs = list(lam[upper]), list(Bd[upper]), list((2 * Cd[:, upper]).T)
    r_idx = sorted(np.flatnonzero(real), key=lambda i: lam[i].real)
    i = 0
    while i < len(r_idx):
        a = r_idx[i]
        if i + 1 < len(r_idx) and abs(lam[r_idx[i + 1]].real - lam[a].real) <= tol * scale * 1e3:
            b = r_idx[i + 1]
            lams.append(lam[a].real + 0j)
            Bs.append(Bd[a].real + 1j * Bd[b].real)
            Cs.append(Cd[:, a].real - 1j * Cd[:, b].real)
            i += 2
        else:
            lams.append(lam[a].real + 0j)
            Bs.append(Bd[a].real + 0j)
            Cs.append(Cd[:, a].real + 0j)
            i += 1
    return DiagonalForm(np.array(lams), np.array(Bs).reshape(len(lams), B.shape[1]),
                        np.array(Cs).reshape(len(lams), C.shape[0]).T,
                        D if D is not None and np.any(D) else None)


def layer_from_diagonal(original: SEdgeLayer, form: DiagonalForm) -> SEdgeLayer:
    """A plain SEdgeLayer with Λ = λ, Δ = 1 (log_step = 0) at step scale 1, B, b from the reduced input matrix,
    C from the reduced output matrix; c, skip, activation, dropout and step scale unchanged.
    BatchNorm is folded into B and b, so the new layer carries none (an identity BN would re-normalise
    by batch statistics in train mode). It has the original's dtype (a float64 reduction of a float64
    layer is not rounded to float32)."""
    d_in, H, r = original.d_in, original.H, form.states
    new = SEdgeLayer(d_in, r, H, trainable_skip=original.skip is not None, batchnorm=False,
                     dropout=original.dropout)
    dtype = original.lambda_re.dtype
    new.to(dtype)
    t = lambda x: torch.as_tensor(np.ascontiguousarray(x), dtype=dtype)  # noqa: E731
    with torch.no_grad():
        new.lambda_re.copy_(t(form.lam.real))
        new.lambda_im.copy_(t(form.lam.imag))
        new.log_step.zero_()
        new.B_re.copy_(t(form.B[:, :d_in].real))
        new.B_im.copy_(t(form.B[:, :d_in].imag))
        new.b_re.copy_(t(form.B[:, d_in].real))
        new.b_im.copy_(t(form.B[:, d_in].imag))
        new.C_re.copy_(t(form.C.real))
        new.C_im.copy_(t(form.C.imag))
        new.c_re.copy_(original.c_re)
        new.c_im.copy_(original.c_im)
        if original.skip is not None:
            new.skip.weight.copy_(original.skip.weight)
        if form.D is not None:
            new.feedthrough = torch.nn.Parameter(t(form.D))
    new.to(dtype)
    new.decimate, new.delta_scale = original.decimate, original.delta_scale
    return new.train(original.training)


METHODS = ("truncate", "matchdc", "data")   # balred truncate / matchdc; data-weighted truncation


def reduce_layer(layer: SEdgeLayer, order: int, method: str = "truncate",
                 gramian: np.ndarray | None = None) -> SEdgeLayer:
    """Balanced truncation of ``layer`` to real order ``order`` (1 … 2P), as a new SEdgeLayer.

    ``method`` "truncate" or "matchdc": python-control's ``balred``; "data": :func:`data_weighted_truncation`
    with ``gramian`` = :func:`state_covariance` of the layer's inputs.
    The new layer has #complex pairs + #real eigenvalues complex states, less one for every two real
    eigenvalues that share a pole (≥ order/2)."""
    return reduce_layer_orders(layer, [order], method, gramian)[0]


def reduce_layer_orders(layer: SEdgeLayer, orders: list[int], method: str = "truncate",
                        gramian: np.ndarray | None = None) -> list[SEdgeLayer]:
    """Several truncations of the *same* original balanced realisation."""
    if method not in METHODS:
        raise ReductionError(f"method must be one of {METHODS}, got {method!r}")
    system = layer_system(layer)
    for k in orders:
        if not 1 <= k <= system.order:
            raise ReductionError(f"order {k} out of range: the layer's real realisation has order {system.order} "
                                 f"(P = {layer.P} complex states); choose 1 … {system.order}")
    if method == "data":
        if gramian is None:
            raise ReductionError("method 'data' needs the layer's data Gramian (state_covariance of its inputs)")
        _, systems = data_weighted_truncation(system, gramian, list(orders))
        return [layer_from_diagonal(layer, diagonalise(*abc)) for abc in systems]
    sys = system.to_control()
    reduced = balanced_truncation(sys, list(orders), method)
    if not isinstance(reduced, list):
        reduced = [reduced]
    out = []
    for rs in reduced:
        D = np.asarray(rs.D) if method == "matchdc" else None
        form = diagonalise(np.asarray(rs.A), np.asarray(rs.B), np.asarray(rs.C), D)
        out.append(layer_from_diagonal(layer, form))
    return out


def reduce_model(model, orders: list[int | None], method: str = "truncate",
                 gramians: list[np.ndarray] | None = None):
    """A copy of ``model`` whose layer ℓ is reduced to real order orders[ℓ] (None keeps it); method
    "data" takes ``gramians`` = :func:`state_covariances` of the model."""
    if len(orders) != len(model.layers):
        raise ReductionError(f"{len(orders)} orders given for a model with {len(model.layers)} layers")
    if method == "data" and (gramians is None or len(gramians) != len(model.layers)):
        raise ReductionError("method 'data' needs one data Gramian per layer (state_covariances of the model)")
    new = copy.deepcopy(model)
    for i, k in enumerate(orders):
        if k is not None:
            new.layers[i] = reduce_layer(model.layers[i], k, method, gramians[i] if gramians else None)
    new.cfg = type(model.cfg).from_dict({**model.cfg.to_dict(), "states": tuple(l.P for l in new.layers)})
    return new


def system_frequency_response(A: np.ndarray, B: np.ndarray, C: np.ndarray, w: np.ndarray,
                              D: np.ndarray | None = None) -> np.ndarray:
    """G(iω) = C (iωI − A)⁻¹ B + D of a continuous system at the frequencies ``w`` (rad per sample),
    through the eigen-decomposition A = V diag(λ) V⁻¹ (every system here is diagonalisable):
    G(iω) = (C V) diag(1/(iω − λ)) (V⁻¹ B). Shape (len(w), outputs, inputs)."""
    lam, V = np.linalg.eig(A)
    CV, VB = C @ V, np.linalg.solve(V, B.astype(complex))
    G = np.einsum("hp,fp,pd->fhd", CV, 1.0 / (1j * np.asarray(w)[:, None] - lam[None, :]), VB)
    return G + (D if D is not None else 0)


def truncation_errors(layer: SEdgeLayer, orders: list[int], w: np.ndarray | None = None) -> list[dict]:
    """For each real order k: the measured ‖G − G_k‖∞ (max over the grid ``w`` of the largest singular
    value) next to the balanced-truncation bound 2·Σ_{i>k} σ_i (SPEC §7)."""
    system = layer_system(layer)
    hsv = hankel_singular_values(system)
    w = np.concatenate([[0.0], np.logspace(-4, 1.5, 1500)]) if w is None else w
    G = system_frequency_response(system.A, system.B, system.C, w)
    reduced = balanced_truncation(system.to_control(), list(orders))
    reduced = reduced if isinstance(reduced, list) else [reduced]
    out = []
    for k, rs in zip(orders, reduced):
        Gk = system_frequency_response(np.asarray(rs.A), np.asarray(rs.B), np.asarray(rs.C), w)
        err = float(np.linalg.norm(G - Gk, ord=2, axis=(1, 2)).max())
        out.append({"order": k, "measured": err, "bound": float(2 * hsv[k:].sum())})
    return out
