"""Ensembles (exactdyn.numeric.ensemble): many TwoLayer models integrated as one batched
system, checked member by member against the per-model path, a hand-written oracle of the
right-hand side, and a conservation law; stopping times and RD slopes against stop_rd."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.numeric.ensemble import (
    TwoLayerEnsemble,
    first_crossing,
    group_by_structure,
    solve_ensemble,
)
from exactdyn.regimes.two_layer import (
    NoStop,
    classify_two_layer_many,
    rd_slope,
    stop_rd,
    stop_rd_many,
)


def net(width, gamma=1.0, gamma_prime=0.0, seed=0, activation="tanh", init=None,
        data="1d-linear"):
    init = init or ("mirrored" if width % 2 == 0 else "gaussian")
    return ed.TwoLayer(width, data, n=10, activation=activation, gamma=gamma,
                       gamma_prime=gamma_prime, init=init, seed=seed)


def packed(tr):
    return np.concatenate([tr["a"], tr["W"].reshape(len(tr.t), -1)], axis=1)


def oracle_rhs(model, a, W):
    """Hand-written gradient flow of L = 1/(2n) sum_i (f(x_i) - y_i)^2,
    f(x) = 1/alpha sum_k a_k tanh(w_k . x) (test oracle only)."""
    X, y, al, n = model.X, model.y, model.alpha, model.n
    h = W @ X.T
    e = a @ np.tanh(h) / al - y
    da = -(np.tanh(h) @ e) / (al * n)
    dW = -(a[:, None] * ((1 - np.tanh(h) ** 2) * e[None, :]) @ X) / (al * n)
    return np.concatenate([da, dW.ravel()])


@given(st.integers(1, 9), st.lists(st.integers(0, 10_000), min_size=1, max_size=4),
       st.floats(0.0, 2.0), st.floats(-0.5, 1.0))
def test_batched_rhs_equals_a_hand_written_oracle(width, seeds, gamma, gamma_prime):
    models = [net(width, gamma, gamma_prime, s) for s in seeds]
    ens = TwoLayerEnsemble(models)
    got = ens.rhs(ens.y0)
    for b, mdl in enumerate(models):
        want = oracle_rhs(mdl, mdl.a0, mdl.W0)
        np.testing.assert_allclose(got[b], want, rtol=1e-12,
                                   atol=1e-14 * (1 + np.max(np.abs(want))))
        _out, loss = ens.observe(ens.y0[b:b + 1])
        e = mdl.a0 @ np.tanh(mdl.W0 @ mdl.X.T) / mdl.alpha - mdl.y
        assert loss[0] == pytest.approx(0.5 * np.mean(e**2), rel=1e-13)


@settings(max_examples=10)
@given(st.sampled_from([1, 2, 5, 8]), st.lists(st.integers(0, 1000), min_size=1, max_size=3,
                                                unique=True),
       st.lists(st.sampled_from([(0.5, 0.0), (1.75, 0.0), (1.25, 0.5), (2.0, -0.25)]),
                min_size=1, max_size=3))
def test_each_member_follows_its_own_solve(width, seeds, cells):
    # Members of very different time scales (an O(1) init beside a tiny one that escapes
    # a saddle late) share one ensemble; each equals its own solve to tolerance.
    models = [net(width, g, gp, s) for s in seeds for g, gp in cells]
    times = np.concatenate([[0.0], np.geomspace(1e-3, 50.0, 12)])
    states, stats = solve_ensemble(TwoLayerEnsemble(models), times, rtol=1e-11)
    for b, mdl in enumerate(models):
        ref = packed(ed.solve(mdl, times, rtol=1e-11))
        scale = np.max(np.abs(ref), axis=1, keepdims=True)
        assert np.max(np.abs(states[:, b] - ref) / scale) < 1e-7
    assert stats["nfev"] > 0 and np.all(stats["steps"] > 0)


def test_a_stiff_member_does_not_change_another_members_steps():
    calm = net(8, 0.5, 0.0, seed=1)
    stiff = ed.TwoLayer(8, "1d-linear", n=10, activation="tanh", beta1=3.0, beta2=3.0,
                        init="mirrored", seed=2)
    times = np.array([0.0, 1.0, 20.0])
    alone, s1 = solve_ensemble(TwoLayerEnsemble([calm]), times, rtol=1e-10)
    both, s2 = solve_ensemble(TwoLayerEnsemble([calm, stiff]), times, rtol=1e-10)
    assert s2["steps"][1] > 2 * s2["steps"][0]  # the stiff one does take more steps
    assert s2["steps"][0] == s1["steps"][0]  # ... without costing the calm one any
    np.testing.assert_allclose(both[:, 0], alone[:, 0], rtol=1e-13, atol=1e-15)


@given(st.integers(1, 6), st.integers(0, 500))
def test_balance_is_conserved_along_ensemble_trajectories(width, seed):
    # Linear (1-homogeneous, smooth) activation: a_k^2 - |w_k|^2 is constant per neuron.
    models = [net(width, g, 0.0, seed, activation="linear") for g in (0.5, 1.5)]
    ens = TwoLayerEnsemble(models)
    states, _ = solve_ensemble(ens, np.array([0.0, 0.5, 3.0]), rtol=1e-12)
    a, W = ens.unpack(states)
    q = a**2 - np.sum(W**2, axis=-1)
    np.testing.assert_allclose(q, np.broadcast_to(q[0], q.shape), rtol=1e-8,
                               atol=1e-10 * np.max(np.abs(a[0]) ** 2 + 1e-300))


@pytest.mark.parametrize("cells", [[(1.75, 0.0), (0.5, 0.0)], [(1.25, 0.5), (1.5, 0.25)]])
def test_stop_times_and_rd_agree_with_stop_rd(cells):
    models = [net(w, g, gp, s) for w in (8, 16) for g, gp in cells for s in (0, 3)]
    got = stop_rd_many(models, 0.05)
    for mdl, (t_star, rd) in zip(models, got):
        t_ref, rd_ref = stop_rd(mdl, 0.05)
        # stop_rd interpolates linearly on a 64-point grid of the bracket; the ensemble
        # locates the crossing on its steps
        assert t_star == pytest.approx(t_ref, rel=2e-5)
        assert rd == pytest.approx(rd_ref, rel=2e-5)


def test_first_crossing_lands_on_the_target_loss():
    models = [net(16, 1.75, 0.0, s) for s in (0, 1, 2)]
    ens = TwoLayerEnsemble(models)
    res, _ = first_crossing(ens, 0.1, [1.0, 10.0, 100.0, 1e3, 1e4], lambda *a: None)
    L0 = ens.loss(ens.y0)
    for b, (t_star, state) in enumerate(res):
        assert ens.loss(state[None])[0] == pytest.approx(0.1 * L0[b], rel=1e-9)
        # the crossing is the first: just before it the loss is above the target
        before, _ = solve_ensemble(TwoLayerEnsemble([models[b]]),
                                   np.array([0.0, 0.999 * t_star]), rtol=1e-11)
        assert ens.loss(before[-1])[0] > 0.1 * L0[b]


def test_plateau_and_max_time_stop_each_member_as_stop_rd_does():
    cubic = ed.TwoLayer(8, "1d-cubic", n=10, activation="tanh", gamma=1.75, gamma_prime=0.0,
                        init="mirrored", seed=0)
    fine = net(8, 0.5, 0.0, 0)
    got = stop_rd_many([cubic, fine], 0.05, max_time=1e4)
    with pytest.raises(NoStop) as exc:
        stop_rd(cubic, 0.05, max_time=1e4)
    assert isinstance(got[0], NoStop)
    assert got[0].reason == exc.value.reason
    assert got[1][0] == pytest.approx(stop_rd(fine, 0.05)[0], rel=2e-5)
    short = stop_rd_many([fine], 0.05, max_time=1e-3)[0]
    assert isinstance(short, NoStop) and "max_time" in short.reason


@pytest.mark.parametrize("g,gp", [(1.75, 0.0), (1.25, 0.5), (0.5, 0.0), (1.5, 0.25)])
def test_rd_slope_agrees_with_the_per_member_path(g, gp):
    a = rd_slope(g, gp, widths=(8, 16, 32), seeds=(0, 1), ensemble=False)
    b = rd_slope(g, gp, widths=(8, 16, 32), seeds=(0, 1), ensemble=True)
    assert b.label == a.label
    assert b.slope == pytest.approx(a.slope, abs=1e-5)
    np.testing.assert_allclose(b.rd, a.rd, rtol=2e-5)
    np.testing.assert_allclose(b.stop_time, a.stop_time, rtol=2e-5)
    assert rd_slope(g, gp, widths=(8, 16)).label == \
        rd_slope(g, gp, widths=(8, 16), ensemble=False).label


def test_classify_many_equals_classify_cell_by_cell():
    models = [net(32, g, gp) for g, gp in [(1.75, 0.0), (0.5, 0.0), (1.25, 0.5)]]
    models.append(net(16, 1.5, 0.25, seed=4))
    many = classify_two_layer_many(models)
    for mdl, r in zip(models, many):
        one = ed.classify(mdl, ensemble=False)
        assert r.label == one.label
        assert r.evidence["rd_slope"] == pytest.approx(one.evidence["rd_slope"], abs=1e-5)
    bad = classify_two_layer_many([ed.TwoLayer.from_init([1.0], [[1.0, 0.0]], [[1.0]],
                                                         [1.0], activation="tanh")])
    assert isinstance(bad[0], ValueError)


def test_phase_diagram_of_two_layer_cells_batched_and_one_by_one():
    kw = dict(x=("gamma", [0.5, 1.75]), y=("gamma_prime", [0.0, 0.5]),
              fixed={"width": 16, "X": "1d-linear", "n": 10, "activation": "tanh",
                     "init": "mirrored", "seed": 0}, jobs=1, progress=False)
    a = ed.phase_diagram(ed.TwoLayer, **kw)
    b = ed.phase_diagram(ed.TwoLayer, ensemble=False, **kw)
    assert a.meta["ensemble"] and "ensemble" not in b.meta
    assert (a.labels == b.labels).all()
    np.testing.assert_allclose(a.scores["rd_slope"], b.scores["rd_slope"], atol=1e-5)


def test_batched_diagram_resumes_from_its_cell_cache(tmp_path):
    kw = dict(x=("gamma", [0.5, 1.75]), y=("gamma_prime", [0.0, 0.5]),
              fixed={"width": 16, "X": "1d-linear", "n": 10, "activation": "tanh",
                     "init": "mirrored", "seed": 0}, jobs=1, progress=False)
    fresh = ed.phase_diagram(ed.TwoLayer, **kw)
    first = ed.phase_diagram(ed.TwoLayer, cache=tmp_path, **kw)
    assert first.meta["ensemble"] and (first.meta["computed"], first.meta["cached"]) == (4, 0)
    assert (first.labels == fresh.labels).all()
    np.testing.assert_array_equal(first.scores["rd_slope"], fresh.scores["rd_slope"])
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 4
    files[0].unlink()  # a sweep killed before its last cell was written
    again = ed.phase_diagram(ed.TwoLayer, cache=tmp_path, **kw)
    assert (again.meta["computed"], again.meta["cached"]) == (1, 3)
    assert (again.labels == fresh.labels).all()
    np.testing.assert_allclose(again.scores["rd_slope"], fresh.scores["rd_slope"], atol=1e-5)
    # one by one, the same cells are keyed apart (their numbers agree to tolerance only)
    single = ed.phase_diagram(ed.TwoLayer, cache=tmp_path, ensemble=False, **kw)
    assert "ensemble" not in single.meta and single.meta["cached"] == 0
    assert (single.labels == fresh.labels).all()


def test_grouping_rule_is_by_width_alpha_data_and_activation():
    ms = [net(8), net(16), net(8, seed=3), net(8, activation="sigmoid"),
          ed.TwoLayer(8, "1d-linear", n=10, activation="tanh", alpha=2.0, init="mirrored")]
    assert group_by_structure(ms) == [[0, 2], [1], [3], [4]]


def test_bad_ensembles_are_refused_naming_the_parameter():
    with pytest.raises(ValueError, match="models"):
        TwoLayerEnsemble([])
    with pytest.raises(ValueError, match="models"):
        TwoLayerEnsemble([net(8), net(16)])
    with pytest.raises(ValueError, match="kinks"):
        TwoLayerEnsemble([net(8, activation="relu")])
    with pytest.raises(TypeError, match="models"):
        TwoLayerEnsemble([ed.Linear1D()])
    with pytest.raises(ValueError, match="ensemble"):
        rd_slope(1.0, 0.0, widths=(8, 16), activation="relu", ensemble=True)
    with pytest.raises(ValueError, match="times"):
        solve_ensemble(TwoLayerEnsemble([net(8)]), [1.0, 0.5])


@pytest.mark.parametrize("activation,gamma", [("relu", 1.75), ("relu", 0.5), ("tanh", 1.75)])
def test_stop_rd_continuing_from_each_decade_equals_one_solve_from_zero(activation, gamma):
    # stop_rd integrates each decade (and the bracket) from the state reached; the crossing
    # must be the one a single solve from t = 0 on a dense grid shows (kinks included).
    mdl = net(8, gamma, 0.0, seed=2, activation=activation)
    t_star, rd = stop_rd(mdl, 0.05)
    t = np.linspace(0.0, 1.02 * t_star, 4001)
    tr = ed.solve(mdl, t, rtol=1e-10)
    target = 0.05 * tr["loss"][0]
    i = int(np.flatnonzero(tr["loss"] <= target)[0])
    assert t[i - 1] <= t_star <= t[i]
    lo, hi = np.log(tr["loss"][i - 1]), np.log(tr["loss"][i])
    f = (lo - np.log(target)) / (lo - hi)
    assert t_star == pytest.approx(t[i - 1] + f * (t[i] - t[i - 1]), rel=1e-5)
    assert rd == pytest.approx(tr["rd"][i - 1] + f * (tr["rd"][i] - tr["rd"][i - 1]), rel=1e-5)


def test_phase_diagram_chunks_over_workers_put_every_cell_back_in_place():
    # Cells are dealt round-robin to the workers; each comes back to its own (i, j).
    kw = dict(x=("gamma", [0.5, 1.25, 1.75]), y=("gamma_prime", [0.0, 0.5]),
              fixed={"width": 8, "X": "1d-linear", "n": 10, "activation": "tanh",
                     "init": "mirrored", "seed": 1}, progress=False)
    two = ed.phase_diagram(ed.TwoLayer, jobs=2, **kw)
    assert two.meta["chunks"] == 2 and not two.failures
    for i, gp in enumerate([0.0, 0.5]):
        for j, g in enumerate([0.5, 1.25, 1.75]):
            one = ed.classify(net(8, g, gp, seed=1), ensemble=False)
            assert two.labels[i, j] == one.label
            assert two.scores["rd_slope"][i, j] == pytest.approx(one.evidence["rd_slope"],
                                                                 abs=1e-5)
