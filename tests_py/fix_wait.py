"""Waiting, with a deadline, for the state a test asserts (never a fixed sleep).

``wait_until`` polls a condition until it holds and returns what the condition returned; when
the deadline passes first it fails the test with an AssertionError that names what it waited for
and for how long. Tests import it as ``from fix_wait import wait_until``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    cond: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    ignore: tuple[type[Exception], ...] = (),
) -> T:
    """Calls ``cond()`` every ``interval`` s until it returns a truthy value, and returns that
    value (so a condition may hand back the row or result it found).

    ``cond`` runs at least once, and once more at the deadline, ``timeout`` s from the call;
    if it never returned a truthy value, raises ``AssertionError("timed out after <timeout> s
    waiting for <what>")``. An exception of a type in ``ignore`` counts as "not yet" (a server
    still starting); the last one is chained to the AssertionError. Any other exception ends the
    wait at once: by default all do, so an ``assert`` inside ``cond`` fails the test at once.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = cond()
        except ignore as e:
            last_error = e
        else:
            if value:
                return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what}"
            ) from last_error
        time.sleep(min(interval, left))
