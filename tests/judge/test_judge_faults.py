"""Judge client under faults: outages, slow and broken replies, rate limits, the breaker."""

from __future__ import annotations

import asyncio
import email.utils

import pytest

from cof_plugins.judge import JudgeClient, JudgeConfig, JudgeUnavailableError
from cof_plugins.judge.breaker import CircuitBreaker
from cof_plugins.testbed.openai_server import (
    FakeOpenAIServer,
    Reply,
    empty_choices,
    error,
    judge_case,
    refused_url,
    slow,
    truthful_judge,
    verdict,
)

MODEL = "judge-model"


@pytest.fixture
def server():
    with FakeOpenAIServer(truthful_judge, models=(MODEL,)) as srv:
        yield srv


class Sleeps:
    """An injected ``sleep``: records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_client(url: str, sleeps: Sleeps | None = None, now: float = 0.0, **overrides):
    fast = dict(
        timeout_s=1.0,
        connect_timeout_s=0.5,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
        max_retries=2,
        breaker_threshold=100,
        breaker_cooldown_s=0.5,
    )
    config = JudgeConfig(url=url, model=MODEL, **{**fast, **overrides})
    if sleeps is None:
        return JudgeClient(config)
    return JudgeClient(config, sleep=sleeps, clock=lambda: now)


def test_server_down_falls_back_to_rules_not_zero():
    client = make_client(refused_url())
    v = client.judge_sync("q", "a", "a")
    assert (v.correct, v.source, v.attempts, v.policy) == (None, "fallback", 3, "rules")
    assert "ConnectError" in v.error
    assert v.resolve(rule_result=True) is True
    stats = client.stats()
    assert stats["judge/retries"] == 2 and stats["judge/failures"] == 1
    assert stats["judge/fallbacks"] == 1 and stats["judge/successes"] == 0


def test_slow_server_times_out_then_falls_back(server):
    """No stopwatch: without the timeout the reply would arrive (after 2 s) and be judged."""
    server.responder = lambda body: slow(2.0, verdict(1))
    sleeps = Sleeps()
    client = make_client(server.url, sleeps, timeout_s=0.2, max_retries=1)
    v = client.judge_sync("q", "a", "a")
    assert (v.source, v.attempts) == ("fallback", 2)
    assert "no reply within 0.2 s" in v.error
    assert len(server.chat_requests) == 2 and len(sleeps.waits) == 1


def test_500s_then_success(server):
    server.script = [error(500), error(503)]
    client = make_client(server.url)
    v = client.judge_sync("q", "a", "a")
    assert (v.correct, v.source, v.attempts) == (True, "judge", 3)
    assert client.stats()["judge/retries"] == 2 and client.stats()["judge/failures"] == 0


def test_retry_after_seconds_and_date_are_honoured_and_capped(server):
    """The waits the client asks for, on an injected sleep: the server's Retry-After in both
    forms (an HTTP-date read against the injected clock), capped; back-off only without it."""
    now = 1_700_000_000.0
    server.script = [
        error(429, retry_after="7"),
        error(503, retry_after=email.utils.formatdate(now + 12, usegmt=True)),
        error(429, retry_after="600"),
    ]
    sleeps = Sleeps()
    client = make_client(server.url, sleeps, now, max_retries=3, retry_after_max_s=20.0)
    v = client.judge_sync("q", "a", "a")
    assert (v.correct, v.source, v.attempts) == (True, "judge", 4)
    assert sleeps.waits == [7.0, 12.0, 20.0]
    assert len(server.chat_requests) == 4


def test_backoff_without_retry_after_doubles_with_jitter(server):
    server.script = [error(500), error(502), error(503)]
    sleeps = Sleeps()
    client = make_client(server.url, sleeps, max_retries=3, backoff_base_s=1.0, backoff_max_s=3.0)
    assert client.judge_sync("q", "a", "a").source == "judge"
    (w1, w2, w3) = sleeps.waits
    assert 0.5 <= w1 <= 1.0 and 1.0 <= w2 <= 2.0 and 1.5 <= w3 <= 3.0  # jitter 0.5


@pytest.mark.parametrize(
    "bad",
    [
        empty_choices(),
        Reply(text="The two answers look about the same to me."),
        Reply(body={"choices": [{"message": {"role": "assistant", "content": None}}]}),
        Reply(body=b"not json at all"),
    ],
    ids=["empty-choices", "garbage-text", "null-content", "non-json"],
)
def test_unusable_reply_is_retried_not_scored_wrong(server, bad):
    server.script = [bad]
    client = make_client(server.url)
    v = client.judge_sync("q", "a", "a")
    assert (v.correct, v.source, v.attempts) == (True, "judge", 2)
    assert client.stats()["judge/retries"] == 1


def test_always_garbage_falls_back(server):
    server.responder = lambda body: Reply(text="no idea")
    v = make_client(server.url).judge_sync("q", "a", "a")
    assert (v.correct, v.source, v.attempts) == (None, "fallback", 3)
    assert "no 'Judgement: 0/1'" in v.error


def test_client_error_is_not_retried(server):
    server.script = [error(400)]
    client = make_client(server.url)
    v = client.judge_sync("q", "a", "a")
    assert (v.source, v.attempts) == ("fallback", 1)
    assert "HTTP 400" in v.error and client.stats()["judge/retries"] == 0


@pytest.mark.parametrize(("policy", "expected"), [("zero", False), ("skip", None)])
def test_fallback_policies(policy, expected):
    v = make_client(refused_url(), fallback=policy, max_retries=0).judge_sync("q", "a", "a")
    assert (v.correct, v.source, v.policy) == (expected, "fallback", policy)
    assert v.resolve(rule_result=True) is expected


def test_fallback_raise():
    client = make_client(refused_url(), fallback="raise", max_retries=0)
    with pytest.raises(JudgeUnavailableError, match="after 1 attempt"):
        client.judge_sync("q", "a", "a")
    assert client.stats()["judge/fallbacks"] == 1


def test_fallbacks_are_never_cached(server, tmp_path):
    server.script = [error(500)] * 3
    client = make_client(server.url, cache_path=str(tmp_path / "c.sqlite"))
    assert client.judge_sync("q", "a", "a").source == "fallback"
    assert client.judge_sync("q", "a", "a").source == "judge"
    assert client.judge_sync("q", "a", "a").source == "cache"


def fail_on_broken(body):
    """Judge truthfully, except that any candidate answer 'BROKEN' always gets a 500."""
    if judge_case(body)["Candidate answer"] == "BROKEN":
        return error(500)
    return truthful_judge(body)


def test_group_with_one_failure_falls_back_as_a_whole(server):
    server.responder = fail_on_broken
    client = make_client(server.url, fallback="zero")
    group = [("q", "red", "red"), ("q", "BROKEN", "red"), ("q", "blue", "red")]
    verdicts = client.judge_group_sync(group)
    assert [v.source for v in verdicts] == ["fallback"] * 3
    assert [v.correct for v in verdicts] == [False] * 3
    assert "1 of 3 item(s) could not be judged" in verdicts[0].error
    assert verdicts[0].raw == "Judgement: 1"  # the judged text is kept for inspection
    stats = client.stats()
    assert stats["judge/group_fallbacks"] == 1 and stats["judge/fallbacks"] == 3


def test_healthy_group_is_judged(server):
    client = make_client(server.url)
    verdicts = client.judge_group_sync([("q", "red", "red"), ("q", "blue", "red")])
    assert [(v.source, v.correct) for v in verdicts] == [("judge", True), ("judge", False)]
    assert client.stats()["judge/group_fallbacks"] == 0


def test_group_raise_policy_propagates(server):
    server.responder = fail_on_broken
    client = make_client(server.url, fallback="raise", max_retries=0)
    with pytest.raises(JudgeUnavailableError):
        client.judge_group_sync([("q", "red", "red"), ("q", "BROKEN", "red")])


class Clock:
    """An injected monotonic clock for the breaker: time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def with_breaker(client: JudgeClient, clock: Clock) -> JudgeClient:
    """The client's breaker, same settings, on ``clock`` instead of time.monotonic."""
    cfg = client.config
    client.breaker = CircuitBreaker(cfg.breaker_threshold, cfg.breaker_cooldown_s, clock=clock)
    return client


def test_circuit_breaker_opens_skips_and_recovers(server):
    server.script = [error(500)] * 3
    clock, sleeps = Clock(), Sleeps()
    client = make_client(
        server.url, sleeps, breaker_threshold=3, breaker_cooldown_s=30.0, max_retries=5
    )
    with_breaker(client, clock)
    v = client.judge_sync("q", "a", "a")
    # The breaker cut the retries short: 3 failed attempts, not 6.
    assert (v.source, v.attempts) == ("fallback", 3) and "circuit open" in v.error
    waits = len(sleeps.waits)
    skipped = client.judge_many_sync([("q", str(i), "a") for i in range(20)])
    assert all(s.source == "fallback" and s.attempts == 0 for s in skipped)
    assert len(server.chat_requests) == 3 and len(sleeps.waits) == waits  # no request, no wait
    stats = client.stats()
    assert stats["judge/circuit_opens"] == 1 and stats["judge/circuit_open"] == 1
    assert stats["judge/circuit_open_skips"] == 21
    clock.now += 29.9
    assert client.judge_sync("q", "a", "a").source == "fallback"  # still cooling down
    clock.now += 0.2
    assert client.judge_sync("q", "a", "a").source == "judge"
    assert client.stats()["judge/circuit_open"] == 0 and client.breaker.consecutive_failures == 0


def test_half_open_failure_reopens_at_once(server):
    server.responder = lambda body: error(500)
    clock = Clock()
    client = make_client(
        server.url, Sleeps(), breaker_threshold=2, breaker_cooldown_s=20.0, max_retries=3
    )
    with_breaker(client, clock)
    client.judge_sync("q", "a", "a")
    assert client.breaker.is_open
    clock.now += 20.0
    v = client.judge_sync("q", "a", "a")
    assert v.attempts == 1 and client.breaker.is_open and client.breaker.opened == 2


def test_outage_with_concurrency_is_bounded():
    """An outage costs about the breaker's threshold in requests, not items x attempts."""
    sleeps = Sleeps()
    client = make_client(refused_url(), sleeps, breaker_threshold=4, max_retries=3, concurrency=8)
    verdicts = asyncio.run(client.judge_many([("q", str(i), "a") for i in range(64)]))
    assert all(v.is_fallback for v in verdicts)
    stats = client.stats()
    assert stats["judge/fallbacks"] == 64 and stats["judge/circuit_open_skips"] >= 50
    # At most the concurrent calls' attempts before the circuit opened (8 x 4), not 64 x 4.
    assert stats["judge/requests"] <= 8 * 4 and len(sleeps.waits) <= 8 * 3
