r"""The papers' measures on weight snapshots of any network.

Every function takes plain arrays or anything with ``__array__`` (torch tensors are
detached and moved to the CPU first), checks shapes, and raises ``ValueError`` naming the
argument it cannot use. Nothing here needs a model of the package: these are the measures
a user applies to their own training run, defined as in the package's analyses of its
exact trajectories (and tested to give the same numbers on them).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def as_array(name: str, value, ndim=None) -> np.ndarray:
    """A finite float64 array from ``value`` (numpy, list, torch tensor, ...)."""
    if hasattr(value, "detach") and callable(value.detach):  # torch: no grad, on the CPU
        value = value.detach()
        if hasattr(value, "cpu"):
            value = value.cpu()
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of real numbers, got {type(value).__name__}"
                         ) from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


# ---- relative distance [LX] ---------------------------------------------------------------

def rd(W0, Wt) -> float:
    r"""Relative distance :math:`\mathrm{RD} = \lVert W_t - W_0\rVert_F/\lVert W_0\rVert_F`.

    Luo, Xu, Ma, Zhang, JMLR 22 (2021) 71: over all input weights of a two-layer network
    (bias column included). ``W0`` and ``Wt`` must have the same shape.
    """
    a, b = as_array("W0", W0), as_array("Wt", Wt)
    if a.shape != b.shape:
        raise ValueError(f"Wt must have the shape of W0 {a.shape}, got {b.shape}")
    n0 = np.linalg.norm(a)
    if n0 == 0:
        raise ValueError("W0 must not be zero (RD divides by its norm)")
    return float(np.linalg.norm(b - a) / n0)


class Slope(NamedTuple):
    slope: float
    intercept: float
    r2: float


def rd_slope(widths, rds) -> Slope:
    r"""Least-squares slope of :math:`\log\mathrm{RD}` against :math:`\log m` [LX].

    ``rds``: one RD per width, or an array (widths × seeds), averaged geometrically over
    seeds first. Slope < 0: linear regime (RD → 0 with width); > 0: condensed.
    """
    m = as_array("widths", widths, ndim=1)
    r = as_array("rds", rds, ndim=(1, 2))
    if r.shape[0] != m.size:
        raise ValueError(f"rds must have one row per width ({m.size}), got shape {r.shape}")
    if m.size < 2 or np.any(m <= 0) or len(set(m.tolist())) < 2:
        raise ValueError(f"widths must hold at least two distinct positive widths, got {m!r}")
    if np.any(r <= 0):
        raise ValueError("rds must be positive (their logarithm is fitted)")
    y = np.log(r) if r.ndim == 1 else np.mean(np.log(r), axis=1)
    x = np.log(m)
    A = np.stack([x, np.ones_like(x)], axis=1)
    (slope, intercept), *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ np.array([slope, intercept])
    ss = float(np.sum((y - y.mean()) ** 2))
    return Slope(float(slope), float(intercept),
                 1.0 - float(np.sum(resid**2)) / ss if ss > 0 else 1.0)


# ---- condensation [ZX] --------------------------------------------------------------------

class Condensation(NamedTuple):
    """``cosine``: ordered cosine matrix of the kept neurons; ``kept``: their indices in
    that order; ``directions``: number of condensed directions."""

    cosine: np.ndarray
    kept: np.ndarray
    directions: int


def condensation(W, cos_threshold: float = 0.95, rel_tol: float = 1e-3,
                 signed: bool = True) -> Condensation:
    r"""Cosine-similarity matrix of neurons' input weights and the number of condensed
    directions (Zhou et al., NeurIPS 2022).

    ``W``: (neurons, inputs), one row per neuron (bias included if the network has one).
    Rows shorter than ``rel_tol`` times the longest are dropped (their direction is noise).
    :math:`C_{kl} = \langle\hat w_k,\hat w_l\rangle`, ordered by the entries of C's top
    eigenvector. Clustering (threshold, greedy in that order): a direction joins the
    first cluster whose representative has cosine ≥ ``cos_threshold`` with it
    (:math:`|\cos|` when ``signed=False``, so that :math:`\pm w` count as one line), else
    starts a new one; ``directions`` is the number of clusters.
    """
    W = as_array("W", W, ndim=2)
    if not 0 < cos_threshold <= 1:
        raise ValueError(f"cos_threshold must be in (0, 1], got {cos_threshold!r}")
    if not 0 <= rel_tol < 1:
        raise ValueError(f"rel_tol must be in [0, 1), got {rel_tol!r}")
    norms = np.linalg.norm(W, axis=1)
    if norms.max() == 0:
        return Condensation(np.zeros((0, 0)), np.zeros(0, int), 0)
    keep = np.flatnonzero(norms > rel_tol * norms.max())
    U = W[keep] / norms[keep, None]
    C = U @ U.T
    order = np.argsort(np.linalg.eigh(C)[1][:, -1], kind="stable")
    C = C[np.ix_(order, order)]
    reps: list = []
    for k in range(C.shape[0]):
        c = C[k, reps] if signed else np.abs(C[k, reps])
        if not reps or np.max(c) < cos_threshold:
            reps.append(k)
    return Condensation(C, keep[order], len(reps))


# ---- alignment, disalignment, rescaling [XZ] -----------------------------------------------

class Alignment(NamedTuple):
    """``zeta``: alignment cosine; ``product``: :math:`u\\cdot w` (vectors) or
    :math:`\\lVert uw\\rVert_F` (matrices); the norms and the balance
    :math:`\\lVert u\\rVert^2 - \\lVert w\\rVert^2`."""

    zeta: float
    product: float
    norm_u: float
    norm_w: float
    balance: float


def alignment(u, w) -> Alignment:
    r"""Alignment between consecutive layers (Xu & Ziyin, arXiv:2401.07085).

    Vectors (the readout ``u`` and input weights ``w`` of one hidden layer on 1-D data,
    both of the width): :math:`\zeta = u\cdot w/(\lVert u\rVert\lVert w\rVert)` (signed),
    product :math:`p = u\cdot w`. Matrices ``u`` (out × h, the later layer) and ``w``
    (h × in): :math:`\zeta = \lVert uw\rVert_F/(\lVert u\rVert_F\lVert w\rVert_F) \in [0, 1]`,
    the same as :math:`|\zeta|` at out = in = 1 (the project's extension to matrices).
    """
    u = as_array("u", u, ndim=(1, 2))
    w = as_array("w", w, ndim=(1, 2))
    if u.ndim != w.ndim:
        raise ValueError(f"u and w must both be vectors or both matrices, got shapes "
                         f"{u.shape} and {w.shape}")
    if u.ndim == 1:
        if u.shape != w.shape:
            raise ValueError(f"w must have the shape of u {u.shape}, got {w.shape}")
        prod = float(u @ w)
    else:
        if u.shape[1] != w.shape[0]:
            raise ValueError(f"u (out x h) and w (h x in) must share h: got shapes {u.shape} "
                             f"and {w.shape}")
        prod = float(np.linalg.norm(u @ w))
    nu, nw = float(np.linalg.norm(u)), float(np.linalg.norm(w))
    zeta = prod / (nu * nw) if nu > 0 and nw > 0 else float("nan")
    return Alignment(zeta, prod, nu, nw, nu**2 - nw**2)


def mechanism(before: Alignment, after: Alignment) -> tuple:
    r"""``(label, score)`` between two snapshots [XZ]: ``"disalignment"`` when
    :math:`|p|` decreased; else the score
    :math:`\alpha = \Delta\ln|\zeta|/\Delta\ln|p|` (growth carried by the alignment) with
    ``"alignment"`` for α > ½ and ``"rescaling"`` for α ≤ ½ (the package's rule,
    :func:`exactdyn.regimes.metrics.alignment_score`)."""
    for name, v in (("before", before), ("after", after)):
        if not isinstance(v, Alignment):
            raise ValueError(f"{name} must be an Alignment (from probe.alignment), got "
                             f"{type(v).__name__}")
    dp = np.log(abs(after.product)) - np.log(abs(before.product))
    if not dp > 0:
        return "disalignment", float("nan")
    score = float((np.log(abs(after.zeta)) - np.log(abs(before.zeta))) / dp)
    return ("alignment" if score > 0.5 else "rescaling"), score


# ---- early alignment [BF] -------------------------------------------------------------------

class ExtremalAlignment(NamedTuple):
    """``cos_to_D``: per kept neuron, :math:`\\cos(w_k, \\operatorname{sign}(a_k)D(w_k))`;
    ``nearest``: its largest cosine with an extremal vector attracting its sign;
    ``extremal``: those vectors (rows); ``kept``: the neurons' indices."""

    cos_to_D: np.ndarray
    nearest: np.ndarray
    extremal: np.ndarray
    kept: np.ndarray


def extremal_alignment(W, X, y, a=None, rel_tol: float = 1e-3, directions: int = 200,
                       seed: int = 0) -> ExtremalAlignment:
    r"""Neuron directions against the extremal vectors of the data (Boursier & Flammarion,
    arXiv:2401.10791), for a ReLU layer.

    With :math:`D(u) = \frac1n\sum_i y_i 1\{u\cdot x_i > 0\}x_i`, a neuron has aligned
    when :math:`w_k \parallel \operatorname{sign}(a_k) D(w_k)`; the extremal vectors (those
    u with :math:`D(u)\parallel u`) come from :func:`exactdyn.extremal_vectors`.
    ``W`` (neurons × inputs, bias column included in both ``W`` and ``X``), ``X``
    (samples × inputs), ``y`` (samples,), ``a`` the output weights (default all +1).
    """
    from ...closed_form.early_alignment import extremal_vectors
    from ...models.twolayer import TwoLayer

    W = as_array("W", W, ndim=2)
    X = as_array("X", X, ndim=2)
    y = as_array("y", y, ndim=1)
    if X.shape[1] != W.shape[1]:
        raise ValueError(f"X must have the {W.shape[1]} input columns of W, got shape {X.shape}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have one label per row of X ({X.shape[0]}), got {y.shape}")
    a = np.ones(W.shape[0]) if a is None else as_array("a", a, ndim=1)
    if a.shape[0] != W.shape[0]:
        raise ValueError(f"a must have one entry per neuron ({W.shape[0]}), got {a.shape}")
    norms = np.linalg.norm(W, axis=1)
    keep = np.flatnonzero(norms > rel_tol * norms.max()) if norms.max() > 0 else \
        np.zeros(0, int)
    U = W[keep] / norms[keep, None]
    D = ((U @ X.T > 0) * y[None, :]) @ X / X.shape[0]
    Ds = np.sign(a[keep])[:, None] * D
    nD = np.linalg.norm(Ds, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos_D = np.where(nD > 0, np.sum(U * Ds, axis=1) / np.where(nD > 0, nD, 1), np.nan)
    model = TwoLayer.from_init(np.ones(1), np.ones((1, X.shape[1])), X, y, activation="relu",
                               bias=False)
    ext = extremal_vectors(model, directions=directions, seed=seed)
    E = np.array([s.u for s in ext]).reshape(-1, X.shape[1])
    signs = np.array([s.attracts for s in ext])
    nearest = np.full(keep.size, np.nan)
    for i, k in enumerate(keep):
        mask = signs == np.sign(a[k])
        if np.any(mask):
            nearest[i] = float(np.max(E[mask] @ U[i]))
    return ExtremalAlignment(cos_D, nearest, E, keep)


# ---- products of linear maps [JG] ------------------------------------------------------------

def singular_values(mats) -> np.ndarray:
    r"""Singular values (descending) of :math:`A = W_L\cdots W_1`.

    ``mats``: one matrix, or the layers in forward order ``[W1, W2, ..., WL]`` (W1 applied
    first, so consecutive shapes must chain: ``W_{l+1}.shape[1] == W_l.shape[0]``).
    """
    if hasattr(mats, "__array__") or (isinstance(mats, (list, tuple)) and mats and
                                       np.ndim(mats[0]) == 1):
        layers = [as_array("mats", mats, ndim=2)]
    else:
        layers = [as_array(f"mats[{i}]", m, ndim=2) for i, m in enumerate(mats)]
        if not layers:
            raise ValueError("mats must hold at least one matrix")
    A = layers[0]
    for i, Wl in enumerate(layers[1:], start=1):
        if Wl.shape[1] != A.shape[0]:
            raise ValueError(f"mats[{i}] has {Wl.shape[1]} columns but the product so far has "
                             f"{A.shape[0]} rows (give the layers in forward order)")
        A = Wl @ A
    return np.linalg.svd(A, compute_uv=False)


def numerical_rank(svals, tol: float) -> np.ndarray:
    """Number of singular values above ``tol`` (last axis; a time series of them gives the
    rank over time)."""
    s = as_array("svals", svals)
    if not np.isfinite(tol) or tol <= 0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    return np.sum(s > tol, axis=-1)


class RankPlateau(NamedTuple):
    rank: int
    start: float
    end: float


def plateaus(t, svals, tol: float, min_length: int = 2) -> list:
    r"""Maximal time intervals of constant numerical rank of the product (saddle-to-saddle
    dynamics, Jacot et al. arXiv:2106.15933): ``t`` (T,), ``svals`` (T × r) singular values
    over time; intervals of fewer than ``min_length`` samples are skipped."""
    t = as_array("t", t, ndim=1)
    s = as_array("svals", svals, ndim=2)
    if s.shape[0] != t.size:
        raise ValueError(f"svals must have one row per time ({t.size}), got shape {s.shape}")
    r = numerical_rank(s, tol)
    out, start = [], 0
    for i in range(1, t.size + 1):
        if i == t.size or r[i] != r[start]:
            if i - start >= min_length:
                out.append(RankPlateau(int(r[start]), float(t[start]), float(t[i - 1])))
            start = i
    return out


# ---- kernels -------------------------------------------------------------------------------

def ntk_from_jacobian(J, rates=None) -> np.ndarray:
    r"""Empirical NTK :math:`K = J\,H\,J^\top` from the Jacobian ``J`` of the outputs
    (outputs × parameters), with optional per-parameter learning rates ``rates`` (H)."""
    J = as_array("J", J, ndim=2)
    if rates is None:
        return J @ J.T
    r = as_array("rates", rates, ndim=1)
    if r.shape[0] != J.shape[1]:
        raise ValueError(f"rates must have one entry per parameter ({J.shape[1]}), got "
                         f"{r.shape}")
    return (J * r[None, :]) @ J.T


def kernel_distance(K1, K2) -> float:
    r"""Kernel distance :math:`1 - \langle K_1, K_2\rangle_F/(\lVert K_1\rVert_F\lVert K_2\rVert_F)`
    (Fort et al. 2020): 0 for proportional kernels, up to 1 for orthogonal ones."""
    a = as_array("K1", K1, ndim=2)
    b = as_array("K2", K2, ndim=2)
    if a.shape != b.shape:
        raise ValueError(f"K2 must have the shape of K1 {a.shape}, got {b.shape}")
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"K1 must be square, got shape {a.shape}")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise ValueError("K1 and K2 must be nonzero")
    return float(1.0 - np.sum(a * b) / (na * nb))
