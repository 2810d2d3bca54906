"""Benchmark the CoF reward: rollouts scored per second by rules and through the judge path.

    python bench/reward.py [--rollouts 2000] [--judge-rollouts 400] [--latency-ms 20]

Three figures:

- rules only: multi-turn responses (direct answers and zoomed ones, verl's decoded layout
  with the instruction inside tool turns) scored by ``score_with_rules``;
- judge path: open answers the rules cannot settle, scored by ``score_rollout`` against a
  real loopback HTTP server (``cof_plugins.testbed.openai_server``, the one the tests use)
  that answers like an OpenAI-compatible judge ("Judgement: 0/1") after ``--latency-ms``;
  all rollouts of a batch run concurrently, as in verl's reward worker, limited by the
  client's own concurrency setting;
- the share of multiple-choice answers the rules settle without a judge call, over the
  phrasing corpus ``cof_plugins/testbed/mc_phrasings.jsonl`` (answers worded the way models
  answer V*, HR-Bench and MME-RealWorld, each with the verdict a careful grader gives), and
  how many of those verdicts are wrong. Ambiguous entries must stay undecided: a verdict on
  one counts as wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

try:
    from cof_plugins.rewards import score_rollout, score_with_rules
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cof_plugins.rewards import score_rollout, score_with_rules

from cof_plugins.core.protocol import load_protocol
from cof_plugins.judge import JudgeClient, JudgeConfig
from cof_plugins.testbed.openai_server import FakeOpenAIServer, Reply, slow, truthful_judge
from cof_plugins.testbed.phrasings import load_phrasings, rules_coverage

SUFFIX = load_protocol().user_suffix
CALL = (
    '<think>The sign is too small.</think> <tool_call>\n{"name": "image_zoom_in_tool", '
    '"arguments": {"bbox_2d": [120, 80, 260, 190]}}\n</tool_call>'
)
PHRASINGS = load_phrasings()


def answer_turn(text: str) -> str:
    return f"<think>Looking at the crop, the sign is clear.</think> <answer>{text}</answer>"


def response(text: str, zooms: int) -> str:
    """A decoded response as verl hands it to the reward (tool turns inline)."""
    tool = f"\nuser\n{SUFFIX}\nassistant\n"
    return "".join(CALL + tool for _ in range(zooms)) + answer_turn(text)


def extra(zooms: int, **more: object) -> dict:
    return {"num_turns": 2 + 2 * zooms, "tool_rewards": [0.0] * zooms, **more}


def bench_rules(n: int) -> float:
    """Rollouts/s scored by rules; answers cycle through the phrasing corpus."""
    items = []
    for i in range(n):
        p = PHRASINGS[i % len(PHRASINGS)]
        info = {"options": list(p.options), "question": p.question}
        items.append((response(p.answer, i % 3), p.gold, extra(i % 3, **info)))
    start = time.perf_counter()
    for text, gold, info in items:
        score_with_rules("vstar", text, gold, info)
    return n / (time.perf_counter() - start)


async def _judge_batch(client: JudgeClient, n: int) -> None:
    info = {"answer_kind": "open", "question": "What is on the table?"}
    texts = [response(f"a cup next to plate {i}", i % 2) for i in range(n)]
    results = await asyncio.gather(
        *(
            score_rollout("v", t, "cup", extra(i % 2, **info), judge=client)
            for i, t in enumerate(texts)
        )
    )
    if not all(r.judge_used and not r.judge_fallback for r in results):
        raise RuntimeError("judge bench: some rollouts did not get a real verdict")
    await client.aclose()


def bench_judge(n: int, latency_ms: float, concurrency: int) -> float:
    def judge(body: dict) -> Reply:
        return slow(latency_ms / 1000, truthful_judge(body))

    with FakeOpenAIServer(judge, models=("bench-judge",)) as server:
        config = JudgeConfig(
            url=server.url, model="bench-judge", concurrency=concurrency, max_retries=0
        )
        start = time.perf_counter()
        asyncio.run(_judge_batch(JudgeClient(config), n))
        return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=2000, help="rules-only rollouts")
    parser.add_argument("--judge-rollouts", type=int, default=400, help="judge-path rollouts")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="judge reply latency")
    parser.add_argument("--concurrency", type=int, default=16, help="judge client concurrency")
    args = parser.parse_args(argv)
    if min(args.rollouts, args.judge_rollouts, args.concurrency) <= 0 or args.latency_ms < 0:
        parser.error("--rollouts, --judge-rollouts and --concurrency must be > 0, latency >= 0")
    print(f"rules only     : {bench_rules(args.rollouts):9.0f} rollouts/s")
    rate = bench_judge(args.judge_rollouts, args.latency_ms, args.concurrency)
    print(
        f"judge path     : {rate:9.0f} rollouts/s "
        f"(loopback judge, {args.latency_ms:g} ms/reply, concurrency {args.concurrency})"
    )
    cover = rules_coverage(PHRASINGS)
    print(
        f"MC phrasings   : {cover.share:9.1%} of {cover.settleable} settle-able answers settled "
        f"by rules, {len(cover.wrong)} wrong verdicts ({cover.entries} entries, "
        f"{cover.entries - cover.settleable} ambiguous ones left to the judge)"
    )
    for p, got in cover.wrong:
        print(f"  wrong: {p.id} {p.answer!r} -> {got} (should be {p.verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
