r"""Closed forms of the two-layer linear network and the single neuron (MATH.md §2).

Three solutions, each evaluated in float64 or in mpmath at any precision (and with one input
and one output, any init is the 1-D network of MATH.md §1, solved by
:mod:`exactdyn.closed_form.linear1d_numeric`):

Decoupled (SVD-aligned) init [SMG]
    :math:`W_1 = R\,\mathrm{diag}(b)V^\top`, :math:`W_2 = U\,\mathrm{diag}(a)R^\top` with
    :math:`\Sigma_{yx} = USV^\top` stays decoupled; each mode is the width-1 network of
    MATH.md §1 with teacher :math:`s_\alpha` and is evaluated by
    :mod:`exactdyn.closed_form.linear1d_numeric` (balanced modes give Saxe's sigmoid).
λ-balanced init (zero-balanced: λ = 0) [B, T], and any init with hidden width 1
    With :math:`B_1 = (\eta_2/\eta_1)^{1/4}W_1`, :math:`B_2 = (\eta_1/\eta_2)^{1/4}W_2`,
    :math:`\tau = \sqrt{\eta_1\eta_2}\,t`, :math:`Q = [B_1^\top; B_2]` and
    :math:`B_2^\top B_2 - B_1B_1^\top = \lambda I` the flow is
    :math:`\dot Q = F_\lambda Q - \tfrac12 QQ^\top Q`,
    :math:`F_\lambda = \begin{pmatrix}-\tfrac\lambda2 I & \Sigma_{yx}^\top\\
    \Sigma_{yx} & \tfrac\lambda2 I\end{pmatrix}`,
    so :math:`P = QQ^\top` solves the Riccati equation
    :math:`\dot P = F_\lambda P + PF_\lambda - P^2`, whose solution is

    .. math:: P(\tau) = e^{F\tau}Q_0\bigl[I + Q_0^\top G(\tau) Q_0\bigr]^{-1}Q_0^\top e^{F\tau},
              \qquad G(\tau) = \int_0^\tau e^{2Fs}\,ds,

    and :math:`W_2W_1 = B_2B_1` is its lower-left block. Evaluated stably by the
    semigroup property: in steps :math:`\Delta\tau \le 2/\max|\mathrm{eig}\,F|`, each
    :math:`Q \leftarrow e^{F\Delta\tau}Q\,L^{-\top}` with :math:`LL^\top = I + Q^\top
    G(\Delta\tau)Q` (Cholesky, triangular solve), in the eigenbasis of the symmetric
    :math:`F`. No exponential larger than :math:`e^2` is ever formed, and nothing is
    inverted explicitly. For hidden width 1 the factor is the state itself
    (:math:`Q(\tau) = e^{F\tau}Q_0/\sqrt{1 + Q_0^\top GQ_0}`), so the full trajectory is
    returned; for wider layers the hidden frame is not determined by :math:`P`, and the
    trajectory holds the end-to-end map and its observables only.
Single neuron [K]
    :math:`\nu = w\cdot\beta^*/a` obeys :math:`\dot\nu = s^2 - \delta\nu - \nu^2`
    (whitened, unit rates), solved by
    :math:`\nu = \tfrac12\bigl(-\delta + D\tanh(D\tau/2 + \operatorname{artanh}x_0)\bigr)`,
    :math:`x_0 = (\delta + 2\nu_0)/D`, :math:`D = \sqrt{\delta^2 + 4s^2}` (the coth branch
    when :math:`|x_0| > 1`). Both branches are the one Möbius form
    :math:`\nu = \tfrac12\bigl(-\delta + (DT + c_0)/(1 + c_0\,T/D)\bigr)`,
    :math:`T = \tanh(D\tau/2)`, :math:`c_0 = \delta + 2\nu_0`, evaluated with
    :math:`T/D \to \tau/2` at :math:`D = 0`.
"""

from __future__ import annotations

import mpmath
import numpy as np

from .. import _mp
from ..trajectory import Trajectory
from .checks import require_finite

#: Largest step of the semigroup evaluation, in units of 1/max|eig F|.
STEP = 4.0
#: Kunin's nu (float64) is evaluated in mpmath when |c0 + D| is below this fraction of D:
#: nu0 within rounding of the unstable root, where float64 loses where nu leaves it.
NU_CANCEL = 1e-6
#: Most semigroup steps over the whole time span at hidden width 1: beyond it the steps grow
#: (float64 in the scaled form of :meth:`_F64.step`), so the cost does not grow with
#: max|eig F|·t (a single neuron with δ = 1e300). Wider hidden layers keep STEP.
MAX_STEPS = 2000


# ---- dispatch -------------------------------------------------------------------------------
def closed_form_kind(model) -> str:
    """Which closed form applies: ``"decoupled"``, ``"riccati"``; ValueError otherwise."""
    if not model.whitened:
        raise ValueError("the closed forms of the linear network need whitened inputs "
                         "(sigma_xx = None or the identity); integrate with solve() instead")
    kind = getattr(model, "init_kind", ("explicit",))[0]
    if kind == "decoupled":
        return "decoupled"
    if model.in_dim == 1 and model.out_dim == 1:
        return "scalar"
    if kind in ("zero_balanced", "lambda_balanced") or model.hidden == 1:
        return "riccati"
    lam = balance_lambda(model)
    if lam is not None:
        return "riccati"
    raise ValueError("no closed form for this init: it must be decoupled "
                     "(LinearNet.decoupled), zero- or lambda-balanced "
                     "(sqrt(eta1 eta2) (W2^T W2/eta2 - W1 W1^T/eta1) = lambda I), "
                     "or have hidden width 1")


def balance_lambda(model, rtol=1e-12):
    r""":math:`\lambda` when :math:`\sqrt{\eta_1\eta_2}(W_2^\top W_2/\eta_2 - W_1W_1^\top/\eta_1)
    = \lambda I` holds to ``rtol`` (relative to the Gram matrices), else ``None``."""
    st = model.initial_state()
    C = -np.sqrt(model.eta1 * model.eta2) * model.conserved(st)
    lam = float(np.trace(C) / C.shape[0])
    scale = np.sqrt(model.eta1 * model.eta2) * (np.linalg.norm(st["W1"]) ** 2 / model.eta1
                                                 + np.linalg.norm(st["W2"]) ** 2 / model.eta2)
    if np.abs(C - lam * np.eye(C.shape[0])).max() <= rtol * max(scale, 1e-300):
        return lam
    return None


def exact_linear(model, times: np.ndarray, precision: int | None = None,
                 kunin_nu: bool = False) -> Trajectory:
    """The closed-form trajectory of a :class:`~exactdyn.LinearNet` or
    :class:`~exactdyn.SingleNeuron` (``kunin_nu``: with Kunin's ν) at ``times``."""
    kind = closed_form_kind(model)
    if precision is None and kind == "riccati":
        digits = riccati_digits(model)
        if digits is not None:  # float64 would lose digits: evaluate in mpmath and round
            traj = exact_linear(model, times, digits)
            out = traj.as_float()
            out.meta.update(precision=None, evaluated_digits=digits)
            return require_finite(out)
    if kind == "decoupled":
        state, method = _decoupled(model, times, precision), "closed_form:decoupled"
    elif kind == "scalar":
        state, method = _scalar(model, times, precision), "closed_form:scalar"
    else:
        state, method = _riccati(model, times, precision), "closed_form:riccati"
    obs = _observables(model, state, precision)
    if kunin_nu:
        # Kunin's closed form for nu (an independent formula, not read off the state).
        obs["nu"] = nu_closed_form(model, times, precision)
    state = {k: state[k] for k in ("W1", "W2")} if "W1" in state else {}
    if precision is not None:
        with _mp.workdps(precision):
            rnd = np.frompyfunc(lambda x: +x, 1, 1)
            state = {k: rnd(v) for k, v in state.items()}
            obs = {k: rnd(v) for k, v in obs.items()}
            t_out = np.array([mpmath.mpf(float(x)) for x in times], dtype=object)
    else:
        t_out = np.asarray(times, dtype=float).copy()
    meta = {"model": model.name, "params": model.params, "method": method, "rtol": None,
            "atol": None, "precision": precision}
    traj = Trajectory(t_out, state, obs, meta)
    return require_finite(traj) if precision is None else traj


def riccati_digits(model, threshold=1e3):
    r"""Digits the Riccati form needs, or ``None`` when float64 is enough.

    The semigroup works on :math:`Q = [B_1^\top; B_2]`, so rounding moves the end-to-end
    map :math:`B_2B_1` by about :math:`\epsilon\,(\lVert Q_0\rVert^2 + h|\lambda|)`
    (a strongly imbalanced init: a single neuron with large :math:`|\delta|`), while the
    map itself is of size :math:`\max(\lVert W_0\rVert, \lVert\Sigma_{yx}\rVert)`
    over the trajectory. When their ratio exceeds ``threshold`` the form is evaluated in
    mpmath with the digits it costs plus 16, then rounded (and the mpmath path adds the
    digits it costs to its guard digits).
    """
    st = model.initial_state()
    e1, e2 = model.eta1, model.eta2
    B1 = (e2 / e1) ** 0.25 * np.asarray(st["W1"], dtype=float)
    B2 = (e1 / e2) ** 0.25 * np.asarray(st["W2"], dtype=float)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        big = (np.linalg.norm(B1) ** 2 + np.linalg.norm(B2) ** 2
               + B1.shape[0] * abs(float(np.trace(B2.T @ B2 - B1 @ B1.T)) / B1.shape[0]))
        scale = max(float(np.linalg.norm(np.asarray(st["W2"]) @ np.asarray(st["W1"]))),
                    float(np.linalg.norm(np.asarray(model.sigma_yx, dtype=float))))
    if not np.isfinite(big):
        return 16 + 620
    if scale == 0 or big <= threshold * scale:
        return None
    return 16 + int(np.ceil(np.log10(big / scale)))


def _observables(model, state, precision):
    from ..numeric.matrix_lowering import singular_values

    W = state["end_to_end"]
    Ws = np.asarray(model.w_star())
    if precision is not None:
        with _mp.workdps(precision + 10):
            Ws = np.vectorize(mpmath.mpf, otypes=[object])(Ws)
            D = W - Ws
            loss = np.array([sum(x * x for x in d.ravel()) / 2 for d in D], dtype=object)
            sv = singular_values(W)
    else:
        D = W - Ws
        loss = 0.5 * np.einsum("tij,tij->t", D, D)
        sv = singular_values(W)
    obs = {"end_to_end": W, "loss": loss, "singular_values": sv}
    extra = getattr(model, "extra_observables", None)
    if extra is not None and "W1" in state:
        if precision is not None:
            with _mp.workdps(precision + 10):
                obs.update(extra(state, obs))
        else:
            obs.update(extra(state, obs))
    return obs


# ---- decoupled: per mode, the 1-D closed form -----------------------------------------------
def _decoupled(model, times, precision):
    from ..models.linear1d import Linear1D
    from .linear1d import exact_linear1d

    _kind, U, s, Vt, a, b, R = model.init_kind
    cols_a, cols_b = [], []
    for alpha in range(len(s)):
        mode = Linear1D.from_init([a[alpha]], [b[alpha]], kappa=1.0, eta_u=model.eta2,
                                  eta_w=model.eta1, teacher=float(s[alpha]), x_var=1.0)
        tr = exact_linear1d(mode, times, precision)
        cols_a.append(tr.state["u"][:, 0])
        cols_b.append(tr.state["w"][:, 0])
    A = np.stack(cols_a, axis=1)  # (T, r)
    B = np.stack(cols_b, axis=1)
    if precision is not None:
        with _mp.workdps(precision + 10):
            mp = np.vectorize(mpmath.mpf, otypes=[object])
            U, Vt, R = mp(U), mp(Vt), mp(R)
            W1 = np.array([R @ (Bt[:, None] * Vt) for Bt in B])
            W2 = np.array([(U * At[None, :]) @ R.T for At in A])
            W = np.array([(U * (At * Bt)[None, :]) @ Vt for At, Bt in zip(A, B)])
    else:
        W1 = np.einsum("hr,tr,ri->thi", R, B, Vt)
        W2 = np.einsum("or,tr,hr->toh", U, A, R)
        W = np.einsum("or,tr,ri->toi", U, A * B, Vt)
    return {"W1": W1, "W2": W2, "end_to_end": W}


# ---- one input, one output: the 1-D network of MATH.md §1 ---------------------------------
def _scalar(model, times, precision):
    r"""``in_dim = out_dim = 1`` (whitened): :math:`W_2W_1 = u\cdot w` with :math:`u = W_2^\top`,
    :math:`w = W_1` (hidden width :math:`h`), the 1-D network of MATH.md §1 with
    :math:`\kappa = \Sigma_{xx} = 1`, teacher :math:`c = \Sigma_{yx}`, :math:`\eta_u = \eta_2`,
    :math:`\eta_w = \eta_1`, whose closed form holds for any init. Unlike the Riccati
    semigroup it keeps an init stuck at the saddle (:math:`W_2^\top = -W_1` with
    :math:`\eta_1 = \eta_2` against a positive teacher) there: the semigroup, in float64,
    let the rounding of the eigenbasis of :math:`F` grow as :math:`e^{2st}` relative to the
    decaying path."""
    from ..models.linear1d import Linear1D
    from .linear1d import exact_linear1d

    st = model.initial_state()
    mode = Linear1D.from_init(st["W2"][0], st["W1"][:, 0], kappa=1.0, eta_u=model.eta2,
                              eta_w=model.eta1, teacher=float(model.sigma_yx[0, 0]), x_var=1.0)
    tr = exact_linear1d(mode, times, precision)
    u, w = tr.state["u"], tr.state["w"]
    return {"W1": w[:, :, None], "W2": u[:, None, :],
            "end_to_end": np.asarray(tr.observables["end_to_end"])[:, None, None]}


# ---- Riccati: semigroup evaluation ------------------------------------------------------------
class _F64:
    @staticmethod
    def eigh(F):
        return np.linalg.eigh(F)

    @staticmethod
    def step(Z, f, dt):
        """One semigroup step in the eigenbasis: Z <- e^{f dt} Z L^{-T}."""
        if float(np.abs(f).max()) * dt > 2 * STEP:
            return _F64.scaled_step(Z, f, dt)
        e = np.exp(f * dt)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(f != 0, np.expm1(2 * f * dt) / (2 * np.where(f != 0, f, 1)), dt)
        K = np.eye(Z.shape[1]) + Z.T @ (g[:, None] * Z)
        L = np.linalg.cholesky(K)
        # (e Z) L^{-T}: solve L X^T = (e Z)^T (L is small: at most in + out).
        return np.linalg.solve(L, (e[:, None] * Z).T).T


    @staticmethod
    def scaled_step(Z, f, dt):
        r"""The step for any ``dt``, with every exponential scaled by :math:`e^{-c}`.

        :math:`e^{f\,dt}Z L^{-\top}` is unchanged when :math:`e^{f\,dt}` and :math:`L` are
        both divided by :math:`e^{c}`: :math:`\tilde L\tilde L^\top = e^{-2c}I +
        Z^\top\tilde g Z` with :math:`\tilde g_i = e^{-2c}(e^{2f_i dt} - 1)/(2f_i)`,
        written as :math:`e^{2(f_i dt - c)}(1 - e^{-2f_i dt})/(2f_i)` for :math:`f_i > 0`
        and :math:`e^{-2c}\,\mathrm{expm1}(2f_i dt)/(2f_i)` otherwise, so no exponential
        of a positive number is formed. :math:`c` is the largest log-size of a term of
        :math:`\tilde L^2` (a log-sum-exp shift), so the largest term is of order 1 and
        nothing that matters underflows.
        """
        fd = f * dt
        with np.errstate(divide="ignore"):
            logz = np.log(np.sum(Z * Z, axis=1))
        pos = f > 0
        safe = np.where(f != 0, np.abs(f), 1.0)
        # log of g_i z_i^2 before scaling (f > 0: 2 f dt + log((1 - e^{-2 f dt})/(2 f));
        # f <= 0: log(-expm1(2 f dt)/(2|f|)), or log(dt) at f = 0).
        with np.errstate(divide="ignore"):
            log_g = np.where(pos, 2 * fd + np.log(-np.expm1(-2 * np.where(pos, fd, 0))
                                                  / (2 * safe) + (~pos)),
                             np.log(np.where(f < 0, -np.expm1(2 * np.minimum(fd, 0))
                                             / (2 * safe), dt)))
        c = max(0.0, float(np.max(log_g + logz)) / 2)
        with np.errstate(under="ignore"):
            g = np.where(pos, np.exp(2 * (fd - c)) * (-np.expm1(-2 * np.where(pos, fd, 0)))
                         / (2 * safe),
                         np.exp(-2 * c) * np.where(f < 0, -np.expm1(2 * np.minimum(fd, 0))
                                                   / (2 * safe), dt))
            K = np.exp(-2 * c) * np.eye(Z.shape[1]) + Z.T @ (g[:, None] * Z)
            # e^{f dt - c} Z entry by entry in log space (a tiny z_i times a huge e_i).
            with np.errstate(divide="ignore"):
                eZ = np.sign(Z) * np.exp(fd[:, None] - c + np.log(np.abs(Z)))
        L = np.linalg.cholesky(K)
        return np.linalg.solve(L, eZ.T).T


class _Mp:
    @staticmethod
    def eigh(F):
        E, Q = mpmath.eigsy(mpmath.matrix(F.tolist()))
        n = F.shape[0]
        return (np.array([E[i] for i in range(n)], dtype=object),
                np.array([[Q[i, j] for j in range(n)] for i in range(n)], dtype=object))

    @staticmethod
    def step(Z, f, dt):
        e = np.array([mpmath.exp(x * dt) for x in f], dtype=object)
        g = np.array([mpmath.expm1(2 * x * dt) / (2 * x) if x != 0 else dt for x in f],
                     dtype=object)
        h = Z.shape[1]
        K = np.eye(h, dtype=object) * mpmath.mpf(1) + Z.T @ (g[:, None] * Z)
        L = mpmath.cholesky(mpmath.matrix(K.tolist()))
        Zn = e[:, None] * Z
        out = np.empty_like(Zn)
        for r in range(Zn.shape[0]):  # row r of Zn L^{-T}: solve L x = Zn[r]
            x = []
            for i in range(h):
                acc = Zn[r, i] - sum(L[i, j] * x[j] for j in range(i))
                x.append(acc / L[i, i])
            out[r] = x
        return out


def riccati_setup(model):
    """(F, Q0, tau_rate, eta-rescale factors) of the λ-balanced solution."""
    st = model.initial_state()
    e1, e2 = model.eta1, model.eta2
    B1 = (e2 / e1) ** 0.25 * st["W1"]
    B2 = (e1 / e2) ** 0.25 * st["W2"]
    lam = float(np.trace(B2.T @ B2 - B1 @ B1.T)) / B1.shape[0]
    S = np.asarray(model.sigma_yx, dtype=float)
    n_in, n_out = S.shape[1], S.shape[0]
    F = np.block([[-lam / 2 * np.eye(n_in), S.T], [S, lam / 2 * np.eye(n_out)]])
    Q0 = np.vstack([B1.T, B2])
    return F, Q0, float(np.sqrt(e1 * e2)), lam


def _riccati(model, times, precision):
    F, Q0, rate, _lam = riccati_setup(model)
    n_in = model.in_dim
    e1, e2 = model.eta1, model.eta2
    taus = np.asarray(times, dtype=float) * rate
    if precision is None:
        ops = _F64
        f, E = ops.eigh(F)
        Z = E.T @ _thin_factor(Q0)
        fmax = max(float(np.abs(f).max()), 1e-300)
        out = _march(ops, Z, f, taus, fmax, float)
        Qs = [E @ z for z in out]
        P = np.array([q @ q.T for q in Qs])
        res = {"end_to_end": P[:, n_in:, :n_in]}
        if Q0.shape[1] == 1:
            Qa = np.array(Qs)
            res["W1"] = (e1 / e2) ** 0.25 * np.swapaxes(Qa[:, :n_in, :], 1, 2)
            res["W2"] = (e2 / e1) ** 0.25 * Qa[:, n_in:, :]
        return res
    # Rounding in the eigenbasis costs the digits of the init's imbalance (riccati_digits).
    extra = max(0, (riccati_digits(model, 0.0) or 16) - 16)
    with _mp.workdps(precision + 10 + extra):
        mp = np.vectorize(mpmath.mpf, otypes=[object])
        # Hyperparameters and the init exactly as the integrator takes them: float64 values.
        st = model.initial_state()
        r1 = mpmath.root(mpmath.mpf(e2) / e1, 4)
        B1, B2 = r1 * mp(st["W1"]), mp(st["W2"]) / r1
        lam = sum((B2.T @ B2 - B1 @ B1.T)[i, i] for i in range(B1.shape[0])) / B1.shape[0]
        S = mp(np.asarray(model.sigma_yx, dtype=float))
        n_out = S.shape[0]
        Fm = np.zeros((n_in + n_out, n_in + n_out), dtype=object)
        Fm[:, :] = mpmath.mpf(0)
        for i in range(n_in):
            Fm[i, i] = -lam / 2
        for i in range(n_out):
            Fm[n_in + i, n_in + i] = lam / 2
        Fm[:n_in, n_in:] = S.T
        Fm[n_in:, :n_in] = S
        Qm = np.vstack([B1.T, B2])
        f, E = _Mp.eigh(Fm)
        Z = E.T @ Qm
        fmax = max(float(max(abs(x) for x in f)), 1e-300)
        rate_m = mpmath.sqrt(mpmath.mpf(e1) * e2)
        taus_m = [mpmath.mpf(float(t)) * rate_m for t in times]
        out = _march(_Mp, Z, f, taus_m, fmax, mpmath.mpf)
        Qs = [E @ z for z in out]
        P = np.array([q @ q.T for q in Qs])
        res = {"end_to_end": P[:, n_in:, :n_in]}
        if Qm.shape[1] == 1:
            Qa = np.array(Qs)
            res["W1"] = np.swapaxes(Qa[:, :n_in, :], 1, 2) / r1
            res["W2"] = Qa[:, n_in:, :] * r1
        return res


def _thin_factor(Q0):
    r"""A factor of :math:`Q_0Q_0^\top` with at most ``Q0.shape[0]`` columns.

    The solution depends on :math:`Q_0` only through :math:`P_0 = Q_0Q_0^\top`, so a wide
    hidden layer is reduced once (QR of :math:`Q_0^\top`) and the cost of every later
    step does not depend on the hidden width. Hidden width 1 keeps :math:`Q_0` (the state).
    """
    n, h = Q0.shape
    if h <= n:
        return Q0
    _q, r = np.linalg.qr(Q0.T)  # Q0^T = q r, so Q0 Q0^T = r^T r
    return r.T


def _march(ops, Z, f, taus, fmax, num):
    """Z at each of the non-decreasing ``taus`` by semigroup steps of at most STEP/fmax, or,
    for hidden width 1 (a single column: the scaled step's shift is exact there), of the
    whole span over :data:`MAX_STEPS` when that is longer."""
    hmax = STEP / fmax
    if Z.shape[1] == 1 and len(taus):
        hmax = max(hmax, float(taus[-1]) / MAX_STEPS)
    out = []
    t = num(0)
    for tau in taus:
        while tau - t > 0:
            dt = min(tau - t, num(hmax))
            Z = ops.step(Z, f, dt)
            t = t + dt
        out.append(Z.copy())
    return out


# ---- single neuron: Kunin's nu, the implicit bias ---------------------------------------------
def kunin_nu(delta, s, nu0, tau, ops=np):
    r"""Kunin et al.'s :math:`\nu(\tau)` (unit rates, whitened), tanh and coth branches in one.

    .. math:: \nu(\tau) = \tfrac12\Bigl(-\delta + \frac{D\,T + c_0}{1 + c_0\,T/D}\Bigr),
              \quad T = \tanh(D\tau/2),\; c_0 = \delta + 2\nu_0,\; D = \sqrt{\delta^2 + 4s^2},

    which is :math:`\tfrac12(-\delta + D\tanh(D\tau/2 + \operatorname{artanh}(c_0/D)))` for
    :math:`|c_0| < D` and the coth form for :math:`|c_0| > D` (the addition theorem of tanh
    and coth is the same Möbius map). :math:`T/D \to \tau/2` as :math:`D\to 0`.
    (:math:`\nu` has a pole where :math:`a` crosses zero, possible for :math:`\delta < 0`.)
    Evaluated as :math:`\nu = \bigl(\nu_0 + (T/D)(2s^2 - \delta\nu_0)\bigr)/(1 + c_0T/D)`
    (the same map with :math:`-\delta` cancelled by hand: with :math:`\delta \gg \nu`
    the form above loses :math:`\log_{10}(\delta/\nu)` digits).
    """
    if ops is np:
        tau = np.asarray(tau, dtype=float)
        D = float(np.hypot(delta, 2 * s))
        T = np.tanh(D * tau / 2)
        TD = T / D if D > 0 else tau / 2
        c0 = delta + 2 * nu0
        with np.errstate(divide="ignore", invalid="ignore"):
            return (nu0 + TD * (2 * s * s - delta * nu0)) / (1 + c0 * TD)
    D = mpmath.sqrt(delta**2 + 4 * s**2)
    if delta + 2 * nu0 + D == 0:  # exactly at the unstable root: nu stays there
        return np.array([+nu0 for _ in tau], dtype=object)
    out = []
    for tv in tau:
        T = mpmath.tanh(D * tv / 2)
        TD = T / D if D != 0 else tv / 2
        c0 = delta + 2 * nu0
        den = 1 + c0 * TD
        out.append((nu0 + TD * (2 * s * s - delta * nu0)) / den if den != 0 else mpmath.nan)
    return np.array(out, dtype=object)


def nu_closed_form(model, times, precision=None):
    r""":math:`\nu(t) = w\cdot\beta^*/a` of a :class:`~exactdyn.SingleNeuron` (whitened).

    With rates, in the rescaled variables :math:`\nu_B = \sqrt{\eta_a/\eta_w}\,\nu`,
    :math:`\delta_B = \delta/\sqrt{\eta_a\eta_w}`, :math:`\tau = \sqrt{\eta_a\eta_w}\,t`.
    """
    if not model.whitened:
        raise ValueError("Kunin's nu(t) closed form needs whitened inputs (sigma_xx = None)")
    a0, w0 = model.init_aw()
    if a0 == 0:
        raise ValueError("nu = w.beta/a is undefined at a0 = 0")
    ea, ew = model.eta_a, model.eta_w
    if precision is None:
        s = float(np.linalg.norm(model.beta))
        r = np.sqrt(ea / ew)
        nu0 = r * float(w0 @ model.beta) / a0
        dB = (ew * a0**2 - ea * float(w0 @ w0)) / np.sqrt(ea * ew)
        D = float(np.hypot(dB, 2 * s))
        if abs(dB + 2 * nu0 + D) <= NU_CANCEL * D:
            # nu0 within rounding of the unstable root (-dB - D)/2 (a path into the saddle:
            # w anti-aligned with beta, near balance): the Möbius map's 1 + c0 T/D cancels
            # and float64's rounding of nu0 and delta sets where nu leaves the root.
            digits = 30
            nu = nu_closed_form(model, times, digits)
            with _mp.workdps(digits):
                return np.array([float(x) for x in nu])
        return kunin_nu(dB, s, nu0, np.asarray(times) * np.sqrt(ea * ew)) / r
    with _mp.workdps(precision + 10):
        mp = mpmath.mpf
        beta = [mp(float(x)) for x in model.beta]
        w = [mp(float(x)) for x in w0]
        a = mp(float(a0))
        s = mpmath.sqrt(mpmath.fsum(x * x for x in beta))
        r = mpmath.sqrt(mp(ea) / ew)
        nu0 = r * mpmath.fdot(w, beta) / a
        dB = (ew * a**2 - ea * mpmath.fdot(w, w)) / mpmath.sqrt(mp(ea) * ew)
        rate = mpmath.sqrt(mp(ea) * ew)
        nu = kunin_nu(dB, s, nu0, [mp(float(t)) * rate for t in times], ops=mpmath) / r
    with _mp.workdps(precision):
        return np.array([+x for x in nu], dtype=object)


def implicit_bias(model, sign=None):
    r"""The endpoint :math:`\beta_\infty = a_\infty w_\infty` of a single neuron on low-rank data.

    :math:`w` moves only within the row space of :math:`\Sigma_{xx}` (its gradient is
    :math:`a(\Sigma_{yx}^\top - \Sigma_{xx}wa)`), so the component
    :math:`w_\perp = P_\perp w_0` is frozen; the endpoint interpolates,
    :math:`\beta_\infty = \beta_{OLS} + a_\infty w_\perp`, and the conserved
    :math:`\delta = \eta_w a^2 - \eta_a\lVert w\rVert^2` with
    :math:`\lVert w_\infty\rVert^2 = \lVert\beta_{OLS}\rVert^2/a_\infty^2 + \lVert w_\perp\rVert^2`
    gives

    .. math:: a_\infty^2 = \frac{\delta + \eta_a\lVert w_\perp\rVert^2 +
              \sqrt{(\delta + \eta_a\lVert w_\perp\rVert^2)^2
              + 4\eta_a\eta_w\lVert\beta_{OLS}\rVert^2}}{2\eta_w}.

    So :math:`\beta_\infty = \beta_{OLS} + \alpha\,\hat n` with :math:`\alpha = a_\infty
    \lVert w_\perp\rVert`, :math:`\hat n = w_\perp/\lVert w_\perp\rVert` [K]. The sign of
    :math:`a_\infty` is that of :math:`a_0` when :math:`\delta > 0` (then
    :math:`a^2 \ge \delta/\eta_w > 0`: :math:`a` cannot cross zero); for
    :math:`\delta \le 0` give ``sign`` (+1 or -1) from a trajectory, else the sign of
    :math:`a_0` is assumed. (Derived by hand; checked numerically against the integrator.)
    """
    a0, w0 = model.init_aw()
    sxx = model.sxx
    ev, V = np.linalg.eigh(sxx)
    null = V[:, ev <= 1e-12 * ev.max()]
    w_perp = null @ (null.T @ w0)
    b_ols = model.w_star()[0]
    ea, ew = model.eta_a, model.eta_w
    c = model.delta + ea * float(w_perp @ w_perp)
    root = np.hypot(c, 2 * np.sqrt(ea * ew) * np.linalg.norm(b_ols))
    a2 = (c + root) / (2 * ew) if c >= 0 else 2 * ea * float(b_ols @ b_ols) / (root - c)
    if sign is None:
        sign = 1.0 if a0 >= 0 else -1.0
    elif sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    return b_ols + sign * np.sqrt(a2) * w_perp


def _symbolic(model):
    # sympy is imported only for the symbolic form: a float64 exact() never needs it
    from .linear_symbolic import LinearNetClosedForm

    return LinearNetClosedForm()


def _register():
    from ..models.linear import LinearNet, SingleNeuron
    from . import register_closed_form

    def exact_single_neuron(model, times, precision):
        return exact_linear(model, times, precision, kunin_nu=True)

    register_closed_form(LinearNet, exact_linear, _symbolic)
    register_closed_form(SingleNeuron, exact_single_neuron, _symbolic)


_register()
