r"""One :class:`~exactdyn.symbolic.flow.GradientFlow` for every network, whatever its notation.

``ed.gradient_flow(model)`` returns the one type for every built-in family and for user
networks over one or several indices; its notation (one neuron index, several index kinds,
matrices, a chain of matrices, an abstract activation) comes from the network. The
references here are independent of the derivation: each network's loss written by hand in
numpy, differentiated by central finite differences, so that every right-hand side must be
:math:`-\eta_b\,\partial L/\partial\theta_b` and every ``time_derivative`` of the loss must be
the directional derivative :math:`\nabla L\cdot\dot\theta` at random points; conserved
quantities are checked proven and constant along a numeric trajectory.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.symbolic import cnn as sc
from exactdyn.symbolic import twolayer as st2
from exactdyn.symbolic.deep_linear import MatrixFlow
from exactdyn.symbolic.flow import GradientFlow, SymbolicNetwork, derive_flow
from exactdyn.symbolic.indexed_flow import IndexedGradientFlow, canonical
from exactdyn.symbolic.matrix_flow import MatrixGradientFlow
from exactdyn.symbolic.twolayer import TwoLayerFlow

# ---- the networks ----------------------------------------------------------------------------
i, j, k, s = sp.symbols("i j k s", integer=True)
d, D, n = sp.symbols("d D n", integer=True, positive=True)
u, v = sp.IndexedBase("u"), sp.IndexedBase("v")
a, W, X, Y = (sp.IndexedBase(name) for name in ("a", "W", "X", "Y"))
beta = sp.Symbol("beta_star")
alpha = sp.Symbol("alpha", positive=True)
eta_v = sp.Symbol("eta_v", positive=True)


def diag_linear() -> ed.Network:
    """The issue's diagonal linear network, with a rate eta_v on v."""
    return ed.Network("diag_linear", params=[u, v], index=i, width=d,
                      loss=(sp.Sum(u[i] ** 2 - v[i] ** 2, (i, 0, d - 1)) - beta) ** 2 / 2,
                      hyper=[beta, eta_v], rates={v: eta_v})


def user_two_layer(act=sp.tanh, **kw) -> ed.Network:
    pre = sp.Sum(W[i, k] * X[s, k], (k, 0, D - 1))
    out = sp.Sum(a[i] * act(pre), (i, 0, d - 1)) / alpha
    loss = sp.Sum((out - Y[s]) ** 2, (s, 0, n - 1)) / (2 * n)
    return ed.Network("user_two_layer_flow", params=[a, W], indices={i: d, k: D, s: n},
                      loss=loss, data=[X, Y], hyper=[alpha], **kw)


def user_linear_two_layer() -> ed.Network:
    """Linear activation: rescaling of each neuron is a symmetry (a_j^2 - |W_j|^2 conserved)."""
    return user_two_layer(act=lambda h: h, symmetries={
        "balance": {a: sp.KroneckerDelta(i, j) * a[i], W: -sp.KroneckerDelta(i, j) * W[i, k]}})


BUILTIN = {"Linear1D": lambda: ed.Linear1D(width=4, seed=0),
           "LinearNet": lambda: ed.LinearNet(seed=0),
           "SingleNeuron": lambda: ed.SingleNeuron(),
           "DeepLinear": lambda: ed.DeepLinear(depth=3, width=4, seed=0, sigma_yx=np.eye(3))}


# ---- one type --------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["Linear1D", "LinearNet", "SingleNeuron", "DeepLinear"])
def test_every_smooth_builtin_family_derives_the_one_type(family):
    flow = ed.gradient_flow(BUILTIN[family]())
    assert type(flow) is GradientFlow
    assert flow.notation in ("indexed", "matrix", "chain")
    assert len(flow.equations()) == len(flow.state) == len(flow.rhs)


def test_the_activation_families_derive_the_one_type():
    """The two-layer network and the CNN (abstract σ) are GradientFlows too, of the models'
    own derivation (``model.derive_flow``) and through ``ed.gradient_flow``."""
    for flow in (st2.derive_two_layer_flow(), sc.derive_cnn_flow()):
        assert type(flow) is GradientFlow and flow.notation == "activation"
        assert [eq.lhs for eq in flow.equations()] == [sp.Symbol("\\dot{a}"),
                                                       sp.Symbol("\\dot{W}")]
        assert flow.conserved == []
    rng = np.random.default_rng(0)
    model = ed.TwoLayer.from_init(rng.standard_normal(3), rng.standard_normal((3, 2)),
                                  rng.standard_normal((4, 2)), rng.standard_normal(4),
                                  activation="tanh", bias=False)
    assert ed.gradient_flow(model) is st2.derive_two_layer_flow()
    cnn = ed.TwoLayerCNN(2, 3, rng.standard_normal((4, 5, 5, 1)),
                         np.array([1.0, -1.0, 1.0, -1.0]), scale=0.3)
    assert ed.gradient_flow(cnn) is sc.derive_cnn_flow()


def test_every_notation_has_the_notebook_display():
    """Matrix flows used to have none; the one type shows the derivation for all."""
    for flow in (ed.gradient_flow(ed.LinearNet(seed=0)), st2.derive_two_layer_flow(),
                 ed.gradient_flow(ed.Linear1D(width=4, seed=0))):
        text = flow._repr_markdown_()
        assert text.startswith("**Gradient flow of ")
        assert "Gradient flow of W" in text or "Gradient flow of u" in text
        assert flow._repr_latex_()


def test_user_networks_of_one_and_several_indices_derive_the_one_type():
    one = ed.gradient_flow(diag_linear().from_init({"u": [0.3, 0.5], "v": [0.1, 0.2]},
                                                   beta_star=0.5, eta_v=2.0))
    rng = np.random.default_rng(1)
    several = ed.gradient_flow(user_two_layer().from_init(
        {"a": rng.standard_normal(3), "W": rng.standard_normal((3, 2))},
        X=rng.standard_normal((4, 2)), Y=rng.standard_normal(4), alpha=1.0))
    assert type(one) is GradientFlow and one.notation == "indexed"
    assert type(several) is GradientFlow and several.notation == "multi_index"


def test_the_old_names_are_the_one_type():
    assert IndexedGradientFlow is MatrixGradientFlow is MatrixFlow is TwoLayerFlow is GradientFlow
    assert sc.CNNFlow is GradientFlow


def test_derive_flow_rejects_what_is_not_a_network():
    with pytest.raises(TypeError, match="network"):
        derive_flow(object())


def test_notation_specific_derivatives_say_which_notation_has_them():
    matrix = ed.gradient_flow(ed.LinearNet(seed=0))
    with pytest.raises(NotImplementedError, match="matrix notation"):
        matrix.jacobian_entries()
    indexed = ed.gradient_flow(ed.Linear1D(width=4, seed=0))
    with pytest.raises(NotImplementedError, match="indexed notation"):
        indexed.directional_derivative({})


# ---- numeric evaluation of the symbolic objects (sizes and values substituted) --------------
def _by_name(expr, numbers: dict):
    """``expr`` with every free symbol named in ``numbers`` replaced by its number."""
    return expr.xreplace({x: numbers[x.name] for x in expr.free_symbols
                          if isinstance(x, sp.Symbol) and x.name in numbers})


def _evaluate(expr, arrays: dict, numbers: dict, sigma=None) -> float:
    """An indexed expression at sizes and scalars ``numbers`` (by name), reductions unrolled,
    each ``IndexedBase`` entry read from ``arrays`` (by name); ``sigma``: (σ, σ', σ'')."""
    e = _by_name(sp.sympify(expr), numbers).doit()
    if sigma is not None:
        for f, g in zip((st2.SIGMA, st2.DSIGMA, st2.D2SIGMA), sigma, strict=True):
            e = e.replace(lambda x, f=f: isinstance(x, sp.Function) and x.func == f,
                          lambda x, g=g: g(x.args[0]))
    e = e.xreplace({x: arrays[x.base.name][tuple(int(q) for q in x.indices)]
                    for x in e.atoms(sp.Indexed)})
    return float(e)


def _fd_gradient(loss, state: dict, h=1e-6) -> dict:
    """Central differences of a numpy loss of named arrays."""
    out = {}
    for name, x in state.items():
        g = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            plus = {kk: vv.copy() for kk, vv in state.items()}
            minus = {kk: vv.copy() for kk, vv in state.items()}
            plus[name][idx] += h
            minus[name][idx] -= h
            g[idx] = (loss(plus) - loss(minus)) / (2 * h)
        out[name] = g
    return out


def _check_indexed(flow, loss, state, numbers, rates, sigma=None, rtol=1e-6):
    """Each right-hand side entry at the free indices = -rate * dL/dentry (differences), and
    d L/dt along the flow = grad L . rhs."""
    net = flow.network
    grads = _fd_gradient(loss, state)
    rhs_num = {}
    for b in flow.state:
        x = state[b.name]
        out = np.zeros_like(x)
        free = net.free[b].indices if hasattr(net, "free") else (
            [net.free_index(ix) for ix in net.param_indices[b]]
            if hasattr(net, "param_indices") else [sp.Symbol("j", integer=True)])
        for idx in np.ndindex(x.shape):
            at = dict(zip(free, (sp.Integer(q) for q in idx), strict=True))
            out[idx] = _evaluate(flow.rhs[b].xreplace(at), state, numbers, sigma)
        np.testing.assert_allclose(out, -rates[b.name] * grads[b.name], rtol=rtol,
                                   atol=rtol * np.abs(grads[b.name]).max())
        rhs_num[b.name] = out
    dloss = _evaluate(flow.time_derivative(net.loss), state, numbers, sigma)
    expected = sum(float(np.sum(grads[nm] * rhs_num[nm])) for nm in rhs_num)
    assert dloss == pytest.approx(expected, rel=rtol, abs=rtol * abs(expected) + 1e-12)


SEEDS = st.integers(min_value=0, max_value=2 ** 32 - 1)


@settings(max_examples=8, deadline=None)
@given(seed=SEEDS, width=st.integers(min_value=1, max_value=3))
def test_one_index_flow_is_minus_the_rate_times_the_gradient(seed, width):
    """Linear1D: L = (Sigma_xx/2)(kappa u.w - c)^2, written by hand."""
    rng = np.random.default_rng(seed)
    flow = ed.gradient_flow(ed.Linear1D(width=4, seed=0))
    kappa, c, sxx, eu, ew = rng.uniform(0.3, 2.0, 5)
    numbers = {"d": width, "kappa": kappa, "c": c, "Sigma_xx": sxx, "eta_u": eu, "eta_w": ew,
               "teacher": c, "x_var": sxx}
    state = {"u": rng.standard_normal(width), "w": rng.standard_normal(width)}

    def loss(p):
        return sxx / 2 * (kappa * p["u"] @ p["w"] - c) ** 2

    _check_indexed(flow, loss, state, numbers, {"u": eu, "w": ew})


@settings(max_examples=8, deadline=None)
@given(seed=SEEDS, width=st.integers(min_value=1, max_value=4))
def test_user_one_index_flow_is_minus_the_rate_times_the_gradient(seed, width):
    rng = np.random.default_rng(seed)
    net = diag_linear()
    flow = ed.gradient_flow(net.from_init({"u": [0.1, 0.2], "v": [0.3, 0.1]}, beta_star=0.5,
                                          eta_v=2.0))
    b, ev = rng.uniform(-1.0, 1.0), rng.uniform(0.2, 3.0)
    state = {"u": rng.standard_normal(width), "v": rng.standard_normal(width)}

    def loss(p):
        return (np.sum(p["u"] ** 2 - p["v"] ** 2) - b) ** 2 / 2

    _check_indexed(flow, loss, state, {"d": width, "beta_star": b, "eta_v": ev},
                   {"u": 1.0, "v": ev})


@settings(max_examples=5, deadline=None)
@given(seed=SEEDS, m=st.integers(1, 3), dim=st.integers(1, 2), samples=st.integers(1, 3))
def test_several_index_flow_is_minus_the_gradient(seed, m, dim, samples):
    rng = np.random.default_rng(seed)
    al = rng.uniform(0.5, 2.0)
    flow = ed.gradient_flow(user_two_layer().from_init(
        {"a": rng.standard_normal(2), "W": rng.standard_normal((2, 2))},
        X=rng.standard_normal((3, 2)), Y=rng.standard_normal(3), alpha=1.0))
    Xv, Yv = rng.standard_normal((samples, dim)), rng.standard_normal(samples)
    state = {"a": rng.standard_normal(m), "W": rng.standard_normal((m, dim)),
             "X": Xv, "Y": Yv}
    params = {"a": state["a"], "W": state["W"]}

    def loss(p):
        return np.sum((np.tanh(Xv @ p["W"].T) @ p["a"] / al - Yv) ** 2) / (2 * samples)

    numbers = {"d": m, "D": dim, "n": samples, "alpha": al}
    grads = _fd_gradient(loss, params)
    net = flow.network
    rhs_num = {}
    for b in flow.state:
        out = np.zeros_like(params[b.name])
        free = [net.free_index(ix) for ix in net.param_indices[b]]
        for idx in np.ndindex(out.shape):
            at = dict(zip(free, (sp.Integer(q) for q in idx), strict=True))
            out[idx] = _evaluate(flow.rhs[b].xreplace(at), state, numbers)
        np.testing.assert_allclose(out, -grads[b.name], rtol=1e-6,
                                   atol=1e-7 * max(1.0, np.abs(grads[b.name]).max()))
        rhs_num[b.name] = out
    dloss = _evaluate(flow.time_derivative(net.loss), state, numbers)
    expected = sum(float(np.sum(grads[nm] * rhs_num[nm])) for nm in rhs_num)
    assert dloss == pytest.approx(expected, rel=1e-6, abs=1e-9)


TANH = (sp.tanh, lambda h: 1 - sp.tanh(h) ** 2,
        lambda h: -2 * sp.tanh(h) * (1 - sp.tanh(h) ** 2))


@settings(max_examples=4, deadline=None)
@given(seed=SEEDS, m=st.integers(1, 3), dim=st.integers(1, 2), samples=st.integers(1, 3))
def test_activation_flow_is_minus_the_gradient(seed, m, dim, samples):
    """The two-layer network with σ = tanh: L = (1/2n) Σ_i ((1/α) Σ_k a_k σ(W_k.x_i) - y_i)^2."""
    rng = np.random.default_rng(seed)
    al = rng.uniform(0.5, 2.0)
    flow = st2.derive_two_layer_flow()
    Xv, yv = rng.standard_normal((samples, dim)), rng.standard_normal(samples)
    state = {"a": rng.standard_normal(m), "W": rng.standard_normal((m, dim)), "X": Xv, "y": yv}

    def loss(p):
        return np.sum((np.tanh(Xv @ p["W"].T) @ p["a"] / al - yv) ** 2) / (2 * samples)

    numbers = {"m": m, "d": dim, "n": samples, "alpha": al}
    grads = _fd_gradient(loss, {"a": state["a"], "W": state["W"]})
    rhs_num = {}
    for b in flow.state:
        out = np.zeros_like(state[b.name])
        for idx in np.ndindex(out.shape):
            at = dict(zip(flow.network.free[b].indices, (sp.Integer(q) for q in idx),
                          strict=True))
            out[idx] = _evaluate(flow.rhs[b].xreplace(at), state, numbers, TANH)
        np.testing.assert_allclose(out, -grads[b.name], rtol=1e-6,
                                   atol=1e-7 * max(1.0, np.abs(grads[b.name]).max()))
        rhs_num[b.name] = out
    dloss = _evaluate(flow.time_derivative(flow.loss), state, numbers, TANH)
    expected = sum(float(np.sum(grads[nm] * rhs_num[nm])) for nm in rhs_num)
    assert dloss == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_cnn_flow_is_minus_the_gradient():
    """The CNN with σ = tanh: L = (1/2n) Σ_i ((1/α) Σ_{k,β} a_kβ σ(Σ_l W_lβ X_ikl) - y_i)^2."""
    rng = np.random.default_rng(3)
    flow = sc.derive_cnn_flow()
    n_, P_, D_, M_, al = 2, 2, 2, 2, 1.3
    Xv, yv = rng.standard_normal((n_, P_, D_)), rng.standard_normal(n_)
    state = {"a": rng.standard_normal((P_, M_)), "W": rng.standard_normal((D_, M_)),
             "X": Xv, "y": yv}

    def loss(p):
        h = np.einsum("ikl,lb->ikb", Xv, p["W"])
        return np.sum((np.einsum("kb,ikb->i", p["a"], np.tanh(h)) / al - yv) ** 2) / (2 * n_)

    numbers = {"n": n_, "P": P_, "D": D_, "M": M_, "alpha": al}
    grads = _fd_gradient(loss, {"a": state["a"], "W": state["W"]})
    for b in flow.state:
        out = np.zeros_like(state[b.name])
        for idx in np.ndindex(out.shape):
            at = dict(zip(flow.network.free[b].indices, (sp.Integer(q) for q in idx),
                          strict=True))
            out[idx] = _evaluate(flow.rhs[b].xreplace(at), state, numbers, TANH)
        np.testing.assert_allclose(out, -grads[b.name], rtol=1e-6, atol=1e-8)


def _explicit(expr, mats: dict, numbers: dict):
    """A matrix expression at explicit matrices (by name) and scalars, as a numpy array."""
    e = _by_name(sp.sympify(expr), numbers)
    e = e.xreplace({x: sp.Matrix(mats[x.name]) for x in e.atoms(sp.MatrixSymbol)})
    return np.array(sp.N(e.doit()), dtype=float)


def _spd(rng, size):
    m = rng.standard_normal((size, size))
    return m @ m.T + size * np.eye(size)


@settings(max_examples=6, deadline=None)
@given(seed=SEEDS, n_in=st.integers(1, 3), n_h=st.integers(1, 3), n_out=st.integers(1, 2))
def test_matrix_flow_is_minus_the_rate_times_the_gradient(seed, n_in, n_h, n_out):
    """LinearNet: L = tr(W Sxx W^T)/2 - tr(W Syx^T), W = W2 W1, written by hand."""
    rng = np.random.default_rng(seed)
    flow = ed.gradient_flow(ed.LinearNet(seed=0))
    e1, e2 = rng.uniform(0.3, 2.0, 2)
    sxx, syx = _spd(rng, n_in), rng.standard_normal((n_out, n_in))
    state = {"W1": rng.standard_normal((n_h, n_in)), "W2": rng.standard_normal((n_out, n_h))}
    mats = {**state, "Sigma_xx": sxx, "Sigma_yx": syx, "W_star": syx @ np.linalg.inv(sxx)}
    numbers = {"eta1": e1, "eta2": e2, "eta_1": e1, "eta_2": e2}
    rates = {"W1": e1, "W2": e2}

    def loss(p):
        w = p["W2"] @ p["W1"]
        return np.trace(w @ sxx @ w.T) / 2 - np.trace(w @ syx.T)

    grads = _fd_gradient(loss, state)
    rhs_num = {}
    for b in flow.state:
        rhs_num[b.name] = _explicit(flow.rhs[b], mats, numbers)
        np.testing.assert_allclose(rhs_num[b.name], -rates[b.name] * grads[b.name],
                                   rtol=1e-6, atol=1e-7 * np.abs(grads[b.name]).max())
    dloss = _explicit(flow.time_derivative(flow.loss), mats, numbers)
    expected = sum(float(np.sum(grads[nm] * rhs_num[nm])) for nm in rhs_num)
    assert float(np.squeeze(dloss)) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_chain_flow_is_minus_the_gradient():
    """DeepLinear depth 3: L = tr((A - T) Sxx (A - T)^T)/2, A = W3 W2 W1, T = Syx Sxx^-1."""
    rng = np.random.default_rng(5)
    flow = ed.gradient_flow(BUILTIN["DeepLinear"]())
    assert flow.notation == "chain" and flow.matrix_form
    n_in, w, n_out = 2, 3, 2
    sxx, syx = _spd(rng, n_in), rng.standard_normal((n_out, n_in))
    T = syx @ np.linalg.inv(sxx)
    state = {"W1": rng.standard_normal((w, n_in)), "W2": rng.standard_normal((w, w)),
             "W3": rng.standard_normal((n_out, w))}
    mats = {**state, "Sigma_xx": sxx, "Sigma_yx": syx, "T": T}

    def loss(p):
        r = p["W3"] @ p["W2"] @ p["W1"] - T
        return np.trace(r @ sxx @ r.T) / 2

    grads = _fd_gradient(loss, state)
    for b in flow.state:
        np.testing.assert_allclose(_explicit(flow.rhs[b], mats, {}), -grads[b.name],
                                   rtol=1e-6, atol=1e-8)
    for q in flow.conserved:
        assert q.proven


# ---- conserved quantities: proven, and constant along a trajectory --------------------------
def _drift(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(np.max(np.abs(values - values[0])) / max(1.0, np.max(np.abs(values[0]))))


def test_one_index_conserved_quantity_is_proven_and_constant_along_a_trajectory():
    """The hyperbolic rotation u -> u + s v, v -> v + s u leaves Σ(u_i^2 - v_i^2) and so L
    unchanged; with equal rates Noether's quantity is Q = Σ u_i v_i."""
    net = ed.Network("diag_linear_sym", params=[u, v], index=i, width=d,
                     loss=(sp.Sum(u[i] ** 2 - v[i] ** 2, (i, 0, d - 1)) - beta) ** 2 / 2,
                     hyper=[beta], symmetries={"Q": {u: v[i], v: u[i]}})
    model = net.from_init({"u": [0.3, -0.5, 0.8], "v": [0.1, 0.2, -0.4]}, beta_star=0.5)
    flow = ed.gradient_flow(model)
    (q,) = flow.conserved
    assert q.proven and q.derivative == 0
    tr = ed.solve(model, np.linspace(0.0, 4.0, 9), rtol=1e-12)
    Q = [np.sum(uu * vv) for uu, vv in zip(tr["u"], tr["v"], strict=True)]
    assert _drift(Q) < 1e-9
    assert _drift(tr["loss"]) > 1e-3  # the flow moved


def test_several_index_conserved_quantity_is_proven_and_constant_along_a_trajectory():
    """Per-neuron balance a_j^2 - Σ_k W_jk^2 of the linear two-layer network."""
    rng = np.random.default_rng(7)
    model = user_linear_two_layer().from_init(
        {"a": rng.standard_normal(3), "W": rng.standard_normal((3, 2))},
        X=rng.standard_normal((5, 2)), Y=rng.standard_normal(5), alpha=1.0)
    flow = ed.gradient_flow(model)
    (q,) = flow.conserved
    assert q.proven
    # its time derivative along the flow, by the multi-index chain rule, vanishes at a
    # random point (exchanging the neuron's reductions over features and samples, which
    # the canonical form does not do: that is what Noether's argument avoids)
    dq = flow.time_derivative(q.expr)
    assert canonical(dq) != 0
    point = {"a": rng.standard_normal(3), "W": rng.standard_normal((3, 2)),
             "X": rng.standard_normal((5, 2)), "Y": rng.standard_normal(5)}
    sizes = {"d": 3, "D": 2, "n": 5, "alpha": 1.3}
    for neuron in range(3):
        value = _evaluate(dq.xreplace({j: sp.Integer(neuron)}), point, sizes)
        assert abs(value) < 1e-12
    tr = ed.solve(model, np.linspace(0.0, 3.0, 7), rtol=1e-12)
    balance = tr["a"] ** 2 - np.sum(tr["W"] ** 2, axis=2)  # (time, neuron)
    for neuron in range(3):
        assert _drift(balance[:, neuron]) < 1e-9
    assert _drift(tr["loss"]) > 1e-3


def test_matrix_conserved_quantity_is_proven_and_constant_along_a_trajectory():
    """LinearNet: C = W1 W1^T/eta1 - W2^T W2/eta2."""
    model = ed.LinearNet(seed=3, eta1=0.7, eta2=1.6, scale1=0.5, scale2=0.5)
    flow = ed.gradient_flow(model)
    (q,) = flow.conserved
    assert q.proven
    tr = ed.solve(model, np.linspace(0.0, 3.0, 7), rtol=1e-12)
    C = [w1 @ w1.T / 0.7 - w2.T @ w2 / 1.6 for w1, w2 in zip(tr["W1"], tr["W2"], strict=True)]
    assert _drift(np.array(C)) < 1e-9
    assert _drift(tr["loss"]) > 1e-3


def test_a_declared_non_symmetry_is_not_proven():
    """A scaling u -> (1+s)u, v -> (1+s)v changes L: its quantity must not be proven."""
    model = ed.Network("diag_bad", params=[u, v], index=i, width=d,
                       loss=(sp.Sum(u[i] ** 2 - v[i] ** 2, (i, 0, d - 1)) - beta) ** 2 / 2,
                       hyper=[beta], symmetries={"scaling": {u: u[i], v: v[i]}})
    flow = ed.gradient_flow(model.from_init({"u": [0.2], "v": [0.1]}, beta_star=0.5))
    assert isinstance(flow.network, SymbolicNetwork)  # what a one-index Network builds
    assert not flow.conserved[0].proven
