"""Bad input raises ValueError (TypeError for wrong types) naming the parameter."""

import math

import numpy as np
import pytest

import exactdyn as ed

NAN, INF = math.nan, math.inf
HYPER = ["kappa", "eta_u", "eta_w", "sigma_u", "sigma_w", "teacher", "x_var"]


@pytest.mark.parametrize("kwargs,name,exc", [
    ({"width": 0}, "width", ValueError),
    ({"width": -1}, "width", ValueError),
    ({"width": 1.5}, "width", TypeError),
    ({"kappa": 0}, "kappa", ValueError),
    ({"eta_u": 0}, "eta_u", ValueError),
    ({"eta_u": -1.0}, "eta_u", ValueError),
    ({"eta_w": 0}, "eta_w", ValueError),
    ({"eta_w": -2.0}, "eta_w", ValueError),
    ({"x_var": 0}, "x_var", ValueError),
    ({"x_var": -1.0}, "x_var", ValueError),
    ({"sigma_u": -1e-3}, "sigma_u", ValueError),
    ({"sigma_w": -1.0}, "sigma_w", ValueError),
    ({"kappa": "1"}, "kappa", TypeError),
])
def test_bad_hyperparameters(kwargs, name, exc):
    with pytest.raises(exc, match=name):
        ed.Linear1D(**kwargs)


@pytest.mark.parametrize("name", HYPER)
@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_non_finite_hyperparameters(name, bad):
    with pytest.raises(ValueError, match=name):
        ed.Linear1D(**{name: bad})


@pytest.mark.parametrize("name", ["kappa", "eta_u", "eta_w", "teacher", "x_var"])
@pytest.mark.parametrize("bad", [NAN, INF])
def test_non_finite_hyperparameters_from_init(name, bad):
    with pytest.raises(ValueError, match=name):
        ed.Linear1D.from_init([1.0], [1.0], **{name: bad})


@pytest.mark.parametrize("which", ["u0", "w0"])
@pytest.mark.parametrize("bad", [NAN, INF])
def test_non_finite_init(which, bad):
    v = [1.0, bad, 2.0]
    ok = [1.0, 1.0, 1.0]
    args = (v, ok) if which == "u0" else (ok, v)
    with pytest.raises(ValueError, match=which):
        ed.Linear1D.from_init(*args)


def test_init_lengths_differ():
    with pytest.raises(ValueError, match="u0"):
        ed.Linear1D.from_init([1.0, 2.0], [1.0])


def test_empty_init():
    with pytest.raises(ValueError, match="u0"):
        ed.Linear1D.from_init([], [])


M = ed.Linear1D(width=3, seed=0)


@pytest.mark.parametrize("func", [ed.solve, ed.exact, ed.verify])
@pytest.mark.parametrize("t", [[-1.0, 1.0], [0.0, 2.0, 1.0], [0.0, NAN], [0.0, INF]])
def test_bad_times(func, t):
    with pytest.raises(ValueError, match=r"\bt\b"):
        func(M, t)


@pytest.mark.parametrize("func", [ed.solve, ed.exact, ed.verify])
def test_bad_precision(func):
    with pytest.raises(ValueError, match="precision"):
        func(M, [0.0, 1.0], precision=5)
    with pytest.raises(TypeError, match="precision"):
        func(M, [0.0, 1.0], precision="a")


def test_unknown_method():
    with pytest.raises(ValueError, match="method"):
        ed.solve(M, [0.0, 1.0], method="Euler-ish")


def test_good_input_is_not_rejected():
    m = ed.Linear1D.from_init(np.array([0.0]), np.array([0.0]), teacher=0.0)
    assert len(ed.solve(m, [0.0, 1.0])) == 2
    assert len(ed.exact(m, [0.0, 0.0, 1.0])) == 3


def test_solve_accepts_repeated_times():
    m = ed.Linear1D(width=2, seed=0)
    t = [0.0, 0.5, 0.5, 1.0]
    assert np.allclose(ed.solve(m, t)["end_to_end"], ed.exact(m, t)["end_to_end"], rtol=1e-9)
