"""GRPO-SIF's four rewards against hand-computed values, the progress store, the verl entry."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from cof_plugins.core.depth import BoxMeans, encode
from cof_plugins.core.sif import format_area, format_reply, parse_sif
from cof_plugins.rewards.answer_judge import RuleJudge
from cof_plugins.rewards.progress import (
    MemoryProgress,
    SqliteProgress,
    progress_reward,
    round_of,
)
from cof_plugins.rewards.sif import (
    SifSettings,
    SifTruth,
    answer_reward,
    depth_reward,
    format_reward,
    iou_reward,
    score_sif,
)

FULL = (0.0, 0.0, 1.0, 1.0)
G1, G2 = (0.0, 0.0, 0.4, 1.0), (0.4, 0.0, 1.0, 1.0)
P1, P2 = (0.0, 0.0, 0.7, 1.0), (0.0, 0.0, 0.2, 1.0)
# A 2 x 2 depth map: d = 51/255, 102/255, 153/255, 204/255 = 0.2, 0.4, 0.6, 0.8 exactly.
DEPTH = np.array([[0.2, 0.4], [0.6, 0.8]])


def reply(*areas, answer="red") -> str:
    """A well-formed reply; each area is a list of (box, depth)."""
    return format_reply([(format_area(a), "look") for a in areas], answer)


def test_format_reward():
    assert format_reward(parse_sif(reply([(FULL, 0.5)]))) == 1.0
    assert format_reward(parse_sif(reply([((0.5, 0, 0.4, 1), 0.5)]))) == 0.0  # x2 < x1
    assert format_reward(parse_sif("<answer>red</answer>")) == 0.0


def test_iou_reward_by_hand():
    # Areas: full image (skipped as "first"), then [P1, P2] (first non-full area), then
    # [G1, G2] (last). IoU*(last) = 1; IoU*(first) = (0.7 + 0.4) / 2 = 0.55 (see the
    # geometry tests). Reward = 1 + max(0, 1 - 0.55) = 1.45.
    text = reply([(FULL, 0.5)], [(P1, 0.5), (P2, 0.5)], [(G1, 0.5), (G2, 0.5)])
    assert iou_reward(parse_sif(text), [G1, G2]) == pytest.approx(1.45)
    # Getting worse earns no bonus: last = 0.55, first non-full = 1 -> 0.55 + 0.
    text = reply([(FULL, 0.5)], [(G1, 0.5), (G2, 0.5)], [(P1, 0.5), (P2, 0.5)])
    assert iou_reward(parse_sif(text), [G1, G2]) == pytest.approx(0.55)
    # Only the full image: first = last = full. IoU*(full, [G1]) = (0.4 + 0.4) / 2 = 0.4.
    assert iou_reward(parse_sif(reply([(FULL, 0.5)])), [G1]) == pytest.approx(0.4)
    # An area without a valid box is skipped: the last usable area is [G1, G2].
    text = reply([(G1, 0.5), (G2, 0.5)], [((0.9, 0, 0.1, 1), 0.5)])
    assert iou_reward(parse_sif(text), [G1, G2]) == pytest.approx(1.0)
    assert iou_reward(parse_sif("no areas"), [G1]) == 0.0


def test_depth_reward_by_hand():
    means = BoxMeans(DEPTH)
    # full image: mean 0.5; top-left cell 0.2; bottom-right cell 0.8.
    # (full, 0.54): |0.5 - 0.54| = 0.04 <= 0.1 * 0.5 = 0.05 -> hit
    # (top-left, 0.21): 0.01 <= 0.02 -> hit
    # (bottom-right, 0.9): 0.1 > 0.08 -> miss (a 0.2 tolerance would allow 0.16)
    # (full, 0.56): 0.06 > 0.05 -> miss (a 0.2 tolerance would allow 0.1)
    text = reply(
        [(FULL, 0.54)],
        [((0, 0, 0.5, 0.5), 0.21), ((0.5, 0.5, 1, 1), 0.9)],
        [(FULL, 0.56)],
    )
    assert depth_reward(parse_sif(text), means) == pytest.approx(2 / 4)
    # An invalid entry counts as a miss: 1 hit of 2 entries.
    text = reply([(FULL, 0.5), ((0.6, 0, 0.5, 1), 0.5)])
    assert depth_reward(parse_sif(text), means) == pytest.approx(1 / 2)


def test_progress_reward_by_hand():
    assert progress_reward(1.0, 0.5) == 1.5  # 2 * 1 - 0.5
    assert progress_reward(0.5, 0.5) == 0.5  # s >= s_prev: 2 * 0.5 - 0.5, no gain
    assert progress_reward(0.5, 1.0) == 0.5  # s < s_prev: plain s, never 2 * 0.5 - 1 = 0
    assert progress_reward(0.7, None) == 0.7  # first visit


@pytest.mark.parametrize("make", [MemoryProgress, "sqlite"])
def test_store_baseline_is_the_latest_earlier_round(make, tmp_path):
    store = SqliteProgress(tmp_path) if make == "sqlite" else make()
    store.record("q", 3, 1.0)
    store.record("q", 3, 0.0)
    assert store.baseline("q", 3) is None  # siblings of one round never see each other
    assert store.baseline("q", 4) == 0.5  # mean of round 3: (1 + 0) / 2
    store.record("q", 5, 1.0)
    assert store.baseline("q", 5) == 0.5 and store.baseline("q", 6) == 1.0
    assert store.baseline("other", 9) is None


def test_sqlite_store_is_shared_between_processes_opening_it(tmp_path):
    SqliteProgress(tmp_path).record("q", 1, 0.25)
    assert SqliteProgress(tmp_path).baseline("q", 2) == 0.25
    with pytest.raises(ValueError, match="progress_dir"):
        SqliteProgress(tmp_path / "sif_progress.sqlite" / "x")  # a file where a dir should be


def test_round_comes_from_global_steps():
    assert round_of({"global_steps": 7}) == 7
    assert round_of({}) == -1 and round_of({"global_steps": "x"}) == -1


def test_answer_reward_order_within_a_round_does_not_matter():
    truth = SifTruth("red", [G1], None, "What colour?", key="k")
    right, wrong = parse_sif(reply([(FULL, 0.5)])), parse_sif(reply([(FULL, 0.5)], answer="blue"))

    def group(order, store, round_):
        return [
            asyncio.run(answer_reward(p, truth, RuleJudge(), store, round_)).reward for p in order
        ]

    a, b = MemoryProgress(), MemoryProgress()
    assert group([right, wrong], a, 1) == [1.0, 0.0]
    assert group([wrong, right], b, 1) == [0.0, 1.0]
    # Next round: baseline 0.5 -> right earns 2 * 1 - 0.5 = 1.5, wrong stays 0 (0 < 0.5).
    assert group([right, wrong], a, 2) == [1.5, 0.0]
    # Round 3: the baseline is round 2's mean JUDGE score (1 + 0) / 2 = 0.5, so right earns
    # 1.5 again; had the rewards been stored, it would be (1.5 + 0) / 2 = 0.75 -> 1.25.
    assert group([right], a, 3) == [1.5]


def test_settings_reject_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="valid: judge"):
        SifSettings.from_kwargs({"depth_tol": 0.1})
    with pytest.raises(ValueError, match="depth_tolerance"):
        SifSettings(depth_tolerance=1.5)
    with pytest.raises(ValueError, match="cof data sif"):
        SifTruth.from_row("red", {})


def _row(sif_data, index=0):
    import pyarrow.parquet as pq

    row = pq.read_table(sif_data / "rl.parquet").to_pylist()[index]
    sft = json.loads((sif_data / "train.json").read_text())[index]
    return row, sft["messages"][-1]["content"]


def test_gold_reply_scores_by_hand(sif_data):
    row, gold = _row(sif_data)
    truth = SifTruth.from_row(row["reward_model"]["ground_truth"], row["extra_info"])
    result = asyncio.run(score_sif(gold, truth, SifSettings(judge="off"), RuleJudge(), None, 0))
    parsed = parse_sif(gold)
    assert result["format"] == 1.0 and result["answer"] == 1.0 and result["depth"] == 1.0
    # The chain ends on the targets (IoU* 1); its first non-full area is a distractor
    # (IoU* 0) or the wider area: reward = 1 + (1 - IoU*(first)).
    assert result["iou"] == pytest.approx(iou_reward(parsed, truth.boxes)) and result["iou"] > 1
    assert result["score"] == pytest.approx(
        sum(result[k] for k in ("format", "answer", "iou", "depth"))
    )


def test_verl_entry_dispatches_on_method(sif_data, tmp_path):
    from cof_plugins.verl.reward import compute_score

    row, gold = _row(sif_data, 1)
    kwargs = {"method": "sifthinker", "judge": "off", "progress_dir": str(tmp_path)}
    info = {**row["extra_info"], "global_steps": 1}
    first = asyncio.run(compute_score("sifthinker", gold, row["reward_model"]["ground_truth"],
                                      info, **kwargs))  # fmt: skip
    assert first["answer"] == 1.0 and first["has_baseline"] == 0.0
    # Round 2 of the same key: baseline 1.0, s = 1 >= 1 -> 2 * 1 - 1 = 1, bonus 0.
    info["global_steps"] = 2
    again = asyncio.run(compute_score("sifthinker", gold, row["reward_model"]["ground_truth"],
                                      info, **kwargs))  # fmt: skip
    assert again["has_baseline"] == 1.0 and again["answer"] == 1.0
    assert (tmp_path / "sif_progress.sqlite").is_file()
    with pytest.raises(ValueError, match="valid: judge"):
        asyncio.run(compute_score("s", gold, "red", info, method="sifthinker", bogus=1))


def test_depth_map_is_read_from_the_row(tmp_path):
    path = tmp_path / "d.png"
    encode(DEPTH, "gray").save(path)
    from cof_plugins.rewards.sif import depth_means

    assert depth_means(str(path)).mean(FULL) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="not found"):
        depth_means(str(tmp_path / "none.png"))


def test_client_judge_decides_what_rules_cannot():
    from cof_plugins.judge import JudgeClient, JudgeConfig
    from cof_plugins.rewards.answer_judge import ClientJudge
    from cof_plugins.testbed.openai_server import FakeOpenAIServer, error, verdict

    with FakeOpenAIServer(models=("judge",)) as server:
        config = JudgeConfig(url=server.url, model="judge", max_retries=0, timeout_s=2.0)
        judge = ClientJudge(JudgeClient(config))
        server.script = [verdict(1)]
        # "red" vs "red": rules decide, no request is made.
        assert asyncio.run(judge.score("Q?", "red", "red")).source == "rules"
        # "the red one" vs "red": rules cannot tell; the judge says right.
        judged = asyncio.run(judge.score("Q?", "the red one", "red"))
        assert (judged.score, judged.source) == (1.0, "judge") and len(server.chat_requests) == 1
        # The judge fails: the fallback policy ('rules': undecided counts as wrong) decides.
        server.script = [error(500)]
        judged = asyncio.run(judge.score("Q?", "the blue one", "red"))
        assert (judged.score, judged.source) == (0.0, "fallback")
