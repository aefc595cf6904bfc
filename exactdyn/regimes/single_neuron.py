r"""Regimes of Kunin et al.'s single neuron (MATH.md §2): ``"lazy"`` / ``"rich"``.

**These are the project's operational definitions.** Kunin, Raventós, Dominé, Chen,
Klindt, Saxe, Ganguli ("Get rich quick: exact solutions reveal how unbalanced
initializations promote rapid feature learning", NeurIPS 2024) describe the single neuron
:math:`f(x) = a\,w^\top x` by its conserved imbalance
:math:`\delta = \eta_w a^2 - \eta_a\lVert w\rVert^2`: :math:`\delta\to+\infty` lazy,
:math:`\delta\to-\infty` rescaling, :math:`\delta\approx 0` rich. The thresholds below are
ours.

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


SINGLE_NEURON = register_taxonomy(Taxonomy(
    name="single_neuron", labels=LABELS, accepts=_accepts, classify=classify_single_neuron,
    scores=SCORES), replace=True)
