"""The LinearNet lazy/rich taxonomy (regimes/linear_net.py): its NTK against a Jacobian
taken by finite differences, its vectorized decoupled-init diagram against the per-cell
path (one integration per cell), the small-init prediction as a limit of measured runs, the
transpose symmetry, and bad input."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.regimes import linear_net as rln

TEACHER = np.diag([3.0, 1.0, 0.5])


def _fd_ntk(W1, W2, eta1, eta2, X):
    """The NTK of vec(W2 W1 X) by central differences over every weight (the output is
    bilinear in the weights, so the differences are exact up to round-off)."""
    def f(p):
        A = p[:W1.size].reshape(W1.shape)
        B = p[W1.size:].reshape(W2.shape)
        return (B @ A @ X).T.ravel()  # outputs ordered (input column, output row)

    p0 = np.concatenate([W1.ravel(), W2.ravel()])
    h = 1e-4 * max(1.0, np.abs(p0).max())
    J = np.empty((f(p0).size, p0.size))
    for k in range(p0.size):
        e = np.zeros_like(p0)
        e[k] = h
        J[:, k] = (f(p0 + e) - f(p0 - e)) / (2 * h)
    rates = np.r_[np.full(W1.size, eta1), np.full(W2.size, eta2)]
    return (J * rates) @ J.T


dims = st.integers(1, 3)
rates = st.floats(0.2, 5.0)


@given(dims, dims, dims, rates, rates, st.integers(0, 10**6), st.booleans())
@settings(max_examples=25)
def test_ntk_change_equals_finite_difference_kernels(n_in, h, n_out, eta1, eta2, seed,
                                                     whitened):
    rng = np.random.default_rng(seed)
    W1 = rng.normal(size=(2, h, n_in))
    W2 = rng.normal(size=(2, n_out, h))
    sxx = None
    X = np.eye(n_in)
    if not whitened:
        M = rng.normal(size=(n_in, n_in))
        sxx = M @ M.T + 0.5 * np.eye(n_in)
        vals, vecs = np.linalg.eigh(sxx)
        X = (vecs * np.sqrt(vals)) @ vecs.T
    K0 = _fd_ntk(W1[0], W2[0], eta1, eta2, X)
    K1 = _fd_ntk(W1[1], W2[1], eta1, eta2, X)
    want = np.linalg.norm(K1 - K0) / np.linalg.norm(K0)
    got = rln.linear_net_ntk_change(W1, W2, eta1, eta2, sxx)
    assert got[0] == 0.0
    assert got[1] == pytest.approx(want, rel=1e-7)


def test_ntk_change_of_a_zero_kernel_is_infinite_unless_it_stays_zero():
    W1 = np.zeros((2, 2, 2))
    W2 = np.zeros((2, 2, 2))
    assert rln.linear_net_ntk_change(W1, W2).tolist() == [0.0, 0.0]
    W2[1, 0, 0] = 1.0
    assert rln.linear_net_ntk_change(W1, W2).tolist() == [0.0, np.inf]


def test_ntk_change_bad_shapes():
    with pytest.raises(ValueError, match="W1 and W2"):
        rln.linear_net_ntk_change(np.zeros((2, 3, 2)), np.zeros((2, 2, 2)))


# ---- the decoupled grid against one integration per cell ----------------------------------

strengths = st.floats(1e-3, 3.0)


@given(strengths, st.one_of(st.none(), strengths), rates, rates,
       st.sampled_from([1, 2, 3, 4]), st.floats(0.2, 4.0), st.floats(0.1, 1.0))
@settings(max_examples=12)
def test_grid_equals_integrated_sup_on_monotone_paths(a, b, eta1, eta2, hidden, s1, ratio):
    """The grid's change at convergence is the sup the per-cell classifier samples from
    its solved trajectory (401 times up to the horizon), to integration accuracy; where
    the path is not monotone the grid's value is a lower bound. (A teacher value of 0
    decays algebraically, past any horizon: see grid_linear_net; so s2 > 0 here.)"""
    syx = np.diag([s1, s1 * ratio])
    fixed = {"sigma_yx": syx, "eta1": eta1, "eta2": eta2, "hidden": hidden}
    if b is not None:
        fixed["b_strengths"] = b
    grid = ed.phase_diagram(ed.LinearNet, x=("strengths", [a]), y=("s1", [s1]),
                            fixed={k: v for k, v in fixed.items()})
    assert grid.method == "closed-form"
    model = ed.LinearNet.decoupled(syx, hidden=hidden, strengths=a, b_strengths=b,
                                   eta1=eta1, eta2=eta2)
    cell = ed.classify(model)
    g = grid.scores["ntk_change"][0, 0]
    m = cell.evidence["ntk_change"]
    assert cell.taxonomy == "linear_net"
    if grid.scores["monotone"][0, 0] == 1:
        assert g == pytest.approx(m, rel=1e-6)
        if abs(m - 0.1) > 1e-3:
            assert grid.labels[0, 0] == cell.label
    else:
        assert g <= m * (1 + 1e-6)
    assert grid.predicted[0, 0] == cell.predicted
    assert grid.scores["ntk_change_predicted"][0, 0] == pytest.approx(
        cell.evidence["ntk_change_predicted"], rel=1e-9)
    assert grid.scores["loss_end"][0, 0] == pytest.approx(cell.evidence["loss_end"],
                                                          abs=1e-6 * s1 * s1)


def test_product_crossing_zero_is_not_monotone_and_a_lower_bound():
    """b < 0 < a: the mode's product starts negative, shrinks both layers, crosses 0 and
    grows them again, so the kernel change first rises then falls back (a small teacher:
    the end point is nearer the init than the crossing)."""
    syx = 0.1 * np.eye(2)
    model = ed.LinearNet.decoupled(syx, strengths=1.0, b_strengths=-0.8, eta2=2.0)
    cell = ed.classify(model)
    grid = ed.phase_diagram(ed.LinearNet, x=("strengths", [1.0]), y=("b_strengths", [-0.8]),
                            fixed={"sigma_yx": syx, "eta2": 2.0})
    assert grid.scores["monotone"][0, 0] == 0 and cell.evidence["monotone"] == 0
    tr = ed.solve(model, np.linspace(0, rln.horizon(model), 401))
    mv = rln.linear_net_ntk_change(tr["W1"], tr["W2"], 1.0, 2.0)
    assert mv.max() > mv[-1] * 1.01  # the sup is not at the end
    assert grid.scores["ntk_change"][0, 0] == pytest.approx(mv[-1], rel=1e-6)


def test_grid_matches_the_per_cell_diagram_over_the_lazy_rich_boundary():
    axes = dict(x=("strengths", np.geomspace(0.05, 5, 5)),
                y=("b_strengths", np.geomspace(0.01, 5, 4)))
    fixed = {"sigma_yx": TEACHER}
    grid = ed.phase_diagram(ed.LinearNet, fixed=fixed, **axes)
    with ThreadPoolExecutor(1) as pool:
        cells = ed.phase_diagram(ed.LinearNet, fixed=fixed, executor=pool, progress=False,
                                 **axes)
    assert grid.method == "closed-form" and cells.method == "trajectory"
    assert not cells.failures
    assert set(grid.counts()) == {"lazy", "rich"}
    mono = grid.scores["monotone"] == 1
    np.testing.assert_array_equal(grid.labels[mono], cells.labels[mono])
    np.testing.assert_array_equal(grid.predicted, cells.predicted)
    np.testing.assert_allclose(grid.scores["ntk_change"][mono],
                               cells.scores["ntk_change"][mono], rtol=1e-6)


# ---- prediction, symmetry ------------------------------------------------------------------

@given(st.floats(-3.0, 3.0).filter(lambda q: abs(q) > 0.05), rates, rates)
@settings(max_examples=10)
def test_prediction_is_the_small_init_limit_of_the_measured_change(q, eta1, eta2):
    """At fixed imbalance q = a^2/eta2 - b^2/eta1, the measured change tends to the
    predicted one as the product a b -> 0 (the limit Kunin et al. take)."""
    s = np.array([2.0, 0.7])

    def ab(x):
        b2 = rln._end_b2(q, x, eta1, eta2)
        return np.sqrt(eta2 * (q + b2 / eta1)), np.sqrt(b2)

    pred = None
    prev = None
    for x in (1e-2, 1e-4, 1e-6):
        a, b = ab(x)
        ch, pr, mono, _ = rln.decoupled_changes(np.full(2, a), np.full(2, b), s, eta1, eta2,
                                                2, 2)
        assert mono
        pred = pr
        err = abs(ch - pr)
        if prev is not None:
            assert err < prev or err < 1e-12 * pr
        prev = err
    assert prev < 1e-4 * pred


def test_transpose_symmetry():
    """f -> f^T swaps the layers (W1 <-> W2^T), their rates and the dimensions: the kernel
    change and the prediction are unchanged."""
    syx = np.array([[2.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    a = np.array([0.3, 0.2])
    b = np.array([0.05, 0.4])
    one = rln.decoupled_changes(a, b, [2.0, 0.5], 1.5, 0.4, 2, 3)
    two = rln.decoupled_changes(b, a, [2.0, 0.5], 0.4, 1.5, 3, 2)
    np.testing.assert_allclose(one[:2], two[:2], rtol=1e-12)
    m1 = ed.LinearNet.decoupled(syx, strengths=a, b_strengths=b, eta1=1.5, eta2=0.4)
    m2 = ed.LinearNet.decoupled(syx.T, strengths=b, b_strengths=a, eta1=0.4, eta2=1.5)
    c1, c2 = ed.classify(m1), ed.classify(m2)
    assert c1.evidence["ntk_change"] == pytest.approx(c2.evidence["ntk_change"], rel=1e-7)
    assert c1.evidence["ntk_change"] == pytest.approx(one[0], rel=1e-6)


def test_balanced_small_init_is_rich_and_large_imbalance_is_lazy():
    rich = ed.classify(ed.LinearNet.decoupled(TEACHER, strengths=1e-3))
    lazy = ed.classify(ed.LinearNet.decoupled(TEACHER, strengths=30.0, b_strengths=1e-3))
    assert (rich.label, rich.predicted) == ("rich", "rich")
    assert (lazy.label, lazy.predicted) == ("lazy", "lazy")


# ---- models and trajectories ---------------------------------------------------------------

def test_trajectory_and_model_give_the_same_regime():
    model = ed.LinearNet.decoupled(TEACHER, strengths=0.4, b_strengths=2.0, eta1=0.5)
    tr = ed.solve(model, np.linspace(0, rln.horizon(model), 401), rtol=1e-10)
    a, b = ed.classify(model), ed.classify(tr)
    assert a.label == b.label and a.predicted == b.predicted
    assert a.evidence["ntk_change"] == pytest.approx(b.evidence["ntk_change"], rel=1e-7)


def test_random_init_is_classified_without_prediction():
    model = ed.LinearNet(in_dim=3, hidden=4, out_dim=2, sigma_yx=np.eye(2, 3),
                         scale1=1e-3, scale2=1e-3)
    reg = ed.classify(model)
    assert reg.taxonomy == "linear_net" and reg.predicted is None
    assert reg.label == "rich"
    assert reg.evidence["loss_end"] < 1e-8


def test_random_init_diagram_goes_cell_by_cell():
    pd = ed.phase_diagram(ed.LinearNet, x=("scale1", [1e-3, 3.0]), y=("scale2", [1e-3]),
                          fixed={"hidden": 2}, executor=None, jobs=1, progress=False)
    assert pd.method == "trajectory" and pd.labels.shape == (1, 2)
    assert pd.labels[0, 0] == "rich"


@pytest.mark.parametrize("fixed, match", [
    ({}, "sigma_yx"),
    ({"sigma_yx": TEACHER, "scale1": 0.1}, "scale1"),
])
def test_bad_decoupled_diagrams(fixed, match):
    with pytest.raises(ValueError, match=match):
        ed.phase_diagram(ed.LinearNet, x=("strengths", [0.1]), y=("eta1", [1.0]),
                         fixed=fixed)


def test_closed_form_needs_whitened_inputs():
    with pytest.raises(ValueError, match="whitened"):
        ed.phase_diagram(ed.LinearNet, x=("strengths", [0.1]), y=("eta1", [1.0]),
                         fixed={"sigma_yx": TEACHER, "sigma_xx": 2 * np.eye(3)},
                         method="closed-form")


def test_bad_hidden_and_threshold():
    with pytest.raises(ValueError, match="hidden"):
        ed.phase_diagram(ed.LinearNet, x=("strengths", [0.1]), y=("hidden", [1.5]),
                         fixed={"sigma_yx": TEACHER})
    with pytest.raises(ValueError, match="kernel_tol"):
        ed.classify(ed.LinearNet.decoupled(TEACHER), kernel_tol=-1)
