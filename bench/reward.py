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
- the share of V*-style multiple-choice answers, in varied phrasings, that the rules
  settle without a judge call (and how many of those they get right).
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

SUFFIX = load_protocol().user_suffix
OPTIONS = ["red", "blue", "green", "yellow"]
CALL = (
    '<think>The sign is too small.</think> <tool_call>\n{"name": "image_zoom_in_tool", '
    '"arguments": {"bbox_2d": [120, 80, 260, 190]}}\n</tool_call>'
)
# V*-style replies for ground truth B ("blue"); (reply, picks B?)
PHRASINGS = [
    ("B", True), ("(B)", True), ("B.", True), ("b", True), ("**B**", True), ("\\boxed{B}", True),
    ("The answer is B", True), ("The answer is (B).", True), ("Answer: B", True),
    ("Option B", True), ("blue", True), ("Blue.", True), ("(B) blue", True), ("B. blue", True),
    ("The sign is blue.", True), ("It is (B) blue", True), ("I think B", True),
    ("A", False), ("(C)", False), ("red", False), ("The answer is D", False), ("A. red", False),
    ("B or C", False), ("(B) red", False),
]  # fmt: skip


def answer_turn(text: str) -> str:
    return f"<think>Looking at the crop, the sign is clear.</think> <answer>{text}</answer>"


def response(text: str, zooms: int) -> str:
    """A decoded response as verl hands it to the reward (tool turns inline)."""
    tool = f"\nuser\n{SUFFIX}\nassistant\n"
    return "".join(CALL + tool for _ in range(zooms)) + answer_turn(text)


def extra(zooms: int, **more: object) -> dict:
    return {"num_turns": 2 + 2 * zooms, "tool_rewards": [0.0] * zooms, **more}


def bench_rules(n: int) -> float:
    items = [(response(PHRASINGS[i % len(PHRASINGS)][0], i % 3), i % 3) for i in range(n)]
    info = {"options": OPTIONS, "question": "What colour is the sign?"}
    start = time.perf_counter()
    for text, zooms in items:
        score_with_rules("vstar", text, "B", extra(zooms, **info))
    return n / (time.perf_counter() - start)


def share_settled() -> tuple[float, float]:
    """(share settled by rules, share of those settled correctly) over PHRASINGS."""
    settled = right = 0
    for text, picks_b in PHRASINGS:
        result = score_with_rules("vstar", response(text, 1), "B", extra(1, options=OPTIONS))
        settled += result.rule_decided
        right += result.rule_decided and result.acc == picks_b
    return settled / len(PHRASINGS), right / max(settled, 1)


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
    settled, right = share_settled()
    print(
        f"V*-style MC    : {settled:9.1%} of {len(PHRASINGS)} phrasings settled by rules "
        f"({right:.0%} of them correctly); the rest go to the judge"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
