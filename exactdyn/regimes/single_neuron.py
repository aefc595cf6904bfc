r"""Regimes of Kunin et al.'s single neuron (MATH.md §2): ``"lazy"`` / ``"rich"``.

**These are the project's operational definitions.** Kunin, Raventós, Dominé, Chen,
Klindt, Saxe, Ganguli ("Get rich quick: exact solutions reveal how unbalanced
initializations promote rapid feature learning", NeurIPS 2024) describe the single neuron
:math:`f(x) = a\,w^\top x` by its conserved imbalance
:math:`\delta = \eta_w a^2 - \eta_a\lVert w\rVert^2`: :math:`\delta\to+\infty` lazy,
:math:`\delta\to-\infty` rescaling, :math:`\delta\approx 0` rich. The thresholds below are
ours. Read: the abstract ("a minimal model that transitions between lazy and rich
learning ... through a set of conserved quantities") and the authors' code
(github.com/allanraventos/getrichquick, ``single-neuron/Single_Neuron.ipynb``: the
conserved ``R = a^2 - |w|^2`` at unit rates, and a ``kernel_distance`` 1 − cos(K₀, K_t) of
Fort et al., where this module uses the relative Frobenius change); the body's regime
definitions were not (docs/papers/saxe_kunin.md).

The NTK on the training inputs :math:`X = \Sigma_{xx}^{1/2}` (the identity when whitened)
is

.. math:: \Theta = \eta_a\,(Xw)(Xw)^\top + \eta_w a^2\,X^\top X

(:math:`\nabla_a f = w^\top x`, :math:`\nabla_w f = a x`). The *measured* label is
``"lazy"`` if the kernel moves little over training,
:math:`\sup_t\lVert\Theta(t) - \Theta(0)\rVert_F/\lVert\Theta(0)\rVert_F <` ``kernel_tol``
(default 0.1), and ``"rich"`` otherwise. The evidence also holds the change of the
alignment :math:`\phi = \cos\angle(w, \beta^*)` and of the magnitude
:math:`\mu = a\lVert w\rVert` (feature learning moves :math:`\phi`; lazy and rescaling
dynamics mostly move :math:`\mu`), the sign of :math:`\delta`, and
:math:`\rho = \delta_B/s` with :math:`\delta_B = \delta/\sqrt{\eta_a\eta_w}` and
:math:`s = \lVert\beta^*\rVert` (:math:`\beta_{OLS}` for low-rank data).

The *predicted* label comes from :math:`\delta`, :math:`s`, the rates and the direction of
:math:`w_0` alone, in Kunin's small-init limit :math:`\mu_0 \to 0`: the init is
:math:`\eta_w a_0^2 = \max(\delta, 0)`, :math:`\eta_a\lVert w_0\rVert^2 = \max(-\delta, 0)`
(direction :math:`\hat w_0`), the end point (whitened, full rank) is
:math:`\eta_w a_\infty^2 = (\delta + D)/2`, :math:`w_\infty = \beta^*/a_\infty` with
:math:`D = \sqrt{\delta^2 + 4\eta_a\eta_w s^2}`, and the label is lazy when the kernel's
relative change between them is below ``kernel_tol``. For :math:`\delta > 0` this is
exactly

.. math:: \frac{\lVert\Delta\Theta\rVert_F}{\lVert\Theta_0\rVert_F}
          = \frac{\sqrt{1 + 4/\rho^2} - 1}{2}\sqrt{1 + 3/n},

(the path is monotone there, so it is also the sup), i.e. lazy iff
:math:`\rho > \rho_K = 2/\sqrt{(1 + 2\tau/\sqrt{1+3/n})^2 - 1}` (:math:`\tau` =
``kernel_tol``; :math:`\rho_K \approx 3.86` at :math:`n = 2`, :math:`\tau = 0.1`).
For :math:`\delta \ll -s` the early dynamics is a rescaling of :math:`a` at fixed
:math:`w` (reported as ``rescaling_limit``); with :math:`n \ge 2` and :math:`w_0` not
aligned with :math:`\beta^*`, :math:`w` must still rotate onto :math:`\beta^*` (slowly), so
the kernel :math:`\approx\eta_a ww^\top` changes by :math:`O(1)` and the label is rich.
A finite init :math:`\mu_0` comparable to :math:`s` starts nearer the end point than the
limit assumes, so the measured change can be smaller than predicted there.
"""

from __future__ import annotations

import numpy as np

from ..models.linear import SingleNeuron
from .base import Regime, Taxonomy, check_thresholds, register_taxonomy

LABELS = ("lazy", "rich")
SCORES = ("ntk_change", "ntk_change_predicted", "rho", "alignment_change",
          "magnitude_change")
THRESHOLDS = {"kernel_tol": 0.1}


def _thresholds(options) -> dict:
    return check_thresholds(options, THRESHOLDS, "single_neuron", bounded=())


def _sqrt_psd(m):
    vals, vecs = np.linalg.eigh(np.asarray(m, dtype=float))
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def single_neuron_ntk(a, w, eta_a=1.0, eta_w=1.0, sigma_xx=None) -> np.ndarray:
    r"""The NTK :math:`\Theta = \eta_a (Xw)(Xw)^\top + \eta_w a^2 X^\top X`,
    :math:`X = \Sigma_{xx}^{1/2}`, of :math:`f(x) = a\,w^\top x` [K].

    Parameters
    ----------
    a : float or array_like, shape (T,)
    w : array_like, shape (n,) or (T, n)
    eta_a, eta_w : float
    sigma_xx : array_like, optional (identity by default)

    Returns
    -------
    ndarray, shape (n, n) or (T, n, n)
    """
    a = np.asarray(a, dtype=float)
    w = np.asarray(w, dtype=float)
    n = w.shape[-1]
    X = np.eye(n) if sigma_xx is None else _sqrt_psd(sigma_xx)
    xw = w @ X  # X symmetric: (X w)^T = w^T X
    return (eta_a * xw[..., :, None] * xw[..., None, :]
            + eta_w * (a**2)[..., None, None] * (X @ X))


def kernel_movement(thetas) -> np.ndarray:
    r""":math:`\lVert\Theta(t) - \Theta(0)\rVert_F / \lVert\Theta(0)\rVert_F` for a stack of
    kernels ``thetas`` (time first); ``inf`` where :math:`\Theta(0) = 0` and it moves."""
    th = np.asarray(thetas, dtype=float)
    d = np.linalg.norm((th - th[0]).reshape(len(th), -1), axis=1)
    n0 = np.linalg.norm(th[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d == 0, 0.0, d / n0)


def kernel_distance(thetas) -> np.ndarray:
    r"""Kunin et al.'s kernel distance, as their code measures it:

    .. math:: S(t) = 1 - \frac{\langle\Theta(0), \Theta(t)\rangle_F}
              {\lVert\Theta(0)\rVert_F\,\lVert\Theta(t)\rVert_F}

    (Fort et al.'s kernel distance; github.com/allanraventos/getrichquick,
    ``single-neuron/Single_Neuron.ipynb``, ``kernel_distance``, for
    :math:`\Theta = a^2 I + ww^\top` on 2-D whitened inputs). It sees only the kernel's
    *shape*: a kernel that grows without turning has S = 0. The taxonomy's label uses
    :func:`kernel_movement` (ours), which also sees its scale. The stored notebook's second
    norm reads ``2*a_t**4 + 2*a0**2*(w1_t**2 + w2_t**2) + ...`` with ``a0`` where
    :math:`\lVert\Theta(t)\rVert_F^2 = 2a_t^4 + 2a_t^2\lVert w_t\rVert^2 + \lVert w_t
    \rVert^4` needs ``a_t``; this function uses the norm (docs/papers/saxe_kunin.md).
    ``thetas``: a stack of kernels, time first. NaN where a kernel vanishes."""
    th = np.asarray(thetas, dtype=float)
    flat = th.reshape(len(th), -1)
    n = np.linalg.norm(flat, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - (flat @ flat[0]) / (n * n[0])


def kunin_rho(delta, s, eta_a=1.0, eta_w=1.0):
    r""":math:`\rho = \delta/(\sqrt{\eta_a\eta_w}\,s)`: the imbalance in units of the target
    (MATH.md §2); :math:`\pm\infty` for :math:`s = 0`, :math:`\delta \ne 0`."""
    delta, s = np.asarray(delta, float), np.asarray(s, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(delta == 0, 0.0, delta / (np.sqrt(eta_a * eta_w) * s))


def lazy_threshold(n: int, kernel_tol: float = 0.1) -> float:
    r""":math:`\rho_K = 2/\sqrt{(1 + 2\tau/\sqrt{1+3/n})^2 - 1}`: above it (:math:`\delta > 0`,
    small init) the NTK changes by less than :math:`\tau` = ``kernel_tol``."""
    c = np.sqrt(1 + 3 / n)
    return float(2 / np.sqrt((1 + 2 * kernel_tol / c) ** 2 - 1))


def small_init_ntk_change(delta, beta, w_dir, eta_a=1.0, eta_w=1.0) -> float:
    r"""Relative NTK change from the small-init limit to the end point (whitened, module
    docstring): the theory behind the *predicted* label."""
    beta = np.asarray(beta, float)
    n = beta.size
    s = float(np.linalg.norm(beta))
    u = np.asarray(w_dir, float)
    nu = np.linalg.norm(u)
    u = u / nu if nu > 0 else np.eye(n)[0]
    a0 = np.sqrt(max(delta, 0.0) / eta_w)
    w0 = u * np.sqrt(max(-delta, 0.0) / eta_a)
    D = np.hypot(delta, 2 * np.sqrt(eta_a * eta_w) * s)
    a2 = (delta + D) / (2 * eta_w) if delta >= 0 else 2 * eta_a * s * s / (D - delta)
    if a2 <= 0:
        return 0.0
    a_inf = np.sqrt(a2)
    th = single_neuron_ntk(np.array([a0, a_inf]), np.stack([w0, beta / a_inf]), eta_a, eta_w)
    return float(kernel_movement(th)[-1])


def predict(model: SingleNeuron, kernel_tol: float = 0.1) -> str:
    """Predicted label of a :class:`~exactdyn.SingleNeuron` (module docstring)."""
    _, w0 = model.init_aw()
    beta = model.w_star()[0]
    ch = small_init_ntk_change(model.delta, beta, w0, model.eta_a, model.eta_w)
    return "lazy" if ch < kernel_tol else "rich"


# ---- model and trajectory ----------------------------------------------------------------

def _accepts(obj) -> bool:
    if isinstance(obj, SingleNeuron):
        return True
    return getattr(obj, "meta", None) is not None and obj.meta.get("model") == "single_neuron"


def model_from_params(params: dict) -> SingleNeuron:
    """Rebuild the :class:`SingleNeuron` of a trajectory's ``meta["params"]``."""
    p = dict(params)
    if "a0" in p:
        return SingleNeuron.from_init(p["a0"], p["w0"], beta=p["beta"],
                                      sigma_xx=p.get("sigma_xx"), eta_a=p["eta_a"],
                                      eta_w=p["eta_w"])
    return SingleNeuron(in_dim=p["in_dim"], delta=p["delta"], beta=p["beta"],
                        sigma_xx=p.get("sigma_xx"), eta_a=p["eta_a"], eta_w=p["eta_w"],
                        product=p["product"], seed=p["seed"])


def horizon_trajectory(model: SingleNeuron, points: int = 300, rel_loss: float = 1e-8,
                       max_doublings: int = 16):
    r"""The closed-form trajectory over a horizon long enough to converge: start at
    :math:`T = (2 + \ln(1 + s/\mu_0))/(\sqrt{\eta_a\eta_w}\,D_B/2)`-ish and double
    :math:`T` until the loss is below ``rel_loss`` times its initial value."""
    from ..closed_form import exact

    a0, w0 = model.init_aw()
    s = float(np.linalg.norm(model.w_star()))
    r = np.sqrt(model.eta_a * model.eta_w)
    mu0 = abs(a0) * float(np.linalg.norm(w0))
    D = max(float(np.hypot(model.delta / r, 2 * s)), 1e-12)
    T = (2 + np.log1p(s / max(mu0, 1e-300))) / (r * D / 2)
    for _ in range(max_doublings):
        t = np.unique(np.r_[0.0, np.geomspace(T * 1e-4, T, points // 2),
                            np.linspace(0, T, points // 2)])
        traj = exact(model, t)
        loss = np.asarray(traj["loss"], float)
        if loss[-1] <= rel_loss * max(loss[0], 1e-300):
            break
        T *= 2
    return traj


def classify_single_neuron(obj, **options) -> Regime:
    """Classify a :class:`~exactdyn.SingleNeuron` (from its closed-form trajectory over a
    converging horizon) or a trajectory of one (from its samples)."""
    th = _thresholds(options)
    if isinstance(obj, SingleNeuron):
        model, traj, source = obj, horizon_trajectory(obj), "exact"
    else:
        model = model_from_params(obj.meta["params"])
        traj = obj.as_float() if obj.precision is not None else obj
        source = "trajectory"
    if len(traj.t) < 2:
        raise ValueError("a trajectory needs at least 2 times to be classified; "
                         f"got {len(traj.t)}")
    a = np.asarray(traj["a"], float)
    w = np.asarray(traj["w"], float)
    mv = kernel_movement(single_neuron_ntk(a, w, model.eta_a, model.eta_w, model.sigma_xx))
    change = float(np.max(mv))
    label = "lazy" if change < th["kernel_tol"] else "rich"
    beta = model.w_star()[0]
    s = float(np.linalg.norm(beta))
    nb = s if s > 0 else 1.0
    nw = np.linalg.norm(w, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.where(nw > 0, (w @ beta) / (nw * nb), np.nan)
        mu = np.abs(a) * nw
    _, w0 = model.init_aw()
    rho = float(kunin_rho(model.delta, s, model.eta_a, model.eta_w))
    rho_k = lazy_threshold(model.in_dim, th["kernel_tol"])
    pred_change = small_init_ntk_change(model.delta, beta, w0, model.eta_a, model.eta_w)
    ev = {"ntk_change": change, "ntk_change_end": float(mv[-1]),
          "ntk_change_predicted": pred_change,
          "delta": float(model.delta), "delta_sign": int(np.sign(model.delta)),
          "s": s, "rho": rho, "rho_lazy": rho_k,
          "rescaling_limit": bool(rho < -rho_k),
          "phi0": float(phi[0]), "phi_end": float(phi[-1]),
          "alignment_change": float(abs(phi[-1] - phi[0])),
          "magnitude_change": float(abs(np.log(mu[-1] / mu[0]))) if mu[0] > 0 and mu[-1] > 0
          else float("inf"),
          "loss_end": float(np.asarray(traj["loss"], float)[-1]),
          "t_end": float(traj.t[-1]), "source": source, **th}
    return Regime(label=label, taxonomy="single_neuron", evidence=ev,
                  predicted="lazy" if pred_change < th["kernel_tol"] else "rich")


# ---- grid (vectorized phase diagrams) ----------------------------------------------------
#
# Whitened inputs reduce the flow to three numbers per cell. In the balanced variables of
# :mod:`exactdyn.closed_form.linear` (unit rates, :math:`\tau = \sqrt{\eta_a\eta_w}\,t`),
# :math:`B_1 = (\eta_a/\eta_w)^{1/4}w`, :math:`B_2 = (\eta_w/\eta_a)^{1/4}a`, the state is
# :math:`Q = (x_1, x_2, y)` with :math:`x_1 = B_1\cdot\hat\beta`, :math:`x_2` the part of
# :math:`B_1` along :math:`w_0`'s component orthogonal to :math:`\beta^*` (w never leaves
# their plane), :math:`y = B_2`, and :math:`Q(\tau) = e^{F\tau}Q_0/\sqrt{1 + Q_0^\top
# G(\tau)Q_0}` with :math:`F = \begin{pmatrix}-\lambda/2 & 0 & s\\ 0 & -\lambda/2 & 0\\
# s & 0 & \lambda/2\end{pmatrix}`, :math:`\lambda = \delta/\sqrt{\eta_a\eta_w}`: the
# eigenvalues are :math:`\pm D/2` (:math:`D = \sqrt{\lambda^2 + 4s^2}`) and
# :math:`-\lambda/2`, the eigenvectors are explicit, and every exponential is divided by
# :math:`e^{D\tau/2}` so none exceeds 1. The NTK is :math:`\sqrt{\eta_a\eta_w}\,(B_1B_1^\top
# + B_2^2 I)`, so its relative change needs only :math:`(x_1, x_2, y)`.

#: Hyperparameters a SingleNeuron grid may sweep (``beta`` and ``sigma_xx`` may be fixed).
GRID_PARAMS = ("in_dim", "delta", "eta_a", "eta_w", "product", "seed")
#: The normalized sample times of :func:`horizon_trajectory` (times T).
_POINTS = 300


def _unit_times(points: int = _POINTS) -> np.ndarray:
    return np.unique(np.r_[0.0, np.geomspace(1e-4, 1.0, points // 2),
                           np.linspace(0, 1.0, points // 2)])


def _ntk_move(x1, x2, y, x10, x20, y0, n, squared=False):
    r""":math:`\lVert\Theta - \Theta_0\rVert_F/\lVert\Theta_0\rVert_F` for
    :math:`\Theta = B_1B_1^\top + y^2 I_n`, :math:`B_1 = (x_1, x_2)` in the plane of
    :math:`\beta^*` and :math:`w_0`; written as sums of squares (no cancellation:
    :math:`B_1B_1^\top - B_{10}B_{10}^\top = \tfrac12(pq^\top + qp^\top)`,
    :math:`p = B_1 - B_{10}`, :math:`q = B_1 + B_{10}`). ``squared``: its square."""
    x1, x2, y = (np.asarray(a, float) for a in (x1, x2, y))
    p1, q1 = x1 - x10, x1 + x10
    p2, q2 = x2 - x20, x2 + x20
    s12 = p1 * q2
    s12 += p2 * q1
    s12 *= s12
    s12 *= 0.5                            # 2 s12^2 with s12 = (p1 q2 + p2 q1)/2
    s11 = np.multiply(p1, q1, out=p1)
    s22 = np.multiply(p2, q2, out=p2)
    c = y - y0
    c *= y + y0
    s11 += c
    s11 *= s11
    s22 += c
    s22 *= s22
    d2 = s11
    d2 += s12
    n = np.asarray(n, float)
    if np.any(n >= 2):
        d2 += np.where(n >= 2, s22, 0.0)
        c *= c
        c *= np.maximum(n - 2, 0)
        d2 += c
    b0 = x10**2 + x20**2
    n2 = b0**2 + 2 * b0 * y0**2 + n * y0**4
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(d2 == 0, 0.0, d2 / n2)
    return out if squared else np.sqrt(out)


def _eigvec(lam, s):
    """The unit eigenvector ``(v1, v2)`` of +D/2 in the (x1, y) plane, without cancellation
    (``(1, 0)`` where D = 0)."""
    D = np.hypot(lam, 2 * s)
    big = np.where(lam >= 0, lam + D, D - lam)
    v1 = np.where(lam >= 0, 2 * s, big)
    v2 = np.where(lam >= 0, big, 2 * s)
    nv = np.hypot(v1, v2)
    ok = nv > 0
    nv = np.where(ok, nv, 1.0)
    return D, np.where(ok, v1 / nv, 1.0), v2 / nv


def _riccati3(lam, s, x10, x20, y0, tau):
    """``(x1, x2, y)`` at ``tau`` (arrays broadcast) from the explicit eigenbasis of F."""
    args = np.broadcast_arrays(*(np.asarray(a, float) for a in (lam, s, x10, x20, y0, tau)))
    shape = args[0].shape
    return tuple(r.reshape(shape) for r in _riccati3_cells(*(a.ravel() for a in args)))


def _riccati3_cells(lam, s, x10, x20, y0, tau):
    """:func:`_riccati3` with per-cell arrays of shape (c, 1) (or scalars) and times
    ``tau`` of shape (c, k): the per-cell work once, the per-time work in place."""
    D, v1, v2 = _eigvec(lam, s)
    zp = v1 * x10 + v2 * y0
    zm = -v2 * x10 + v1 * y0
    al = np.abs(lam)
    tiny = 1e-290  # below: (1 - e^{-x tau})/x = tau to float64 precision (no 1/x overflow)
    with np.errstate(divide="ignore", over="ignore"):
        inv_d = np.where(D > tiny, 1 / D, 0.0)
        inv_al = np.where(al > tiny, 1 / al, 0.0)
    kh = (lam + D) / 2  # >= 0
    ke = np.where(lam >= 0, D, lam + D)
    zp2, zm2, x202 = zp * zp, zm * zm, x20 * x20
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        em = np.multiply(-D, tau)
        np.expm1(em, out=em)              # expm1(-D tau)
        e1 = em + 1.0                     # exp(-D tau)
        gp = np.multiply(em, -inv_d)      # (1 - e^{-D tau})/D
        if np.any(D <= tiny):
            gp = np.where(D > tiny, gp, tau)
        half = np.multiply(-kh, tau)
        np.exp(half, out=half)            # exp(-(lam + D) tau/2)
        g2 = np.multiply(-ke, tau)
        np.exp(g2, out=g2)                # e^{-D tau} (lam >= 0) or e^{-(lam+D) tau}
        em2 = np.multiply(-al, tau)
        np.expm1(em2, out=em2)
        np.multiply(em2, -inv_al, out=em2)
        if np.any(al <= tiny):
            em2 = np.where(al > tiny, em2, tau)
        g2 *= em2
        g2 *= x202
        n2 = np.multiply(e1, zm2)
        n2 += zp2
        n2 *= gp
        n2 += e1
        n2 += g2
        np.sqrt(n2, out=n2)
        np.divide(1.0, n2, out=n2)        # 1/N
        if not np.all(np.isfinite(n2)):   # N underflowed: stuck at the saddle, Q -> 0
            n2[~np.isfinite(n2)] = 0.0
        qp = np.multiply(n2, zp)
        qm = np.multiply(e1, n2)
        qm *= zm
        x2 = np.multiply(half, n2)
        x2 *= x20
    x1 = v1 * qp
    x1 -= v2 * qm
    y = v2 * qp
    y += v1 * qm
    return x1, x2, y


def _direction_cos(in_dim, seed, beta_hat):
    """cos of the angle between the random direction of ``w0`` and beta (per pair)."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=in_dim)
    d /= np.linalg.norm(d)
    c = float(d @ beta_hat)
    perp = d - c * beta_hat
    return c, float(np.linalg.norm(perp))


def grid_single_neuron(values: dict, base=None, **options):
    r"""Measured and predicted labels and scores of :class:`~exactdyn.SingleNeuron` on a
    grid, all cells at once (whitened inputs).

    The same definitions as :func:`classify_single_neuron` on a model: the kernel's sup
    relative change over the closed-form trajectory sampled at the times of
    :func:`horizon_trajectory` (the horizon doubled per cell until the loss is below
    ``1e-8`` of its start), every time of every cell evaluated as array expressions of
    the explicit solution above. The only loop is over distinct ``(in_dim, seed)`` pairs
    (the direction of :math:`w_0`) and over chunks of cells (memory).
    """
    th = _thresholds(options)
    sxx, beta = values.get("sigma_xx"), values.get("beta")
    scal = {k: np.asarray(x, dtype=float) for k, x in values.items()
            if k not in ("beta", "sigma_xx")}
    shape = np.broadcast(*scal.values()).shape
    v = {k: np.broadcast_to(x, shape) for k, x in scal.items()}
    n_all = np.asarray(v["in_dim"], float)
    if sxx is not None and not np.array_equal(np.asarray(sxx, float),
                                              np.eye(np.asarray(sxx).shape[0])):
        raise ValueError("the closed-form SingleNeuron diagram needs whitened inputs "
                         "(sigma_xx = None); use method='trajectory'")
    if not np.all(np.isfinite(v["seed"])):
        raise ValueError("the closed-form SingleNeuron diagram needs an integer seed "
                         "(the direction of w0); got seed = None")
    dims = np.unique(n_all)
    if beta is not None and dims.size > 1:
        raise ValueError("in_dim cannot vary with a fixed beta (its length is in_dim)")
    seeds = v["seed"]
    pairs = np.stack([n_all.astype(np.int64).ravel(),
                      np.asarray(seeds, dtype=np.int64).ravel()], axis=1)
    uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
    cs = []
    for nd, sd in uniq:
        b = np.eye(int(nd))[0] if beta is None else np.asarray(beta, float)
        s = float(np.linalg.norm(b))
        bh = b / s if s > 0 else np.eye(int(nd))[0]
        cs.append((*_direction_cos(int(nd), int(sd), bh), s))
    cs = np.asarray(cs)[np.asarray(inverse).ravel()]
    c0, c_perp, s = (cs[:, i].reshape(shape) for i in range(3))
    delta, ea, ew = (np.asarray(v[k], float) for k in ("delta", "eta_a", "eta_w"))
    mu0 = np.asarray(v["product"], float)
    rate = np.sqrt(ea * ew)
    lam = delta / rate
    # a0 of the model (balanced root of eta_w a^4 - delta a^2 - eta_a mu0^2 = 0), |w0|
    root = np.hypot(delta, 2 * rate * mu0)
    with np.errstate(divide="ignore", invalid="ignore"):
        a2 = np.where(delta >= 0, (delta + root) / (2 * ew), 2 * ea * mu0**2 / (root - delta))
    a0 = np.sqrt(a2)
    nw0 = mu0 / a0
    r4 = (ea / ew) ** 0.25
    y0, b0 = a0 / r4, nw0 * r4  # B2(0), |B1(0)|
    x10, x20 = b0 * c0, b0 * c_perp
    # horizon_trajectory's T, doubled until the loss at T is below 1e-8 of its start
    Dh = np.maximum(np.hypot(lam, 2 * s), 1e-12)
    T = (2 + np.log1p(s / np.maximum(mu0, 1e-300))) / (rate * Dh / 2)
    loss0 = 0.5 * ((a0 * nw0 * c0 - s) ** 2 + (a0 * nw0 * c_perp) ** 2)

    def loss_at(tau):
        x1, x2, y = _riccati3(lam, s, x10, x20, y0, tau)
        return 0.5 * ((y * x1 - s) ** 2 + (y * x2) ** 2)

    done = np.zeros(shape, dtype=bool)
    for _ in range(15):
        done |= loss_at(T * rate) <= 1e-8 * np.maximum(loss0, 1e-300)
        if done.all():
            break
        T = np.where(done, T, 2 * T)
    u = _unit_times()
    flat = {k: np.ravel(a) for k, a in dict(lam=lam, s=s, x10=x10, x20=x20, y0=y0,
                                            tau=T * rate, n=n_all).items()}
    N = flat["lam"].size
    change, end = np.empty(N), np.empty(N)
    x1e, x2e, ye = np.empty(N), np.empty(N), np.empty(N)
    chunk = max(1, 60_000 // u.size)
    for lo in range(0, N, chunk):
        sl = slice(lo, lo + chunk)
        c = {k: a[sl, None] for k, a in flat.items()}
        x1, x2, y = _riccati3_cells(c["lam"], c["s"], c["x10"], c["x20"], c["y0"],
                                    c["tau"] * u)
        mv = _ntk_move(x1, x2, y, c["x10"], c["x20"], c["y0"], c["n"], squared=True)
        change[sl], end[sl] = np.sqrt(mv.max(axis=1)), np.sqrt(mv[:, -1])
        x1e[sl], x2e[sl], ye[sl] = x1[:, -1], x2[:, -1], y[:, -1]
    change, end = change.reshape(shape), end.reshape(shape)
    x1e, x2e, ye = x1e.reshape(shape), x2e.reshape(shape), ye.reshape(shape)
    labels = np.where(change < th["kernel_tol"], "lazy", "rich").astype("<U4")
    # predicted: the small-init limit to the end point (small_init_ntk_change)
    Dl = np.hypot(lam, 2 * s)
    with np.errstate(divide="ignore", invalid="ignore"):
        yinf2 = np.where(lam >= 0, (lam + Dl) / 2, 2 * s * s / (Dl - lam))
        yinf = np.sqrt(yinf2)
        pred_change = _ntk_move(np.where(yinf2 > 0, s / yinf, 0.0), 0.0, yinf,
                                c0 * np.sqrt(np.maximum(-lam, 0)),
                                c_perp * np.sqrt(np.maximum(-lam, 0)),
                                np.sqrt(np.maximum(lam, 0)), n_all)
    pred_change = np.where(yinf2 > 0, pred_change, 0.0)
    predicted = np.where(pred_change < th["kernel_tol"], "lazy", "rich").astype("<U4")
    nb = np.where(s > 0, s, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bw0, bwe = np.hypot(x10, x20), np.hypot(x1e, x2e)
        phi0 = np.where(bw0 > 0, x10 * s / (bw0 * nb), np.nan)
        phie = np.where(bwe > 0, x1e * s / (bwe * nb), np.nan)
        mue = np.abs(ye) * bwe  # a |w| = B2 |B1|
        mu_0 = np.abs(y0) * bw0
        mag = np.where((mu_0 > 0) & (mue > 0), np.abs(np.log(mue / mu_0)), np.inf)
    rho = kunin_rho(delta, s, ea, ew)
    scores = {"ntk_change": change, "ntk_change_end": end,
              "ntk_change_predicted": pred_change, "rho": rho,
              "rho_lazy": np.select([n_all == nd for nd in dims],
                                    [lazy_threshold(int(nd), th["kernel_tol"])
                                     for nd in dims]),
              "delta": delta, "delta_sign": np.sign(delta), "s": s,
              "phi0": phi0, "phi_end": phie, "alignment_change": np.abs(phie - phi0),
              "magnitude_change": mag,
              "loss_end": 0.5 * ((ye * x1e - s) ** 2 + (ye * x2e) ** 2), "t_end": T}
    return labels, predicted, scores


def grid_applies(params: dict) -> str:
    """'' when the vectorized grid covers these hyperparameters (whitened inputs, an
    integer seed), else why not (``method="auto"`` then classifies cell by cell)."""
    sxx = params.get("sigma_xx")
    if sxx is not None and not np.array_equal(np.asarray(sxx, float),
                                              np.eye(np.asarray(sxx).shape[0])):
        return ("the closed-form SingleNeuron diagram needs whitened inputs "
                "(sigma_xx = None); use method='trajectory'")
    if params.get("seed", 0) is None:
        return ("the closed-form SingleNeuron diagram needs an integer seed (the direction "
                "of w0); got seed = None")
    return ""


SINGLE_NEURON = register_taxonomy(Taxonomy(
    name="single_neuron", labels=LABELS, accepts=_accepts, classify=classify_single_neuron,
    grid=grid_single_neuron, grid_applies=grid_applies, scores=SCORES), replace=True)
