r"""Regimes of the two-layer linear network :math:`f(x) = W_2W_1x` (MATH.md §2):
``"lazy"`` / ``"rich"``.

Kunin, Raventós, Dominé, Chen, Klindt, Saxe, Ganguli, "Get rich quick: exact solutions
reveal how unbalanced initializations promote rapid feature learning" (NeurIPS 2024) [K]
extend their single neuron's lazy and rich regimes to wide two-layer linear networks, whose
learning is set by the conserved imbalance of the layers; Saxe, McClelland, Ganguli (ICLR
2014) [SMG] solve the network exactly for the decoupled init, where every teacher mode
:math:`s_\alpha` is a one-neuron network of its own. Read: [K]'s abstract and code
(``single-neuron/Single_Neuron.ipynb``), [SMG]'s closed form; the body's definitions were
not (docs/papers/saxe_kunin.md). The criterion is that of
:mod:`exactdyn.regimes.single_neuron`, applied to the whole network's kernel.

The NTK on the training inputs :math:`X = \Sigma_{xx}^{1/2}` (the identity when whitened),
with the learning rates of the flow, is

.. math:: \Theta = \eta_1\,(W_2W_2^\top)\otimes(X^\top X)
          + \eta_2\,I_{n_{out}}\otimes(X^\top W_1^\top W_1X)

(:math:`\partial f/\partial W_1` gives the first term, :math:`\partial f/\partial W_2` the
second). The *measured* label is ``"lazy"`` if
:math:`\sup_t\lVert\Theta(t) - \Theta(0)\rVert_F/\lVert\Theta(0)\rVert_F <` ``kernel_tol``
(default 0.1), ``"rich"`` otherwise: from the trajectory's samples, or for a model from
its solved trajectory at 401 times over :func:`horizon`.

*Decoupled init* (:meth:`~exactdyn.LinearNet.decoupled`, whitened inputs):
:math:`W_1 = R\,\mathrm{diag}(b)V^\top`, :math:`W_2 = U\mathrm{diag}(a)R^\top` with
:math:`\Sigma_{yx} = USV^\top`. Each mode's product :math:`x_\alpha = a_\alpha b_\alpha`
follows :math:`\dot x = (s - x)(\eta_1a^2 + \eta_2b^2)` while
:math:`q_\alpha = a_\alpha^2/\eta_2 - b_\alpha^2/\eta_1` is conserved, so

.. math:: b^2 = \frac{\eta_1}{2}\Bigl(\sqrt{q^2 + \tfrac{4x^2}{\eta_1\eta_2}} - q\Bigr),
          \qquad a^2 = \eta_2\Bigl(q + \frac{b^2}{\eta_1}\Bigr),

and :math:`\Theta` is diagonal in the basis :math:`u_\alpha\otimes v_\beta` with
eigenvalues :math:`\eta_1a_\alpha^2 + \eta_2b_\beta^2` (zero-padded to
:math:`n_{out}`, :math:`n_{in}`). The kernel at convergence (:math:`x_\alpha \to s_\alpha`)
is therefore algebra; :func:`grid_linear_net` evaluates it for whole phase diagrams.

The *predicted* label (decoupled inits only, else ``None``) is Kunin's small-init limit at
fixed imbalances: :math:`x_\alpha \to 0` with :math:`q_\alpha` kept, i.e.
:math:`a_\alpha^2 = \eta_2\max(q_\alpha, 0)`, :math:`b_\alpha^2 = \eta_1\max(-q_\alpha, 0)`,
to the end point above; lazy when that change is below ``kernel_tol`` (a balanced init,
:math:`q = 0`, starts from :math:`\Theta = 0` and is rich). A finite init starts nearer
the end point than the limit assumes, so the measured change can be smaller there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models.linear import LinearNet
from .base import Regime, Taxonomy, check_thresholds, register_taxonomy
from .deep_linear import decoupled_family, decoupled_teacher

LABELS = ("lazy", "rich")
SCORES = ("ntk_change", "ntk_change_end", "ntk_change_predicted", "monotone", "loss_end",
          "t_end")
THRESHOLDS = {"kernel_tol": 0.1}
#: Output times of :func:`classify_linear_net`'s solve: ``linspace(0, horizon, 401)``.
_SAMPLES = 401


def _thresholds(options) -> dict:
    return check_thresholds(options, THRESHOLDS, "linear_net", bounded=())


def _sqrt_psd(m):
    vals, vecs = np.linalg.eigh(m)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def linear_net_ntk_change(W1, W2, eta1=1.0, eta2=1.0, sigma_xx=None) -> np.ndarray:
    r""":math:`\lVert\Theta(t) - \Theta(0)\rVert_F/\lVert\Theta(0)\rVert_F` at every time
    of the weights ``W1`` (T × h × n_in) and ``W2`` (T × n_out × h), for the NTK of the
    module docstring (``inf`` where :math:`\Theta(0) = 0`).

    The Frobenius products of Kronecker sums are taken factor by factor,
    :math:`\langle G\otimes H, G'\otimes H'\rangle = \mathrm{tr}(GG')\,\mathrm{tr}(HH')`,
    with the difference formed before squaring (no cancellation for small changes)."""
    W1 = np.asarray(W1, dtype=float)
    W2 = np.asarray(W2, dtype=float)
    if W1.ndim != 3 or W2.ndim != 3 or W1.shape[0] != W2.shape[0] \
            or W1.shape[1] != W2.shape[2]:
        raise ValueError(f"W1 and W2 must be time series T x h x n_in and T x n_out x h with "
                         f"one T and one h; got shapes {W1.shape} and {W2.shape}")
    n_in, n_out = W1.shape[2], W2.shape[1]
    X = np.eye(n_in) if sigma_xx is None else _sqrt_psd(np.asarray(sigma_xx, dtype=float))
    G = eta1 * np.einsum("toh,tph->top", W2, W2)            # eta1 W2 W2^T
    H = eta2 * np.einsum("thi,thj->tij", W1 @ X, W1 @ X)    # eta2 X^T W1^T W1 X
    XX = X.T @ X
    dG, dH = G - G[0], H - H[0]

    def inner(G1, H1, G2, H2):
        # <G1 (x) XX + I (x) H1, G2 (x) XX + I (x) H2>_F
        return (np.einsum("tij,tji->t", G1, G2) * np.trace(XX @ XX)
                + np.einsum("tii->t", G1) * np.einsum("ij,tji->t", XX, H2)
                + np.einsum("tii->t", G2) * np.einsum("ij,tji->t", XX, H1)
                + n_out * np.einsum("tij,tji->t", H1, H2))

    num = np.maximum(inner(dG, dH, dG, dH), 0.0)
    den = float(inner(G[:1], H[:1], G[:1], H[:1])[0])
    if den > 0:
        return np.sqrt(num / den)
    return np.where(num > 0, np.inf, 0.0)


def _mode_strengths(W1, W2, sigma_yx):
    r"""Per teacher mode, :math:`a_\alpha = \lVert W_2^\top u_\alpha\rVert`,
    :math:`b_\alpha = \lVert W_1v_\alpha\rVert` (signed so that :math:`a_\alpha b_\alpha =
    u_\alpha^\top W_2W_1v_\alpha`) and the teacher values :math:`s_\alpha`; for a decoupled
    init these are its :math:`a`, :math:`b` up to a common sign."""
    U, s, Vt = np.linalg.svd(np.asarray(sigma_yx, dtype=float))
    r = min(s.size, W1.shape[0])
    a = np.linalg.norm(W2.T @ U[:, :r], axis=0)
    b = np.linalg.norm(W1 @ Vt[:r].T, axis=0)
    x = np.einsum("or,oi,ir->r", U[:, :r], W2 @ W1, Vt[:r].T)
    return np.where(x < 0, -a, a), b, s[:r]


def _end_b2(q, x, eta1, eta2):
    r""":math:`b^2` of a mode at product :math:`x` and imbalance :math:`q`."""
    return 0.5 * eta1 * (np.sqrt(q * q + 4 * x * x / (eta1 * eta2)) - q)


def _change_from_modes(a2_0, b2_0, dA, dB, eta1, eta2, n_out, n_in):
    r"""Relative Frobenius change of :math:`\Theta` (diagonal: :math:`\eta_1A_\alpha +
    \eta_2B_\beta` over :math:`n_{out}\times n_{in}`, the modes' values zero-padded) from
    the modes' values at the start (``a2_0``, ``b2_0``) and their changes (``dA``,
    ``dB``); the last axis runs over the modes."""
    e1, e2 = np.asarray(eta1, dtype=float)[..., None], np.asarray(eta2, dtype=float)[..., None]

    def sq(A, B):
        # sum_{alpha<n_out, beta<n_in} (eta1 A_alpha + eta2 B_beta)^2, zero-padded
        EA, EB = e1 * A, e2 * B
        return n_in * (EA * EA).sum(-1) + n_out * (EB * EB).sum(-1) \
            + 2 * EA.sum(-1) * EB.sum(-1)

    num, den = sq(dA, dB), sq(a2_0, b2_0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, np.sqrt(np.maximum(num, 0) / np.where(den > 0, den, 1)),
                        np.where(num > 0, np.inf, 0.0))


def decoupled_changes(a, b, s, eta1, eta2, n_out, n_in):
    r"""The kernel's relative change at convergence and its small-init prediction, and
    whether the path is monotone, for decoupled modes ``a``, ``b`` with teacher values
    ``s`` (arrays whose last axis runs over the modes; ``eta1``, ``eta2`` broadcast over
    the leading axes).

    Each mode converges to :math:`x = s` except one that is identically zero
    (:math:`a = b = 0`) or balanced with :math:`x \le 0` (:math:`q = 0`: the zero product
    is then a fixed point it approaches); :math:`B_\infty - b_0^2` is formed as a quotient
    (no cancellation). The path of every kernel entry is monotone when every moving mode
    moves one way (:math:`0 \le x_0 < s`, or :math:`x_0 > s`, for all of them); then the
    change at convergence is the sup over the path, otherwise (``monotone`` False) a lower
    bound."""
    a, b, s = (np.asarray(v, dtype=float) for v in (a, b, s))
    e1 = np.asarray(eta1, dtype=float)[..., None]
    e2 = np.asarray(eta2, dtype=float)[..., None]
    x0, q = a * b, a * a / e2 - b * b / e1
    # A balanced init built as b = sqrt(eta1/eta2) a carries q at the round-off of its
    # terms; it is balanced (otherwise 1/q noise would set the prediction).
    q = np.where(np.abs(q) <= 1e-13 * (a * a / e2 + b * b / e1), 0.0, q)
    still = ((a == 0) & (b == 0)) | ((q == 0) & (x0 <= 0))
    x_end = np.where(still, 0.0 * s, s)
    r0 = np.sqrt(q * q + 4 * x0 * x0 / (e1 * e2))
    r1 = np.sqrt(q * q + 4 * x_end * x_end / (e1 * e2))
    with np.errstate(divide="ignore", invalid="ignore"):
        dB = np.where(r0 + r1 > 0, 2 * (x_end - x0) * (x_end + x0) / (e2 * (r0 + r1)), 0.0)
    dA = dB * e2 / e1  # q = a^2/eta2 - b^2/eta1 is conserved
    change = _change_from_modes(a * a, b * b, dA, dB, e1[..., 0], e2[..., 0], n_out, n_in)
    moving = x_end != x0
    # a^2 and b^2 grow while 0 < x < s (d a^2/dt = 2 eta2 x (s - x)) and shrink while
    # x > s, or x < 0 on its way to 0; a product crossing 0 towards s > 0 turns back.
    up = moving & (x0 >= 0) & (x0 < x_end)
    down = moving & ((x0 > x_end) | ((x0 < 0) & (x_end == 0)))
    monotone = (up | ~moving).all(-1) | (down | ~moving).all(-1)
    # small-init limit at fixed q (Kunin): from (a^2, b^2) = (eta2 q+, eta1 q-) to x = s
    a2_l, b2_l = e2 * np.maximum(q, 0.0), e1 * np.maximum(-q, 0.0)
    b2_end = _end_b2(q, s, e1, e2)
    dB_l = b2_end - b2_l
    predicted = _change_from_modes(a2_l, b2_l, dB_l * e2 / e1, dB_l, e1[..., 0], e2[..., 0],
                                   n_out, n_in)
    loss_end = 0.5 * np.sum((s - x_end) ** 2, axis=-1)
    return change, predicted, monotone, loss_end


def horizon(model: LinearNet) -> float:
    r"""A time by which the learnable teacher modes have escaped and converged: twice the
    balanced escape time :math:`\ln(s/u_0)/(2\sqrt{\eta_1\eta_2}\,s)` of the weakest one
    (:math:`s` the smallest of the :math:`\min(h, \mathrm{rank})` largest teacher values,
    :math:`u_0` the matching singular value of :math:`W_2W_1(0)`, at least
    :math:`10^{-12}s`) plus twenty relaxation times :math:`1/(2\sqrt{\eta_1\eta_2}\,s)`. An
    imbalance only speeds the modes up (:math:`\eta_1a^2 + \eta_2b^2 \ge
    2\sqrt{\eta_1\eta_2}|ab|`), so this bounds the balanced case."""
    s = np.linalg.svd(np.asarray(model.w_star(), float) @ _sqrt_psd(model.sxx),
                      compute_uv=False)
    s = s[s > 1e-12 * max(s.max(initial=0.0), 1e-300)][:model.hidden]
    if s.size == 0:
        return 10.0
    st = model.initial_state()
    sv = np.linalg.svd(st["W2"] @ st["W1"], compute_uv=False)
    smin = float(s.min())
    u0 = float(sv[s.size - 1]) if sv.size >= s.size else 0.0
    u0 = max(u0, 1e-12 * smin)
    rate = 2 * np.sqrt(model.eta1 * model.eta2) * smin
    esc = np.log(smin / u0) / rate if u0 < smin else 0.0
    return float(2 * esc + 20 / rate)


def _decoupled_strengths(model_or_params, W1, W2):
    """(a, b, s) of a decoupled init, else None (no prediction)."""
    if isinstance(model_or_params, LinearNet):
        kind, syx, whitened = model_or_params.init_kind[0], model_or_params.sigma_yx, \
            model_or_params.whitened
    else:
        p = model_or_params
        kind, syx = p.get("init"), p.get("sigma_yx")
        sxx = p.get("sigma_xx")
        whitened = sxx is None or np.array_equal(np.asarray(sxx, float),
                                                 np.eye(np.asarray(sxx).shape[0]))
    if kind != "decoupled" or syx is None or not whitened:
        return None
    return _mode_strengths(np.asarray(W1, float), np.asarray(W2, float), syx)


def classify_linear_net(obj, **options) -> Regime:
    """Classify a :class:`~exactdyn.LinearNet` (solved at 401 times over :func:`horizon`)
    or a trajectory of one (from its samples)."""
    th = _thresholds(options)
    if isinstance(obj, LinearNet):
        from ..solve import solve

        model = obj
        traj = solve(model, np.linspace(0.0, horizon(model), _SAMPLES), rtol=1e-10)
        params, source = model.params, "solve"
        eta1, eta2, sxx = model.eta1, model.eta2, model.sigma_xx
        pred_src: object = model
    else:
        traj = obj.as_float() if obj.precision is not None else obj
        params, source = traj.meta.get("params", {}), "trajectory"
        if "eta1" not in params:
            raise ValueError("the trajectory's meta['params'] must hold eta1 and eta2 (a "
                             "LinearNet trajectory)")
        eta1, eta2, sxx = float(params["eta1"]), float(params["eta2"]), params.get("sigma_xx")
        pred_src = params
    if len(traj.t) < 2:
        raise ValueError("a trajectory needs at least 2 times to be classified; "
                         f"got {len(traj.t)}")
    W1, W2 = np.asarray(traj["W1"], float), np.asarray(traj["W2"], float)
    mv = linear_net_ntk_change(W1, W2, eta1, eta2, sxx)
    change = float(np.max(mv))
    label = "lazy" if change < th["kernel_tol"] else "rich"
    modes = _decoupled_strengths(pred_src, W1[0], W2[0])
    predicted, pred_change, monotone = None, float("nan"), float("nan")
    if modes is not None:
        a, b, s = modes
        _, pc, mono, _ = decoupled_changes(a, b, s, eta1, eta2, W2.shape[1], W1.shape[2])
        pred_change, monotone = float(pc), float(mono)
        predicted = "lazy" if pred_change < th["kernel_tol"] else "rich"
    ev = {"ntk_change": change, "ntk_change_end": float(mv[-1]),
          "ntk_change_predicted": pred_change, "monotone": monotone,
          "loss_end": float(np.asarray(traj["loss"], float)[-1]),
          "t_end": float(traj.t[-1]), "source": source, **th}
    return Regime(label=label, taxonomy="linear_net", evidence=ev, predicted=predicted)


def _accepts(obj) -> bool:
    if isinstance(obj, LinearNet):
        return True
    meta = getattr(obj, "meta", None)
    return meta is not None and meta.get("model") == "linear"


# ---- grid (vectorized phase diagrams of decoupled inits) ---------------------------------

#: Hyperparameters of a decoupled-init LinearNet diagram besides ``s1``, ``s2``, ... (the
#: teacher's singular values): the per-mode strengths :math:`a` (the ``W2`` side, one value
#: for every mode) and :math:`b` (``None``: balanced, :math:`b = \sqrt{\eta_1/\eta_2}\,a`).
DECOUPLED_PARAMS = ("strengths", "b_strengths", "eta1", "eta2", "hidden", "in_dim",
                    "out_dim", "sigma_yx", "sigma_xx")


@dataclass(frozen=True)
class DecoupledCells:
    """Builds the cells of a decoupled-init LinearNet diagram:
    ``LinearNet.decoupled(sigma_yx, hidden, strengths, b_strengths, eta1, eta2)`` with
    ``s1``, ``s2``, ... replacing the singular values of ``sigma_yx`` (its singular vectors
    kept; the same rule as DeepLinear's decoupled diagrams)."""

    explicit_init = False
    name = "linear_decoupled"

    def with_values(self, strengths=1e-3, b_strengths=None, eta1=1.0, eta2=1.0, hidden=None,
                    sigma_yx=None, sigma_xx=None, in_dim=None, out_dim=None,
                    **svals) -> LinearNet:
        if sigma_xx is not None and not np.array_equal(
                np.asarray(sigma_xx, float), np.eye(np.asarray(sigma_xx).shape[0])):
            raise ValueError("the decoupled init needs whitened inputs (sigma_xx = None)")
        syx = decoupled_teacher("LinearNet", DECOUPLED_PARAMS, sigma_yx, in_dim, out_dim,
                                svals)
        if hidden is not None:
            if float(hidden) != int(float(hidden)):
                raise ValueError(f"hidden must be an integer, got {hidden!r}")
            hidden = int(float(hidden))
        return LinearNet.decoupled(syx, hidden=hidden, strengths=float(strengths),
                                   b_strengths=None if b_strengths is None
                                   else float(b_strengths), eta1=float(eta1),
                                   eta2=float(eta2))


def grid_linear_net(values: dict, base=None, **options):
    r"""Measured and predicted labels and scores of decoupled-init
    :class:`~exactdyn.LinearNet` cells, all at once, from the end points of the modes
    (:func:`decoupled_changes`; no time stepping).

    The rule of :func:`classify_linear_net` read off the exact path: the sup of the
    kernel's relative change is its value at convergence wherever the path is monotone
    (score ``monotone`` = 1); elsewhere (modes moving both ways, or a product starting
    negative) it is a lower bound (``monotone`` = 0). The per-cell classifier samples the
    path up to :func:`horizon`, so it reads the converged value up to the integration
    tolerance and the remaining distance to convergence. That distance is not small for a
    mode whose teacher value is 0 (a teacher of lower rank than the modes): balanced, its
    product decays only algebraically, :math:`x \approx 1/(2\sqrt{\eta_1\eta_2}\,t)`,
    and the grid reports the limit :math:`t \to \infty`.
    """
    th = _thresholds(options)
    syx, sxx = values.get("sigma_yx"), values.get("sigma_xx")
    if syx is None:
        raise ValueError("a decoupled LinearNet diagram needs sigma_yx in fixed")
    if sxx is not None and not np.array_equal(np.asarray(sxx, float),
                                              np.eye(np.asarray(sxx).shape[0])):
        raise ValueError("the decoupled LinearNet diagram needs whitened inputs "
                         "(sigma_xx = None)")
    syx = np.asarray(syx, float)
    n_out, n_in = syx.shape
    scal = {k: np.asarray(v, float) for k, v in values.items()
            if k not in ("sigma_yx", "sigma_xx") and v is not None}
    shape = np.broadcast(*scal.values()).shape
    v = {k: np.broadcast_to(x, shape).ravel() for k, x in scal.items()}
    N = int(np.prod(shape))
    s_base = np.linalg.svd(syx, compute_uv=False)
    k_all = s_base.size
    S = np.tile(s_base, (N, 1))
    for i in range(k_all):
        if f"s{i + 1}" in v:
            S[:, i] = v[f"s{i + 1}"]
    if np.any(S < 0):
        raise ValueError("teacher singular values must be >= 0")
    S = -np.sort(-S, axis=1)
    eta1, eta2 = v["eta1"], v["eta2"]
    if np.any(eta1 <= 0) or np.any(eta2 <= 0):
        raise ValueError("eta1 and eta2 must be > 0")
    hidden = v["hidden"] if "hidden" in v else np.full(N, float(k_all))
    if np.any(hidden != np.floor(hidden)) or np.any(hidden < 1):
        raise ValueError("hidden must be a positive integer")
    live = np.arange(k_all)[None, :] < np.minimum(hidden, k_all)[:, None]
    a = np.where(live, v["strengths"][:, None], 0.0)
    b = np.where(live, (v["b_strengths"] if "b_strengths" in v
                        else np.sqrt(eta1 / eta2) * v["strengths"])[:, None], 0.0)
    s = np.where(live, S, 0.0)
    change, predicted, monotone, loss_end = decoupled_changes(a, b, s, eta1, eta2, n_out,
                                                              n_in)
    loss_end = loss_end + 0.5 * np.sum(np.where(live, 0.0, S) ** 2, axis=1)
    labels = np.where(change < th["kernel_tol"], "lazy", "rich").astype("<U4")
    pred = np.where(predicted < th["kernel_tol"], "lazy", "rich").astype("<U4")
    t_end = np.full(N, np.inf)
    scores = {"ntk_change": change, "ntk_change_end": change,
              "ntk_change_predicted": predicted, "monotone": monotone.astype(float),
              "loss_end": loss_end, "t_end": t_end}
    return (labels.reshape(shape), pred.reshape(shape),
            {k: np.asarray(x).reshape(shape) for k, x in scores.items()})


def grid_applies(params: dict) -> str:
    """'' for a decoupled-init diagram (``strengths`` given, whitened inputs), else why
    not (``method="auto"`` then classifies cell by cell)."""
    if "strengths" not in params:
        return ("the closed-form LinearNet diagram is for the decoupled init: put "
                "strengths on an axis or in fixed")
    sxx = params.get("sigma_xx")
    if sxx is not None and not np.array_equal(np.asarray(sxx, float),
                                              np.eye(np.asarray(sxx).shape[0])):
        return "the decoupled LinearNet diagram needs whitened inputs (sigma_xx = None)"
    return ""


def diagram_family(model, fixed: dict, axes: tuple):
    """LinearNet with the decoupled init (``strengths`` swept or fixed): cells are
    ``LinearNet.decoupled(sigma_yx, hidden, strengths, b_strengths, eta1, eta2)``; ``s1``,
    ``s2``, ... are the teacher's singular values. ``None`` otherwise (a random init: the
    generic rule)."""
    if model is not LinearNet or "strengths" not in {*fixed, *axes}:
        return None
    names, teacher = decoupled_family("LinearNet", "strengths", ("scale1", "scale2", "seed"),
                                      fixed)
    defaults = {"strengths": 1e-3, "b_strengths": None, "eta1": 1.0, "eta2": 1.0,
                "hidden": None, **teacher}
    return LinearNet, DecoupledCells(), DECOUPLED_PARAMS + names, defaults


LINEAR_NET = register_taxonomy(Taxonomy(
    name="linear_net", labels=LABELS, accepts=_accepts, classify=classify_linear_net,
    grid=grid_linear_net, grid_applies=grid_applies, scores=SCORES,
    diagram=diagram_family), replace=True)
