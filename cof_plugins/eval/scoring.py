"""Score finished trajectories: rules first, the shared judge only when rules cannot tell.

A sample is unscored (``correct`` None) only when the judge's fallback policy is ``skip``;
an answer no rule can decide and no judge is configured for counts as wrong and is marked
``decided_by: "undecided"``, so the number of such cases is visible in the report.
``eval.summary`` aggregates the records.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from cof_plugins.core.answers import rule_match
from cof_plugins.core.profiles import get_profile
from cof_plugins.core.scoring import final_answer, format_ok
from cof_plugins.eval.loop import Trajectory

log = logging.getLogger(__name__)


def make_judge(enabled: bool = True):
    """The shared judge client when enabled and ``COF_JUDGE_URL`` is set, else None."""
    if not enabled:
        return None
    from cof_plugins.judge import JudgeClient, JudgeConfig

    config = JudgeConfig.from_env()
    if not config.url:
        log.info("COF_JUDGE_URL is not set: answers no rule can decide count as wrong")
        return None
    config.require_endpoint()
    return JudgeClient(config)


def to_record(traj: Trajectory) -> dict[str, Any]:
    """The JSON-serialisable result of one trajectory, before scoring."""
    sample = traj.sample
    calls = [c for t in traj.turns for c in t["calls"]]
    tokens = [t["tokens"] for t in traj.turns]
    return {
        "key": traj.key, "id": sample.id, "index": sample.index, "resolution": traj.resolution,
        "draw": traj.draw, "order": traj.order,
        "permutation": list(traj.permutation) if traj.order else None, "seed": traj.seed,
        "category": sample.category, "kind": sample.kind, "group": sample.group,
        "question": sample.question, "options": list(sample.options) if sample.options else None,
        "answer": sample.answer, "image": sample.image.to_dict(),
        "input_size": list(traj.input_size), "source_size": list(traj.source_size),
        "frame": list(traj.frame),
        "turns": len(traj.turns), "zoom_calls": sum(1 for c in calls if c.get("kind") == "crop"),
        "tool_attempts": len(calls), "invalid_calls": sum(1 for c in calls if not c.get("ok")),
        "images": 1 + sum(1 for c in calls if c.get("crop_size")) if traj.frame[0] else 0,
        "gen_tokens": None if any(t is None for t in tokens) else sum(tokens),
        **context_tokens(traj.turns),
        "gen_s": round(traj.gen_s, 4), "latency_s": round(traj.latency_s, 4),
        "stop": traj.stop, "error": traj.error, "trajectory": traj.turns,
    }  # fmt: skip


def context_tokens(turns: Sequence[dict[str, Any]]) -> dict[str, int | None]:
    """Tokens of the final conversation, as the paper counts a sample's cost.

    ``image_tokens``: every image the model read (frame and crops, once each), by the
    family's processor arithmetic (``core.frame.image_tokens``); ``prompt_tokens``: the last
    turn's prompt as the engine reported it (all earlier turns, text and images);
    ``tokens``: that prompt plus the last turn's generation, the conversation's full length.
    """
    if not turns:
        return {"image_tokens": None, "prompt_tokens": None, "tokens": None}
    last = turns[-1]
    prompt, gen = last.get("prompt_tokens"), last.get("tokens")
    total = prompt + gen if prompt is not None and gen is not None else None
    return {"image_tokens": last.get("image_tokens"), "prompt_tokens": prompt, "tokens": total}


def score(
    trajs: Sequence[Trajectory], judge=None, profile: str = "default"
) -> list[dict[str, Any]]:
    """Records with ``pred``, ``correct``, ``decided_by`` and ``format_ok`` filled in.

    ``profile`` decides which ``<answer>`` counts and what the judge sees as the reference
    (``core.profiles``: the release scores the first answer against the option letter).
    """
    prof = get_profile(profile)
    records = [to_record(t) for t in trajs]
    undecided = []
    for record, traj in zip(records, trajs, strict=True):
        texts = traj.assistant_texts
        record["pred"] = final_answer(texts, first=prof.eval_answer == "first")
        record["format_ok"] = format_ok(texts)
        verdict = rule_match(
            record["pred"], traj.sample.answer, kind=traj.sample.kind, options=traj.sample.options
        )
        record["correct"], record["decided_by"] = verdict, "rules"
        if verdict is None:
            undecided.append((record, traj))
    if undecided:
        _judge(undecided, judge, letter_only=prof.eval_judge_reference == "letter")
    return records


def _judge(items: list[tuple[dict, Trajectory]], judge, *, letter_only: bool = False) -> None:
    if judge is None:
        for record, _ in items:
            record["correct"], record["decided_by"] = False, "undecided"
        return
    queries = [(_judge_question(t), r["pred"] or "", _reference(t, letter_only)) for r, t in items]
    verdicts = judge.judge_many_sync(queries)
    for (record, _), verdict in zip(items, verdicts, strict=True):
        correct = verdict.resolve(None)
        if correct is None and verdict.policy != "skip":
            correct = False
        record["correct"], record["decided_by"] = correct, verdict.source
        if verdict.error:
            record["judge_error"] = verdict.error


def _reference(traj: Trajectory, letter_only: bool) -> str:
    """The judge's reference: "B) red", or "B" alone as the release's evaluation sends it."""
    sample = traj.sample
    return sample.answer if letter_only and sample.options else sample.answer_text


def _judge_question(traj: Trajectory) -> str:
    sample = traj.sample
    if not sample.options:
        return sample.question
    lines = [f"({chr(65 + i)}) {opt}" for i, opt in enumerate(sample.options)]
    return "\n".join([sample.question, *lines])
