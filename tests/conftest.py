"""Shared test configuration: hypothesis profiles.

``ci`` (derandomized, reproducible, prints the blob to replay a failure) is loaded when
the environment variable ``CI`` is set; ``dev`` otherwise. Select one explicitly with
``HYPOTHESIS_PROFILE=<name>``.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=30,
                          print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=30)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
