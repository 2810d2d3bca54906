"""The one HTTP retry policy: Retry-After in both forms, back-off, attempts, timeouts."""

from __future__ import annotations

import email.utils
import random

import pytest

from cof_plugins.core.retry import (
    AttemptError,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)

NOW = 1_700_000_000.0


def test_parse_retry_after_forms():
    assert parse_retry_after("0.2") == 0.2
    assert parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after(email.utils.formatdate(NOW + 5, usegmt=True), now=NOW) == 5.0
    assert parse_retry_after(email.utils.formatdate(NOW - 60, usegmt=True), now=NOW) == 0.0
    for unusable in ("soon", "inf", "nan", "", None):
        assert parse_retry_after(unusable, now=NOW) is None


def test_delay_prefers_the_server_then_backs_off_with_bounded_jitter():
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=5.0, jitter=0.5, retry_after_max_s=9)
    rng = random.Random(0)
    assert policy.delay(1, 4.0, rng) == 4.0 and policy.delay(3, 60.0, rng) == 9.0
    assert RetryPolicy(jitter=0.0, backoff_max_s=100).delay(4, None, rng) == 0.5 * 2**3
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)):
        waits = [policy.delay(attempt, None, rng) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert max(waits) - min(waits) > ceiling / 10  # jittered, not in step


def test_status_errors_follow_the_policy():
    policy = RetryPolicy()
    limited = policy.status_error(429, "7", "HTTP 429", NOW)
    assert limited.retryable and limited.retry_after == 7.0 and str(limited) == "HTTP 429"
    assert not policy.status_error(400, "7", "HTTP 400", NOW).retryable
    assert policy.status_error(503, None, "x", NOW).retry_after is None
    assert not RetryPolicy(statuses=frozenset({429})).status_error(503, None, "x", NOW).retryable


def test_call_with_retries_counts_attempts_and_waits():
    outcomes = [AttemptError("busy", retry_after=2.0), AttemptError("down"), "ok"]
    waits: list[float] = []

    def attempt():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    policy = RetryPolicy(max_attempts=3, backoff_base_s=1.0, jitter=0.0)
    assert call_with_retries(attempt, policy, sleep=waits.append) == "ok"
    assert waits == [2.0, 2.0]  # the server's wait, then back-off for attempt 2


def test_call_with_retries_stops_on_a_final_error_or_the_last_attempt():
    calls, waits = [], []

    def fails(retryable: bool):
        def attempt():
            calls.append(1)
            raise AttemptError("no", retryable=retryable)

        return attempt

    with pytest.raises(AttemptError):
        call_with_retries(fails(False), RetryPolicy(max_attempts=5), sleep=waits.append)
    assert (len(calls), waits) == (1, [])
    with pytest.raises(AttemptError):
        call_with_retries(fails(True), RetryPolicy(max_attempts=3), sleep=waits.append)
    assert (len(calls), len(waits)) == (4, 2)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout_s", float("inf"), "timeout_s must be a finite number of seconds > 0"),
        ("connect_timeout_s", 0, "connect_timeout_s must be a finite"),
        ("max_attempts", 0, "max_attempts must be >= 1"),
        ("max_attempts", 2.5, "max_attempts must be an integer"),
        ("backoff_max_s", -1, "backoff_max_s must be a finite number of seconds >= 0"),
        ("jitter", 1.5, "jitter must be in"),
    ],
)
def test_policy_refuses_unbounded_or_nonsense_settings(field, value, message):
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**{field: value})
