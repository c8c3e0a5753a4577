"""How hard the randomised tests try: the ``ci`` budget by default, ``thorough`` on demand.

``make test`` must stay well under CI's 20 minutes on two cores, so the property
tests, the crash test and the load and fuzzing runs use a budget there that still
exercises every path they check, with a fixed seed where the run is not Hypothesis'
own. A release, or a change to the merge engine, the stores or the server's limits,
deserves the thorough budget::

    PATROL_SYNC_THOROUGH=1 .venv/bin/python -m pytest

which also loads Hypothesis' ``thorough`` profile (``HYPOTHESIS_PROFILE`` picks a
profile by name). Each test says both of its budgets, ``budget(ci, thorough)``, so
what the thorough run adds is written beside what CI runs.
"""

from __future__ import annotations

import os
from typing import TypeVar

from hypothesis import settings

__all__ = ["THOROUGH", "budget"]

T = TypeVar("T", int, float)

THOROUGH = os.environ.get("PATROL_SYNC_THOROUGH", "") not in ("", "0")

# Hypothesis' profiles: the default number of examples for a property test that does
# not say its own (``budget`` does, for the expensive ones). No deadline: a busy CI
# machine is not a slow test.
settings.register_profile("ci", max_examples=100, deadline=None, print_blob=True)
settings.register_profile("thorough", max_examples=1_000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("thorough" if THOROUGH else "ci"))


def budget(ci: T, thorough: T) -> T:
    """``thorough`` under ``PATROL_SYNC_THOROUGH=1`` (or Hypothesis' ``thorough`` profile), else ``ci``."""
    return thorough if THOROUGH or os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else ci
