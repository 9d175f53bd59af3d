"""When to retry and how long to wait: pure functions, so the policy is tested without a clock."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable

#: Statuses that say "not now" rather than "no": throttling and server-side failures.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value (delta seconds or an HTTP date); None if absent or
    bad.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    wall = time.time() if now is None else now
    return max(0.0, when.timestamp() - wall)


def backoff_delay(
    attempt: int,
    initial: float,
    cap: float,
    random: Callable[[], float],
) -> float:
    """Delay before retry number `attempt` (1-based): doubling from `initial`, capped, jittered.

    The jitter keeps half the delay and randomises the rest ("equal jitter"), so that many clients
    turned away at the same moment do not all come back at the same moment, yet none comes back at
    once.
    """
    ceiling = min(cap, initial * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + random() * ceiling / 2
