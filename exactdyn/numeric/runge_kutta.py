r"""Explicit Runge–Kutta steppers for float64 flows: DOP853, RK45 and RK23, ported from scipy.

``scipy.integrate`` costs about 0.35 s to import (it brings ``scipy.optimize``,
``scipy.sparse``, ``scipy.linalg``, ``scipy.special``), more than a warm process's whole first
:func:`exactdyn.solve` of a family whose lowered flow is in the on-disk cache (issue 15,
item 4: at most 50 ms above the steady state). The explicit methods need none of it, so
they live here; :func:`solver_class` hands out these classes and imports
``scipy.integrate`` only for the implicit methods (Radau, BDF, LSODA), which
:mod:`exactdyn.numeric.stepping` also takes for a flow found at rest.

The code is a port of ``scipy.integrate._ivp`` (``rk.py``, ``base.py``, ``common.py`` and
``dop853_coefficients.py`` of scipy 1.17; SciPy is BSD-3-licensed, Copyright (c) 2001-2002
Enthought, Inc. 2003, SciPy Developers; its copyright notice and conditions are kept with
this credit): the same Butcher tableaux (module constants below), the same error norms,
step-size controller, initial step selection and dense output, and the same floating-point
operations in the same order, so a trajectory is bit for bit ``solve_ivp``'s
(``tests/test_runge_kutta.py`` checks the step sequence, the evaluation count and the
states against scipy). What differs: tolerances below 100 machine epsilon and unknown
keywords raise instead of warning, and the ``vectorized`` option (unused here) is gone.

The methods (``h`` the step, :math:`k_i` the stages, :math:`a_{ij}, b_i, c_i` a tableau):

.. math::

    k_1 = f(t_n, y_n), \quad k_i = f\Big(t_n + c_i h,\; y_n + h \sum_{j<i} a_{ij} k_j\Big),
    \quad y_{n+1} = y_n + h \sum_i b_i k_i,

with an embedded error estimate :math:`h \sum_i e_i k_i` (including :math:`k_{s+1} =
f(t_{n+1}, y_{n+1})`, first same as last), measured in the RMS norm scaled by
:math:`\mathrm{atol} + \mathrm{rtol}\,\max(|y_n|, |y_{n+1}|)`; a step whose error norm
:math:`\varepsilon` is below 1 is accepted and the next step is
:math:`h \min(10, 0.9\,\varepsilon^{-1/(q+1)})` (:math:`q` the estimator's order; at least
:math:`0.2h` after a rejection, at most :math:`h` right after one).

- **DOP853**: Dormand & Prince's explicit 8th-order method with the 5th- and 3rd-order
  error estimators and the 7th-order dense output of Hairer's ``DOP853`` code (E. Hairer,
  S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I: Nonstiff
  Problems*, 2nd ed., Springer 1993, §II.10; coefficients from Hairer's Fortran code as
  scipy prints them).
- **RK45**: Dormand & Prince, "A family of embedded Runge-Kutta formulae", J. Comput. Appl.
  Math. 6 (1980) 19–26, with Shampine's 4th-order dense output (L. F. Shampine, "Some
  Practical Runge-Kutta Formulas", Math. Comp. 46 (1986) 135–150).
- **RK23**: Bogacki & Shampine, "A 3(2) pair of Runge-Kutta formulas", Appl. Math. Lett.
  2 (1989) 321–325, with cubic Hermite dense output.
- The first step: :func:`select_initial_step` (Hairer, Nørsett & Wanner, §II.4).
"""

from __future__ import annotations

import math

import numpy as np

#: Machine epsilon of float64.
EPS = np.finfo(float).eps
#: Smallest relative tolerance the methods honour (scipy clips below it; here it raises).
MIN_RTOL = 100 * EPS
#: The step-size controller (scipy's ``rk.py``): the asymptotic step is multiplied by
#: SAFETY, and a step changes by at least MIN_FACTOR and at most MAX_FACTOR.
SAFETY = 0.9
MIN_FACTOR = 0.2
MAX_FACTOR = 10

# ---- Butcher tableaux ---------------------------------------------------------------------

#: Bogacki–Shampine 3(2): nodes, coefficients, weights, error weights (4 stages with FSAL)
#: and the cubic dense output's coefficients.
RK23_C = np.array([0, 1/2, 3/4])
RK23_A = np.array([
    [0, 0, 0],
    [1/2, 0, 0],
    [0, 3/4, 0]
])
RK23_B = np.array([2/9, 1/3, 4/9])
RK23_E = np.array([5/72, -1/12, -1/9, 1/8])
RK23_P = np.array([[1, -4 / 3, 5 / 9],
                   [0, 1, -2/3],
                   [0, 4/3, -8/9],
                   [0, -1, 1]])

#: Dormand–Prince 5(4): nodes, coefficients, weights, error weights (7 stages with FSAL)
#: and Shampine's quartic dense output (the optimum c_6 of his paper).
RK45_C = np.array([0, 1/5, 3/10, 4/5, 8/9, 1])
RK45_A = np.array([
    [0, 0, 0, 0, 0],
    [1/5, 0, 0, 0, 0],
    [3/40, 9/40, 0, 0, 0],
    [44/45, -56/15, 32/9, 0, 0],
    [19372/6561, -25360/2187, 64448/6561, -212/729, 0],
    [9017/3168, -355/33, 46732/5247, 49/176, -5103/18656]
])
RK45_B = np.array([35/384, 0, 500/1113, 125/192, -2187/6784, 11/84])
RK45_E = np.array([-71/57600, 0, 71/16695, -71/1920, 17253/339200, -22/525,
                   1/40])
RK45_P = np.array([
    [1, -8048581381/2820520608, 8663915743/2820520608,
     -12715105075/11282082432],
    [0, 0, 0, 0],
    [0, 131558114200/32700410799, -68118460800/10900136933,
     87487479700/32700410799],
    [0, -1754552775/470086768, 14199869525/1410260304,
     -10690763975/1880347072],
    [0, 127303824393/49829197408, -318862633887/49829197408,
     701980252875 / 199316789632],
    [0, -282668133/205662961, 2019193451/616988883, -1453857185/822651844],
    [0, 40617522/29380423, -110615467/29380423, 69997945/29380423]])

#: DOP853 (Hairer's code): 12 stages of the step, 16 with the three extra stages of the
#: dense output, an interpolant of degree 7. ``DOP853_A`` rows 0-11 are the step's
#: stages, row 12 its weights ``DOP853_B``, rows 13-15 the dense output's extra stages;
#: ``DOP853_E3``/``DOP853_E5`` the 3rd- and 5th-order error weights (13 entries, the last
#: on the FSAL stage), ``DOP853_D`` the interpolant's rows 3-6.
DOP853_N_STAGES = 12
DOP853_N_STAGES_EXTENDED = 16
DOP853_INTERPOLATOR_POWER = 7

DOP853_C = np.array([0.0,
              0.526001519587677318785587544488e-01,
              0.789002279381515978178381316732e-01,
              0.118350341907227396726757197510,
              0.281649658092772603273242802490,
              0.333333333333333333333333333333,
              0.25,
              0.307692307692307692307692307692,
              0.651282051282051282051282051282,
              0.6,
              0.857142857142857142857142857142,
              1.0,
              1.0,
              0.1,
              0.2,
              0.777777777777777777777777777778])

DOP853_A = np.zeros((DOP853_N_STAGES_EXTENDED, DOP853_N_STAGES_EXTENDED))
DOP853_A[1, 0] = 5.26001519587677318785587544488e-2

DOP853_A[2, 0] = 1.97250569845378994544595329183e-2
DOP853_A[2, 1] = 5.91751709536136983633785987549e-2

DOP853_A[3, 0] = 2.95875854768068491816892993775e-2
DOP853_A[3, 2] = 8.87627564304205475450678981324e-2

DOP853_A[4, 0] = 2.41365134159266685502369798665e-1
DOP853_A[4, 2] = -8.84549479328286085344864962717e-1
DOP853_A[4, 3] = 9.24834003261792003115737966543e-1

DOP853_A[5, 0] = 3.7037037037037037037037037037e-2
DOP853_A[5, 3] = 1.70828608729473871279604482173e-1
DOP853_A[5, 4] = 1.25467687566822425016691814123e-1

DOP853_A[6, 0] = 3.7109375e-2
DOP853_A[6, 3] = 1.70252211019544039314978060272e-1
DOP853_A[6, 4] = 6.02165389804559606850219397283e-2
DOP853_A[6, 5] = -1.7578125e-2

DOP853_A[7, 0] = 3.70920001185047927108779319836e-2
DOP853_A[7, 3] = 1.70383925712239993810214054705e-1
DOP853_A[7, 4] = 1.07262030446373284651809199168e-1
DOP853_A[7, 5] = -1.53194377486244017527936158236e-2
DOP853_A[7, 6] = 8.27378916381402288758473766002e-3

DOP853_A[8, 0] = 6.24110958716075717114429577812e-1
DOP853_A[8, 3] = -3.36089262944694129406857109825
DOP853_A[8, 4] = -8.68219346841726006818189891453e-1
DOP853_A[8, 5] = 2.75920996994467083049415600797e1
DOP853_A[8, 6] = 2.01540675504778934086186788979e1
DOP853_A[8, 7] = -4.34898841810699588477366255144e1

DOP853_A[9, 0] = 4.77662536438264365890433908527e-1
DOP853_A[9, 3] = -2.48811461997166764192642586468
DOP853_A[9, 4] = -5.90290826836842996371446475743e-1
DOP853_A[9, 5] = 2.12300514481811942347288949897e1
DOP853_A[9, 6] = 1.52792336328824235832596922938e1
DOP853_A[9, 7] = -3.32882109689848629194453265587e1
DOP853_A[9, 8] = -2.03312017085086261358222928593e-2

DOP853_A[10, 0] = -9.3714243008598732571704021658e-1
DOP853_A[10, 3] = 5.18637242884406370830023853209
DOP853_A[10, 4] = 1.09143734899672957818500254654
DOP853_A[10, 5] = -8.14978701074692612513997267357
DOP853_A[10, 6] = -1.85200656599969598641566180701e1
DOP853_A[10, 7] = 2.27394870993505042818970056734e1
DOP853_A[10, 8] = 2.49360555267965238987089396762
DOP853_A[10, 9] = -3.0467644718982195003823669022

DOP853_A[11, 0] = 2.27331014751653820792359768449
DOP853_A[11, 3] = -1.05344954667372501984066689879e1
DOP853_A[11, 4] = -2.00087205822486249909675718444
DOP853_A[11, 5] = -1.79589318631187989172765950534e1
DOP853_A[11, 6] = 2.79488845294199600508499808837e1
DOP853_A[11, 7] = -2.85899827713502369474065508674
DOP853_A[11, 8] = -8.87285693353062954433549289258
DOP853_A[11, 9] = 1.23605671757943030647266201528e1
DOP853_A[11, 10] = 6.43392746015763530355970484046e-1

DOP853_A[12, 0] = 5.42937341165687622380535766363e-2
DOP853_A[12, 5] = 4.45031289275240888144113950566
DOP853_A[12, 6] = 1.89151789931450038304281599044
DOP853_A[12, 7] = -5.8012039600105847814672114227
DOP853_A[12, 8] = 3.1116436695781989440891606237e-1
DOP853_A[12, 9] = -1.52160949662516078556178806805e-1
DOP853_A[12, 10] = 2.01365400804030348374776537501e-1
DOP853_A[12, 11] = 4.47106157277725905176885569043e-2

DOP853_A[13, 0] = 5.61675022830479523392909219681e-2
DOP853_A[13, 6] = 2.53500210216624811088794765333e-1
DOP853_A[13, 7] = -2.46239037470802489917441475441e-1
DOP853_A[13, 8] = -1.24191423263816360469010140626e-1
DOP853_A[13, 9] = 1.5329179827876569731206322685e-1
DOP853_A[13, 10] = 8.20105229563468988491666602057e-3
DOP853_A[13, 11] = 7.56789766054569976138603589584e-3
DOP853_A[13, 12] = -8.298e-3

DOP853_A[14, 0] = 3.18346481635021405060768473261e-2
DOP853_A[14, 5] = 2.83009096723667755288322961402e-2
DOP853_A[14, 6] = 5.35419883074385676223797384372e-2
DOP853_A[14, 7] = -5.49237485713909884646569340306e-2
DOP853_A[14, 10] = -1.08347328697249322858509316994e-4
DOP853_A[14, 11] = 3.82571090835658412954920192323e-4
DOP853_A[14, 12] = -3.40465008687404560802977114492e-4
DOP853_A[14, 13] = 1.41312443674632500278074618366e-1

DOP853_A[15, 0] = -4.28896301583791923408573538692e-1
DOP853_A[15, 5] = -4.69762141536116384314449447206
DOP853_A[15, 6] = 7.68342119606259904184240953878
DOP853_A[15, 7] = 4.06898981839711007970213554331
DOP853_A[15, 8] = 3.56727187455281109270669543021e-1
DOP853_A[15, 12] = -1.39902416515901462129418009734e-3
DOP853_A[15, 13] = 2.9475147891527723389556272149
DOP853_A[15, 14] = -9.15095847217987001081870187138


DOP853_B = DOP853_A[DOP853_N_STAGES, :DOP853_N_STAGES]

DOP853_E3 = np.zeros(DOP853_N_STAGES + 1)
DOP853_E3[:-1] = DOP853_B.copy()
DOP853_E3[0] -= 0.244094488188976377952755905512
DOP853_E3[8] -= 0.733846688281611857341361741547
DOP853_E3[11] -= 0.220588235294117647058823529412e-1

DOP853_E5 = np.zeros(DOP853_N_STAGES + 1)
DOP853_E5[0] = 0.1312004499419488073250102996e-1
DOP853_E5[5] = -0.1225156446376204440720569753e+1
DOP853_E5[6] = -0.4957589496572501915214079952
DOP853_E5[7] = 0.1664377182454986536961530415e+1
DOP853_E5[8] = -0.3503288487499736816886487290
DOP853_E5[9] = 0.3341791187130174790297318841
DOP853_E5[10] = 0.8192320648511571246570742613e-1
DOP853_E5[11] = -0.2235530786388629525884427845e-1

# The first 3 rows of the interpolant come from the step itself (Dop853DenseOutput).
DOP853_D = np.zeros((DOP853_INTERPOLATOR_POWER - 3, DOP853_N_STAGES_EXTENDED))
DOP853_D[0, 0] = -0.84289382761090128651353491142e+1
DOP853_D[0, 5] = 0.56671495351937776962531783590
DOP853_D[0, 6] = -0.30689499459498916912797304727e+1
DOP853_D[0, 7] = 0.23846676565120698287728149680e+1
DOP853_D[0, 8] = 0.21170345824450282767155149946e+1
DOP853_D[0, 9] = -0.87139158377797299206789907490
DOP853_D[0, 10] = 0.22404374302607882758541771650e+1
DOP853_D[0, 11] = 0.63157877876946881815570249290
DOP853_D[0, 12] = -0.88990336451333310820698117400e-1
DOP853_D[0, 13] = 0.18148505520854727256656404962e+2
DOP853_D[0, 14] = -0.91946323924783554000451984436e+1
DOP853_D[0, 15] = -0.44360363875948939664310572000e+1

DOP853_D[1, 0] = 0.10427508642579134603413151009e+2
DOP853_D[1, 5] = 0.24228349177525818288430175319e+3
DOP853_D[1, 6] = 0.16520045171727028198505394887e+3
DOP853_D[1, 7] = -0.37454675472269020279518312152e+3
DOP853_D[1, 8] = -0.22113666853125306036270938578e+2
DOP853_D[1, 9] = 0.77334326684722638389603898808e+1
DOP853_D[1, 10] = -0.30674084731089398182061213626e+2
DOP853_D[1, 11] = -0.93321305264302278729567221706e+1
DOP853_D[1, 12] = 0.15697238121770843886131091075e+2
DOP853_D[1, 13] = -0.31139403219565177677282850411e+2
DOP853_D[1, 14] = -0.93529243588444783865713862664e+1
DOP853_D[1, 15] = 0.35816841486394083752465898540e+2

DOP853_D[2, 0] = 0.19985053242002433820987653617e+2
DOP853_D[2, 5] = -0.38703730874935176555105901742e+3
DOP853_D[2, 6] = -0.18917813819516756882830838328e+3
DOP853_D[2, 7] = 0.52780815920542364900561016686e+3
DOP853_D[2, 8] = -0.11573902539959630126141871134e+2
DOP853_D[2, 9] = 0.68812326946963000169666922661e+1
DOP853_D[2, 10] = -0.10006050966910838403183860980e+1
DOP853_D[2, 11] = 0.77771377980534432092869265740
DOP853_D[2, 12] = -0.27782057523535084065932004339e+1
DOP853_D[2, 13] = -0.60196695231264120758267380846e+2
DOP853_D[2, 14] = 0.84320405506677161018159903784e+2
DOP853_D[2, 15] = 0.11992291136182789328035130030e+2

DOP853_D[3, 0] = -0.25693933462703749003312586129e+2
DOP853_D[3, 5] = -0.15418974869023643374053993627e+3
DOP853_D[3, 6] = -0.23152937917604549567536039109e+3
DOP853_D[3, 7] = 0.35763911791061412378285349910e+3
DOP853_D[3, 8] = 0.93405324183624310003907691704e+2
DOP853_D[3, 9] = -0.37458323136451633156875139351e+2
DOP853_D[3, 10] = 0.10409964950896230045147246184e+3
DOP853_D[3, 11] = 0.29840293426660503123344363579e+2
DOP853_D[3, 12] = -0.43533456590011143754432175058e+2
DOP853_D[3, 13] = 0.96324553959188282948394950600e+2
DOP853_D[3, 14] = -0.39177261675615439165231486172e+2
DOP853_D[3, 15] = -0.14972683625798562581422125276e+3


# ---- the solvers --------------------------------------------------------------------------

def rms_norm(x) -> float:
    """The RMS norm :math:`\\lVert x\\rVert_2/\\sqrt{n}` (scipy's ``common.norm``)."""
    return np.linalg.norm(x) / x.size ** 0.5


def select_initial_step(fun, t0, y0, t_bound, max_step, f0, direction, order, rtol, atol):
    r"""The first step's size, as in Hairer, Nørsett & Wanner (*Solving ODEs I*, §II.4,
    and scipy's ``select_initial_step``): with :math:`s = \mathrm{atol} +
    \mathrm{rtol}|y_0|`, :math:`d_0 = \lVert y_0/s\rVert`, :math:`d_1 = \lVert f_0/s
    \rVert`, :math:`h_0 = 0.01\,d_0/d_1` (:math:`10^{-6}` if either is below
    :math:`10^{-5}`), :math:`d_2 = \lVert (f(t_0 + h_0, y_0 + h_0 f_0) - f_0)/s\rVert
    / h_0` and :math:`h_1 = (0.01/\max(d_1, d_2))^{1/(q+1)}`; the step is
    :math:`\min(100 h_0, h_1)`, within the interval and ``max_step``. ``order`` is the
    error estimator's order :math:`q`; ``fun`` is evaluated once."""
    if y0.size == 0:
        return np.inf

    interval_length = abs(t_bound - t0)
    if interval_length == 0.0:
        return 0.0

    scale = atol + np.abs(y0) * rtol
    d0 = rms_norm(y0 / scale)
    d1 = rms_norm(f0 / scale)
    if d0 < 1e-5 or d1 < 1e-5:
        h0 = 1e-6
    else:
        h0 = 0.01 * d0 / d1
    # t0 + h0 * direction must not go beyond t_bound (fun is evaluated inside the interval).
    h0 = min(h0, interval_length)
    y1 = y0 + h0 * direction * f0
    f1 = fun(t0 + h0 * direction, y1)
    d2 = rms_norm((f1 - f0) / scale) / h0

    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1 / (order + 1))

    return min(100 * h0, h1, interval_length, max_step)


class DenseOutput:
    """The solution between two accepted times ``t_old`` and ``t``: ``dense(t)`` at a
    time (a state) or at a 1-D array of times (states as columns), as scipy's."""

    def __init__(self, t_old, t):
        self.t_old = t_old
        self.t = t
        self.t_min = min(t, t_old)
        self.t_max = max(t, t_old)

    def __call__(self, t):
        t = np.asarray(t)
        if t.ndim > 1:
            raise ValueError(f"t must be a float or a 1-D array, not of shape {t.shape}")
        return self._call_impl(t)

    def _call_impl(self, t):  # pragma: no cover  (every subclass defines it)
        raise NotImplementedError


class ConstantDenseOutput(DenseOutput):
    """A step of length zero (or an empty state): the state itself at every time."""

    def __init__(self, t_old, t, value):
        super().__init__(t_old, t)
        self.value = value

    def _call_impl(self, t):
        if t.ndim == 0:
            return self.value
        ret = np.empty((self.value.shape[0], t.shape[0]))
        ret[:] = self.value[:, None]
        return ret


class RkDenseOutput(DenseOutput):
    r"""The continuous extension of RK23/RK45: :math:`y(t_{old} + xh) = y_{old} +
    h\,Q\,(x, x^2, \dots, x^{p+1})^T` with :math:`Q = K^T P`."""

    def __init__(self, t_old, t, y_old, Q):
        super().__init__(t_old, t)
        self.h = t - t_old
        self.Q = Q
        self.order = Q.shape[1] - 1
        self.y_old = y_old

    def _call_impl(self, t):
        x = (t - self.t_old) / self.h
        if t.ndim == 0:
            p = np.tile(x, self.order + 1)
            p = np.cumprod(p)
        else:
            p = np.tile(x, (self.order + 1, 1))
            p = np.cumprod(p, axis=0)
        y = self.h * np.dot(self.Q, p)
        if y.ndim == 2:
            y += self.y_old[:, None]
        else:
            y += self.y_old
        return y

    def power_coefficients(self):
        r"""(order + 2, n) array C with :math:`y(t_{old} + xh) = \sum_p C_p x^p`:
        :math:`C_0 = y_{old}`, :math:`C_p = h\,Q_{:,p-1}` (the class docstring's form)."""
        C = np.empty((self.order + 2, len(self.y_old)), dtype=self.y_old.dtype)
        C[0] = self.y_old
        C[1:] = self.h * self.Q.T
        return C


class Dop853DenseOutput(DenseOutput):
    r"""DOP853's 7th-order continuous extension, Hairer's nested form:
    :math:`y = y_{old} + x(F_0 + (1-x)(F_1 + x(F_2 + (1-x)(F_3 + \dots))))`."""

    def __init__(self, t_old, t, y_old, F):
        super().__init__(t_old, t)
        self.h = t - t_old
        self.F = F
        self.y_old = y_old

    def _call_impl(self, t):
        x = (t - self.t_old) / self.h
        if t.ndim == 0:
            y = np.zeros_like(self.y_old)
        else:
            x = x[:, None]
            y = np.zeros((len(x), len(self.y_old)), dtype=self.y_old.dtype)
        for i, f in enumerate(reversed(self.F)):
            y += f
            if i % 2 == 0:
                y *= x
            else:
                y *= 1 - x
        y += self.y_old
        return y.T

    def power_coefficients(self):
        r"""(8, n) array C with :math:`y(t_{old} + xh) = \sum_{p=0}^{7} C_p x^p`, the nested
        form expanded in powers of x (:func:`_dop853_power_basis`; :math:`C_0 = y_{old}`
        exactly, every term of the nested form carries a factor x). Margins linear in the
        state are then polynomials in x with coefficients from one product (event
        location on the step's own polynomial, :mod:`exactdyn.numeric.kinks`)."""
        B = _dop853_power_basis(len(self.F))
        C = B.T @ self.F
        C[0] += self.y_old
        return C


def _dop853_power_basis(rows: int) -> np.ndarray:
    r"""(rows, rows + 1): row r the coefficients (ascending powers of x) of the factor
    multiplying :math:`F_r` in Hairer's nested form
    :math:`x(F_0 + (1-x)(F_1 + x(F_2 + \dots)))`, i.e. :math:`x^{\lceil (r+1)/2\rceil}
    (1-x)^{\lfloor (r+1)/2 \rfloor}`; integers, so exact. Cached per row count."""
    cached = _POWER_BASIS.get(rows)
    if cached is not None:
        return cached
    B = np.zeros((rows, rows + 1))
    for r in range(rows):
        ones_minus_x = (r + 1) // 2
        xs = r + 1 - ones_minus_x
        # x^xs (1 - x)^ones_minus_x = sum_i C(k, i) (-1)^i x^(xs + i)
        for i in range(ones_minus_x + 1):
            B[r, xs + i] = math.comb(ones_minus_x, i) * (-1) ** i
    _POWER_BASIS[rows] = B
    return B


_POWER_BASIS: dict = {}


def rk_step(fun, t, y, f, h, A, B, C, K):
    """One explicit Runge–Kutta step of size ``h`` from ``(t, y)`` with ``f = fun(t, y)``:
    ``(y_new, f_new)``; the stages are written into ``K`` (``K[-1]`` = ``f_new``, the
    first stage of the next step)."""
    K[0] = f
    for s, (a, c) in enumerate(zip(A[1:], C[1:]), start=1):
        dy = np.dot(K[:s].T, a[:s]) * h
        K[s] = fun(t + c * h, y + dy)

    y_new = y + h * np.dot(K[:-1].T, B)
    f_new = fun(t + h, y_new)

    K[-1] = f_new

    return y_new, f_new


class RungeKutta:
    """An explicit Runge–Kutta method with an embedded error estimate, stepping ``fun(t,
    y)`` from ``(t0, y0)`` towards ``t_bound`` (either direction) one accepted step per
    :meth:`step`, as scipy's ``OdeSolver``: the attributes ``t``, ``y``, ``f`` (the rhs at
    ``(t, y)``), ``t_old``, ``y_old``, ``status`` (``"running"``, ``"finished"``,
    ``"failed"``), ``nfev`` (``njev`` and ``nlu`` are 0), ``K`` (the last step's stages)
    and :meth:`dense_output` of the last step.

    Parameters
    ----------
    fun : callable
        The right-hand side ``fun(t, y)`` (a 1-D array like ``y``).
    t0, y0 : float, array_like
        The initial time and state (1-D, finite; real or complex).
    t_bound : float
        The time to reach.
    max_step : float
        The largest step allowed (default unbounded).
    rtol, atol : float or array_like
        Relative (at least :data:`MIN_RTOL`) and absolute (non-negative, a scalar or one per
        entry) tolerances of the local error.
    first_step : float, optional
        The first step's size (default: :func:`select_initial_step`); positive, within the
        interval.
    """

    TOO_SMALL_STEP = "Required step size is less than spacing between numbers."
    C: np.ndarray
    A: np.ndarray
    B: np.ndarray
    E: np.ndarray
    P: np.ndarray
    order: int
    error_estimator_order: int
    n_stages: int

    def __init__(self, fun, t0, y0, t_bound, max_step=np.inf, rtol=1e-3, atol=1e-6,
                 first_step=None):
        self.t_old = None
        self.t = t0
        self._fun, self.y = _check_arguments(fun, y0)
        self.t_bound = t_bound

        def counted(t, y):
            self.nfev += 1
            return self._fun(t, y)

        self.fun = counted
        self.direction = np.sign(t_bound - t0) if t_bound != t0 else 1
        self.n = self.y.size
        self.status = "running"
        self.nfev = 0
        self.njev = 0
        self.nlu = 0

        self.y_old = None
        if max_step <= 0:
            raise ValueError(f"max_step must be positive, got {max_step!r}")
        self.max_step = max_step
        self.rtol, self.atol = _check_tolerances(rtol, atol, self.n)
        self.f = self.fun(self.t, self.y)
        if first_step is None:
            self.h_abs = select_initial_step(
                self.fun, self.t, self.y, t_bound, max_step, self.f, self.direction,
                self.error_estimator_order, self.rtol, self.atol)
        else:
            if first_step <= 0:
                raise ValueError(f"first_step must be positive, got {first_step!r}")
            if first_step > np.abs(t_bound - t0):
                raise ValueError(f"first_step={first_step!r} exceeds the interval from "
                                 f"t0={t0!r} to t_bound={t_bound!r}")
            self.h_abs = first_step
        self.K = np.empty((self.n_stages + 1, self.n), dtype=self.y.dtype)
        self.error_exponent = -1 / (self.error_estimator_order + 1)
        self.h_previous = None

    @property
    def step_size(self):
        """The last accepted step's size (``None`` before the first)."""
        if self.t_old is None:
            return None
        return np.abs(self.t - self.t_old)

    def step(self):
        """One accepted step (rejected trials repeat inside); returns ``None`` or, when the
        step size collapsed (``status`` then ``"failed"``), the reason."""
        if self.status != "running":
            raise RuntimeError("Attempt to step on a failed or finished solver.")

        if self.n == 0 or self.t == self.t_bound:
            # Handle corner cases of empty solver or no integration.
            self.t_old = self.t
            self.t = self.t_bound
            message = None
            self.status = "finished"
        else:
            t = self.t
            success, message = self._step_impl()

            if not success:
                self.status = "failed"
            else:
                self.t_old = t
                if self.direction * (self.t - self.t_bound) >= 0:
                    self.status = "finished"

        return message

    def dense_output(self):
        """The continuous extension over the last accepted step (:class:`DenseOutput`)."""
        if self.t_old is None:
            raise RuntimeError("Dense output is available after a successful step was made.")

        if self.n == 0 or self.t == self.t_old:
            # Handle corner cases of empty solver and no integration.
            return ConstantDenseOutput(self.t_old, self.t, self.y)
        return self._dense_output_impl()

    def _estimate_error(self, K, h):
        return np.dot(K.T, self.E) * h

    def _estimate_error_norm(self, K, h, scale):
        return rms_norm(self._estimate_error(K, h) / scale)

    def _step_impl(self):
        t = self.t
        y = self.y

        max_step = self.max_step
        rtol = self.rtol
        atol = self.atol

        min_step = 10 * np.abs(np.nextafter(t, self.direction * np.inf) - t)

        if self.h_abs > max_step:
            h_abs = max_step
        elif self.h_abs < min_step:
            h_abs = min_step
        else:
            h_abs = self.h_abs

        step_accepted = False
        step_rejected = False

        while not step_accepted:
            if h_abs < min_step:
                return False, self.TOO_SMALL_STEP

            h = h_abs * self.direction
            t_new = t + h

            if self.direction * (t_new - self.t_bound) > 0:
                t_new = self.t_bound

            h = t_new - t
            h_abs = np.abs(h)

            y_new, f_new = rk_step(self.fun, t, y, self.f, h, self.A,
                                   self.B, self.C, self.K)
            scale = atol + np.maximum(np.abs(y), np.abs(y_new)) * rtol
            error_norm = self._estimate_error_norm(self.K, h, scale)

            if error_norm < 1:
                if error_norm == 0:
                    factor = MAX_FACTOR
                else:
                    factor = min(MAX_FACTOR,
                                 SAFETY * error_norm ** self.error_exponent)

                if step_rejected:
                    factor = min(1, factor)

                h_abs *= factor

                step_accepted = True
            else:
                h_abs *= max(MIN_FACTOR,
                             SAFETY * error_norm ** self.error_exponent)
                step_rejected = True

        self.h_previous = h
        self.y_old = y

        self.t = t_new
        self.y = y_new

        self.h_abs = h_abs
        self.f = f_new

        return True, None

    def _dense_output_impl(self):
        Q = self.K.T.dot(self.P)
        return RkDenseOutput(self.t_old, self.t, self.y_old, Q)


class RK23(RungeKutta):
    """Bogacki–Shampine 3(2) (the module docstring): order 3, error estimator of order 2,
    cubic Hermite dense output."""

    order = 3
    error_estimator_order = 2
    n_stages = 3
    C = RK23_C
    A = RK23_A
    B = RK23_B
    E = RK23_E
    P = RK23_P


class RK45(RungeKutta):
    """Dormand–Prince 5(4) (the module docstring): order 5, error estimator of order 4,
    Shampine's quartic dense output."""

    order = 5
    error_estimator_order = 4
    n_stages = 6
    C = RK45_C
    A = RK45_A
    B = RK45_B
    E = RK45_E
    P = RK45_P


class DOP853(RungeKutta):
    r"""Hairer's DOP853 (the module docstring): order 8; the error norm combines the
    5th- and 3rd-order estimates :math:`e_5, e_3` (scaled entrywise) as
    :math:`|h|\,\lVert e_5\rVert^2 / \sqrt{n(\lVert e_5\rVert^2 + 0.01\lVert
    e_3\rVert^2)}`; the 7th-order dense output takes three more evaluations per step
    that asks for it."""

    n_stages = DOP853_N_STAGES
    order = 8
    error_estimator_order = 7
    A = DOP853_A[:n_stages, :n_stages]
    B = DOP853_B
    C = DOP853_C[:n_stages]
    E3 = DOP853_E3
    E5 = DOP853_E5
    D = DOP853_D

    A_EXTRA = DOP853_A[n_stages + 1:]
    C_EXTRA = DOP853_C[n_stages + 1:]

    def __init__(self, fun, t0, y0, t_bound, max_step=np.inf, rtol=1e-3, atol=1e-6,
                 first_step=None):
        super().__init__(fun, t0, y0, t_bound, max_step, rtol, atol, first_step)
        self.K_extended = np.empty((DOP853_N_STAGES_EXTENDED, self.n), dtype=self.y.dtype)
        self.K = self.K_extended[:self.n_stages + 1]

    def _estimate_error(self, K, h):
        # The per-entry error whose RMS norm _estimate_error_norm computes (scipy keeps it
        # for testing; so does tests/test_runge_kutta.py).
        err5 = np.dot(K.T, self.E5)
        err3 = np.dot(K.T, self.E3)
        denom = np.hypot(np.abs(err5), 0.1 * np.abs(err3))
        correction_factor = np.ones_like(err5)
        mask = denom > 0
        correction_factor[mask] = np.abs(err5[mask]) / denom[mask]
        return h * err5 * correction_factor

    def _estimate_error_norm(self, K, h, scale):
        err5 = np.dot(K.T, self.E5) / scale
        err3 = np.dot(K.T, self.E3) / scale
        err5_norm_2 = np.linalg.norm(err5)**2
        err3_norm_2 = np.linalg.norm(err3)**2
        if err5_norm_2 == 0 and err3_norm_2 == 0:
            return 0.0
        denom = err5_norm_2 + 0.01 * err3_norm_2
        return np.abs(h) * err5_norm_2 / np.sqrt(denom * len(scale))

    def _dense_output_impl(self):
        K = self.K_extended
        h = self.h_previous
        for s, (a, c) in enumerate(zip(self.A_EXTRA, self.C_EXTRA),
                                   start=self.n_stages + 1):
            dy = np.dot(K[:s].T, a[:s]) * h
            K[s] = self.fun(self.t_old + c * h, self.y_old + dy)

        F = np.empty((DOP853_INTERPOLATOR_POWER, self.n), dtype=self.y_old.dtype)

        f_old = K[0]
        delta_y = self.y - self.y_old

        F[0] = delta_y
        F[1] = h * f_old - delta_y
        F[2] = 2 * delta_y - h * (self.f + f_old)
        F[3:] = h * np.dot(self.D, K)

        return Dop853DenseOutput(self.t_old, self.t, self.y_old, F)


def _check_arguments(fun, y0):
    y0 = np.asarray(y0)
    dtype = complex if np.issubdtype(y0.dtype, np.complexfloating) else float
    y0 = y0.astype(dtype, copy=False)
    if y0.ndim != 1:
        raise ValueError(f"y0 must be 1-dimensional, got shape {y0.shape}")
    if not np.isfinite(y0).all():
        raise ValueError("y0 must be finite in every entry")

    def fun_wrapped(t, y):
        return np.asarray(fun(t, y), dtype=dtype)

    return fun_wrapped, y0


def _check_tolerances(rtol, atol, n):
    if np.any(np.asarray(rtol) < MIN_RTOL):
        raise ValueError(f"rtol={rtol!r} is below 100 * machine epsilon ({MIN_RTOL:.3g}), "
                         "which these methods cannot honour")
    atol = np.asarray(atol)
    if atol.ndim > 0 and atol.shape != (n,):
        raise ValueError(f"atol has shape {atol.shape}; give a scalar or one per entry ({n},)")
    if np.any(atol < 0):
        raise ValueError("atol must be non-negative")
    return rtol, atol


#: exactdyn's explicit methods by ``solve_ivp`` name.
EXPLICIT_METHODS = {"DOP853": DOP853, "RK45": RK45, "RK23": RK23}


def solver_class(method: str):
    """The stepper class of ``solve_ivp``'s ``method``: this module's for the explicit
    methods (:data:`EXPLICIT_METHODS`), else scipy's (Radau, BDF, LSODA; importing
    ``scipy.integrate`` only then)."""
    if method in EXPLICIT_METHODS:
        return EXPLICIT_METHODS[method]
    from scipy.integrate._ivp.ivp import METHODS

    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {sorted(METHODS)}")
    return METHODS[method]
