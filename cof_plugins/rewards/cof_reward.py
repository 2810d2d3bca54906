"""The per-rollout CoF reward: facts first (accuracy, format, tool use), then the score.

``score = acc_weight * acc + format_weight * format_ok`` (0.9 / 0.1 by default), computed on
the assistant's own turns only (``segments.split_response``). Accuracy is decided by rules
first (option letters, normalised short answers, math-verify); the LLM judge is asked only
when the rules return None. A response that ends on a tool call has no final answer and
scores zero accuracy.

Every fact is returned on its own, never folded into the scalar, because group-level
reward shaping (AGAR) and the logged metrics need them separately: ``acc``, ``format_ok``,
``used_tool``, ``num_tool_calls``, plus how the verdict was reached (``rule_decided``,
``rule_acc``, ``judge_used``, ``judge_fallback``) so that a group can later be re-settled
with rules alone when part of it fell back (see ``shaping.settle_group``).

``settings.profile`` (``core.profiles``) names the release's choices where they differ:
under ``paper``, rows whose data source names one of the release's math sources
("thinklite", "eureka", "math") are math, a math answer math-verify rejects is still put to
the judge (the release's generative verifier), and the judge samples at temperature 0.3.

Tool use is the count the rollout itself kept, read from ``extra_info``: the zoom tool's
own counter (``tool_calls_key``), else the agent loop's ``tool_rewards`` list (one entry per
dispatched call). Only when neither is present are ``<tool_call>`` attempts in the assistant
text counted, and ``tool_count_parsed`` says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from cof_plugins.core.answers import KINDS, rule_match
from cof_plugins.core.families import FAMILIES
from cof_plugins.core.parser import parse_turn
from cof_plugins.core.profiles import get_profile
from cof_plugins.core.protocol import load_protocol
from cof_plugins.core.scoring import cof_score, final_answer, format_ok
from cof_plugins.rewards.segments import (
    split_by_suffix,
    split_response,
    tool_turns_from_num_turns,
)

JUDGE_MODES = ("auto", "on", "off")
_LETTER_GT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class RewardSettings:
    """Reward knobs; in verl they arrive as ``reward.custom_reward_function.reward_kwargs``."""

    acc_weight: float = 0.9
    format_weight: float = 0.1
    protocol: str = "unified"
    # auto: ask the judge when COF_JUDGE_URL is set; on: require it; off: rules only.
    judge: str = "auto"
    max_answer_words: int = 1000
    # extra_info key under which the zoom tool stores its call count.
    tool_calls_key: str = "cof_zoom_calls"
    # core.profiles name: "paper" routes math and samples the judge as the release did.
    profile: str = "default"

    def __post_init__(self) -> None:
        cof_score(True, True, acc_weight=self.acc_weight, format_weight=self.format_weight)
        try:
            get_profile(self.profile)
        except KeyError as exc:
            raise ValueError(f"CoF reward setting profile: {exc}") from None
        if self.judge not in JUDGE_MODES:
            raise ValueError(f"judge={self.judge!r} is not a mode; use one of {JUDGE_MODES}")
        if not (isinstance(self.max_answer_words, int) and self.max_answer_words > 0):
            raise ValueError(
                f"max_answer_words must be a positive int, got {self.max_answer_words!r}"
            )

    @classmethod
    def from_kwargs(cls, values: Mapping[str, Any]) -> RewardSettings:
        """Build from reward kwargs; an unknown key is an error naming the valid ones."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(
                f"unknown CoF reward setting(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
            )
        return cls(**dict(values))


@dataclass(frozen=True)
class Question:
    """What an answer is checked against."""

    ground_truth: str
    kind: str
    options: list[str] | None = None
    text: str = ""


def question_from(
    data_source: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any],
    math_sources: Sequence[str] | None = None,
) -> Question:
    """Read kind/options/question from ``extra_info``; infer the kind when it is missing.

    Keys read: ``answer_kind`` (or ``kind``), ``options``, ``question``. Without a kind, a
    row with options or a one-letter ground truth is multiple choice, a ``math`` data source
    is math, anything else is open. ``math_sources`` (the paper profile's) routes by data
    source alone, before the row's own kind, as the release did.
    """
    gt = str(ground_truth).strip()
    options = extra_info.get("options")
    options = [str(o) for o in options] if _is_sequence(options) and len(options) else None
    kind = str(extra_info.get("answer_kind") or extra_info.get("kind") or "")
    source = str(data_source).lower()
    if math_sources is not None and any(s in source for s in math_sources):
        kind = "math"
    if kind not in KINDS:
        if options or gt.upper() in _LETTER_GT:
            kind = "multiple_choice"
        else:
            kind = "math" if "math" in str(data_source).lower() else "open"
    return Question(gt, kind, options, str(extra_info.get("question") or ""))


def _is_sequence(value: Any) -> bool:
    return (isinstance(value, Sequence) and not isinstance(value, str)) or hasattr(value, "tolist")


@dataclass(frozen=True)
class Inspected:
    """What the text and the rollout's own counters say, before any answer checking."""

    answer: str | None
    format_ok: bool
    num_tool_calls: int
    tool_count_parsed: bool
    split_consistent: bool


def inspect_response(
    solution_str: str, extra_info: Mapping[str, Any], settings: RewardSettings
) -> Inspected:
    """Split the response into assistant turns and read answer, format and tool use."""
    split_turns = split_response
    family = row_family(extra_info)
    if family in FAMILIES and not FAMILIES[family].chat.roles_in_decoded_text:
        split_turns = split_by_suffix
    split = split_turns(
        solution_str,
        user_suffix=load_protocol(settings.protocol).user_suffix,
        expected_tool_turns=tool_turns_from_num_turns(extra_info.get("num_turns")),
    )
    counted = tool_call_count(extra_info, settings.tool_calls_key)
    parsed = counted is None
    if parsed:
        counted = sum(len(t.tool_calls) + len(t.errors) for t in map(parse_turn, split.assistant))
    return Inspected(
        answer=final_answer(split.assistant),
        format_ok=format_ok(split.assistant, max_answer_words=settings.max_answer_words),
        num_tool_calls=int(counted),
        tool_count_parsed=parsed,
        split_consistent=split.consistent,
    )


def row_family(extra_info: Mapping[str, Any]) -> str | None:
    """The model family a row was built for (``cof data to-parquet`` writes it for the tool)."""
    tools = extra_info.get("tools_kwargs")
    if not isinstance(tools, Mapping):
        return None
    for kwargs in tools.values():
        create = kwargs.get("create_kwargs") if isinstance(kwargs, Mapping) else None
        family = create.get("family") if isinstance(create, Mapping) else None
        if isinstance(family, str):
            return family
    return None


def tool_call_count(extra_info: Mapping[str, Any], key: str) -> int | None:
    """The rollout's own tool-call count: the tool's counter, else len(tool_rewards)."""
    value = extra_info.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return int(value)
    rewards = extra_info.get("tool_rewards")
    if rewards is not None and _is_sequence(rewards):
        return len(rewards)
    return None


@dataclass(frozen=True)
class RolloutReport:
    """One scored rollout; ``as_reward_dict`` is what verl stores as reward_extra_info."""

    score: float
    acc: bool
    format_ok: bool
    used_tool: bool
    num_tool_calls: int
    tool_count_parsed: bool
    rule_decided: bool
    rule_acc: bool
    judge_used: bool
    judge_fallback: bool
    split_consistent: bool

    def as_reward_dict(self) -> dict[str, float]:
        """Every value a float, so verl can stack them and log means."""
        return {key: float(value) for key, value in asdict(self).items()}


def report(
    inspected: Inspected,
    rule: bool | None,
    settings: RewardSettings,
    *,
    judged: bool | None = None,
    judge_used: bool = False,
    judge_fallback: bool = False,
) -> RolloutReport:
    """Combine the facts into the score; an undecided verdict counts as wrong."""
    correct = bool(judged) if judge_used else bool(rule)
    return RolloutReport(
        score=cof_score(
            correct,
            inspected.format_ok,
            acc_weight=settings.acc_weight,
            format_weight=settings.format_weight,
        ),
        acc=correct,
        format_ok=inspected.format_ok,
        used_tool=inspected.num_tool_calls > 0,
        num_tool_calls=inspected.num_tool_calls,
        tool_count_parsed=inspected.tool_count_parsed,
        rule_decided=rule is not None,
        rule_acc=bool(rule),
        judge_used=judge_used,
        judge_fallback=judge_fallback,
        split_consistent=inspected.split_consistent,
    )


def rule_verdict(answer: str | None, question: Question) -> bool | None:
    """Rules on the final answer; no answer at all is wrong (False), not undecided."""
    return rule_match(answer, question.ground_truth, kind=question.kind, options=question.options)


def score_with_rules(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    settings: RewardSettings | None = None,
) -> RolloutReport:
    """Score without a judge: an undecided rule verdict counts as wrong."""
    settings = settings or RewardSettings()
    extra_info = extra_info or {}
    inspected = inspect_response(solution_str, extra_info, settings)
    question = _question(data_source, ground_truth, extra_info, settings)
    return report(inspected, rule_verdict(inspected.answer, question), settings)


def _question(data_source: str, ground_truth: Any, extra_info: Mapping[str, Any], settings):
    sources = get_profile(settings.profile).rl_math_sources
    return question_from(data_source, ground_truth, extra_info, sources)


def _needs_judge(rule: bool | None, question: Question, settings: RewardSettings) -> bool:
    """Rules undecided; or (paper) a math answer math-verify did not accept."""
    if rule is None:
        return True
    paper_math = get_profile(settings.profile).rl_math_judge_on_mismatch
    return paper_math and question.kind == "math" and rule is False


async def score_rollout(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    settings: RewardSettings | None = None,
    judge: Any = None,
) -> RolloutReport:
    """Rules first; ``judge`` (a ``JudgeClient``) only for answers the rules leave undecided.

    A verdict that fell back is resolved by the client's policy (the rule result under
    'rules', wrong under 'zero') and flagged ``judge_fallback``, so the group it belongs to
    can be re-settled with rules later.
    """
    settings = settings or RewardSettings()
    extra_info = extra_info or {}
    inspected = inspect_response(solution_str, extra_info, settings)
    question = _question(data_source, ground_truth, extra_info, settings)
    rule = rule_verdict(inspected.answer, question)
    if not _needs_judge(rule, question, settings) or judge is None or inspected.answer is None:
        return report(inspected, rule, settings)
    temperature = get_profile(settings.profile).rl_judge_temperature
    options = {} if temperature is None else {"temperature": temperature}
    verdict = await judge.judge(question.text, inspected.answer, question.ground_truth, **options)
    return report(
        inspected,
        rule,
        settings,
        judged=verdict.resolve(rule),
        judge_used=True,
        judge_fallback=verdict.is_fallback,
    )


def judge_for(settings: RewardSettings) -> Any:
    """The process-wide judge client for ``settings.judge``, or None for rules only.

    'auto' uses the judge when COF_JUDGE_URL is set; 'on' fails fast, naming the variable,
    when it is not.
    """
    if settings.judge == "off":
        return None
    from cof_plugins.judge import JudgeConfig, shared_client

    if settings.judge == "auto" and not JudgeConfig.from_env().url:
        return None
    client = shared_client()
    client.config.require_endpoint()
    return client
