"""Shared test configuration: hypothesis profiles.

``ci`` (derandomized, reproducible, prints the blob to replay a failure) is loaded when
the environment variable ``CI`` is set; ``dev`` otherwise. Select one explicitly with
``HYPOTHESIS_PROFILE=<name>``.
"""

import atexit
import os
import shutil
import tempfile

from hypothesis import settings

# The on-disk cache of lowered flows (exactdyn/diskcache.py): a fresh folder per test
# session (subprocesses inherit it), never the user's ~/.cache/exactdyn.
os.environ["EXACTDYN_CACHE_DIR"] = tempfile.mkdtemp(prefix="exactdyn-test-cache-")
atexit.register(shutil.rmtree, os.environ["EXACTDYN_CACHE_DIR"], ignore_errors=True)

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=30,
                          print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=30)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
