"""Issue 14, "verify tables that mislead": each row says which test it passed, relative
errors are "n/a" where the reference never leaves the band around 0, a float64 failure
caused by the integrator says so and names ``precision=``, the columns stay aligned for
long names, and the scale-convergence check moves to smaller scales for a small init at
the edge of the early phase."""

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.cli import main
from exactdyn.models.datasets import synthetic_images
from exactdyn.models.deep_linear import teacher_matrix

# The case: a valid decoupled init whose saddle passages cost float64 its digits.
SADDLES = ed.DeepLinear.decoupled(3, 3, teacher_matrix([3, 2, 1], 3, 3), [0.05, 0.02, 0.01])
T_SADDLES = np.linspace(0.0, 30.0, 31)


def test_each_row_says_which_test_it_passed():
    rep = ed.verify(ed.Linear1D(width=3, seed=0), np.linspace(0.0, 30.0, 5))
    assert rep.passed
    # end_to_end stays far from 0: relative; the loss reaches 0 (the absolute test there)
    assert rep["end_to_end"].passed_on == "relative"
    assert rep["loss"].passed_on in ("rel/abs", "absolute")
    lines = rep.table().splitlines()
    row = {ln.split()[0]: ln for ln in lines[2:2 + len(rep.checks)]}
    assert row["end_to_end"].endswith("yes (relative)")
    assert row["loss"].endswith(f"yes ({rep['loss'].passed_on})")
    assert "passed on: relative" in rep.table()
    assert "✓ relative" in rep._repr_markdown_()
    assert rep.to_dict()["observables"]["loss"]["passed_on"] == rep["loss"].passed_on


def test_relative_error_of_a_reference_at_zero_prints_na():
    # zero init: the flow stays at the saddle, end_to_end = 0 at every t
    rep = ed.verify(ed.Linear1D.from_init([0.0, 0.0], [0.0, 0.0]), [0.0, 1.0, 2.0])
    c = rep["end_to_end"]
    assert np.isnan(c.max_rel_error) and c.passed and c.passed_on == "absolute"
    row = next(ln for ln in rep.table().splitlines() if ln.startswith("end_to_end"))
    assert row.split()[2] == "n/a"
    assert "| n/a |" in rep._repr_markdown_()


def test_float64_failure_from_the_integrator_names_the_cause_and_precision():
    # solve itself warns too (issue 16): the passages float64 cannot resolve
    with pytest.warns(ed.PrecisionWarning, match="precision=30"):
        rep = ed.verify(SADDLES, T_SADDLES)
    assert not rep.passed and not rep["end_to_end"].passed
    assert "agrees with its own 30-digit evaluation" in rep.note
    assert "integrator" in rep.note and "precision=30" in rep.note
    assert "note: the float64 closed form agrees" in rep.table()
    # the advice holds: at 30 digits the same case passes
    assert ed.verify(SADDLES, T_SADDLES[::6], precision=30).passed


@pytest.mark.filterwarnings("ignore::exactdyn.errors.PrecisionWarning")
def test_cli_verify_failure_prints_the_cause(capsys):
    code = main(["verify", "deep-linear", "--depth", "3", "--width", "3", "--teacher-svals",
                 "3,2,1", "--decoupled", "0.05,0.02,0.01", "--t-span", "0:30", "--points",
                 "31"])
    out = capsys.readouterr().out
    assert code == 1 and "--precision 30" in out and "overall: FAILED" in out


@pytest.mark.filterwarnings("ignore::exactdyn.errors.PrecisionWarning")
def test_columns_do_not_shift_for_a_row_named_singular_values():
    rep = ed.verify(SADDLES, T_SADDLES)
    lines = rep.table().splitlines()
    head, rows = lines[1], lines[2:2 + len(rep.checks)]
    assert any(r.startswith("singular_values ") for r in rows)
    # every row's columns end where the header's do
    for col in ("max abs err", "max rel err", "rel tol", "abs tol"):
        end = head.index(col) + len(col)
        for r in rows:
            assert r[end - 1] != " " and r[end] == " ", (col, r)
    for r in rows:
        assert r.find("  yes") == head.index("  passed") or \
            r.find("  NO") == head.index("  passed"), r


@pytest.fixture(scope="module")
def silu_cnn():
    images, labels = synthetic_images(16, 6, 6, 1, seed=0)
    return ed.TwoLayerCNN(4, 3, images, labels, activation="silu", scale=1e-3)


def test_asymptotic_check_moves_to_smaller_scales_for_a_small_init(silu_cnn):
    # At init x 1, 0.5, 0.25 the output's error does not yet fall (next-order terms); the
    # check repeats at x 1/4, 1/8, 1/16 and passes there, saying so.
    rep = ed.verify(silu_cnn, np.linspace(0.0, 1.0, 5))
    assert rep.passed, rep.table()
    assert rep.factors == (0.25, 0.125, 0.0625)
    assert "at init x 1, 0.5, 0.25 the check failed" in rep.note
    assert all(0.8 <= c.order for c in rep.checks if c.order is not None)
    head = rep.table().splitlines()[2]
    assert "err x0.0625" in head
    for r in rep.table().splitlines()[3:3 + len(rep.checks)]:
        assert r.index("  yes (order)") == head.index("  passed")


def test_asymptotic_check_fails_where_the_closed_form_is_off_by_orders(silu_cnn):
    # Far outside the early phase the relative errors are ~1e12: no order can pass.
    rep = ed.verify(silu_cnn, np.linspace(0.0, 10.0, 3))
    assert not rep.passed
    assert all("does not approximate the flow" in c.note for c in rep.checks)
    assert rep.factors == (1.0, 0.5, 0.25)  # errors >= 1: no smaller scales are tried
