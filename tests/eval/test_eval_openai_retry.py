"""The OpenAI eval backend under server faults, on the shared retry policy, over real HTTP.

Waits go through an injected ``sleep`` that records them and returns at once, and the clock
that Retry-After dates are read against is injected too: nothing here waits for a back-off.
"""

from __future__ import annotations

import email.utils

import pytest

from cof_plugins.core.retry import RetryPolicy
from cof_plugins.eval.backends import BackendUnavailable, Request
from cof_plugins.eval.backends.openai import OpenAIBackend
from cof_plugins.judge import JudgeClient, JudgeConfig
from cof_plugins.testbed.openai_server import (
    FakeOpenAIServer,
    empty_choices,
    error,
    refused_url,
    reply,
    slow,
)

NOW = 1_700_000_000.0
REQUEST = Request([{"role": "user", "content": "What colour is the sign?"}])


@pytest.fixture
def server():
    with FakeOpenAIServer(lambda body: reply("<answer>B</answer>")) as srv:
        yield srv


def backend(url: str, waits: list[float], **options) -> OpenAIBackend:
    return OpenAIBackend("m", url=url, sleep=waits.append, clock=lambda: NOW, **options)


def generate(client: OpenAIBackend) -> str:
    try:
        (generation,) = client.generate([REQUEST], 16)
    finally:
        client.close()
    return generation.text


def test_retry_after_seconds_and_http_date_are_honoured(server):
    server.script = [
        error(429, retry_after="3"),
        error(503, retry_after=email.utils.formatdate(NOW + 9, usegmt=True)),
    ]
    waits: list[float] = []
    assert generate(backend(server.url, waits, retries=2)) == "<answer>B</answer>"
    assert waits == [3.0, 9.0]
    assert len(server.chat_requests) == 3


def test_retry_after_is_capped_and_backoff_doubles_without_it(server):
    server.script = [error(429, retry_after="3600"), error(500), error(502)]
    policy = RetryPolicy(max_attempts=4, backoff_base_s=2.0, jitter=0.5, retry_after_max_s=30.0)
    waits: list[float] = []
    assert generate(backend(server.url, waits, retry=policy)) == "<answer>B</answer>"
    assert waits[0] == 30.0
    assert 2.0 <= waits[1] <= 4.0 and 4.0 <= waits[2] <= 8.0  # attempts 2 and 3, jittered


def test_client_errors_are_not_retried(server):
    server.script = [error(400)]
    waits: list[float] = []
    with pytest.raises(BackendUnavailable, match="HTTP 400"):
        generate(backend(server.url, waits, retries=3))
    assert waits == [] and len(server.chat_requests) == 1


def test_gives_up_after_the_last_attempt_naming_the_error(server):
    server.responder = lambda body: error(503, retry_after="1")
    waits: list[float] = []
    with pytest.raises(BackendUnavailable, match=r"chat/completions failed: HTTP 503"):
        generate(backend(server.url, waits, retries=2))
    assert waits == [1.0, 1.0] and len(server.chat_requests) == 3


def test_empty_choices_and_broken_bodies_are_retried(server):
    server.script = [empty_choices(), reply("ignored")]
    server.script[1].body = b"not json"
    waits: list[float] = []
    assert generate(backend(server.url, waits, retries=2)) == "<answer>B</answer>"
    assert len(waits) == 2 and len(server.chat_requests) == 3


def test_unreachable_server_fails_after_the_attempts():
    waits: list[float] = []
    with pytest.raises(BackendUnavailable, match="ConnectError"):
        generate(backend(refused_url(), waits, retries=1))
    assert len(waits) == 1


def test_a_reply_slower_than_the_timeout_is_an_attempt_that_failed(server):
    server.responder = lambda body: slow(5.0, "late")
    policy = RetryPolicy(max_attempts=2, timeout_s=0.2, connect_timeout_s=0.2)
    waits: list[float] = []
    with pytest.raises(BackendUnavailable, match="Timeout"):
        generate(backend(server.url, waits, retry=policy))
    assert len(server.chat_requests) == 2 and len(waits) == 1


def test_timeouts_must_be_finite():
    with pytest.raises(ValueError, match="timeout_s must be a finite number"):
        OpenAIBackend("m", url="http://127.0.0.1:1/v1", timeout_s=float("inf"))


RETRIED = {408, 425, 429, 500, 502, 503, 504}


@pytest.mark.parametrize("status", [400, 401, 404, 408, 422, 425, 429, 500, 501, 502, 503, 504])
def test_judge_and_eval_backend_retry_the_same_statuses(server, status):
    """One policy: for every status both clients send the same number of requests."""
    server.responder = lambda body: error(status)
    with pytest.raises(BackendUnavailable):
        generate(backend(server.url, [], retries=1))
    eval_requests = len(server.chat_requests)

    async def no_wait(seconds: float) -> None:
        pass

    config = JudgeConfig(url=server.url, model="model", max_retries=1, fallback="zero")
    judge = JudgeClient(config, sleep=no_wait)
    assert judge.judge_sync("q", "a", "a").source == "fallback"
    judge_requests = len(server.chat_requests) - eval_requests
    assert eval_requests == judge_requests == (2 if status in RETRIED else 1)
