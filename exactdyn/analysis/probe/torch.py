r"""Record weight snapshots during a PyTorch training loop and hand them to the probes.

Optional (extra ``torch``); PyTorch itself is never imported here: the recorder only calls
``module.named_parameters()`` and each tensor's ``detach().cpu().numpy()``, so it works
with any object that offers them.

Example
-------
>>> rec = SnapshotRecorder(net, every=10)           # doctest: +SKIP
>>> for step in range(n_steps):                      # doctest: +SKIP
...     loss = ...; loss.backward(); opt.step(); opt.zero_grad()
...     rec.record(step)
>>> probe.rd(rec.first("0.weight"), rec.last("0.weight"))   # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np


def _to_numpy(tensor) -> np.ndarray:
    t = tensor
    if hasattr(t, "detach"):
        t = t.detach()
    if hasattr(t, "cpu"):
        t = t.cpu()
    if hasattr(t, "numpy"):
        t = t.numpy()
    return np.array(t, dtype=float, copy=True)


class SnapshotRecorder:
    """Copies of a module's parameters at chosen steps.

    Parameters
    ----------
    module
        Anything with ``named_parameters()`` (a ``torch.nn.Module``).
    every : int
        Record at steps that are multiples of ``every`` (``record(step)``); step 0 is taken
        at construction.
    names : sequence of str, optional
        Parameter names to keep (default: all), as ``named_parameters`` spells them.
    """

    def __init__(self, module, every: int = 1, names=None):
        if not hasattr(module, "named_parameters"):
            raise ValueError(f"module must have named_parameters() (a torch.nn.Module), got "
                             f"{type(module).__name__}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.module, self.every = module, every
        available = [n for n, _p in module.named_parameters()]
        if names is not None:
            missing = [n for n in names if n not in available]
            if missing:
                raise ValueError(f"names {missing} are not parameters of module; it has "
                                 f"{available}")
        self.names = tuple(available if names is None else names)
        self.steps: list = []
        self.snapshots: list = []
        self.record(0, force=True)

    def record(self, step: int, force: bool = False) -> bool:
        """Take a snapshot at ``step`` if it is a multiple of ``every`` (or ``force``)."""
        if not force and step % self.every:
            return False
        if self.steps and self.steps[-1] == step:
            return False
        params = dict(self.module.named_parameters())
        self.snapshots.append({n: _to_numpy(params[n]) for n in self.names})
        self.steps.append(int(step))
        return True

    def _check(self, name):
        if name not in self.names:
            raise ValueError(f"name must be one of the recorded parameters {list(self.names)}, "
                             f"got {name!r}")

    def series(self, name: str) -> np.ndarray:
        """The parameter ``name`` over the recorded steps, time first."""
        self._check(name)
        return np.stack([s[name] for s in self.snapshots])

    def first(self, name: str) -> np.ndarray:
        self._check(name)
        return self.snapshots[0][name]

    def last(self, name: str) -> np.ndarray:
        self._check(name)
        return self.snapshots[-1][name]
