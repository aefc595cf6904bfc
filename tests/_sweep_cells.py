"""Cell functions shared by the sweep tests and the subprocess they kill (same module name
in both, so the cache keys agree)."""

import os
import time

from exactdyn import classify


def slow_cell(model):
    """Classify, after a pause; appends one line per call to $SWEEP_CALLS when set."""
    time.sleep(float(os.environ.get("SWEEP_SLEEP", "0")))
    path = os.environ.get("SWEEP_CALLS")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{model.sigma_u!r} {model.kappa!r}\n")
    return classify(model)
