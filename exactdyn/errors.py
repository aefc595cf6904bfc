"""Exceptions raised by exactdyn."""

from __future__ import annotations


class IntegrationError(RuntimeError):
    """Numerical integration could not continue.

    Raised when the step size collapses or the state stops being finite. The
    attribute ``t_reached`` holds the last time the integrator reached, so a
    caller can tell how far the trajectory got.
    """

    def __init__(self, message: str, t_reached: float):
        super().__init__(f"{message} (integration reached t = {t_reached!r})")
        self.t_reached = t_reached


class PrecisionWarning(UserWarning):
    """A float64 result that float64 cannot resolve; the message names the fix,
    ``precision=``.

    Issued at most once per call by :func:`exactdyn.solve` when its float64 integration
    runs through a saddle passage whose escape time is set by the integrator's tolerance and
    round-off rather than by the initial condition (see :mod:`exactdyn.numeric.resolution`).
    Silence it with ``warnings.simplefilter("ignore", exactdyn.PrecisionWarning)``; turn it
    into an error with ``-W error::exactdyn.errors.PrecisionWarning``.
    """
