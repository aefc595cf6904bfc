"""Initial condensation of a two-layer CNN's kernels, full flow against MATH.md §5
(Zhou, Zhou, Li, Xu, arXiv:2305.09947).

With small init the linearized flow grows each kernel along the top left singular vector
u1 of the label-weighted patch matrix Z at rate s1 and along u2 at rate s2 < s1, so the
kernels line up with ±u1 while the loss has barely moved; with a tie s1 = s2 they grow in
span(u1, u2) and keep their initial directions inside it (no single line is preferred).
"""

from __future__ import annotations

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.analysis.cnn_measures import eigenspace_spread, u1_alignment
from exactdyn.closed_form.cnn import linearization
from exactdyn.models.datasets import tie_images


@pytest.mark.parametrize("seed", [0, 1])
def test_digits_kernels_align_with_u1_before_the_loss_drops_ten_percent(seed):
    pytest.importorskip("sklearn")
    from exactdyn.models.datasets import digits

    # 2 vs 7 with 2x2 kernels: s1/s2 = 1.97, the largest gap among digit pairs (0 vs 1 has
    # 1.22, too small for |cos| > 0.99 before the nonlinear phase; see the README).
    x, y = digits((2, 7))
    cnn = ed.TwoLayerCNN(8, 2, x, y, activation="tanh", scale=1e-6, seed=seed)
    lin = linearization(cnn)
    assert lin.ratio > 1.9
    t = np.linspace(0.0, 2.0 * lin.onset_time, 81)
    traj = ed.solve(cnn, t)
    u1 = lin.U[:, 0]
    worst = np.array([u1_alignment(W, u1)[1] for W in traj["W"]])
    loss = traj["loss"] / traj["loss"][0]
    aligned = np.flatnonzero(worst > 0.99)
    dropped = np.flatnonzero(loss < 0.9)
    assert aligned.size and dropped.size
    assert t[aligned[0]] < t[dropped[0]]
    assert loss[aligned[0]] > 0.99            # the loss has moved by under 1% at alignment
    assert worst[0] < 0.9                     # and the random init was not aligned


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_tie_spreads_kernels_in_the_top_eigenspace_as_the_closed_form_predicts(seed):
    xt, yt = tie_images(60, 3)
    cnn = ed.TwoLayerCNN(8, 3, xt, yt, activation="tanh", scale=1e-6, seed=seed)
    lin = linearization(cnn)
    assert abs(lin.svals[0] - lin.svals[1]) <= 1e-12 * lin.svals[0]
    t = np.linspace(0.0, lin.onset_time, 41)
    traj = ed.solve(cnn, t)
    loss = traj["loss"] / traj["loss"][0]
    j = np.flatnonzero(loss > 0.95)[-1]       # the last time before a 5% loss drop
    W = traj["W"][j]
    spread = eigenspace_spread(W, lin.U[:, :2])
    assert spread.fraction > 0.9999           # grown into span(u1, u2) ...
    assert spread.effective_dim > 1.3         # ... but not onto one line in it
    assert u1_alignment(W, lin.U[:, 0])[1] < 0.9
    # each kernel's direction is the one the linearized closed form predicts
    pred = ed.exact(cnn, [t[j]])["W"][0]
    A, B = pred.reshape(-1, pred.shape[-1]), W.reshape(-1, W.shape[-1])
    cos = np.sum(A * B, axis=0) / np.linalg.norm(A, axis=0) / np.linalg.norm(B, axis=0)
    assert np.min(cos) > 0.9999
