r"""The authors' own training procedures as references (issue 17, part 3).

Each public code base behind a model of exactdyn is ported here in plain numpy — its
data, its init and its update rule, as written in the authors' files — and its gradient
descent is run at four learning rates to a fixed time :math:`T`. After translating the
conventions (the loss normalization, the time axis, the output scale, the mirrored init),
the error against exactdyn's gradient flow (``ed.solve``, rtol 1e-12) must fall at first
order in the learning rate: the fitted log-log slope is 1.0 ± 0.1. A second, stricter
check: after the same translation the port's iterates equal ``ed.gd``'s to rounding
(two independent codes for one map).

Repositories (fetched snapshots; paths and commits cited at each port):

- ``eboursier/early_alignment`` at 3377874c110bda1e18bf1738428032ddb3a83810:
  ``early_alignment.py`` (``Net``, the ``"3 points"`` data, ``MSELoss(reduction='mean')``,
  ``torch.optim.SGD``). Boursier & Flammarion, "Early alignment in two-layer networks
  training is a two-edged sword" (2024).
- ``allanraventos/getrichquick`` at 5a3c250c5a1905b58bf42418de4fa7cf095e9868:
  ``two-layer-relu/utils.py`` (``TeacherNetwork``, ``StudentNetwork``, ``get_alpha``,
  ``fit_nn_gd``), ``two-layer-relu/run_grid.py`` (the data and the rate ``base_lr/scale²``)
  and ``single-neuron/Single_Neuron.ipynb`` (cells 14 and 17: ``get_gradient``,
  ``coordinates``; cells 25 and 27: the data of Figures 4(b) and 8). Kunin et al., "Get rich
  quick", arXiv:2406.06158.
- ``xuzhiqin1990/phasediagram_twolayerNN`` at 2bf160739e3633c4888cfa10aefb0daafe883c53:
  ``scalestudy1d_191224.py`` and ``hdscalestudy200721.py`` (``getWini``, ``univAprox2`` with
  ``ASI``, ``reduce_mean(square)``, ``GradientDescentOptimizer``, the exponents ``gam1``,
  ``gam2``, ``beta1exp``). Luo, Xu, Ma, Zhang, "Phase diagram for two-layer ReLU neural
  networks at infinite-width limit", JMLR 22 (2021) 71.

The ports draw their random numbers from numpy, not from torch or TensorFlow: the
distributions are the authors', the streams are not (their seeds cannot be replayed here).
The measured orders are listed in docs/papers/procedures.md.
"""

from __future__ import annotations

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.models.datasets import boursier_flammarion_instance, digits


def halving_rates(T, lr_max, factor):
    """Four learning rates lr_max ≥ lr_1 > lr_2 > lr_3 > lr_4 (halving) and their step counts,
    each run ending exactly at flow time T = factor × lr × steps."""
    steps = int(np.ceil(T / (factor * lr_max) - 1e-9)) * 2 ** np.arange(4)
    return T / (factor * steps), steps


def fitted_order(lrs, errors) -> float:
    """Slope of log(error) against log(lr), least squares."""
    return float(np.polyfit(np.log(lrs), np.log(errors), 1)[0])


def flow_at(model, T):
    """exactdyn's gradient flow at time T (an independent integrator: DOP853 on the lowered
    derived flow, kinks located by event)."""
    return ed.solve(model, [0.0, T], rtol=1e-12)


# ---- Boursier & Flammarion, eboursier/early_alignment ---------------------------------------

def bf_init(m, init_scale, rng, initialisation="balanced", zero_output=False):
    r"""``Net.__init__`` of early_alignment.py (n_feature = 1, bias_hidden = True).

    ``self.init_scale = init_scale/np.sqrt(n_hidden)``; ``balanced``: w, b ~ N(0, s²),
    a = ±‖(w, b)‖ (Bernoulli signs); ``unbalanced``: w, b, a ~ N(0, s²); ``dominated``:
    w, b ~ U[-s, s], a = ±s√2. ``zero_output``: the second half copies the first half's
    hidden weights, with negated output weights.
    """
    s = init_scale / np.sqrt(m)
    if initialisation == "balanced":
        w, b = rng.normal(0.0, s, m), rng.normal(0.0, s, m)
        a = (2.0 * rng.binomial(1, 0.5, m) - 1.0) * np.sqrt(w**2 + b**2)
    elif initialisation == "unbalanced":
        w, b, a = rng.normal(0.0, s, m), rng.normal(0.0, s, m), rng.normal(0.0, s, m)
    elif initialisation == "dominated":
        w = rng.uniform(-s, s, m)
        a = (2.0 * rng.binomial(1, 0.5, m) - 1.0) * s
        b = rng.uniform(-s, s, m)
        a = a * np.sqrt(2.0)
    else:
        raise ValueError(initialisation)
    if zero_output:
        h = m // 2
        w[h:], b[h:], a[h:] = w[:h], b[:h], -a[:h]
    return w, b, a


def bf_gd(w, b, a, x, y, lr, steps):
    r"""The training loop of early_alignment.py: ``prediction = net(x)``,
    ``MSELoss(reduction='mean')`` = :math:`\frac1n\sum_i (f(x_i) - y_i)^2` (no ½),
    ``loss.backward()``, ``SGD(lr).step()`` on the full batch; ReLU'(0) = 0 as in torch."""
    w, b, a = w.copy(), b.copy(), a.copy()
    n = x.size
    for _ in range(steps):
        z = np.outer(x, w) + b                      # hidden pre-activations (n, m)
        h = np.maximum(z, 0.0)
        g = 2.0 * (h @ a - y) / n                   # dLoss/dprediction
        dz = np.outer(g, a) * (z > 0)
        w, b, a = w - lr * (dz.T @ x), b - lr * dz.sum(axis=0), a - lr * (h.T @ g)
    return w, b, a


def bf_model(w, b, a, x, y):
    """exactdyn's network for their Net: f = Σ a_j relu(w_j x + b_j), α = 1, the bias as the
    last input weight (W = [w, b])."""
    return ed.TwoLayer.from_init(a, np.column_stack([w, b]), x[:, None], y, activation="relu",
                                 alpha=1.0, bias=True)


BF_X = np.array([-0.75, -0.5, 0.125])   # early_alignment.py, data == '3 points'
BF_Y = np.array([1.1, 0.1, 0.8])


def bf_data(name, rng):
    """``--data``: ``'3 points'``, or ``'stewart'`` (40 points x ~ U[-1, 1], y the piecewise
    linear interpolation of Stewart et al.'s nine knots, ``np.interp``)."""
    if name == "3 points":
        return BF_X, BF_Y
    x_stew = np.array([-1, -0.7, -0.55, -0.4, 0, 0.5, 0.6, 0.7, 1])
    y_stew = np.array([0, 0.7, 0.5, 1, 0, 1, 0.6, 0.7, 0])
    x = rng.uniform(-1, 1, 40)
    return x, np.interp(x, x_stew, y_stew)


def test_bf_three_points_are_exactdyns_instance():
    X, y = boursier_flammarion_instance()
    np.testing.assert_array_equal(X[:, 0], BF_X)
    np.testing.assert_array_equal(y, BF_Y)


# (data, initialisation, zero_output, width, init_scale, T): T in flow time (= 2 lr steps).
# Their default --init_scale 1e-3 (the early-alignment phase: 29 kinks by T = 10 at width
# 20), their default data 'stewart', and each init at scale 0.5 (the network fits within
# T = 2, crossing 0 to 4 kinks).
BF_CASES = [("3 points", "balanced", False, 20, 1e-3, 10.0),
            ("stewart", "balanced", False, 20, 1e-3, 10.0),
            ("3 points", "balanced", False, 6, 0.5, 2.0),
            ("3 points", "unbalanced", False, 6, 0.5, 2.0),
            ("3 points", "dominated", False, 6, 0.5, 2.0),
            ("3 points", "balanced", True, 6, 0.5, 2.0)]


def _bf_id(c):
    return f"{c[0].replace(' ', '')}-{c[1]}{'-zero_output' if c[2] else ''}-scale={c[4]}"


def bf_run(case, lr_max=0.008, check_gd=True):
    """Their GD at four rates against the flow: ``(lrs, errors at T, flow)``."""
    data, init, zero, m, lam, T = case
    rng = np.random.default_rng(0)
    x, y = bf_data(data, rng)
    w0, b0, a0 = bf_init(m, lam, rng, init, zero)
    model = bf_model(w0, b0, a0, x, y)
    flow = flow_at(model, T)
    ref = np.concatenate([flow["W"][-1][:, 0], flow["W"][-1][:, 1], flow["a"][-1]])
    # Their loss is 2 L (no ½): flow time t = 2 lr steps. Default rates: from 8 × their
    # --learning_rate 0.001 down to it.
    lrs, steps = halving_rates(T, lr_max, 2.0)
    errors = []
    for lr, k in zip(lrs, steps):
        w, b, a = bf_gd(w0, b0, a0, x, y, lr, k)
        errors.append(np.linalg.norm(np.concatenate([w, b, a]) - ref))
        if check_gd:  # same map, two codes: exactdyn's GD on L = (1/2n) Σ r², step 2 lr
            g = ed.gd(model, 2 * lr, T)
            np.testing.assert_allclose(g["W"][-1], np.column_stack([w, b]), rtol=0,
                                       atol=1e-13)
            np.testing.assert_allclose(g["a"][-1], a, rtol=0, atol=1e-13)
    return lrs, errors, flow


@pytest.mark.parametrize("case", BF_CASES, ids=_bf_id)
def test_bf_gd_converges_to_the_flow_at_order_1(case):
    lrs, errors, flow = bf_run(case)
    assert abs(fitted_order(lrs, errors) - 1.0) < 0.1, errors
    if case[2]:  # the mirrored init starts at f = 0
        assert abs(flow["loss"][0] - np.mean(BF_Y**2) / 2) < 1e-15


#: Their defaults (--init_scale 1e-3, --learning_rate 0.001 and below) at width 50 past
#: the fit (T = 40: loss 0.0875, the least-squares line's). 33 kinks; at rates 0.008 to
#: 0.001 the error's constant still jumps with the phase of the kink crossings between
#: steps (fitted order 0.68); from 0.001 down it is 1.04.
BF_LONG = ("3 points", "balanced", False, 50, 1e-3, 40.0)


@pytest.mark.slow
def test_bf_their_defaults_past_the_fit_converge_at_order_1():
    lrs, errors, flow = bf_run(BF_LONG, lr_max=0.001)
    assert flow.meta["kinks"] > 20
    assert abs(fitted_order(lrs, errors) - 1.0) < 0.1, errors


def test_bf_balanced_init_is_exactdyns_balanced_init_in_distribution():
    """Both draw w, b ~ N(0, s²) with s = λ/√m and set |a| = ‖(w, b)‖: a² − ‖w‖² = 0."""
    m, lam = 400, 0.3
    w, b, a = bf_init(m, lam, np.random.default_rng(1))
    net = ed.TwoLayer(m, BF_X, BF_Y, init="balanced", beta2=lam / np.sqrt(m), seed=1)
    np.testing.assert_allclose(a**2 - w**2 - b**2, 0.0, atol=1e-15)
    np.testing.assert_allclose(net.a0**2 - (net.W0**2).sum(axis=1), 0.0, atol=1e-15)
    # Same scale: the RMS of the hidden weights is s within sampling error (800 draws each).
    s = lam / np.sqrt(m)
    assert abs(np.sqrt(np.mean(np.r_[w, b] ** 2)) / s - 1) < 0.1
    assert abs(np.sqrt(np.mean(net.W0**2)) / s - 1) < 0.1


# ---- Kunin et al., allanraventos/getrichquick: two-layer ReLU --------------------------------

def grq_get_alpha(delta, scale):
    """``get_alpha`` of two-layer-relu/utils.py."""
    return np.sqrt((np.sqrt(4 + (delta / scale**2) ** 2) - delta / scale**2) / 2)


def grq_teacher(d, m0, rng):
    """``TeacherNetwork``: unit hidden vectors, ±1 read-outs, no biases."""
    W = rng.normal(size=(m0, d))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    return W, np.sign(rng.normal(size=m0))


def grq_student(d, m, scale, alpha, rng):
    """``StudentNetwork._init_weights(symmetrize=True)``: m/2 unit directions times
    scale·alpha, read-outs ±scale/alpha, both repeated, the second half's read-outs negated."""
    h = m // 2
    W = rng.normal(size=(h, d))
    W = W / np.linalg.norm(W, axis=1, keepdims=True) * scale * alpha
    a = np.sign(rng.normal(size=h)) * scale / alpha
    return np.concatenate([a, -a]), np.vstack([W, W])


def grq_relu_grad(x):
    """``relu_grad`` of utils.py: 1 for x ≥ 0 (their ReLU'(0) = 1), 0 below."""
    return (x >= 0).astype(float)


def grq_fit_nn_gd(W0, a0, X, y, lr, n_iter):
    r"""``fit_nn_gd`` of utils.py: ``residual = 2*(y - preds)``,
    ``W -= lr/n*W_grad``, ``a -= lr/n*a_grad`` — GD on :math:`\frac1n\sum_i r_i^2`."""
    W, a = W0.copy(), a0.copy()
    n = X.shape[0]
    for _ in range(n_iter):
        lin = X @ W.T
        act = np.maximum(0.0, lin)
        residual = 2 * (y - act @ a)
        a_grad = -act.T @ residual
        W_grad = -(np.outer(a, residual) * grq_relu_grad(lin.T)) @ X
        W, a = W - lr / n * W_grad, a - lr / n * a_grad
    return W, a


def grq_instance(d=3, n=8, m=6, scale=0.7, delta=0.5, seed=0):
    """run_grid.py's ``get_results`` at a small size: teacher m0 = 3, inputs normalized
    Gaussians, labels from the teacher, the symmetrized student."""
    rng = np.random.default_rng(seed)
    Wt, at = grq_teacher(d, 3, rng)
    a0, W0 = grq_student(d, m, scale, grq_get_alpha(delta, scale), rng)
    X = rng.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.maximum(0.0, X @ Wt.T) @ at
    return X, y, a0, W0


def grq_run(delta, scale=0.7, T=2.0, check_gd=True):
    """Their fit_nn_gd at four rates against the flow: ``(lrs, errors at T, flow)``."""
    X, y, a0, W0 = grq_instance(scale=scale, delta=delta)
    # Their imbalance: a_k² − ‖w_k‖² = scale²(1/α² − α²) = delta for every neuron.
    np.testing.assert_allclose(a0**2 - (W0**2).sum(axis=1), delta, atol=1e-14)
    model = ed.TwoLayer.from_init(a0, W0, X, y, activation="relu", alpha=1.0, bias=False)
    flow = flow_at(model, T)
    assert abs(flow["loss"][0] - np.mean(y**2) / 2) < 1e-15   # symmetrized: f = 0 at t = 0
    ref = np.concatenate([flow["W"][-1].ravel(), flow["a"][-1]])
    # run_grid.py: lr = base_lr / scale**2 with base_lr = 5e-3, and three halvings; their
    # loss is 2 L (the mean of r², no ½): flow time t = 2 lr steps.
    lrs, steps = halving_rates(T, 5e-3 / scale**2, 2.0)
    errors = []
    for lr, k in zip(lrs, steps):
        W, a = grq_fit_nn_gd(W0, a0, X, y, lr, k)
        errors.append(np.linalg.norm(np.concatenate([W.ravel(), a]) - ref))
        if check_gd:
            g = ed.gd(model, 2 * lr, T)
            np.testing.assert_allclose(g["W"][-1], W, rtol=0, atol=1e-13)
            np.testing.assert_allclose(g["a"][-1], a, rtol=0, atol=1e-13)
    return lrs, errors, flow


@pytest.mark.parametrize("delta", [-0.5, 0.0, 0.5])
def test_getrichquick_two_layer_gd_converges_to_the_flow_at_order_1(delta):
    # At delta = 0.5 two kinks by T = 2, and one neuron ends sliding along a kink (Filippov):
    # GD chatters across it, its error still O(lr) with a constant that varies with the
    # phase of the chattering (ratios 2.5, 1.9, 1.6 over the three halvings).
    lrs, errors, flow = grq_run(delta)
    assert abs(fitted_order(lrs, errors) - 1.0) < 0.1, errors
    assert (flow.meta["kinks"] > 0) == (delta == 0.5)


# ---- Kunin et al., allanraventos/getrichquick: the single neuron ------------------------------

def grq_get_gradient(XX, XY):
    """Cell 14 of Single_Neuron.ipynb: the flow field −∇L, θ = (w, a), β = a w,
    dw = a (XX β − XY), da = w·(XX β − XY)."""
    def grad(theta):
        w, a = theta[:-1], theta[-1]
        residual = XX.dot(a * w) - XY
        return np.concatenate((a * residual, [w.dot(residual)]))
    return lambda t, theta: -grad(theta)


def grq_coordinates(R, beta):
    """Cell 17: (w, a) with a > 0, a² − ‖w‖² = R and a w = β."""
    a = np.array([np.sqrt((R + np.sqrt(R**2 + 4 * np.linalg.norm(beta) ** 2)) / 2)])
    return beta / a, a


def grq_euler(field, theta0, lr, steps):
    """Their flow field (which they hand to solve_ivp) stepped by explicit Euler: gradient
    descent on their L = ½ βᵀ XX β − βᵀ XY with step lr, time t = lr steps."""
    theta = theta0.copy()
    for _ in range(steps):
        theta = theta + lr * field(0.0, theta)
    return theta


def _fig8():   # cell 27: XX = I, XY = (0.5, 0.5), beta0 = (0.5, -0.5)/‖·‖
    return np.eye(2), np.array([0.5, 0.5]), np.array([0.5, -0.5]) / np.sqrt(0.5)


def _fig4b():  # cell 25: low-rank XX = X Xᵀ, XY = 1.1 X, beta0 = eps(alpha X⊥ + (1-alpha) X)
    X = np.array([0.5, 1.0])
    return (np.outer(X, X), 1.1 * X,
            0.5 * (0.6 * np.array([X[1], -X[0]]) + (1 - 0.6) * X))


def sn_run(setup, R, T=2.0, check_gd=True):
    """Their field stepped by Euler at four rates against the flow: ``(lrs, errors, flow)``."""
    XX, XY, beta0 = setup()
    w0, a0 = grq_coordinates(R, beta0)
    theta0 = np.concatenate((w0, a0))
    # Their L = ½βᵀXXβ − βᵀXY is exactdyn's with Σxx = XX, Σyx = XYᵀ = Σxx β*.
    beta_star = np.linalg.pinv(XX) @ XY
    np.testing.assert_allclose(XX @ beta_star, XY, atol=1e-14)
    model = ed.SingleNeuron.from_init(a0[0], w0, beta=beta_star, sigma_xx=XX)
    assert abs(model.delta - R) < 1e-13   # their R = a² − ‖w‖² is exactdyn's δ
    flow = flow_at(model, T)
    ref = np.concatenate((flow["W1"][-1][0], flow["W2"][-1][0]))
    field = grq_get_gradient(XX, XY)
    # Their notebook integrates with solve_ivp and has no step; its field carries the ½ of
    # exactdyn's loss, so t = lr steps.
    lrs, steps = halving_rates(T, 0.02, 1.0)
    errors = []
    for lr, k in zip(lrs, steps):
        theta = grq_euler(field, theta0, lr, k)
        errors.append(np.linalg.norm(theta - ref))
        if check_gd:
            g = ed.gd(model, lr, T)
            np.testing.assert_allclose(np.concatenate((g["W1"][-1][0], g["W2"][-1][0])),
                                       theta, rtol=0, atol=1e-13)
    return lrs, errors, flow


@pytest.mark.parametrize("setup", [_fig8, _fig4b], ids=["fig8", "fig4b"])
@pytest.mark.parametrize("R", [-2.0, -0.2, 0.2, 2.0])
def test_getrichquick_single_neuron_gd_converges_to_the_flow_at_order_1(setup, R):
    lrs, errors, _ = sn_run(setup, R)
    assert abs(fitted_order(lrs, errors) - 1.0) < 0.1, errors


# ---- Luo, Xu, Ma, Zhang, xuzhiqin1990/phasediagram_twolayerNN --------------------------------

def lx_scales(m, gam1, gam2, beta1exp):
    """The scales of scalestudy1d_191224.py / hdscalestudy200721.py:
    beta2exp = beta1exp − gam2, alphaexp = gam1 − beta1exp − beta2exp,
    α = m^−alphaexp (output multiplier), β1 = m^−beta1exp (output weights a),
    β2 = m^−beta2exp (hidden weights and biases)."""
    beta2exp = beta1exp - gam2
    alphaexp = gam1 - beta1exp - beta2exp
    return 1 / m**alphaexp, 1 / m**beta1exp, 1 / m**beta2exp


def lx_init(m, d, beta1, beta2, rng, asi=True):
    r"""``getWini`` (w: d × m and b: m from N(0, β2²); a: m from N(0, β1²)) and
    ``univAprox2``'s ASI: a second network with the same hidden weights and read-out
    ``-a``, so :math:`f = \alpha\sum_k a_k\sigma(\cdot) - \alpha\sum_k a_k\sigma(\cdot) = 0`
    at t = 0. Returned as exactdyn's (a, W = [w; b]) over all 2m (or m) neurons."""
    w = rng.normal(0.0, beta2, (d, m))
    b = rng.normal(0.0, beta2, m)
    a = rng.normal(0.0, beta1, m)
    W = np.column_stack([w.T, b])
    if asi:
        return np.concatenate([a, -a]), np.vstack([W, W])
    return a, W


def lx_gd(a, W, X, y, alpha, lr, steps, act, dact):
    r"""``GradientDescentOptimizer(lr).minimize(reduce_mean(square(y_true − y)))`` with
    ``y = α Σ_k a_k σ(x·w_k + b_k)`` (``tf.matmul(output, ua_we)*R['alpha']``); the two ASI
    halves are separate variables, trained as one set of 2m neurons."""
    a, W = a.copy(), W.copy()
    Xb = np.column_stack([X, np.ones(len(X))])
    n = len(X)
    loss_prev = np.inf
    for _ in range(steps):
        z = Xb @ W.T
        h = act(z)
        r = alpha * (h @ a) - y
        # model.run: "if R['loss_train'][-1]>R['loss_train'][-2]" the run is abandoned and
        # restarted with VarR['lr']/2; a rate they keep never raises the loss.
        loss = np.mean(r**2)
        if loss > loss_prev:
            raise AssertionError(f"the loss rose at lr={lr}: their script would halve it")
        loss_prev = loss
        g = 2.0 * r / n
        ga = alpha * (h.T @ g)
        gW = alpha * ((np.outer(g, a) * dact(z)).T @ Xb)
        a, W = a - lr * ga, W - lr * gW
    return a, W


LX_ACTS = {"relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
           "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2)}


def lx_data(script):
    """scalestudy1d_191224.py: R['train_inputs'] = [[-0.5], [0], [0.5]],
    R['y_true_train'] = [[-0.5], [0], [1]]. hdscalestudy200721.py trains on 45 MNIST images
    from ``setup_mnist.MNIST`` (in '../basicfolder', not in the repository); stand-in: 12
    scikit-learn digits, pixels scaled to [0, 1], labels ±1."""
    if script == "1d":
        return np.array([[-0.5], [0.0], [0.5]]), np.array([-0.5, 0.0, 1.0])
    X, y = digits(classes=(0, 1), n=12, normalize=False)
    return X.reshape(len(X), -1) / 16.0, y


# (script, activation, gam1, gam2, beta1exp, ASI, neu_num, VarR['lr'] at start, T): the 1D
# script's gam2 = beta1exp = -1.5 and ASI = 1 over its sweep gam1 in [0.85, 1.15] (it sets
# ActFuc = 1, tanh, with Adam; its paper's activation is ReLU; both run here with its GD
# branch, opti = '0'); the high-d script's defaults gam1 = 1.3, gam2 = 0, beta1exp = 0, ASI = 0,
# ReLU, GD.
LX_CASES = [("1d", "relu", 0.85, -1.5, -1.5, True, 4, 0.5e-5, 1.0),
            ("1d", "relu", 1.15, -1.5, -1.5, True, 4, 0.5e-5, 1.0),
            ("1d", "tanh", 0.85, -1.5, -1.5, True, 4, 0.5e-5, 1.0),
            ("hd", "relu", 1.3, 0.0, 0.0, False, 8, 1e-4, 1.0)]


def lx_run(case, check_gd=True):
    """Their GD at four rates against the flow: ``(lrs, errors at T, flow)``."""
    script, act, gam1, gam2, beta1exp, asi, m, var_lr, T = case
    X, y = lx_data(script)
    alpha, beta1, beta2 = lx_scales(m, gam1, gam2, beta1exp)
    a0, W0 = lx_init(m, X.shape[1], beta1, beta2, np.random.default_rng(3), asi=asi)
    # Their α multiplies the output; exactdyn's divides it.
    model = ed.TwoLayer.from_init(a0, W0, X, y, activation=act, alpha=1 / alpha, bias=True)
    flow = flow_at(model, T)
    if asi:  # f = 0 at t = 0
        assert abs(flow["loss"][0] - np.mean(y**2) / 2) < 1e-15
    ref = np.concatenate([flow["W"][-1].ravel(), flow["a"][-1]])
    # Their rate R['learning_rate'] = VarR['lr']/α·sqrt(β1β2) (VarR['lr'] halved whenever
    # the loss rises); their loss is 2 L (the mean of r², no ½): flow time t = 2 lr steps.
    lrs, steps = halving_rates(T, var_lr / alpha * np.sqrt(beta1 * beta2), 2.0)
    errors = []
    for lr, k in zip(lrs, steps):
        a, W = lx_gd(a0, W0, X, y, alpha, lr, k, *LX_ACTS[act])
        errors.append(np.linalg.norm(np.concatenate([W.ravel(), a]) - ref))
        if check_gd:
            g = ed.gd(model, 2 * lr, T)
            np.testing.assert_allclose(g["W"][-1], W, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(g["a"][-1], a, rtol=1e-12, atol=1e-12)
    return lrs, errors, flow


@pytest.mark.parametrize("case", LX_CASES, ids=lambda c: f"{c[0]}-{c[1]}-gam1={c[2]}")
def test_luo_xu_gd_converges_to_the_flow_at_order_1(case):
    lrs, errors, _ = lx_run(case)
    assert abs(fitted_order(lrs, errors) - 1.0) < 0.1, errors


def test_luo_xu_scales_are_exactdyns_gamma_gamma_prime_with_alpha_m_to_alphaexp():
    """Without ASI their m is exactdyn's width: TwoLayer(gamma=gam1, gamma_prime=gam2,
    alpha=m**alphaexp) has their β1, β2 and 1/α."""
    for m, gam1, gam2, beta1exp in [(1000, 1.0, -1.5, -1.5), (50, 1.3, 0.0, 0.0),
                                    (64, 0.85, 0.5, -0.25)]:
        alpha, beta1, beta2 = lx_scales(m, gam1, gam2, beta1exp)
        net = ed.TwoLayer(m, *lx_data("1d"), gamma=gam1, gamma_prime=gam2, alpha=1 / alpha)
        np.testing.assert_allclose([net.beta1, net.beta2], [beta1, beta2], rtol=1e-12)
        # κ = α β1 β2 = m^−γ and β1/β2 = m^−γ' (their R['kappa'] and the phase diagram axes).
        np.testing.assert_allclose(alpha * beta1 * beta2, m**-gam1, rtol=1e-12)
        np.testing.assert_allclose(beta1 / beta2, m**-gam2, rtol=1e-12)
    # With ASI there are 2m neurons but their exponents use m: give the scales explicitly.
    m = 4
    alpha, beta1, beta2 = lx_scales(m, 1.0, -1.5, -1.5)
    net = ed.TwoLayer(2 * m, *lx_data("1d"), init="mirrored", beta1=beta1, beta2=beta2,
                      alpha=1 / alpha, seed=0)
    np.testing.assert_array_equal(net.W0[:m], net.W0[m:])
    np.testing.assert_array_equal(net.a0[:m], -net.a0[m:])
    assert (net.beta1, net.beta2) == (beta1, beta2)


@pytest.mark.parametrize("R", [-2.0, -0.2, 0.2, 2.0])
def test_getrichquick_single_neuron_their_solve_ivp_run_is_exactdyns_flow(R):
    """Cell 27 as the authors run it: ``solve_ivp(grad, [0, T], theta0, atol=1e-11,
    rtol=1e-11)`` (RK45) on their field, T = 10; exactdyn's flow at their output times."""
    from scipy.integrate import solve_ivp

    XX, XY, beta0 = _fig8()
    w0, a0 = grq_coordinates(R, beta0)
    theirs = solve_ivp(grq_get_gradient(XX, XY), [0, 10], np.concatenate((w0, a0)),
                       atol=1e-11, rtol=1e-11)
    model = ed.SingleNeuron.from_init(a0[0], w0, beta=np.linalg.pinv(XX) @ XY, sigma_xx=XX)
    ours = ed.solve(model, theirs.t, rtol=1e-12)
    np.testing.assert_allclose(ours["W1"][:, 0, :], theirs.y[:2].T, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours["W2"][:, 0, 0], theirs.y[2], rtol=0, atol=1e-9)


def _order_table():
    """The fitted orders of every default case (docs/papers/procedures.md)."""
    rows = [("early_alignment", _bf_id(c), bf_run(c, check_gd=False)) for c in BF_CASES]
    rows += [("getrichquick two-layer", f"delta={d}", grq_run(d, check_gd=False))
             for d in (-0.5, 0.0, 0.5)]
    rows += [("getrichquick single neuron", f"{f.__name__[1:]} R={R}",
              sn_run(f, R, check_gd=False)) for f in (_fig8, _fig4b)
             for R in (-2.0, -0.2, 0.2, 2.0)]
    rows += [("phasediagram", f"{c[0]} {c[1]} gam1={c[2]}", lx_run(c, check_gd=False))
             for c in LX_CASES]
    print("| procedure | case | rates (theirs) | kinks | error at largest rate | fitted order |")
    print("|---|---|---|---|---|---|")
    for repo, case, (lrs, errors, flow) in rows:
        print(f"| {repo} | {case} | {lrs[0]:.3g} … {lrs[-1]:.3g} | "
              f"{flow.meta.get('kinks', '–')} | {errors[0]:.2e} | "
              f"{fitted_order(lrs, errors):.3f} |")


if __name__ == "__main__":
    _order_table()
