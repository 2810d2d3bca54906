"""Errors of the judge client, kept apart so the client and the health check share them."""

from __future__ import annotations

from cof_plugins.core.retry import AttemptError


class JudgeUnavailableError(RuntimeError):
    """The judge could not give a verdict and the fallback policy is 'raise'."""


class JudgeRequestError(AttemptError):
    """One request to the judge failed; ``retryable`` says whether trying again may help."""
