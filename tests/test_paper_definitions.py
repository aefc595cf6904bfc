"""Issue 17, part 1: the papers' own definitions, available as named options, checked
against the formula read in the paper's code (an independent re-computation each)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.models.twolayer import initial_weights
from exactdyn.regimes.two_layer import rd_slope, relative_distance, stop_rd

# ---- Boursier & Flammarion's "dominated" init (eboursier/early_alignment, class Net) ----


def test_dominated_bf_is_their_codes_distribution():
    # Their code: hidden weight and bias ~ U(-s, s), s = init_scale / sqrt(n_hidden);
    # output weight = (2 Bernoulli(1/2) - 1) * s * sqrt(2) with a bias.
    lam, m = 1e-3, 4000
    s = lam / math.sqrt(m)
    a, W = initial_weights("dominated_bf", m, 2, None, s, seed=0)
    np.testing.assert_allclose(np.abs(a), math.sqrt(2) * s, rtol=1e-15)
    assert np.all(np.abs(W) <= s)
    assert abs(np.mean(np.sign(a))) < 0.05            # fair signs (4000 draws: sd 0.016)
    # uniform on [-s, s]: mean 0, variance s^2/3, and an empirical CDF within the
    # Kolmogorov band at 1e-3 (1.95/sqrt(N))
    u = np.sort(W.ravel() / s)
    cdf = np.arange(1, u.size + 1) / u.size
    assert np.max(np.abs(cdf - (u + 1) / 2)) < 1.95 / math.sqrt(u.size)
    assert np.mean(u**2) == pytest.approx(1 / 3, abs=0.01)


@settings(derandomize=True, max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 50), st.integers(0, 2**31 - 1))
def test_dominated_bf_dominates(d_in, m, seed):
    a, W = initial_weights("dominated_bf", m, d_in, None, 0.3, seed=seed)
    assert np.all(np.abs(a) >= np.linalg.norm(W, axis=1))


def test_dominated_bf_through_the_model():
    net = ed.TwoLayer(10, "1d-sine", init="dominated_bf", beta2=1e-3 / math.sqrt(10), n=5)
    np.testing.assert_allclose(np.abs(net.a0), math.sqrt(2) * 1e-3 / math.sqrt(10))
    with pytest.raises(ValueError, match="dominated_bf"):
        ed.TwoLayer(10, "1d-sine", init="dominated-bf", n=5)


# ---- Luo et al.'s RD, per copy as their code measures it (xuzhiqin1990/phasediagram) ----


def test_rd_copy_is_the_first_copys_relative_change():
    net = ed.TwoLayer(8, "1d-linear", activation="tanh", gamma=1.75, gamma_prime=0.0,
                      init="mirrored", n=10, seed=3)
    tr = ed.solve(net, [0.0, 5.0, 50.0])
    W0, W = net.W0, tr["W"]
    # their runtest/wb2theta: RMS(v - v0)/RMS(v0) over the first copy's (w, b)
    v0, v = W0[:4], W[:, :4]
    mine = [np.sqrt(np.mean((vt - v0) ** 2)) / np.sqrt(np.mean(v0**2)) for vt in v]
    np.testing.assert_allclose(relative_distance(W0, W, "copy"), mine, rtol=1e-12)
    np.testing.assert_allclose(relative_distance(W0, W, "all"), tr["rd"], rtol=1e-12)
    # the two copies start equal: RD_all^2 = (RD_copy1^2 + RD_copy2^2) / 2
    r2 = relative_distance(W0[4:], W[:, 4:], "all")
    np.testing.assert_allclose(tr["rd"] ** 2, (np.asarray(mine) ** 2 + r2**2) / 2,
                               rtol=1e-12)
    assert relative_distance(W0, W[-1], "copy") == pytest.approx(mine[-1], rel=1e-12)


def test_rd_copy_options_are_checked():
    net = ed.TwoLayer(8, "1d-linear", activation="tanh", gamma=1.75, gamma_prime=0.0,
                      init="mirrored", n=10)
    t_all, rd_all = stop_rd(net, 0.05)
    t_copy, rd_copy = stop_rd(net, 0.05, rd="copy")
    assert t_copy == pytest.approx(t_all, rel=1e-6) and rd_copy != rd_all
    with pytest.raises(ValueError, match="rd must be one of"):
        stop_rd(net, 0.05, rd="half")
    with pytest.raises(ValueError, match="mirrored"):
        rd_slope(1.75, 0.0, widths=(8, 16), init="gaussian", rd="copy")
    gauss = ed.TwoLayer(8, "1d-linear", activation="tanh", gamma=1.75, gamma_prime=0.0, n=10)
    with pytest.raises(ValueError, match="mirrored"):
        stop_rd(gauss, 0.05, rd="copy")
    with pytest.raises(ValueError, match="even width"):
        relative_distance(np.ones((3, 2)), np.ones((3, 2)), "copy")


def test_cli_classify_two_layer_takes_rd_copy(capsys):
    from exactdyn.cli import main

    code = main(["classify", "two-layer", "--width", "16", "--gamma", "1.75",
                 "--gamma-prime", "0", "--init", "mirrored", "--activation", "tanh",
                 "--data", "1d-linear", "--n", "10", "--rd", "copy", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "rd_kind" in out and "copy" in out


# ---- Kunin et al.'s kernel distance (allanraventos/getrichquick, Single_Neuron.ipynb) ------


@settings(derandomize=True, max_examples=30, deadline=None)
@given(st.floats(-3, 3), st.floats(-3, 3), st.floats(-3, 3), st.floats(-3, 3),
       st.floats(-3, 3), st.floats(-3, 3))
def test_kernel_distance_is_their_codes_formula(a0, w01, w02, at, wt1, wt2):
    from exactdyn.regimes.single_neuron import kernel_distance, single_neuron_ntk

    w0, wt = np.array([w01, w02]), np.array([wt1, wt2])
    if abs(a0) + np.linalg.norm(w0) < 1e-3 or abs(at) + np.linalg.norm(wt) < 1e-3:
        return
    # their kernel_distance, with ||K_t||^2 = 2 a_t^4 + 2 a_t^2 |w_t|^2 + |w_t|^4
    numer = (2 * a0**2 * at**2 + a0**2 * (wt1**2 + wt2**2) + at**2 * np.linalg.norm(w0) ** 2
             + (w01 * wt1 + w02 * wt2) ** 2)
    den1 = math.sqrt(2 * a0**4 + 2 * a0**2 * np.linalg.norm(w0) ** 2
                     + np.linalg.norm(w0) ** 4)
    den2 = math.sqrt(2 * at**4 + 2 * at**2 * (wt1**2 + wt2**2) + (wt1**2 + wt2**2) ** 2)
    theirs = 1 - numer / (den1 * den2)
    th = single_neuron_ntk(np.array([a0, at]), np.stack([w0, wt]))  # unit rates, whitened
    assert kernel_distance(th)[-1] == pytest.approx(theirs, abs=1e-12)
    assert kernel_distance(th)[0] == pytest.approx(0.0, abs=1e-12)


# ---- Luo et al.'s orientation / amplitude (scalestudy1d_191224.py, wb2theta) -------------


def test_signed_amplitude_and_angle_are_their_codes():
    from exactdyn.analysis.condensation import orientation_amplitude

    rng = np.random.default_rng(0)
    W, a = rng.normal(size=(7, 2)), rng.normal(size=7)
    theta, amp = orientation_amplitude(W, a, amplitude="signed")
    # their code: v = (w; b) per neuron (columns), amp_av = a * ||v||, angle = atan2(b, w)
    v = W.T
    np.testing.assert_allclose(amp, a * np.sqrt(np.sum(v**2, axis=0)), rtol=1e-15)
    np.testing.assert_allclose(theta, [math.atan2(b, w) for w, b in W], rtol=1e-15)
    with pytest.raises(ValueError, match="needs the output weights"):
        orientation_amplitude(W, amplitude="signed")
