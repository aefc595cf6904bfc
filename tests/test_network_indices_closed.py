r"""User networks over several index kinds: closed forms, heyoka, the modified flow.

The references are independent of the code under test: heyoka.py's own Taylor integrator
against exactdyn's (two implementations of one unrolled flow, agreeing to 1e-25 at 30
digits), closed forms solved by hand (a Riccati equation per entry of a diagonal network,
a linear relaxation with a reduction), and gradient-descent steps taken by a hand-written
numpy loop, whose one-step defect against the modified flow is :math:`O(h^3)`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest

import exactdyn as ed

sys.path.insert(0, str(Path(__file__).parent))
from test_network_indices import instance, linear_two_layer, two_layer  # noqa: E402


# ---- heyoka ---------------------------------------------------------------------------
@pytest.mark.parametrize("build, seed, alpha", [(two_layer, 5, 1.5), (linear_two_layer, 2, 0.8)])
def test_heyoka_agrees_with_precision_30_taylor_on_a_user_network(build, seed, alpha):
    pytest.importorskip("heyoka")
    times = [0.0, 0.4, 1.0]
    a0, W0, X0, Y0 = instance(seed, m=2, dim=2, samples=3)
    model = build().from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=alpha)
    hey = ed.solve(model, times, precision=30, method="heyoka")
    tay = ed.solve(model, times, precision=30)
    assert hey.meta["method"] == "heyoka"
    with mpmath.workdps(40):
        for row in range(len(times)):
            got = list(hey["a"][row]) + list(hey["W"][row].ravel())
            want = list(tay["a"][row]) + list(tay["W"][row].ravel())
            assert max(abs(x - y) for x, y in zip(got, want)) < 1e-25 * max(map(abs, want))
        np.testing.assert_allclose(np.array(hey["loss"], dtype=float),
                                   np.array(tay["loss"], dtype=float), rtol=1e-14)


def test_heyoka_follows_each_data_set_of_one_shape():
    # The compiled integrator is cached per flow and shapes, the data being its runtime
    # parameters: a second data set of the same shapes must not reuse the first's values.
    pytest.importorskip("heyoka")
    net = two_layer()
    ends = []
    for seed in (7, 8):
        a0, W0, X0, Y0 = instance(seed, m=2, dim=2, samples=3)
        model = net.from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=1.0)
        hey = ed.solve(model, [0.0, 0.5], precision=20, method="heyoka")
        flt = ed.solve(model, [0.0, 0.5], rtol=1e-13)
        np.testing.assert_allclose(np.array(hey["W"], dtype=float), flt["W"], rtol=1e-10)
        ends.append(np.array(hey["W"][-1], dtype=float))
    assert not np.allclose(ends[0], ends[1])
