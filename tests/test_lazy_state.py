"""Lazy state at large width (issue 15, item 6): ``exact`` of a Linear1D gives its
observables from a few dot products over the init and forms the time × width state only
when it is asked for (:class:`exactdyn.trajectory.LazyState`).

Checked against independent references: the norms against the norms of the formed state
and the 40-digit closed form, the state against the 40-digit closed form, the norms'
conservation law :math:`\\lVert u\\rVert^2/\\eta_u - \\lVert w\\rVert^2/\\eta_w = Q_1`; whether
the state was formed is read from a flag and a counter, never from a time."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.closed_form import linear1d_numeric as cfnum
from exactdyn.trajectory import LazyState, Trajectory

finite = st.floats(-3.0, 3.0, allow_nan=False)
rates = st.floats(0.25, 4.0)


@st.composite
def models(draw):
    """Linear1D at width 1 to 40: random inits (balanced, imbalanced, zero readout and
    sign-flipped corners included) and hyperparameters."""
    width = draw(st.integers(1, 40))
    kind = draw(st.sampled_from(["random", "explicit", "zero_u", "small_u", "balanced"]))
    kappa = draw(st.sampled_from([1.0, -0.7, 2.5]))
    teacher = draw(st.sampled_from([1.0, -2.0, 0.3, 0.0]))
    eta_u, eta_w = draw(rates), draw(rates)
    if kind == "random":
        return ed.Linear1D(width=width, kappa=kappa, eta_u=eta_u, eta_w=eta_w,
                           teacher=teacher, sigma_u=draw(st.floats(0.01, 2.0)),
                           sigma_w=draw(st.floats(0.01, 2.0)), seed=draw(st.integers(0, 99)))
    w0 = np.array(draw(st.lists(finite, min_size=width, max_size=width)))
    if kind == "explicit":
        u0 = np.array(draw(st.lists(finite, min_size=width, max_size=width)))
    elif kind == "zero_u":
        u0 = np.zeros(width)
    elif kind == "small_u":  # |u0| << |w0|: the norms' terms cancel most
        u0 = 1e-4 * np.array(draw(st.lists(finite, min_size=width, max_size=width)))
    else:  # u0 = a w0, a = sqrt(eta_u / eta_w): k' = 0
        u0 = np.sqrt(eta_u / eta_w) * w0
    return ed.Linear1D.from_init(u0, w0, kappa=kappa, eta_u=eta_u, eta_w=eta_w,
                                 teacher=teacher)


time_grids = st.lists(st.floats(0.0, 30.0), min_size=1, max_size=6).map(
    lambda ts: np.array(sorted([0.0] + ts)))


def _eager_state(model, times):
    """The state as ``exact`` formed it before it was lazy: :func:`state_at` on the
    closed form's scale factor, for every time at once."""
    C = cfnum.constants(model)
    with np.errstate(over="ignore", under="ignore"):
        p, _rho, phi = cfnum.evaluate_p(C, times)
        if isinstance(phi, cfnum.DegenerateScale):
            phi = cfnum.DegenerateScale(np.broadcast_to(phi.sqrt_ratio, times.shape))
        else:
            phi = np.broadcast_to(phi, times.shape).astype(float)
        return cfnum.state_at(C, np.broadcast_to(p, times.shape), phi)


@given(models(), time_grids)
def test_the_lazy_state_equals_the_eager_one_and_the_40_digit_closed_form(model, times):
    traj = ed.exact(model, times)
    if not isinstance(traj.state, LazyState):  # evaluated in mpmath (cancelling init)
        assert traj.meta.get("evaluated_digits")
        return
    assert not traj.state.computed
    u, w = _eager_state(model, times)
    np.testing.assert_array_equal(traj["u"], u)
    np.testing.assert_array_equal(traj.state["w"], w)
    hp = ed.exact(model, times, precision=40).as_float()
    scale = max(1.0, float(np.max(np.abs(hp["u"]))), float(np.max(np.abs(hp["w"]))))
    for name in ("u", "w"):
        np.testing.assert_allclose(traj[name], hp[name], rtol=1e-9, atol=1e-9 * scale)


@given(models(), time_grids)
def test_the_norms_without_the_state_are_the_norms_of_the_state(model, times):
    traj = ed.exact(model, times)
    norm_u, norm_w = traj["norm_u"].copy(), traj["norm_w"].copy()
    if isinstance(traj.state, LazyState):
        assert not traj.state.computed  # the observables did not form the state
    # Against the norms of the formed state (a few units in the last place: the norms
    # are taken from their terms only where those do not cancel).
    np.testing.assert_allclose(norm_u, np.linalg.norm(traj["u"], axis=1), rtol=2e-14,
                               atol=1e-300)
    np.testing.assert_allclose(norm_w, np.linalg.norm(traj["w"], axis=1), rtol=2e-14,
                               atol=1e-300)
    # Conservation law of the flow: |u|^2/eta_u - |w|^2/eta_w = Q_1 at every time.
    init = model.initial_state()
    q1 = init["u"] @ init["u"] / model.eta_u - init["w"] @ init["w"] / model.eta_w
    q = norm_u**2 / model.eta_u - norm_w**2 / model.eta_w
    size = norm_u**2 / model.eta_u + norm_w**2 / model.eta_w
    np.testing.assert_allclose(q, q1, rtol=0, atol=1e-12 * float(np.max(size)) + 1e-300)


def test_observables_exports_and_summaries_do_not_form_the_state():
    model = ed.Linear1D(width=5000, sigma_u=0.01, seed=2)
    traj = ed.exact(model, np.linspace(0.0, 8.0, 9))
    assert isinstance(traj.state, LazyState) and not traj.state.computed
    for name in traj.observables:
        traj[name]  # noqa: B018
    assert "u" in traj and "w" in traj.state and list(traj.state) == ["u", "w"]
    assert len(traj.state) == 2 and len(traj) == 9
    repr(traj), traj._repr_markdown_(), traj._repr_html_()  # noqa: B018
    traj.to_json(), traj.to_csv(meta=True), traj.to_dict()  # noqa: B018
    floats = traj.as_float()
    assert isinstance(floats.state, LazyState) and not floats.state.computed
    assert not traj.state.computed
    np.testing.assert_array_equal(floats["u"], traj["u"])
    assert traj.state.computed


def test_the_state_is_computed_once_and_kept():
    calls = []

    def compute():
        calls.append(1)
        return {"u": np.arange(6.0).reshape(3, 2), "w": np.ones((3, 2))}

    state = LazyState(("u", "w"), compute)
    assert calls == [] and "u" in state and "x" not in state and list(state) == ["u", "w"]
    first = state["u"]
    assert state["u"] is first and state.get("w") is state["w"] and calls == [1]
    dict(state), list(state.items()), state.copy()  # noqa: B018
    assert calls == [1]
    with pytest.raises(KeyError):
        state["x"]  # noqa: B018
    state["x"] = np.zeros((3, 2))
    del state["u"]
    assert list(state) == ["w", "x"] and calls == [1]


def test_a_compute_giving_other_names_is_an_error():
    with pytest.raises(RuntimeError, match="expected"):
        LazyState(("u", "w"), lambda: {"u": np.zeros(1)})["u"]  # noqa: B018


@pytest.fixture(scope="module")
def lazy_and_eager():
    model = ed.Linear1D(width=6, sigma_u=0.5, seed=4, teacher=-1.5)
    lazy = ed.exact(model, [0.0, 0.5, 2.0, 7.0])
    eager = Trajectory(lazy.t.copy(), dict(ed.exact(model, lazy.t).state),
                       {k: v.copy() for k, v in lazy.observables.items()}, dict(lazy.meta))
    return lambda: ed.exact(model, lazy.t), eager


def test_every_trajectory_method_works_on_a_lazy_state(lazy_and_eager, tmp_path):
    fresh, eager = lazy_and_eager
    assert fresh().equals(eager) and fresh() == eager and eager == fresh()
    assert fresh().to_json(include_state=True) == eager.to_json(include_state=True)
    assert fresh().to_csv(include_state=True, meta=True) == \
        eager.to_csv(include_state=True, meta=True)
    assert fresh().to_dict(include_state=True)["state"] == eager.to_dict(True)["state"]
    assert repr(fresh()) == repr(eager) and fresh()._repr_html_() == eager._repr_html_()
    for ext in ("json", "csv", "npz"):
        path = tmp_path / f"lazy.{ext}"
        traj = fresh()
        if ext == "npz":
            traj.to_npz(path)
        else:
            getattr(traj, f"to_{ext}")(path, include_state=True,
                                       **({"meta": True} if ext == "csv" else {}))
        back = ed.load(path)
        assert back.equals(eager), ext
    for copied in (pickle.loads(pickle.dumps(fresh())), copy.deepcopy(fresh())):
        assert copied.equals(eager) and isinstance(copied.state, dict)
    assert fresh().as_float().equals(eager.as_float())
    np.testing.assert_array_equal(fresh()["u"][1:3], eager["u"][1:3])
    with pytest.raises(KeyError, match="available"):
        fresh()["no_such_name"]  # noqa: B018
    assert repr(fresh().state) == repr(eager.state)


def test_wide_exact_at_one_time_forms_no_state():
    # Width 10^6: the observables from dot products over the init; the state (2 x 10^6
    # numbers per time) only on request.
    model = ed.Linear1D(width=10**6, sigma_u=1e-3, seed=1)
    traj = ed.exact(model, [1.5])
    assert not traj.state.computed
    init = model.initial_state()
    assert traj["end_to_end"][0] != init["u"] @ init["w"]
    np.testing.assert_allclose(traj["norm_u"], np.linalg.norm(traj["u"], axis=1), rtol=2e-14)
    assert traj.state.computed and traj["u"].shape == (1, 10**6)


@given(st.integers(1, 3 * cfnum._BLOCK + 5), st.sampled_from([1.0, 4.0, 0.3]),
       st.sampled_from(["random", "u=aw", "u=-aw"]), st.integers(0, 9))
def test_the_init_dot_products_are_the_sums_of_their_entries(width, a, kind, seed):
    # Against math.fsum of the entries (correctly rounded), over one block and several;
    # an exactly degenerate init (u0 = +-a w0, a a power of 2 or 1) gives exactly 0.
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=width)
    u0 = {"random": rng.normal(size=width), "u=aw": a * w0, "u=-aw": -a * w0}[kind]
    plus, minus, p0, u_sq, w_sq = cfnum._init_dot_products(u0, a, w0)
    ref = [math.fsum((u0 + a * w0) ** 2), math.fsum((u0 - a * w0) ** 2),
           math.fsum(u0 * w0), math.fsum(u0 * u0), math.fsum(w0 * w0)]
    scale = math.fsum(u0 * u0) + a * a * math.fsum(w0 * w0)
    for got, want in zip((plus, minus, p0, u_sq, w_sq), ref):
        assert abs(got - want) <= 1e-13 * scale
    if kind != "random" and a in (1.0, 4.0):
        assert (minus if kind == "u=aw" else plus) == 0.0
