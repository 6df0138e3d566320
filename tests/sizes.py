"""How many examples the property tests draw.

CI draws the counts on the left, measured to run in seconds each (README, "Tests"); the full
counts on the right run in a nightly-style run that ``.ci/run`` does not need::

    LOREWEAVE_PROPERTIES=full pytest -m slow

Each property test that is sized here is marked ``slow``, so that run takes them all.
"""

from __future__ import annotations

import os

FULL = os.environ.get("LOREWEAVE_PROPERTIES", "").strip().lower() == "full"


def examples(ci: int, full: int) -> int:
    """``ci`` examples in an ordinary run, ``full`` in the full one."""
    return full if FULL else ci
