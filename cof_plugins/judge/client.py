"""The LLM-judge client shared by the RL reward and the eval harness.

It asks an OpenAI-compatible server whether a free-form answer matches the ground truth and
never turns an outage into a silent score of 0: failed attempts are retried under the
package's one HTTP retry policy (``core.retry``: back-off with jitter, Retry-After honoured),
unusable replies count as failures (not as "wrong"), and when the judge stays unreachable
the configured fallback policy decides, visibly, in the verdict and in ``stats()``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import httpx

from cof_plugins.core.redact import install_log_filter, redact_text
from cof_plugins.core.retry import RetryPolicy
from cof_plugins.judge.breaker import CircuitBreaker
from cof_plugins.judge.cache import JudgeCache, cache_key
from cof_plugins.judge.config import JudgeConfig
from cof_plugins.judge.errors import JudgeRequestError, JudgeUnavailableError
from cof_plugins.judge.health import HealthReport, run_health_check
from cof_plugins.judge.prompt import PROMPT_VERSION, build_messages, parse_judgement
from cof_plugins.judge.verdict import JudgeItem, JudgeVerdict

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Stable metric names (logged by the RL reward as judge/<name>).
COUNTERS = (
    "calls",
    "requests",
    "successes",
    "retries",
    "failures",
    "fallbacks",
    "group_fallbacks",
    "cache_hits",
    "cache_errors",
    "circuit_open_skips",
)


class JudgeClient:
    """Async judge client; one per process, usable from any event loop (see ``_session``).

    ``sleep`` (awaited between attempts) and ``clock`` (Unix time, for Retry-After dates) are
    injectable so that tests can check every wait without waiting.
    """

    def __init__(
        self,
        config: JudgeConfig | None = None,
        cache: JudgeCache | None = None,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ):
        self.config = config if config is not None else JudgeConfig.from_env()
        self.policy: RetryPolicy = self.config.retry_policy
        if cache is None and self.config.cache_path:
            cache = JudgeCache(self.config.cache_path)
        self.cache = cache
        self.breaker = CircuitBreaker(self.config.breaker_threshold, self.config.breaker_cooldown_s)
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._rng = random.Random()
        self._sleep, self._clock = sleep, clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None
        self._last_error = ""

    # ----- public API -----------------------------------------------------------------
    async def judge(
        self, question: str, answer: str, ground_truth: str, *, temperature: float | None = None
    ) -> JudgeVerdict:
        """Judge one answer: cache, then the server with retries, then the fallback policy.

        ``temperature`` overrides the config's for this request (the release's RL reward
        samples its judge at 0.3); verdicts at another temperature are cached apart.
        """
        self.config.require_endpoint()
        self._counts["calls"] += 1
        version = PROMPT_VERSION if temperature is None else f"{PROMPT_VERSION}@t={temperature}"
        key = cache_key(self.config.model or "", version, question, answer, ground_truth)
        hit = await self._cache_call("get", key)
        if hit is not None:
            self._counts["cache_hits"] += 1
            return JudgeVerdict(hit[0], "cache", hit[1], attempts=0)
        messages = build_messages(question, answer, ground_truth)
        verdict = await self._ask_with_retries(messages, temperature)
        if verdict.source == "judge":
            model = self.config.model
            await self._cache_call("put", key, bool(verdict.correct), verdict.raw, model, version)
        return verdict

    async def judge_many(self, items: Iterable[Sequence[str]]) -> list[JudgeVerdict]:
        """Judge many (question, answer, ground_truth) items, at most ``concurrency`` at once."""
        return await _gather_or_cancel(self.judge(*JudgeItem(*item)) for item in items)

    async def judge_group(self, items: Iterable[Sequence[str]]) -> list[JudgeVerdict]:
        """Judge the rollouts of one uid group; all of them fall back if any one does.

        GRPO normalises rewards within a group, so a group scored half by the judge and half
        by the fallback (rules, or zero) would compare rollouts on different scales and push
        the advantages in a direction no answer deserves. Marking the whole group as fallback
        keeps each group on one scale; the judged verdicts are still cached for later.
        """
        verdicts = await self.judge_many(items)
        failed = [v for v in verdicts if v.is_fallback]
        if not failed:
            return verdicts
        self._counts["group_fallbacks"] += 1
        reason = (
            f"group fallback: {len(failed)} of {len(verdicts)} item(s) could not be judged"
            f" ({failed[0].error})"
        )
        return [v if v.is_fallback else self._demote(v, reason) for v in verdicts]

    def judge_sync(self, question: str, answer: str, ground_truth: str) -> JudgeVerdict:
        """Blocking ``judge`` for code without an event loop."""
        return self._run_sync(self.judge(question, answer, ground_truth))

    def judge_many_sync(self, items: Iterable[Sequence[str]]) -> list[JudgeVerdict]:
        return self._run_sync(self.judge_many(items))

    def judge_group_sync(self, items: Iterable[Sequence[str]]) -> list[JudgeVerdict]:
        return self._run_sync(self.judge_group(items))

    def stats(self) -> dict[str, float]:
        """Counters under stable metric names, e.g. ``judge/calls``, ``judge/fallbacks``."""
        out = {f"judge/{name}": float(count) for name, count in self._counts.items()}
        out["judge/circuit_opens"] = float(self.breaker.opened)
        out["judge/circuit_open"] = float(self.breaker.is_open)
        return out

    async def check(self) -> HealthReport:
        """Probe the server: served models, latency, and verdicts on known pairs."""
        return await run_health_check(self)

    async def aclose(self) -> None:
        """Close the HTTP connections and the cache file."""
        await self._drop_session()
        if self.cache is not None:
            self.cache.close()

    async def __aenter__(self) -> JudgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ----- single requests (also used by the health check) ---------------------------
    async def list_models(self) -> list[str]:
        """Model ids the server serves (GET /models)."""
        resp = await self._send("GET", "/models")
        try:
            return [str(m["id"]) for m in resp.json()["data"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise JudgeRequestError(f"/models returned an unexpected body: {exc!r}") from None

    async def ask(
        self,
        messages: list[dict[str, str]],
        model: str | None = None,
        temperature: float | None = None,
    ) -> tuple[bool, str]:
        """One chat request, no retries: (verdict, raw reply) or ``JudgeRequestError``."""
        body = {
            "model": model or self.config.model,
            "messages": messages,
            "temperature": self.config.temperature if temperature is None else temperature,
            "max_tokens": self.config.max_tokens,
        }
        text = _reply_text(await self._send("POST", "/chat/completions", json=body))
        verdict = parse_judgement(text)
        if verdict is None:
            raise JudgeRequestError(f"reply has no 'Judgement: 0/1': {text[:120]!r}")
        return verdict, text

    # ----- internals -----------------------------------------------------------------
    async def _ask_with_retries(
        self, messages: list[dict[str, str]], temperature: float | None = None
    ) -> JudgeVerdict:
        """Up to ``attempts`` requests with back-off; the breaker may cut them short."""
        _, sem = self._session()
        attempts, error = 0, ""
        async with sem:
            while attempts < self.policy.max_attempts:
                if not self.breaker.allow():
                    self._counts["circuit_open_skips"] += 1
                    error = self._circuit_open_message()
                    break
                attempts += 1
                try:
                    correct, raw = await self.ask(messages, temperature=temperature)
                except JudgeRequestError as exc:
                    error = str(exc)
                    if not self._retry_after_failure(exc, attempts):
                        break
                    await self._sleep(self.policy.delay(attempts, exc.retry_after, self._rng))
                    continue
                self.breaker.record_success()
                self._counts["successes"] += 1
                return JudgeVerdict(correct, "judge", raw, attempts)
        if attempts:
            self._counts["failures"] += 1
        return self._fallback(error, attempts)

    def _retry_after_failure(self, exc: JudgeRequestError, attempts: int) -> bool:
        """Record a failed attempt; return whether another attempt should follow."""
        self._last_error = str(exc)
        if self.breaker.record_failure():
            logger.warning(
                "judge circuit opened after %d consecutive failures (last: %s); falling back "
                "for %.0f s",
                self.breaker.consecutive_failures,
                exc,
                self.config.breaker_cooldown_s,
            )
        if not exc.retryable or attempts >= self.policy.max_attempts:
            return False
        self._counts["retries"] += 1
        return True

    def _circuit_open_message(self) -> str:
        return (
            f"circuit open after {self.breaker.consecutive_failures} consecutive failures "
            f"(last: {self._last_error}); calls resume in {self.breaker.retry_in():.1f} s"
        )

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP request under the whole-request timeout; failures become JudgeRequestError."""
        http, _ = self._session()
        self._counts["requests"] += 1
        timeout = self.policy.timeout_s
        try:
            async with asyncio.timeout(timeout):
                resp = await http.request(method, path, **kwargs)
        except (TimeoutError, httpx.TimeoutException):
            raise JudgeRequestError(f"{method} {path}: no reply within {timeout} s") from None
        except httpx.HTTPError as exc:  # messages may quote the URL, with its credentials
            url = f"{self.config.base_url}{path}"
            detail = redact_text(f"{method} {url}: {type(exc).__name__}: {exc}")
            raise JudgeRequestError(detail) from None
        self._check_status(resp)
        return resp

    def _check_status(self, resp: httpx.Response) -> None:
        """An error status becomes a JudgeRequestError, retryable as the policy says."""
        code = resp.status_code
        if code < 300:
            return
        detail = redact_text(
            f"HTTP {code} from {resp.request.method} {resp.request.url}: {resp.text[:200]!r}"
        )
        failure = self.policy.status_error(
            code, resp.headers.get("Retry-After"), detail, self._clock()
        )
        raise JudgeRequestError(detail, failure.retryable, failure.retry_after)

    def _session(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """HTTP client and semaphore of the running loop.

        Both bind to the event loop they are first used in, and verl may call a reward
        function under a fresh ``asyncio.run`` each time, so they are rebuilt per loop.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._http is None or self._sem is None:
            cfg, policy = self.config, self.policy
            headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
            install_log_filter("httpx")  # httpx logs each request's URL, credentials included
            self._http = httpx.AsyncClient(
                base_url=cfg.base_url,
                headers=headers,
                timeout=httpx.Timeout(policy.timeout_s, connect=policy.connect_timeout_s),
                limits=httpx.Limits(max_connections=cfg.concurrency),
                trust_env=False,
            )
            self._sem = asyncio.Semaphore(cfg.concurrency)
            self._loop = loop
        return self._http, self._sem

    async def _drop_session(self) -> None:
        http, self._http, self._sem, self._loop = self._http, None, None, None
        if http is not None:
            await http.aclose()

    def _run_sync(self, coro: Awaitable[T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            getattr(coro, "close", lambda: None)()
            raise RuntimeError("called a *_sync judge method inside an event loop; await it")

        async def run_then_close() -> T:
            try:
                return await coro
            finally:
                await self._drop_session()

        return asyncio.run(run_then_close())

    async def _cache_call(self, method: str, *args: Any) -> Any:
        """Run a cache method off the event loop; a broken cache is logged, never fatal."""
        if self.cache is None:
            return None
        try:
            return await asyncio.to_thread(getattr(self.cache, method), *args)
        except sqlite3.Error as exc:
            self._counts["cache_errors"] += 1
            if self._counts["cache_errors"] == 1:
                logger.warning(
                    "judge cache %s failed (%s); going on without it", self.cache.path, exc
                )
            return None

    def _fallback(self, error: str, attempts: int) -> JudgeVerdict:
        policy = self.config.fallback
        self._counts["fallbacks"] += 1
        if self._counts["fallbacks"] == 1:
            logger.warning("judge gave no verdict (%s); applying fallback %r", error, policy)
        if policy == "raise":
            raise JudgeUnavailableError(
                f"judge gave no verdict after {attempts} attempt(s): {error}"
            )
        return JudgeVerdict(
            False if policy == "zero" else None, "fallback", "", attempts, error, policy
        )

    def _demote(self, verdict: JudgeVerdict, reason: str) -> JudgeVerdict:
        self._counts["fallbacks"] += 1
        correct = False if self.config.fallback == "zero" else None
        return replace(
            verdict, correct=correct, source="fallback", error=reason, policy=self.config.fallback
        )


def _reply_text(resp: httpx.Response) -> str:
    """The assistant text of a chat completion; a malformed or empty one is a failed attempt."""
    try:
        choices = resp.json()["choices"]
        content = choices[0]["message"]["content"] if choices else None
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise JudgeRequestError(f"malformed chat completion: {exc!r}") from None
    if not isinstance(content, str) or not content.strip():
        raise JudgeRequestError("chat completion has no choices or empty content")
    return content


async def _gather_or_cancel(coros: Iterable[Awaitable[T]]) -> list[T]:
    """``asyncio.gather`` that cancels the siblings when one raises (fallback 'raise')."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


_shared: JudgeClient | None = None


def shared_client() -> JudgeClient:
    """The process-wide client built from the environment on first use.

    Reward functions are plain functions called once per batch; sharing one client keeps
    the breaker, the counters and the cache connection alive across calls.
    """
    global _shared
    if _shared is None:
        _shared = JudgeClient(JudgeConfig.from_env())
    return _shared
