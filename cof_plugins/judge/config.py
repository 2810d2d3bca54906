"""Judge settings: read from ``COF_JUDGE_*`` environment variables, with explicit overrides.

The judge server is an endpoint, not a recipe value: launch scripts export its URL and key,
and every process (reward workers, eval) builds the same config from the environment. Keyword
overrides exist for tests and for the ``cof judge check --url/--model`` flags.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cof_plugins.core.redact import redact_url
from cof_plugins.core.retry import RetryPolicy

FALLBACK_POLICIES = ("rules", "zero", "raise", "skip")

LAUNCH_HINT = (
    "start an OpenAI-compatible judge server (e.g. `bash launch/judge_server.sh`), then "
    "export COF_JUDGE_URL=http://HOST:PORT/v1 and COF_JUDGE_MODEL=<served model name>"
)


class JudgeConfigError(ValueError):
    """The judge is misconfigured; the message names the variable to set and how."""


@dataclass(frozen=True)
class JudgeConfig:
    """Everything the judge client needs; see ``ENV_VARS`` for the environment names."""

    url: str | None = dataclasses.field(default=None, repr=False)  # may hold credentials
    model: str | None = None
    api_key: str | None = dataclasses.field(default=None, repr=False)
    # Whole-request limit (connect + wait for the reply) and the connect part alone.
    timeout_s: float = 60.0
    connect_timeout_s: float = 5.0
    concurrency: int = 16
    # Extra attempts after the first; attempts = 1 + max_retries.
    max_retries: int = 3
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    # Fraction of each back-off delay that is randomised, so workers do not retry in step.
    jitter: float = 0.5
    # A server's Retry-After is honoured up to this many seconds.
    retry_after_max_s: float = 30.0
    fallback: str = "rules"
    # Consecutive failed attempts that open the circuit, and how long it stays open.
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0
    cache_path: str | None = None
    # Greedy by default so that cached verdicts are the verdicts the server would give again.
    temperature: float = 0.0
    max_tokens: int = 256

    def __post_init__(self) -> None:
        if self.fallback not in FALLBACK_POLICIES:
            raise JudgeConfigError(
                f"fallback={self.fallback!r} is not a policy; use one of "
                f"{', '.join(FALLBACK_POLICIES)} (env COF_JUDGE_FALLBACK)"
            )
        for name in ("concurrency", "breaker_threshold"):
            if getattr(self, name) <= 0:
                raise JudgeConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.max_retries < 0:
            raise JudgeConfigError(f"max_retries must be >= 0, got {self.max_retries!r}")
        try:
            _ = self.retry_policy  # building it checks the retry and timeout fields
        except ValueError as exc:
            raise JudgeConfigError(f"judge {exc}") from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> JudgeConfig:
        """Build a config from ``env`` (default ``os.environ``); keyword overrides win.

        An override of ``None`` means "not given", so CLI flags can be passed straight through.
        A missing URL is not an error here: only a process that actually calls the judge
        needs one (see ``require_endpoint``).
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field, (var, kind) in ENV_VARS.items():
            raw = env.get(var, "").strip()
            if raw:
                values[field] = _parse(var, raw, kind)
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown JudgeConfig field(s): {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def attempts(self) -> int:
        return 1 + self.max_retries

    @property
    def retry_policy(self) -> RetryPolicy:
        """The package's one HTTP retry policy, with this judge's numbers."""
        return RetryPolicy(
            max_attempts=self.attempts,
            backoff_base_s=self.backoff_base_s,
            backoff_max_s=self.backoff_max_s,
            jitter=self.jitter,
            retry_after_max_s=self.retry_after_max_s,
            timeout_s=self.timeout_s,
            connect_timeout_s=self.connect_timeout_s,
        )

    @property
    def base_url(self) -> str:
        return (self.url or "").rstrip("/")

    def require_endpoint(self) -> None:
        """Raise a ``JudgeConfigError`` naming the variable when URL or model is missing."""
        if not self.url:
            raise JudgeConfigError(
                f"the LLM judge is needed but COF_JUDGE_URL is not set; {LAUNCH_HINT}"
            )
        if not self.url.startswith(("http://", "https://")):
            raise JudgeConfigError(
                f"COF_JUDGE_URL={redact_url(self.url)!r} is not an http(s) URL; use e.g. "
                "http://127.0.0.1:8000/v1"
            )
        if not self.model:
            raise JudgeConfigError(
                "COF_JUDGE_MODEL is not set; set it to a model name the judge server serves "
                "(`cof judge check` lists them)"
            )


# field name -> (environment variable, type)
ENV_VARS: dict[str, tuple[str, type]] = {
    "url": ("COF_JUDGE_URL", str),
    "model": ("COF_JUDGE_MODEL", str),
    "api_key": ("COF_JUDGE_API_KEY", str),
    "timeout_s": ("COF_JUDGE_TIMEOUT", float),
    "connect_timeout_s": ("COF_JUDGE_CONNECT_TIMEOUT", float),
    "concurrency": ("COF_JUDGE_CONCURRENCY", int),
    "max_retries": ("COF_JUDGE_RETRIES", int),
    "backoff_base_s": ("COF_JUDGE_BACKOFF", float),
    "fallback": ("COF_JUDGE_FALLBACK", str),
    "breaker_threshold": ("COF_JUDGE_BREAKER_THRESHOLD", int),
    "breaker_cooldown_s": ("COF_JUDGE_BREAKER_COOLDOWN", float),
    "cache_path": ("COF_JUDGE_CACHE", str),
    "temperature": ("COF_JUDGE_TEMPERATURE", float),
    "max_tokens": ("COF_JUDGE_MAX_TOKENS", int),
}


def _parse(var: str, raw: str, kind: type) -> Any:
    if kind is str:
        return raw
    try:
        return kind(raw)
    except ValueError:
        raise JudgeConfigError(f"{var}={raw!r} is not a valid {kind.__name__}") from None
