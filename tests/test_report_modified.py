"""The modified flow of gradient descent as the report records it (issue 12).

Independent oracle: the equations printed in the report are evaluated numerically (sympy
substitution at random values of every symbol, the reductions expanded at a small width)
and compared with central finite differences, at 40 digits, of the modified loss the
report records; that loss itself is compared with L + (h/4) sum_p eta_p (dL/dp)^2 where
dL/dp are finite differences of the report's (unmodified) loss.
"""

import json

import mpmath
import numpy as np
import pytest
import sympy as sp

import exactdyn as ed
from exactdyn.report import content as report_content
from exactdyn.report import data as report_data
from exactdyn.report import markdown as report_markdown
from exactdyn.report import tex as report_tex

FD_EPS = mpmath.mpf(10) ** -12


def _fd(f, x, i):
    xp, xm = list(x), list(x)
    xp[i] += FD_EPS
    xm[i] -= FD_EPS
    return (f(xp) - f(xm)) / (2 * FD_EPS)


def _random_rationals(rng, n, lo=-1.0, hi=1.0):
    return [sp.Rational(int(v * 1000), 1000) for v in rng.uniform(lo, hi, n)]


def _modified(model):
    flow = ed.gradient_flow(model)
    steps, note = report_content.modified_flow_steps(flow)
    assert steps and not note
    return flow, steps


# ---- indexed networks ----------------------------------------------------------------

def test_linear1d_recorded_modified_equations_are_finite_differences_of_the_recorded_loss():
    m = ed.Linear1D.from_init([0.3, -0.2, 0.5], [0.1, 0.4, -0.3], eta_u=1.0, eta_w=0.5)
    flow, steps = _modified(m)
    net = flow.network
    assert steps[0].title == "Modified loss"
    Lt = steps[0].expr.rhs
    d = 3
    rng = np.random.default_rng(5)
    bases = list(net.params)
    entries = [sp.Symbol(f"{b.name}_{i}") for b in bases for i in range(d)]
    state = dict(zip(entries, _random_rationals(rng, len(entries))))
    # every other symbol (hyperparameters, the step h) at a random positive value
    hyper = {s: v for s, v in zip(
        sorted((s for s in Lt.free_symbols if isinstance(s, sp.Symbol)
                and s.name not in ("d", "i", "j")), key=str),
        _random_rationals(rng, 20, 0.3, 2.0))}

    def concrete(expr, j=None):
        e = expr.xreplace({sp.Symbol("d", integer=True, positive=True): d})
        e = e.subs(sp.Symbol("d"), d)
        if j is not None:
            e = e.subs(sp.Symbol("j", integer=True), j)
        e = e.doit()
        e = e.xreplace({b[i]: sp.Symbol(f"{b.name}_{i}") for b in bases for i in range(d)})
        return e.xreplace(hyper)

    Lt_c = concrete(Lt)
    assert Lt_c.free_symbols <= set(entries), Lt_c.free_symbols
    f_Lt = sp.lambdify(entries, Lt_c, "mpmath")
    L_c = concrete(net.loss)
    f_L = sp.lambdify(entries, L_c, "mpmath")
    h = hyper[sp.Symbol("h", positive=True)]
    with mpmath.workdps(40):
        x = [mpmath.mpf(state[e].p) / state[e].q for e in entries]
        gradL = [_fd(lambda y: f_L(*y), x, i) for i in range(len(x))]
        rates = [mpmath.mpf(sp.N(net.rates[b].xreplace(hyper), 50))
                 for b in bases for _ in range(d)]
        penalty = sum(r * g**2 for r, g in zip(rates, gradL))
        assert abs(f_Lt(*x) - (f_L(*x) + mpmath.mpf(sp.N(h, 50)) / 4 * penalty)) < 1e-20
        for step, b in zip(steps[1:], bases):
            assert step.proven
            for j in range(d):
                got = concrete(step.expr.rhs, j).xreplace(state)
                k = entries.index(sp.Symbol(f"{b.name}_{j}"))
                want = -rates[k] * _fd(lambda y: f_Lt(*y), x, k)
                assert abs(mpmath.mpf(sp.N(got, 50)) - want) < 1e-15 * max(1, abs(want))


# ---- matrix networks -----------------------------------------------------------------

def _ev(expr, env):
    """A matrix expression evaluated on mpmath matrices (a tree walk, no lambdify: the
    deep-linear expressions are too deep for Python's compiler once expanded)."""
    if isinstance(expr, sp.MatrixSymbol) or (isinstance(expr, sp.Symbol) and expr in env):
        return env[expr]
    if isinstance(expr, sp.Transpose):
        return _ev(expr.arg, env).T
    if isinstance(expr, sp.Trace):
        A = _ev(expr.arg, env)
        return mpmath.fsum(A[i, i] for i in range(A.rows))
    if isinstance(expr, sp.MatPow):
        A = _ev(expr.base, env)
        out = A
        for _ in range(int(expr.exp) - 1):
            out = out * A
        return out
    if isinstance(expr, (sp.MatMul, sp.Mul)):
        parts = [_ev(a, env) for a in expr.args]
        scalar = mpmath.mpf(1)
        out = None
        for p in parts:
            if isinstance(p, mpmath.matrix):
                out = p if out is None else out * p
            else:
                scalar *= p
        return scalar if out is None else out * scalar
    if isinstance(expr, (sp.MatAdd, sp.Add)):
        parts = [_ev(a, env) for a in expr.args]
        out = parts[0]
        for p in parts[1:]:
            out = out + p
        return out
    if isinstance(expr, sp.Pow):
        return _ev(expr.base, env) ** _ev(expr.exp, env)
    if expr.is_Number:
        return mpmath.mpf(sp.N(expr, 50))
    raise TypeError(f"cannot evaluate {type(expr).__name__}: {expr}")


def _matrix_case(model, sizes, seed):
    """Recorded modified equations of a matrix network against finite differences of the
    recorded modified loss; the loss against L + (h/4) sum eta ||dL/dW||^2 by FD of L."""
    flow, steps = _modified(model)
    assert steps[0].title == "Modified loss"
    Lt = steps[0].expr.rhs
    rng = np.random.default_rng(seed)
    params = list(flow.state)
    net = getattr(flow, "network", None)
    rates = getattr(net, "rates", None) or {}
    loss = getattr(flow, "loss", None) or net.loss
    mats = set(Lt.atoms(sp.MatrixSymbol)) | set(loss.atoms(sp.MatrixSymbol))

    def shape(M):
        return tuple(int(sizes[s.name]) if isinstance(s, sp.Symbol) else int(s)
                     for s in M.shape)

    def rand(r, c, lo=-1.0, hi=1.0):
        return mpmath.matrix([[mpmath.mpf(v) for v in row]
                              for row in rng.uniform(lo, hi, (r, c))])

    with mpmath.workdps(40):
        env = {}
        for M in sorted(mats, key=str):
            if M.name == "Sigma_xx":  # symmetric positive definite
                A = rand(*shape(M))
                env[M] = A * A.T + mpmath.eye(shape(M)[0])
            elif M not in params and M.name != "Sigma_yx":
                env[M] = rand(*shape(M))
        for M in mats:
            if M.name == "Sigma_yx":
                T = [N for N in mats if N.name == "T"]
                sxx = [N for N in mats if N.name == "Sigma_xx"][0]
                # the loss is written with the teacher T when it has one: Sigma_yx = T Sigma_xx
                env[M] = env[T[0]] * env[sxx] if T else rand(*shape(M))
        scalars = sorted({s for s in Lt.free_symbols | loss.free_symbols
                          if not isinstance(s, sp.MatrixSymbol)}, key=str)
        for s, v in zip(scalars, rng.uniform(0.3, 2.0, len(scalars))):
            env[s] = mpmath.mpf(v)
        h = env[[s for s in scalars if s.name == "h"][0]]
        eta = {W: _ev(sp.sympify(rates.get(W, 1)), env) for W in params}
        x0 = {W: rand(*shape(W), -0.8, 0.8) for W in params}
        layout = [(W, i, k) for W in params for i in range(shape(W)[0])
                  for k in range(shape(W)[1])]

        def at(v):
            mats_ = {W: x0[W].copy() for W in params}
            for (W, i, k), val in zip(layout, v):
                mats_[W][i, k] = val
            return {**env, **mats_}

        x = [x0[W][i, k] for W, i, k in layout]
        gradL = [_fd(lambda y: _ev(loss, at(y)), x, n) for n in range(len(x))]
        penalty = mpmath.fsum(eta[W] * g**2 for (W, _i, _k), g in zip(layout, gradL))
        lhs = _ev(Lt, at(x))
        assert abs(lhs - (_ev(loss, at(x)) + h / 4 * penalty)) < 1e-18 * max(1, abs(lhs))
        for step, W in zip(steps[1:], params):
            assert step.title == f"Modified flow of {W.name}"
            got = _ev(step.expr.rhs, at(x))
            for n, (V, i, k) in enumerate(layout):
                if V is not W:
                    continue
                want = -eta[W] * _fd(lambda y: _ev(Lt, at(y)), x, n)
                assert abs(got[i, k] - want) < 1e-15 * max(1, abs(want)), (W, i, k)


def test_linearnet_recorded_modified_equations_are_finite_differences_of_the_recorded_loss():
    m = ed.LinearNet.decoupled(np.diag([2.0, 1.0]))
    _matrix_case(m, {"n_in": 2, "n_h": 3, "n_out": 2}, seed=1)


@pytest.mark.slow
def test_deep_linear_recorded_modified_equations_are_finite_differences_of_the_recorded_loss():
    m = ed.DeepLinear(depth=3, width=2, in_dim=2, out_dim=2,
                      sigma_yx=np.array([[2.0, 0.2], [0.0, 1.0]]), seed=0)
    _matrix_case(m, {"n_in": 2, "w": 2, "n_out": 2}, seed=2)


# ---- the two-layer network -----------------------------------------------------------

def test_two_layer_recorded_modified_loss_is_the_loss_plus_h_over_4_its_squared_gradient():
    """The report's two-layer modified loss (sigma = tanh, m = 2, d = 2, n = 3) against a
    hand-written loss and its finite-difference gradient."""
    from exactdyn.report.twolayer import modified_steps
    from exactdyn.symbolic import twolayer as tl

    m = ed.TwoLayer(2, np.array([[1.0, 0.5], [-0.3, 1.0], [0.7, -1.0]]),
                    np.array([0.5, -0.2, 0.9]), activation="tanh", seed=0)
    steps = modified_steps(m)
    assert [s.title for s in steps] == ["Modified loss", "Definition of h", "Definition of e",
                                       "Definition of δh", "Definition of δe",
                                       "Modified flow of a", "Modified flow of W"]
    rng = np.random.default_rng(3)
    X = np.array([[1.0, 0.5], [-0.3, 1.0], [0.7, -1.0]])
    y = np.array([0.5, -0.2, 0.9])
    alpha, h = 1.5, 0.3
    a_s = [sp.Symbol(f"a_{j}") for j in range(2)]
    W_s = [[sp.Symbol(f"W_{j}_{r}") for r in range(2)] for j in range(2)]
    e = steps[0].expr.rhs.xreplace({tl.M: 2, tl.D: 2, tl.N: 3, tl.ALPHA: sp.Float(alpha, 30),
                                    sp.Symbol("h", positive=True): sp.Float(h, 30)}).doit()
    e = e.replace(tl.DSIGMA, lambda z: 1 - sp.tanh(z) ** 2).replace(tl.SIGMA, sp.tanh)
    e = e.doit()
    e = e.xreplace({tl.A[j]: a_s[j] for j in range(2)})
    e = e.xreplace({tl.W[j, r]: W_s[j][r] for j in range(2) for r in range(2)})
    e = e.xreplace({tl.XS[i, r]: sp.Float(X[i, r], 30) for i in range(3) for r in range(2)})
    e = e.xreplace({tl.YS[i]: sp.Float(y[i], 30) for i in range(3)})
    entries = a_s + [s for row in W_s for s in row]
    assert e.free_symbols <= set(entries), e.free_symbols
    f_Lt = sp.lambdify(entries, e, "mpmath")

    def L(v):  # by hand: f(x) = (1/alpha) sum_k a_k tanh(w_k . x)
        a, W = v[:2], [v[2:4], v[4:6]]
        out = 0
        for i in range(3):
            f = sum(a[k] * mpmath.tanh(W[k][0] * X[i, 0] + W[k][1] * X[i, 1])
                    for k in range(2)) / alpha
            out += (f - y[i]) ** 2
        return out / 6

    with mpmath.workdps(40):
        x = [mpmath.mpf(float(v)) for v in rng.uniform(-1, 1, 6)]
        g = [_fd(L, x, i) for i in range(6)]
        want = L(x) + mpmath.mpf(h) / 4 * sum(v**2 for v in g)
        assert abs(f_Lt(*x) - want) < 1e-15


def test_two_layer_recorded_modified_equations_are_minus_grad_of_a_hand_written_modified_loss():
    """The report's two-layer modified equations (sigma = tanh, m = 2, d = 2, n = 3), with
    the recorded definitions of h, e, delta h, delta e substituted and f^a, f^W set to
    minus finite differences of a hand-written loss, against nested central finite
    differences of L + (h/4)|grad L|^2 (40 digits)."""
    from exactdyn.report.twolayer import modified_steps
    from exactdyn.symbolic import twolayer as tl

    X = np.array([[1.0, 0.5], [-0.3, 1.0], [0.7, -1.0]])
    y = np.array([0.5, -0.2, 0.9])
    alpha, h = 1.5, 0.3
    m = ed.TwoLayer(2, X, y, activation="tanh", seed=0)
    steps = {s.title: s.expr for s in modified_steps(m)}

    def L(v):  # by hand: f(x) = (1/alpha) sum_k a_k tanh(w_k . x)
        a, W = v[:2], [v[2:4], v[4:6]]
        out = 0
        for i in range(3):
            f = sum(a[k] * mpmath.tanh(W[k][0] * X[i, 0] + W[k][1] * X[i, 1])
                    for k in range(2)) / alpha
            out += (f - y[i]) ** 2
        return out / 6

    rng = np.random.default_rng(5)
    with mpmath.workdps(40):
        x = [mpmath.mpf(float(v)) for v in rng.uniform(-1, 1, 6)]
        f = [-_fd(L, x, i) for i in range(6)]
        inner = mpmath.mpf(10) ** -12

        def Lt(v):
            g = []
            for i in range(6):
                vp, vm = list(v), list(v)
                vp[i] += inner
                vm[i] -= inner
                g.append((L(vp) - L(vm)) / (2 * inner))
            return L(v) + mpmath.mpf(h) / 4 * sum(c**2 for c in g)

        want = [-_fd(Lt, x, i) for i in range(6)]
    # the recorded definitions, at both neuron indices
    defs = {}
    for title in ("Definition of h", "Definition of e", "Definition of δh", "Definition of δe"):
        eq = steps[title]
        defs[eq.lhs] = eq.rhs
        if tl.J in eq.lhs.free_symbols:
            defs[eq.lhs.xreplace({tl.J: tl.K})] = eq.rhs.xreplace({tl.J: tl.K})
    fa, fW = sp.IndexedBase("f^{a}"), sp.IndexedBase("f^{W}")
    num = {tl.M: 2, tl.D: 2, tl.N: 3, tl.ALPHA: sp.Float(alpha, 40),
           sp.Symbol("h", positive=True): sp.Float(h, 40)}
    values = {}
    for k in range(2):
        values[tl.A[k]] = sp.Float(str(x[k]), 40)
        values[fa[k]] = sp.Float(str(f[k]), 40)
        for r in range(2):
            values[tl.W[k, r]] = sp.Float(str(x[2 + 2 * k + r]), 40)
            values[fW[k, r]] = sp.Float(str(f[2 + 2 * k + r]), 40)
    for i in range(3):
        values[tl.YS[i]] = sp.Float(y[i], 40)
        for r in range(2):
            values[tl.XS[i, r]] = sp.Float(X[i, r], 40)
    got = []
    for title, free in (("Modified flow of a", [{tl.J: j} for j in range(2)]),
                        ("Modified flow of W",
                         [{tl.J: j, tl.R: r} for j in range(2) for r in range(2)])):
        e = steps[title].rhs
        for _ in range(4):
            e = e.xreplace(defs)
        e = e.xreplace(num)
        for at in free:
            v = e.xreplace(at).doit()
            v = v.replace(tl.D2SIGMA, lambda z: -2 * sp.tanh(z) * (1 - sp.tanh(z) ** 2))
            v = v.replace(tl.DSIGMA, lambda z: 1 - sp.tanh(z) ** 2).replace(tl.SIGMA, sp.tanh)
            v = v.xreplace(values)
            assert not v.free_symbols, v.free_symbols
            got.append(float(sp.N(v, 30)))
    np.testing.assert_allclose(got, np.array(want, dtype=float), rtol=1e-12, atol=1e-14)


@pytest.mark.slow  # about a minute: sympy unrolls 16 printed equations
def test_cnn_recorded_modified_equations_are_minus_grad_of_a_hand_written_modified_loss():
    """The CNN report's modified equations (sigma = tanh; two 3x3 one-channel images,
    two 2x2 kernels: 4 positions, 4 patch entries), with the recorded definitions
    substituted, f^a, f^W minus finite differences of a hand-written loss (patches by
    slicing), against nested central finite differences of L + (h/4)|grad L|^2."""
    from exactdyn.report.cnn import modified_steps
    from exactdyn.symbolic import cnn as sc
    from exactdyn.symbolic.twolayer import D2SIGMA

    rng = np.random.default_rng(7)
    imgs = rng.uniform(-1, 1, (2, 3, 3))
    y = np.array([0.4, -0.6])
    alpha, h, M_, P_, D_ = 1.3, 0.25, 2, 4, 4
    # patch (i, k = 2u + w, l = 2p + q) = imgs[i, u + p, w + q]
    X = np.array([[[imgs[i, u + p, w + q] for p in range(2) for q in range(2)]
                   for u in range(2) for w in range(2)] for i in range(2)])
    steps = {s.title: s.expr for s in modified_steps()}

    def L(v):  # state: W[l, b] at 2l + b (8), then a[k, b] at 8 + 2k + b (8)
        out = 0
        for i in range(2):
            f = 0
            for k in range(P_):
                for b in range(M_):
                    hh = sum(v[2 * l + b] * X[i, k, l] for l in range(D_))
                    f += v[8 + 2 * k + b] * mpmath.tanh(hh)
            out += (f / alpha - y[i]) ** 2
        return out / 4

    with mpmath.workdps(40):
        x = [mpmath.mpf(float(v)) for v in rng.uniform(-1, 1, 16)]
        f = [-_fd(L, x, i) for i in range(16)]
        inner = mpmath.mpf(10) ** -12

        def Lt(v):
            g = []
            for i in range(16):
                vp, vm = list(v), list(v)
                vp[i] += inner
                vm[i] -= inner
                g.append((L(vp) - L(vm)) / (2 * inner))
            return L(v) + mpmath.mpf(h) / 4 * sum(c**2 for c in g)

        want = [-_fd(Lt, x, i) for i in range(16)]
    defs = {}
    for title in ("Definition of h", "Definition of e", "Definition of δh", "Definition of δe"):
        eq = steps[title]
        free = eq.lhs.free_symbols  # h, delta h at every pair of position / kernel indices
        renames = ({}, {sc.K: sc.Q}, {sc.G: sc.B}, {sc.K: sc.Q, sc.G: sc.B}) \
            if sc.K in free else ({},)
        for ren in renames:
            defs[eq.lhs.xreplace(ren)] = eq.rhs.xreplace(ren)
    fa, fW = sp.IndexedBase("f^{a}"), sp.IndexedBase("f^{W}")
    num = {sc.M: M_, sc.D: D_, sc.N: 2, sc.P: P_, sc.ALPHA: sp.Float(alpha, 40),
           sp.Symbol("h", positive=True): sp.Float(h, 40)}
    values = {}
    for b in range(M_):
        for l in range(D_):
            values[sc.W[l, b]] = sp.Float(str(x[2 * l + b]), 40)
            values[fW[l, b]] = sp.Float(str(f[2 * l + b]), 40)
        for k in range(P_):
            values[sc.A[k, b]] = sp.Float(str(x[8 + 2 * k + b]), 40)
            values[fa[k, b]] = sp.Float(str(f[8 + 2 * k + b]), 40)
    for i in range(2):
        values[sc.YS[i]] = sp.Float(y[i], 40)
        for k in range(P_):
            for l in range(D_):
                values[sc.XS[i, k, l]] = sp.Float(X[i, k, l], 40)
    got = [0.0] * 16
    for title, base, slot in (("Modified flow of W", sc.R, lambda r, b: 2 * r + b),
                              ("Modified flow of a", sc.Q, lambda q, b: 8 + 2 * q + b)):
        e = steps[title].rhs
        for _ in range(4):
            e = e.xreplace(defs)
        e = e.xreplace(num)
        for j in range(D_ if base == sc.R else P_):
            for b in range(M_):
                v = e.xreplace({base: j, sc.B: b}).doit()
                v = v.replace(D2SIGMA, lambda z: -2 * sp.tanh(z) * (1 - sp.tanh(z) ** 2))
                v = v.replace(sc.DSIGMA, lambda z: 1 - sp.tanh(z) ** 2).replace(sc.SIGMA,
                                                                                  sp.tanh)
                v = v.xreplace(values)
                assert not v.free_symbols, v.free_symbols
                got[slot(j, b)] = float(sp.N(v, 30))
    np.testing.assert_allclose(got, np.array(want, dtype=float), rtol=1e-12, atol=1e-14)


# ---- the report's section ------------------------------------------------------------

def test_the_report_records_the_modified_flow_in_markdown_tex_and_json():
    m = ed.Linear1D.from_init([0.3, -0.2, 0.5], [0.1, 0.4, -0.3])
    c = report_content.gather(m, [0.0, 1.0], 30, verify_numbers=False, regime=False)
    md, tx = report_markdown.render(c), report_tex.render(c)
    data = json.loads(report_data.to_json(c))
    assert "## Modified flow of gradient descent" in md
    assert "Modified loss" in md and "Modified flow of u" in md and "Modified flow of w" in md
    assert "\\section*{Modified flow of gradient descent}" in tx
    assert data["modified_flow"]["steps"] == {"Modified loss": None,
                                              "Modified flow of u": True,
                                              "Modified flow of w": True}
    assert any("Implicit gradient regularization" in r for r in c.references)
    # the step numbers continue those of the sections before it
    n = len(c.steps) + len(c.conserved) + len(c.constants) + len(c.closed_form) + len(c.proofs)
    assert f"**{n + 1}. Modified loss**" in md


def test_two_user_networks_sharing_a_name_get_their_own_modified_flow():
    """The modified flow is cached per derived flow, not per name: a second network named
    like the first, with another loss, gets the modified loss of its own loss."""
    i, d = sp.symbols("i d", integer=True)
    u = sp.IndexedBase("u")
    c = sp.Symbol("c")
    one = ed.Network("same_name", params=[u], index=i, width=d, hyper=[c],
                     loss=(sp.Sum(u[i], (i, 0, d - 1)) - c) ** 2 / 2)
    two = ed.Network("same_name", params=[u], index=i, width=d, hyper=[c],
                     loss=(sp.Sum(u[i] ** 2, (i, 0, d - 1)) - c) ** 2 / 2)
    m1, m2 = one.from_init({"u": [0.3, -0.2]}, c=1.0), two.from_init({"u": [0.3, -0.2]}, c=1.0)
    s1, _ = report_content.modified_flow_steps(ed.gradient_flow(m1))
    s2, _ = report_content.modified_flow_steps(ed.gradient_flow(m2))
    assert s1[0].expr.rhs != s2[0].expr.rhs
    # the second's modified loss is L + (h/4) sum_j (2 u_j r)^2, r = sum u^2 - c
    e = s2[0].expr.rhs
    h = [s for s in e.free_symbols if s.name == "h"][0]
    e = e.xreplace({s: 2 for s in e.free_symbols if s.name == "d"}).doit()
    e = e.xreplace({s: 1 for s in e.free_symbols if s.name == "c"})
    e = e.xreplace({q: v for q, v in zip(sorted(e.atoms(sp.Indexed), key=str),
                                         (sp.Rational(3, 10), sp.Rational(-1, 5)))})
    u0, u1 = sp.Rational(3, 10), sp.Rational(-1, 5)
    r = u0**2 + u1**2 - 1
    want = r**2 / 2 + h / 4 * ((2 * u0 * r) ** 2 + (2 * u1 * r) ** 2)
    assert sp.simplify(e - want) == 0
