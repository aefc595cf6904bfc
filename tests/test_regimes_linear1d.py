"""Regimes of the 1-D linear network: exact metrics against trajectories (closed form and
the integrator), identities, canonical cases, the registry, bad input."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import exactdyn
from exactdyn import Linear1D, classify, exact, solve
from exactdyn.regimes import (
    Regime,
    Taxonomy,
    alignment_score,
    alignment_score_exact,
    disalignment_fraction,
    exact_ntk_change,
    get_taxonomy,
    ntk_ratio,
    register_taxonomy,
    relative_ntk_change,
    sampled_disalignment_fraction,
)
from exactdyn.regimes.linear1d import grid_linear1d, scalars

scales = st.floats(1e-2, 3.0)


def _times(model, n=400):
    s = scalars(model)
    k_inf = s["omega"] * np.hypot(s["pstar"], s["k_prime"])
    return np.concatenate([[0.0], np.geomspace(1e-4, 60.0, n) / k_inf])


@given(su=scales, sw=scales, kappa=st.floats(0.05, 5.0), c=st.floats(-3, 3),
       eta=st.floats(0.3, 3.0), width=st.integers(1, 12), seed=st.integers(0, 50))
def test_exact_ntk_metrics_match_closed_form_trajectory(su, sw, kappa, c, eta, width, seed):
    model = Linear1D(width=width, sigma_u=su, sigma_w=sw, kappa=kappa, teacher=c, eta_u=eta,
                     seed=seed)
    s = scalars(model)
    assume(s["k_prime"] > 1e-6 * max(1.0, abs(s["pstar"])))
    traj = exact(model, _times(model))
    ntk = traj["ntk"]
    # K(t) -> K_inf: the last sample is within e^-60 of the limit.
    assert ntk[-1] / ntk[0] == pytest.approx(float(ntk_ratio(s["p0"], s["pstar"],
                                                             s["k_prime"])), rel=1e-7)
    # The sampled sup never exceeds the exact sup, and a dense sample comes close to it.
    exact_sup = float(exact_ntk_change(s["p0"], s["pstar"], s["k_prime"]))
    sampled = float(relative_ntk_change(ntk))
    assert sampled <= exact_sup * (1 + 1e-9) + 1e-12
    assert sampled == pytest.approx(exact_sup, rel=2e-2, abs=1e-9)
    # Disalignment fraction: exact vs sampled total variation of |p|.
    p = traj["end_to_end"] / kappa
    assert float(sampled_disalignment_fraction(p)) == pytest.approx(
        float(disalignment_fraction(s["p0"], s["pstar"])), abs=2e-2)


@given(su=scales, sw=scales, kappa=st.floats(0.05, 5.0), ratio=st.floats(1.5, 1e3),
       sign=st.sampled_from([-1.0, 1.0]), width=st.integers(1, 12), seed=st.integers(0, 50))
def test_alignment_identity_and_score_along_integrated_path(su, sw, kappa, ratio, sign, width,
                                                            seed):
    """zeta^2 = p^2/(p^2 + Q2) along the integrator's path (conserved Q2), and the exact
    alpha equals the sampled one between the first and the last sample (|p| grows:
    |p*| = ratio |p0|, either sign)."""
    init = Linear1D(width=width, sigma_u=su, sigma_w=sw, seed=seed).initial_state()
    p0 = float(init["u"] @ init["w"])  # the init does not depend on the teacher
    assume(abs(p0) > 1e-8)
    model = Linear1D(width=width, sigma_u=su, sigma_w=sw, kappa=kappa, seed=seed,
                     teacher=sign * ratio * abs(p0) * kappa)
    s = scalars(model)
    assume(s["k_prime"] > 1e-6)
    traj = solve(model, _times(model, 60), rtol=1e-11)
    p = traj["end_to_end"] / kappa
    zeta = traj["alignment"]
    np.testing.assert_allclose(zeta**2, p**2 / (p**2 + s["q2"]), rtol=1e-8, atol=1e-12)
    alpha = float(alignment_score_exact(s["p0"], s["pstar"], s["q2"]))
    assert 0.0 <= alpha <= 1.0
    assert float(alignment_score(p, zeta)) == pytest.approx(alpha, abs=1e-6)


@given(p0=st.floats(-1e3, 1e3), pstar=st.floats(-1e3, 1e3), q2=st.floats(0, 1e6))
def test_alignment_score_in_unit_interval(p0, pstar, q2):
    alpha = float(alignment_score_exact(p0, pstar, q2))
    if abs(pstar) > abs(p0):
        assert 0.0 <= alpha <= 1.0
    else:
        assert np.isnan(alpha)


def test_canonical_cases():
    # d = 1, aligned: zeta = +-1 throughout (Q2 = 0), |p| grows from tiny: rescaling.
    r = classify(Linear1D.from_init([1e-3], [2e-3], kappa=1.0, teacher=1.0))
    assert (r.label, r.predicted) == ("rescaling", "rescaling")
    assert r.evidence["alignment_score"] == 0.0
    # Wide, small init, moderate target: growth carried by alignment.
    r = classify(Linear1D(width=256, sigma_u=0.03, sigma_w=0.03, kappa=1.0, teacher=1.0))
    assert (r.label, r.predicted) == ("alignment", "alignment")
    # Large init: the NTK barely moves.
    r = classify(Linear1D(width=64, sigma_u=1.0, sigma_w=1.0, kappa=1.0, teacher=1.0))
    assert (r.label, r.predicted) == ("kernel", "kernel")
    assert r.evidence["ntk_change"] < 0.1
    # Init beyond the target on the balanced line: |p| only shrinks, the NTK drops 9x.
    r = classify(Linear1D.from_init([3.0], [3.0], kappa=1.0, teacher=1.0))
    assert (r.label, r.predicted) == ("disalignment", "disalignment")
    assert r.evidence["overshoot"] and not r.evidence["sign_flip"]
    assert r.evidence["ntk_ratio"] == pytest.approx(1 / 9)


def test_sign_flip_dip_is_the_sup_of_the_ntk_change():
    # p0 = -1 -> p* = 1.2 with k' small: K dips to omega k' before rising (MATH.md §1).
    model = Linear1D.from_init([1.0, 0.05], [-1.0, 0.0], teacher=1.2)
    s = scalars(model)
    r = classify(model)
    assert r.evidence["sign_flip"]
    assert r.evidence["ntk_dip"] == pytest.approx(s["k_prime"] / np.hypot(s["p0"], s["k_prime"]))
    traj = exact(model, np.linspace(0, 40 / (s["omega"] * 1.2), 20001))
    assert np.min(traj["ntk"]) / traj["ntk"][0] == pytest.approx(r.evidence["ntk_dip"],
                                                                 rel=1e-3)
    assert r.evidence["ntk_change"] == pytest.approx(1 - r.evidence["ntk_dip"])


def test_trajectory_classification_matches_model_when_converged():
    for kw in (dict(width=256, sigma_u=0.03, sigma_w=0.03), dict(width=64),
               dict(width=8, sigma_u=1e-3, sigma_w=1e-3)):
        model = Linear1D(**kw)
        r_model, r_traj = classify(model), classify(exact(model, _times(model)))
        assert r_traj.label == r_model.label
        assert r_traj.predicted == r_model.predicted
        assert r_traj.evidence["source"] == "trajectory"


def test_grid_scaling_of_unit_draw_matches_each_model():
    """The vectorized grid (unit draw times sigma) equals the per-model exact metrics."""
    rng = np.random.default_rng(5)
    vals = {"width": np.full(30, 16), "seed": np.full(30, 3), "kappa": rng.uniform(0.01, 3, 30),
            "eta_u": rng.uniform(0.2, 4, 30), "eta_w": rng.uniform(0.2, 4, 30),
            "sigma_u": 10 ** rng.uniform(-3, 1, 30), "sigma_w": 10 ** rng.uniform(-3, 1, 30),
            "teacher": rng.uniform(-2, 2, 30), "x_var": rng.uniform(0.5, 2, 30)}
    labels, predicted, sc = grid_linear1d(vals)
    for n in range(30):
        model = Linear1D(**{k: (int(v[n]) if k in ("width", "seed") else float(v[n]))
                            for k, v in vals.items()})
        r = classify(model)
        assert (labels[n], predicted[n]) == (r.label, r.predicted)
        for k in ("chi", "ntk_ratio", "ntk_change", "disalignment_fraction"):
            assert sc[k][n] == pytest.approx(r.evidence[k], rel=1e-9)


def test_thresholds_change_labels_and_are_validated():
    model = Linear1D(width=64, kappa=0.05)
    r = classify(model)
    assert classify(model, kernel_tol=10 * r.evidence["ntk_change"]).label == "kernel"
    with pytest.raises(ValueError, match="kernel_tol"):
        classify(model, kernel_tol=-1)
    with pytest.raises(ValueError, match="unknown option"):
        classify(model, kernel_tolerance=0.2)


def test_registry_unknown_taxonomy_and_plugin():
    with pytest.raises(ValueError, match="taxonomy must be one of"):
        classify(Linear1D(), taxonomy="saddle")
    with pytest.raises(ValueError, match="no regime taxonomy"):
        classify(object())

    class Toy:
        delta = -2.0

    tax = Taxonomy("toy-test", ("lazy", "rich"), lambda o: isinstance(o, Toy),
                   lambda o, **kw: Regime("rich" if o.delta < 0 else "lazy", "toy-test",
                                          {"delta": o.delta}, "rich"))
    register_taxonomy(tax, replace=True)
    assert classify(Toy()).label == "rich"
    assert get_taxonomy("toy-test") is tax
    with pytest.raises(ValueError, match="does not apply"):
        classify(Linear1D(), taxonomy="toy-test")
    with pytest.raises(ValueError, match="already registered"):
        register_taxonomy(tax)


def test_regime_json_safe():
    import json

    d = classify(Linear1D(width=64)).to_dict()
    json.loads(json.dumps(d, allow_nan=False))
    assert exactdyn.Regime is Regime
