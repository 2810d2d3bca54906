"""One retry policy for every HTTP call this package makes (the judge, the OpenAI eval backend).

Both talk to OpenAI-compatible servers that shed load the same way (429 or 503, often with
``Retry-After``), so they must agree on what is worth retrying, how long to wait and when to
stop. The policy is plain data and arithmetic: clients keep their own loops (the judge adds a
circuit breaker and counters) but ask the policy every question, and take ``sleep`` and
``clock`` as arguments so tests exercise the waits without waiting.

Waits: a server's ``Retry-After`` (delta seconds or an HTTP-date) is honoured up to
``retry_after_max_s``; otherwise exponential back-off from ``backoff_base_s`` doubling to
``backoff_max_s``, minus up to ``jitter`` of it at random so that many workers do not retry in
step. Every request has a finite timeout, so an attempt always ends.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

# Timeout, too early, rate limited, and the server-side errors a restart or a load spike
# produces. Other 4xx mean the request itself is wrong: sending it again cannot help.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class AttemptError(RuntimeError):
    """One failed attempt; ``retryable`` says whether trying again may help, ``retry_after``
    is the wait the server asked for, in seconds (None: it did not say)."""

    def __init__(self, message: str, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """What to retry, how long to wait, when to give up, and how long one request may take."""

    max_attempts: int = 4  # the first request included
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    jitter: float = 0.5  # fraction of each back-off that is randomised
    retry_after_max_s: float = 30.0
    timeout_s: float = 60.0  # one whole request
    connect_timeout_s: float = 5.0
    statuses: frozenset[int] = RETRYABLE_STATUSES

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ValueError(f"max_attempts must be an integer, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        for name in ("timeout_s", "connect_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
        for name in ("backoff_base_s", "backoff_max_s", "retry_after_max_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be in [0, 1], got {self.jitter!r}")

    def retryable_status(self, status: int) -> bool:
        return status in self.statuses

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.retry_after_max_s)
        wait = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return wait * (1.0 - self.jitter * rng.random())

    def status_error(
        self, status: int, retry_after: str | None, detail: str, now: float
    ) -> AttemptError:
        """The failure an HTTP error status stands for, with the server's wait if retryable."""
        if not self.retryable_status(status):
            return AttemptError(detail, retryable=False)
        return AttemptError(detail, True, parse_retry_after(retry_after, now))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or HTTP-date); None if absent.

    ``now`` is the current Unix time (default: ``time.time()``), needed for the date form.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], object] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """``attempt()`` until it returns, fails for good, or the attempts run out.

    ``attempt`` signals a failure by raising ``AttemptError``; the last one propagates.
    """
    rng = rng if rng is not None else random.Random()
    for number in range(1, policy.max_attempts + 1):
        try:
            return attempt()
        except AttemptError as exc:
            if not exc.retryable or number == policy.max_attempts:
                raise
            sleep(policy.delay(number, exc.retry_after, rng))
    raise AssertionError("unreachable: max_attempts >= 1")
