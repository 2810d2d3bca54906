"""The judge behind GRPO-SIF's answer reward: a score s in [0, 1] for one final answer.

The release asks an external OpenAI-compatible MLLM for a graded score given the question,
the ground truth, the answer and the image. Here the interface is the same call,
``await judge.score(...) -> JudgedScore``, with two implementations:

- ``RuleJudge`` (offline stand-in): the project's rule matcher (``core.answers``: option
  letters, normalised short answers, numbers, yes/no); s = 1 when it says right, else 0,
  an undecided verdict counting as wrong;
- ``ClientJudge``: the same rules first, then, for answers the rules cannot decide, the
  project's judge client (``cof_plugins.judge``: retries, circuit breaker, cache, fallback
  policy) configured by ``COF_JUDGE_URL`` / ``COF_JUDGE_MODEL``.

Both give binary scores (the client's verdict is right/wrong, text only, no image), where
the release's judge may give fractions; the progress bonus works on either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cof_plugins.core.answers import rule_match


@dataclass(frozen=True)
class JudgedScore:
    """s in [0, 1] and how it was reached: 'rules', 'judge' or 'fallback'."""

    score: float
    source: str
    rule_decided: bool


class RuleJudge:
    """Rules only: the offline stand-in for the release's MLLM judge."""

    name = "rules"

    async def score(
        self,
        question: str,
        answer: str | None,
        truth: str,
        kind: str = "open",
        options: Sequence[str] | None = None,
    ) -> JudgedScore:
        verdict = rule_match(answer, truth, kind=kind, options=options or None)
        return JudgedScore(float(bool(verdict)), "rules", verdict is not None)


class ClientJudge(RuleJudge):
    """Rules first; the OpenAI-compatible judge client for answers they leave undecided."""

    name = "judge"

    def __init__(self, client: Any) -> None:
        self.client = client

    async def score(
        self,
        question: str,
        answer: str | None,
        truth: str,
        kind: str = "open",
        options: Sequence[str] | None = None,
    ) -> JudgedScore:
        verdict = rule_match(answer, truth, kind=kind, options=options or None)
        if verdict is not None or answer is None:
            return JudgedScore(float(bool(verdict)), "rules", verdict is not None)
        judged = await self.client.judge(question, answer, truth)
        source = "fallback" if judged.is_fallback else "judge"
        return JudgedScore(float(bool(judged.resolve(verdict))), source, False)


def answer_judge_for(mode: str) -> RuleJudge:
    """'off': rules; 'auto': the client when COF_JUDGE_URL is set; 'on': the client, required."""
    from cof_plugins.rewards.cof_reward import RewardSettings, judge_for

    client = judge_for(RewardSettings(judge=mode))
    return RuleJudge() if client is None else ClientJudge(client)
