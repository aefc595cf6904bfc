"""What the closed forms share: the float64 finiteness check, and residual proofs."""

from __future__ import annotations

import numpy as np

from ..trajectory import LazyState


def require_finite(traj):
    """``traj`` if its state and observables are finite float64 numbers (an undefined
    alignment may be NaN), else ``ValueError``: the closed form's values overflow float64.

    A state not computed yet (:class:`~exactdyn.trajectory.LazyState`) is left out, so as
    not to compute it: a closed form that gives one has observables that bound it (norms)."""
    unread = isinstance(traj.state, LazyState) and not traj.state.computed
    for group in ((traj.observables,) if unread else (traj.state, traj.observables)):
        for k, v in group.items():
            if k in ("alignment", "nu"):
                continue
            a = np.asarray(v, dtype=float)
            if not np.all(np.isfinite(a)):
                raise ValueError(f"the closed form's {k} is beyond float64's range at some of "
                                 f"the times for {traj.model!r}; evaluate it with "
                                 f"precision=N (mpmath)")
    return traj


class ProvenSteps:
    """A symbolic closed form whose ``proofs`` are derivation steps ``Eq(residual, 0)``."""

    proofs: list

    def residual(self) -> dict:
        """Every residual, simplified; all are 0 when the closed form is proven."""
        return {s.title: s.expr.rhs for s in self.proofs}

    @property
    def proven(self) -> bool:
        return all(s.proven for s in self.proofs)
