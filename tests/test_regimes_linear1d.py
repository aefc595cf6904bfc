"""Regimes of the 1-D linear network: exact metrics against trajectories (closed form and
the integrator), identities, canonical cases, the registry, bad input."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import assume, given, settings
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
    assert r.evidence["zeta_fall"] < 1e-12 and r.evidence["zeta_rise"] < 1e-12
    assert r.evidence["norm_ratio"] > 1e5
    # Wide, small init, moderate target: zeta rises from ~0 to ~1.
    r = classify(Linear1D(width=256, sigma_u=0.03, sigma_w=0.03, kappa=1.0, teacher=1.0))
    assert (r.label, r.predicted) == ("alignment", "alignment")
    # Large init: the NTK barely moves.
    r = classify(Linear1D(width=64, sigma_u=1.0, sigma_w=1.0, kappa=1.0, teacher=1.0))
    assert (r.label, r.predicted) == ("kernel", "kernel")
    assert r.evidence["ntk_change"] < 0.1
    # Init beyond the target on the balanced line, d = 1: |p| shrinks 9x, but zeta = 1
    # throughout, so by the zeta path this is rescaling (a shrinking one), not disalignment.
    r = classify(Linear1D.from_init([3.0], [3.0], kappa=1.0, teacher=1.0))
    assert (r.label, r.predicted) == ("rescaling", "rescaling")
    assert r.evidence["overshoot"] and not r.evidence["sign_flip"]
    assert r.evidence["ntk_ratio"] == pytest.approx(1 / 9)
    # The same overshoot with d = 2 and zeta0 = 0.6: |zeta| falls, disalignment.
    r = classify(Linear1D.from_init([3.0, 0.0], [1.8, 2.4], kappa=1.0, teacher=1.0))
    assert (r.label, r.predicted) == ("disalignment", "disalignment")
    assert r.evidence["zeta_fall"] > 0.1 and r.evidence["zeta_rise"] == 0.0


# ---- the cases of issue 17 (each failed before the zeta-path taxonomy) -------------------

def _flip_model(teacher):
    # |u0| = |w0| = 1, u0.w0 = -0.9, kappa = 1, equal rates.
    return Linear1D.from_init([1.0, 0.0], [-0.9, np.sqrt(0.19)], teacher=teacher)


def test_sign_flip_unit_norms_teacher_1_is_disalignment_then_alignment():
    """zeta -0.90 -> 0 -> +0.917: disalignment then alignment (was "rescaling")."""
    r = classify(_flip_model(1.0))
    ev = r.evidence
    assert (r.label, r.predicted) == ("disalignment", "disalignment")
    assert ev["mechanisms"] == "disalignment, then alignment"
    assert ev["zeta0"] == pytest.approx(-0.9)
    assert ev["zeta_end"] == pytest.approx(1 / np.sqrt(1.19), abs=1e-9)  # 0.917
    assert ev["zeta_fall"] == pytest.approx(0.9, abs=1e-9)
    assert ev["zeta_rise"] == pytest.approx(1 / np.sqrt(1.19), abs=1e-9)
    assert ev["disagreement"] == ""


def test_sign_flip_teacher_08_gets_the_same_label_no_jump_at_c_equal_p0():
    """Teacher 0.8 (|c| < |p0|): the same kind of path, the same label (was "disalignment"
    here and "rescaling" at teacher 1: a jump at |c| = |p0|)."""
    r = classify(_flip_model(0.8))
    assert (r.label, r.predicted) == ("disalignment", "disalignment")
    assert r.evidence["mechanisms"] == "disalignment, then alignment"
    assert r.evidence["zeta_rise"] == pytest.approx(0.8 / np.sqrt(0.64 + 0.19), abs=1e-9)
    labels = {classify(_flip_model(c)).label for c in np.linspace(0.5, 1.5, 11)}
    assert labels == {"disalignment"}


def test_width_10000_seed_0_small_init_teacher_1_is_alignment():
    """sigma_u^2 = sigma_w^2 = 1e-7: zeta -0.0145 -> 1.000, the textbook small-init
    alignment (was "rescaling": the end-point score alpha falls with the init scale)."""
    s = np.sqrt(1e-7)
    r = classify(Linear1D(width=10000, seed=0, sigma_u=s, sigma_w=s, teacher=1.0))
    assert (r.label, r.predicted) == ("alignment", "alignment")
    assert r.evidence["zeta0"] == pytest.approx(-0.0145, abs=5e-5)
    assert r.evidence["zeta_end"] == pytest.approx(1.0, abs=1e-6)
    assert r.evidence["zeta_fall"] < 0.1 < r.evidence["zeta_rise"]
    assert r.evidence["mechanisms"] == "alignment"


def test_unequal_rates_plain_ntk_moving_is_not_silently_kernel():
    """eta_u = 0.01, eta_w = 1: the plain NTK (Eq. 1) changes by > 100% while the
    rate-weighted one moves ~3%; the label says which NTK it used and why."""
    model = Linear1D(width=64, seed=0, eta_u=0.01, eta_w=1.0, sigma_u=0.125, sigma_w=1e-3)
    r = classify(model)
    ev = r.evidence
    assert ev["ntk_change_plain"] > 0.9 and ev["ntk_change_weighted"] < 0.05
    assert r.label != "kernel" and r.predicted == r.label
    assert ev["kernel_ntk"] == "plain" and ev["ntk_disagree"]
    assert "plain NTK" in ev["kernel_note"] and "weighted NTK" in ev["kernel_note"]
    assert "eta_u = 0.01" in ev["kernel_note"]
    w = classify(model, ntk="weighted")
    assert (w.label, w.predicted) == ("kernel", "kernel")
    assert w.evidence["kernel_ntk"] == "weighted" and w.evidence["ntk_disagree"]
    with pytest.raises(ValueError, match="ntk must be one of"):
        classify(model, ntk="both")


def test_u0_10_w0_09_measured_and_predicted_agree():
    """u0 = (1, 0), w0 = (0.9, sqrt 0.19): measured kernel, predicted rescaling before."""
    r = classify(Linear1D.from_init([1.0, 0.0], [0.9, np.sqrt(0.19)]))
    assert r.label == r.predicted == "kernel"
    assert r.evidence["ntk_change"] == pytest.approx(np.sqrt(1.19) - 1, rel=1e-6)
    assert r.evidence["disagreement"] == ""


@settings(max_examples=12, deadline=None)
@given(log_sigma=st.floats(-5.0, -1.0), log_ratio=st.floats(-1.0, 1.0),
       seed=st.integers(0, 3))
def test_small_random_inits_are_alignment_at_every_scale_below_the_kernel_boundary(
        log_sigma, log_ratio, seed):
    sigma = 10.0**log_sigma
    model = Linear1D(width=4000, seed=seed, sigma_u=sigma * 10**log_ratio,
                     sigma_w=sigma / 10**log_ratio, teacher=1.0)
    r = classify(model)
    if r.evidence["exact_ntk_change"] < 0.1:  # above the kernel boundary
        assert r.label == r.predicted == "kernel"
    else:
        assert r.label == r.predicted == "alignment", r.evidence


def test_phase_diagram_sigma_u_by_kappa_shows_all_four_mechanisms_where_theory_puts_them():
    """A sigma_u x kappa diagram (width 2, seed 2: zeta0 = 0.87): kernel where the target and
    the init are small next to k', disalignment where the init overshoots, alignment at large
    targets, rescaling in the band where zeta is already near 1 and stays there."""
    su, ka = np.geomspace(1e-2, 10, 31), np.geomspace(1e-2, 1e2, 21)
    pd = exactdyn.phase_diagram(Linear1D(width=2, seed=2), x=("sigma_u", su),
                                y=("kappa", ka), progress=False)
    assert set(np.unique(pd.labels)) == {"kernel", "alignment", "disalignment", "rescaling"}
    assert (pd.labels == pd.predicted).all()
    assert pd.labels[-1, 0] == "kernel"          # tiny readout, tiny target
    assert pd.labels[-1, -1] == "disalignment"   # large init beyond a small target
    assert (pd.labels[0] == "alignment").all()   # kappa = 0.01: target 100
    # Measured on sampled closed-form trajectories, every cell of a sub-grid agrees.
    sub = exactdyn.phase_diagram(Linear1D(width=2, seed=2), x=("sigma_u", su[::5]),
                                 y=("kappa", ka[::4]), method="trajectory",
                                 executor=ThreadPoolExecutor(1), progress=False)
    np.testing.assert_array_equal(sub.labels, sub.predicted)
    np.testing.assert_array_equal(sub.labels, pd.labels[::4, ::5])


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
        for k in ("chi", "ntk_ratio"):
            assert sc[k][n] == pytest.approx(r.evidence[k], rel=1e-9)
        # The grid's exact scores against the model's sampled closed-form trajectory.
        assert sc["ntk_change"][n] == pytest.approx(r.evidence["exact_ntk_change"], rel=1e-9)
        assert sc["ntk_change"][n] == pytest.approx(r.evidence["ntk_change"], rel=1e-3,
                                                    abs=1e-9)
        for k in ("zeta_fall", "zeta_rise"):
            assert sc[k][n] == pytest.approx(r.evidence[k], abs=1e-7)


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


def test_fixed_points_zero_init_and_stuck_saddle():
    """u0 = w0 = 0 is a fixed point (the NTK stays 0): kernel, no zeta parts. A balanced
    d = 1 init on the wrong side (k' = 0) is stuck at the saddle: zeta = -1 throughout
    while |u||w| shrinks to 0."""
    r = classify(Linear1D(sigma_u=0.0, sigma_w=0.0))
    assert (r.label, r.predicted) == ("kernel", "kernel") and r.evidence["stuck_at_saddle"]
    assert r.evidence["zeta_rise"] == r.evidence["zeta_fall"] == 0.0
    r = classify(Linear1D.from_init([1.0], [-1.0]))
    assert (r.label, r.predicted) == ("rescaling", "rescaling") and r.evidence["stuck_at_saddle"]
    assert r.evidence["norm_ratio"] == 0.0
