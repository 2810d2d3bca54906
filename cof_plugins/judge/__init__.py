"""LLM judge: decides whether a free-form answer matches the ground truth.

Shared by the RL reward and the eval harness. Configure it with ``COF_JUDGE_*`` environment
variables (see ``JudgeConfig``) and check a server with ``cof judge check``.
"""

from cof_plugins.judge.cache import JudgeCache, cache_key
from cof_plugins.judge.client import (
    COUNTERS,
    JudgeClient,
    shared_client,
)
from cof_plugins.judge.config import FALLBACK_POLICIES, JudgeConfig, JudgeConfigError
from cof_plugins.judge.errors import JudgeRequestError, JudgeUnavailableError
from cof_plugins.judge.health import HealthReport, ProbeResult
from cof_plugins.judge.prompt import PROMPT_VERSION, build_messages, parse_judgement
from cof_plugins.judge.verdict import JudgeItem, JudgeVerdict

__all__ = [
    "COUNTERS",
    "FALLBACK_POLICIES",
    "PROMPT_VERSION",
    "HealthReport",
    "JudgeCache",
    "JudgeClient",
    "JudgeConfig",
    "JudgeConfigError",
    "JudgeItem",
    "JudgeRequestError",
    "JudgeUnavailableError",
    "JudgeVerdict",
    "ProbeResult",
    "build_messages",
    "cache_key",
    "parse_judgement",
    "shared_client",
]
