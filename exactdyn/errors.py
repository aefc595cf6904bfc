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
