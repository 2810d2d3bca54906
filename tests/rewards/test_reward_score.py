"""The per-rollout CoF reward: rules first, judge for the rest, facts kept apart, verl wiring."""

from __future__ import annotations

import asyncio

import pytest

from cof_plugins.core.profiles import get_profile
from cof_plugins.core.protocol import load_protocol
from cof_plugins.judge import JudgeClient, JudgeConfig, JudgeConfigError
from cof_plugins.rewards import RewardSettings, question_from, score_rollout, score_with_rules
from cof_plugins.testbed.openai_server import (
    FakeOpenAIServer,
    refused_url,
    truthful_judge,
    verdict,
)

SUFFIX = load_protocol().user_suffix
MC = {"options": ["red", "blue", "green"], "question": "What colour is the sign?"}
OPEN = {"answer_kind": "open", "question": "What is on the table?"}
DIRECT = {"num_turns": 2, "tool_rewards": []}
ZOOMED = {"num_turns": 4, "tool_rewards": [0.0]}
CALL = '<think>small</think> <tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 30, 40]}}</tool_call>'  # noqa: E501


def answer(text: str) -> str:
    return f"<think>looked</think> <answer>{text}</answer>"


def zoomed(text: str) -> str:
    return CALL + f"\nuser\n{SUFFIX}\nassistant\n" + answer(text)


@pytest.mark.parametrize(
    ("pred", "correct", "decided"),
    [("B", True, True), ("(B)", True, True), ("B.", True, True), ("The answer is B", True, True),
     ("blue", True, True), ("(B) blue", True, True), ("A", False, True), ("red", False, True),
     ("(B) red", False, False)],  # contradictory: left to the judge, wrong without one
)  # fmt: skip
def test_multiple_choice_phrasings(pred, correct, decided):
    result = score_with_rules("vstar", answer(pred), "B", {**MC, **DIRECT})
    assert result.acc is correct and result.rule_decided is decided
    assert result.score == pytest.approx(0.9 * correct + 0.1)


def test_weights_come_from_settings():
    settings = RewardSettings(acc_weight=0.7, format_weight=0.3)
    assert score_with_rules("v", answer("B"), "B", MC, settings).score == pytest.approx(1.0)
    assert score_with_rules("v", "B", "B", MC, settings).score == pytest.approx(0.0)  # no tags


def test_tool_count_prefers_the_rollouts_own_counter():
    own = score_with_rules("v", zoomed("B"), "B", {**MC, **ZOOMED, "cof_zoom_calls": 3})
    assert own.num_tool_calls == 3 and not own.tool_count_parsed
    loop = score_with_rules("v", zoomed("B"), "B", {**MC, **ZOOMED})
    assert loop.num_tool_calls == 1 and loop.used_tool and not loop.tool_count_parsed
    parsed = score_with_rules("v", zoomed("B"), "B", {**MC, "num_turns": 4})
    assert parsed.num_tool_calls == 1 and parsed.tool_count_parsed


def test_instruction_tags_are_not_parsed_as_calls():
    parsed = score_with_rules("v", zoomed("B"), "B", {**MC, "num_turns": 4})
    assert parsed.num_tool_calls == 1  # the suffix's own "<tool_call>...</tool_call>" is skipped


def test_undecided_without_judge_counts_wrong():
    result = score_with_rules("v", answer("a red cup"), "cup", {**OPEN, **DIRECT})
    assert not result.rule_decided and not result.acc and not result.judge_used


@pytest.fixture
def server():
    with FakeOpenAIServer(truthful_judge, models=("judge-model",)) as srv:
        yield srv


def client(url: str, **overrides) -> JudgeClient:
    fast = dict(model="judge-model", timeout_s=2.0, connect_timeout_s=0.5, backoff_base_s=0.01)
    return JudgeClient(JudgeConfig(url=url, **{**fast, "max_retries": 1, **overrides}))


def test_judge_asked_only_when_rules_are_undecided(server):
    judge = client(server.url)
    decided = asyncio.run(score_rollout("v", answer("B"), "B", {**MC, **DIRECT}, judge=judge))
    assert not decided.judge_used and server.chat_requests == []
    judged = asyncio.run(
        score_rollout("v", answer("a cup on a saucer"), "cup", {**OPEN, **DIRECT}, judge=judge)
    )
    assert judged.judge_used and judged.acc and not judged.judge_fallback
    assert len(server.chat_requests) == 1
    assert "What is on the table?" in str(server.chat_requests[0].body)


def test_judge_outage_falls_back_to_rules_visibly():
    judge = client(refused_url())
    result = asyncio.run(
        score_rollout("v", answer("a red cup"), "cup", {**OPEN, **DIRECT}, judge=judge)
    )
    assert result.judge_used and result.judge_fallback and not result.acc
    assert judge.stats()["judge/fallbacks"] == 1.0


def test_compute_score_uses_judge_from_environment(server, monkeypatch):
    from cof_plugins.judge import client as client_module
    from cof_plugins.verl.reward import compute_score

    monkeypatch.setenv("COF_JUDGE_URL", server.url)
    monkeypatch.setenv("COF_JUDGE_MODEL", "judge-model")
    monkeypatch.setattr(client_module, "_shared", None)
    out = asyncio.run(compute_score("v", answer("a cup on a saucer"), "cup", {**OPEN, **DIRECT}))
    assert out["judge_used"] == 1.0 and out["acc"] == 1.0 and out["score"] == pytest.approx(1.0)
    assert set(out) >= {
        "score",
        "acc",
        "format_ok",
        "used_tool",
        "num_tool_calls",
        "judge_fallback",
    }


def test_compute_score_errors_name_the_fix(monkeypatch):
    from cof_plugins.verl.reward import compute_score

    with pytest.raises(ValueError, match=r"unknown CoF reward setting.*acc_weigth"):
        asyncio.run(compute_score("v", answer("B"), "B", MC, acc_weigth=0.9))
    monkeypatch.delenv("COF_JUDGE_URL", raising=False)
    with pytest.raises(JudgeConfigError, match="COF_JUDGE_URL"):
        asyncio.run(compute_score("v", answer("B"), "B", MC, judge="on"))


def test_verl_reward_loop_runs_compute_score(tiny_model):
    """verl's own loader and naive reward manager call our function and keep every fact."""
    import torch
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl import DataProto
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import get_custom_reward_fn

    path = "pkg://cof_plugins.verl.reward"
    kwargs = {"judge": "off", "acc_weight": 0.8, "format_weight": 0.2}
    fn_cfg = {"path": path, "name": "compute_score", "reward_kwargs": kwargs}
    config = OmegaConf.create({"reward": {"custom_reward_function": fn_cfg}})
    tok = AutoTokenizer.from_pretrained(tiny_model)
    manager = NaiveRewardManager(config, tok, get_custom_reward_fn(config))
    assert manager.is_async_reward_score
    prompt = torch.tensor([tok("<|im_start|>user\nQ<|im_end|>\n")["input_ids"]])
    text = zoomed("(B)") + "<|im_end|>"
    response = torch.tensor([tok(text.replace(SUFFIX, "<|vision_start|>" + SUFFIX))["input_ids"]])
    data = DataProto.from_dict(
        tensors={
            "prompts": prompt,
            "responses": response,
            "attention_mask": torch.ones(1, prompt.size(1) + response.size(1), dtype=torch.long),
        },
        non_tensors={
            "data_source": ["vstar"],
            "reward_model": [{"ground_truth": "B"}],
            "extra_info": [dict(MC)],
            "tool_extra_fields": [{"tool_rewards": [0.0], "cof_zoom_calls": 1}],
            "__num_turns__": [4],
        },
    )
    result = manager.loop.run_until_complete(manager.run_single(data))
    info = result["reward_extra_info"]
    assert result["reward_score"] == pytest.approx(1.0)
    assert info["acc"] == 1.0 and info["used_tool"] == 1.0 and info["format_ok"] == 1.0
    assert info["num_tool_calls"] == 1.0 and info["split_consistent"] == 1.0


# ---------------------------------------------------------------- the paper profile


MATH = {"question": "What is 6 * 7?", **DIRECT}
PAPER = RewardSettings(profile="paper")


def test_paper_routes_the_releases_math_sources_to_math_verify_then_the_judge(server):
    """A math answer math-verify rejects is still put to the judge, sampled at 0.3."""
    judge = client(server.url)
    server.responder = lambda body: verdict(1)  # the generative verifier accepts it
    rejected = answer("41")  # math-verify decides: not 42
    result = asyncio.run(
        score_rollout("thinklite_eureka", rejected, "42", MATH, PAPER, judge=judge)
    )
    assert result.rule_decided and not result.rule_acc
    assert result.judge_used and result.acc
    (request,) = server.chat_requests
    assert request.body["temperature"] == 0.3
    # The same rollout under the default profile: the rules' "no" stands, no judge.
    default = asyncio.run(score_rollout("thinklite_eureka", rejected, "42", MATH, judge=judge))
    assert default.rule_decided and not default.judge_used and not default.acc
    undecided = asyncio.run(score_rollout("v", answer("a cup on a saucer"), "cup",
                                          {**OPEN, **DIRECT}, judge=judge))  # fmt: skip
    assert undecided.judge_used and server.chat_requests[-1].body["temperature"] == 0.0


def test_paper_math_source_wins_over_the_rows_kind_and_math_verify_decides_first(server):
    judge = client(server.url)
    row = {**MATH, "answer_kind": "open"}
    right = asyncio.run(score_rollout("geo_math", answer("$42$"), "42", row, PAPER, judge=judge))
    assert right.acc and right.rule_decided and not right.judge_used
    assert server.chat_requests == []
    sources = get_profile("paper").rl_math_sources
    for source in ("thinklite_eureka", "EurekaMath", "my_math_set"):
        assert question_from(source, "42", row, sources).kind == "math"
        assert question_from(source, "42", row).kind == "open"  # default: the row's own kind
    assert question_from("vstar", "42", row, sources).kind == "open"
    with pytest.raises(ValueError, match="profile"):
        RewardSettings(profile="papr")
