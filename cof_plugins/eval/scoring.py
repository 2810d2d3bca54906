"""Score finished trajectories (rules first, the shared judge only when rules cannot tell)
and aggregate per-sample results into the metrics a report shows.

Accuracy is the micro average over scored samples, overall, per category and per
resolution. A sample is unscored (``correct`` None) only when the judge's fallback policy is
``skip``; an answer no rule can decide and no judge is configured for counts as wrong and is
marked ``decided_by: "undecided"``, so the number of such cases is visible in the report.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
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
        "category": sample.category, "kind": sample.kind, "group": sample.group,
        "question": sample.question, "options": list(sample.options) if sample.options else None,
        "answer": sample.answer, "image": sample.image.to_dict(),
        "input_size": list(traj.input_size), "source_size": list(traj.source_size),
        "frame": list(traj.frame),
        "turns": len(traj.turns), "zoom_calls": sum(1 for c in calls if c.get("kind") == "crop"),
        "tool_attempts": len(calls), "invalid_calls": sum(1 for c in calls if not c.get("ok")),
        "images": 1 + sum(1 for c in calls if c.get("crop_size")) if traj.frame[0] else 0,
        "gen_tokens": None if any(t is None for t in tokens) else sum(tokens),
        "gen_s": round(traj.gen_s, 4), "latency_s": round(traj.latency_s, 4),
        "stop": traj.stop, "error": traj.error, "trajectory": traj.turns,
    }  # fmt: skip


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


# ---------------------------------------------------------------- aggregation

_MEANS = (
    "zoom_calls",
    "tool_attempts",
    "invalid_calls",
    "turns",
    "images",
    "gen_tokens",
    "latency_s",
)


def resolution_label(resolution: int | None) -> str:
    return "native" if resolution is None else str(resolution)


def stats(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy (percent, micro), means per sample, and how verdicts were reached."""
    scored = [r for r in records if r.get("correct") is not None]
    right = sum(1 for r in scored if r["correct"])
    out: dict[str, Any] = {
        "n": len(records),
        "scored": len(scored),
        "correct": right,
        "accuracy": round(100.0 * right / len(scored), 2) if scored else None,
        "zoom_rate": _share(records, lambda r: r.get("zoom_calls", 0) > 0),
        "format_ok": _share(records, lambda r: bool(r.get("format_ok"))),
        "errors": sum(1 for r in records if r.get("error")),
        "decided_by": dict(Counter(r.get("decided_by", "none") for r in records)),
    }
    for name in _MEANS:
        values = [r[name] for r in records if isinstance(r.get(name), int | float)]
        out[name] = round(statistics.fmean(values), 3) if values else None
    out["consistent_accuracy"] = _consistency(records)
    return out


def _share(records: Sequence[dict], test) -> float | None:
    return round(100.0 * sum(1 for r in records if test(r)) / len(records), 2) if records else None


def _consistency(records: Iterable[dict]) -> float | None:
    """Percent of question groups (e.g. HR-Bench's cycled options) right in every row."""
    groups: dict[tuple, list[bool]] = defaultdict(list)
    for r in records:
        if r.get("group") and r.get("correct") is not None:
            groups[(r["group"], r.get("resolution"))].append(bool(r["correct"]))
    multi = [v for v in groups.values() if len(v) > 1]
    return round(100.0 * sum(all(v) for v in multi) / len(multi), 2) if multi else None


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Overall, per-category and per-resolution statistics of one run."""
    by_res: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_res[resolution_label(r.get("resolution"))].append(r)
    ordered = sorted(by_res, key=lambda k: (k != "native", int(k) if k.isdigit() else 0))
    return {
        "overall": stats(records),
        "by_category": _by_category(records),
        "by_resolution": {
            k: {"overall": stats(by_res[k]), "by_category": _by_category(by_res[k])}
            for k in ordered
        },
    }


def _by_category(records: Sequence[dict]) -> dict[str, dict]:
    cats: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        cats[str(r.get("category", "all"))].append(r)
    return {c: stats(cats[c]) for c in sorted(cats)}
