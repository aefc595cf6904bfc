"""The snapshot recorder: duck-typed (no torch needed) and with PyTorch when installed."""

import numpy as np
import pytest
from exactdyn.probe.torch import SnapshotRecorder

from exactdyn import probe


class _Param:
    def __init__(self, arr):
        self.arr = arr

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.arr


class _Module:
    def __init__(self):
        self.w = _Param(np.array([[1.0, 2.0], [3.0, 4.0]]))

    def named_parameters(self):
        return [("w", self.w)]


def test_recorder_copies_snapshots_at_multiples_of_every():
    mod = _Module()
    rec = SnapshotRecorder(mod, every=2)
    for step in range(1, 5):
        mod.w.arr -= 0.5  # in place, as an optimizer step is
        rec.record(step)
    assert rec.steps == [0, 2, 4]
    assert np.allclose(rec.first("w"), [[1, 2], [3, 4]])
    assert np.allclose(rec.last("w"), [[-1, 0], [1, 2]])
    assert rec.series("w").shape == (3, 2, 2)
    assert probe.rd(rec.first("w"), rec.last("w")) == pytest.approx(
        np.linalg.norm(np.full((2, 2), 2.0)) / np.sqrt(30))
    with pytest.raises(ValueError, match="name"):
        rec.series("b")
    with pytest.raises(ValueError, match="every"):
        SnapshotRecorder(mod, every=0)
    with pytest.raises(ValueError, match="module"):
        SnapshotRecorder(object())


def test_recorder_with_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    rec = SnapshotRecorder(net, every=5)
    X, y = torch.randn(16, 2), torch.randn(16, 1)
    for step in range(1, 21):
        loss = ((net(X) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec.record(step)
    assert rec.steps == [0, 5, 10, 15, 20]
    assert probe.rd(rec.first("0.weight"), rec.last("0.weight")) > 0
    # tensors that require grad go straight into the probes too
    assert probe.condensation(net[0].weight).cosine.shape[0] <= 8
