"""Issue 14, "figures with small faults": a saved polar figure keeps its legend, a phase
diagram over two log-spaced values is drawn on a log axis, and the singular-value figure of
a LinearNet is shaded at its plateaus and labelled with its own factors."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import exactdyn as ed  # noqa: E402
from exactdyn.models.deep_linear import teacher_matrix  # noqa: E402
from exactdyn.plotting import plot_polar_directions, plot_singular_values  # noqa: E402

SIX = (np.linspace(-1, 1, 6), np.array([1.0, -0.5, 0.3, 0.8, -0.2, 0.6]))


def _inside(bb, fig):
    return (bb.x0 >= fig.bbox.x0 - 0.5 and bb.y0 >= fig.bbox.y0 - 0.5
            and bb.x1 <= fig.bbox.x1 + 0.5 and bb.y1 <= fig.bbox.y1 + 0.5)


def test_saved_polar_directions_keep_the_whole_legend(tmp_path):
    net = ed.TwoLayer(6, *SIX, init="balanced", beta1=1e-3, beta2=1e-3, seed=0)
    fig = plot_polar_directions(ed.exact(net, np.linspace(0, 4, 9)), net, times=[0, 2, 4])
    fig.savefig(tmp_path / "polar.png")  # a plain savefig, no bbox_inches="tight"
    renderer = fig.canvas.get_renderer()
    legends = fig.legends + [a.get_legend() for a in fig.axes if a.get_legend()]
    assert legends
    for leg in legends:
        assert _inside(leg.get_window_extent(renderer), fig)
    ax = fig.axes[0]
    assert _inside(ax.get_tightbbox(renderer), fig)  # the axes and their labels too


@pytest.mark.parametrize("values", [[1e-3, 1e-1], [1e-3, 1e-2, 1e-1]])
def test_phase_diagram_over_log_spaced_values_uses_a_log_axis(values):
    pd = ed.phase_diagram(ed.Linear1D, x=("sigma_u", [0.1, 1.0]), y=("kappa", values),
                          fixed={"width": 8})
    fig = pd.plot()
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    lo, hi = ax.get_ylim()
    assert 0 < lo < min(values) and hi > max(values)  # nothing below zero


@pytest.fixture(scope="module")
def linear_net_traj():
    S = teacher_matrix([4.0, 2.0, 1.0], 3, 3)
    net = ed.LinearNet.decoupled(S, hidden=3, strengths=1e-3)
    return ed.exact(net, np.r_[0, np.geomspace(1e-2, 50, 300)])


def test_singular_values_of_a_linear_net_are_shaded_and_labelled_w2_w1(linear_net_traj):
    fig = plot_singular_values(linear_net_traj)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "singular values of A = W2 W1"
    shaded = [p for p in ax.patches]  # one axvspan per plateau
    ranks = [t.get_text() for t in ax.texts]
    assert len(shaded) >= 3 and ranks[:3] == ["rank 0", "rank 1", "rank 2"]


def test_singular_values_label_follows_depth_and_the_single_neuron():
    S = teacher_matrix([2.0, 1.0], 2, 2)
    deep = ed.solve(ed.DeepLinear.decoupled(3, 2, S, 0.1), np.linspace(0, 5, 21))
    assert plot_singular_values(deep).axes[0].get_ylabel() == \
        "singular values of A = W3 W2 W1"
    sn = ed.solve(ed.SingleNeuron(seed=0), np.r_[0, np.geomspace(1e-2, 50, 100)])
    fig = plot_singular_values(sn)  # the teacher comes from beta (no sigma_yx)
    assert fig.axes[0].get_ylabel() == "singular values of A = W2 W1"
    assert len(fig.axes[0].patches) >= 1
