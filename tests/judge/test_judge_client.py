"""Judge client on a healthy server: prompt, parsing, config, cache, concurrency, check CLI."""

from __future__ import annotations

import asyncio
import threading

import pytest

from cof_plugins.cli import main as cof_main
from cof_plugins.judge import (
    COUNTERS,
    PROMPT_VERSION,
    JudgeCache,
    JudgeClient,
    JudgeConfig,
    JudgeConfigError,
    build_messages,
    cache_key,
    parse_judgement,
)
from cof_plugins.judge.prompt import FEW_SHOT
from cof_plugins.testbed.openai_server import (
    FakeOpenAIServer,
    judge_case,
    slow,
    truthful_judge,
    verdict,
)

MODEL = "judge-model"


@pytest.fixture
def server():
    with FakeOpenAIServer(truthful_judge, models=(MODEL, "other-model")) as srv:
        yield srv


def make_client(url: str, **overrides) -> JudgeClient:
    fast = dict(
        model=MODEL, timeout_s=2.0, connect_timeout_s=1.0, backoff_base_s=0.01, max_retries=2
    )
    return JudgeClient(JudgeConfig(url=url, **{**fast, **overrides}))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Judgement: 1", True),
        ("Judgement: 0", False),
        ("judgment:0", False),
        ("The answers agree.\nJudgement: **1**", True),
        ("1", True),
        ("<think>Maybe Judgement: 0?</think>\nJudgement: 1", True),
        ("Judgement: 1 ... on reflection Judgement: 0", None),
        ("Judgement: 10", None),
        ("I think they match.", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_judgement(text, expected):
    assert parse_judgement(text) is expected


def test_messages_hold_the_case_and_few_shot_turns():
    messages = build_messages("What is on the table?", "a red cup", "cup")
    assert messages[0]["role"] == "system"
    assert 5 <= len(FEW_SHOT) <= 7
    assert len(messages) == 2 + 2 * len(FEW_SHOT)
    for shot, reply in zip(FEW_SHOT, messages[2:-1:2], strict=True):
        assert reply == {"role": "assistant", "content": f"Judgement: {shot[3]}"}
    fields = judge_case({"messages": messages})
    assert fields == {
        "Question": "What is on the table?",
        "Reference answer": "cup",
        "Candidate answer": "a red cup",
    }


def test_a_huge_answer_reaches_the_judge_as_its_head_and_tail():
    answer = "A" + " " * 1_000_000 + "the final answer is B"
    (*_, case) = build_messages("Which one?", answer, "B")
    candidate = case["content"].split("Candidate answer: ", 1)[1]
    assert len(case["content"]) < 2_200
    assert candidate.startswith("A") and candidate.endswith("the final answer is B")
    assert f"[... {len(answer) - 2000} characters cut ...]" in candidate
    short = build_messages("Which one?", "B", "B")[-1]["content"]
    assert short.endswith("Candidate answer: B")


def test_config_from_env_with_overrides():
    env = {
        "COF_JUDGE_URL": "http://h:1/v1",
        "COF_JUDGE_MODEL": "m",
        "COF_JUDGE_RETRIES": "7",
        "COF_JUDGE_FALLBACK": "zero",
        "COF_JUDGE_CACHE": "/tmp/x.sqlite",
    }
    cfg = JudgeConfig.from_env(env, model="override", timeout_s=None)
    assert (cfg.url, cfg.model) == ("http://h:1/v1", "override")
    assert (cfg.max_retries, cfg.attempts) == (7, 8)
    assert (cfg.fallback, cfg.cache_path, cfg.timeout_s) == ("zero", "/tmp/x.sqlite", 60.0)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"COF_JUDGE_TIMEOUT": "soon"}, "COF_JUDGE_TIMEOUT"),
        ({"COF_JUDGE_FALLBACK": "maybe"}, "rules, zero, raise, skip"),
        ({"COF_JUDGE_CONCURRENCY": "0"}, "concurrency"),
        ({"COF_JUDGE_TIMEOUT": "inf"}, "judge timeout_s must be a finite number"),
        ({"COF_JUDGE_RETRIES": "-1"}, "max_retries must be >= 0"),
    ],
)
def test_config_errors_name_the_setting(env, needle):
    with pytest.raises(JudgeConfigError, match=needle):
        JudgeConfig.from_env(env)


def test_missing_url_or_model_fails_when_judging():
    with pytest.raises(JudgeConfigError, match="COF_JUDGE_URL"):
        JudgeClient(JudgeConfig.from_env({})).judge_sync("q", "a", "a")
    with pytest.raises(JudgeConfigError, match="COF_JUDGE_MODEL"):
        JudgeClient(JudgeConfig(url="http://127.0.0.1:1/v1")).judge_sync("q", "a", "a")


def test_healthy_server_judges_both_ways(server):
    client = make_client(server.url, api_key="sekrit", temperature=0.3)
    right = client.judge_sync("What colour is the bus?", "It is yellow.", "yellow")
    wrong = client.judge_sync("What colour is the bus?", "green", "yellow")
    assert (right.correct, right.source, right.attempts, right.raw) == (
        True,
        "judge",
        1,
        "Judgement: 1",
    )
    assert (wrong.correct, wrong.source) == (False, "judge")
    sent = server.chat_requests[0]
    assert sent.headers["Authorization"] == "Bearer sekrit"
    assert (sent.body["model"], sent.body["temperature"]) == (MODEL, 0.3)
    stats = client.stats()
    assert stats["judge/calls"] == 2 and stats["judge/successes"] == 2
    assert stats["judge/fallbacks"] == 0 and stats["judge/retries"] == 0


def test_stats_names_are_stable(server):
    stats = make_client(server.url).stats()
    expected = {f"judge/{n}" for n in COUNTERS} | {"judge/circuit_opens", "judge/circuit_open"}
    assert set(stats) == expected
    assert all(v == 0.0 for v in stats.values())


def test_judge_many_honours_the_concurrency_limit(server):
    server.responder = lambda body: slow(0.15, verdict(1))
    client = make_client(server.url, concurrency=2)
    items = [(f"q{i}", "a", "a") for i in range(6)]
    verdicts = client.judge_many_sync(items)
    assert [v.correct for v in verdicts] == [True] * 6
    assert server.max_in_flight == 2


def test_judge_many_keeps_item_order(server):
    items = [("q", "yes" if i % 2 else "no", "yes") for i in range(8)]
    verdicts = make_client(server.url, concurrency=4).judge_many_sync(items)
    assert [v.correct for v in verdicts] == [bool(i % 2) for i in range(8)]


def test_cache_hit_on_second_call_and_across_clients(server, tmp_path):
    path = tmp_path / "judge.sqlite"
    first = make_client(server.url, cache_path=str(path))
    assert first.judge_sync("q", "blue", "blue").source == "judge"
    again = first.judge_sync("q", "blue", "blue")
    assert (again.correct, again.source, again.attempts) == (True, "cache", 0)
    assert len(server.chat_requests) == 1
    assert first.stats()["judge/cache_hits"] == 1
    second = make_client(server.url, cache_path=str(path))
    assert second.judge_sync("q", "blue", "blue").source == "cache"
    other_model = make_client(server.url, cache_path=str(path), model="other-model")
    assert other_model.judge_sync("q", "blue", "blue").source == "judge"
    assert len(server.chat_requests) == 2


def test_cache_key_covers_every_input():
    base = ("m", PROMPT_VERSION, "q", "a", "gt")
    keys = {cache_key(*base)}
    for i in range(len(base)):
        changed = list(base)
        changed[i] += "x"
        keys.add(cache_key(*changed))
    assert len(keys) == len(base) + 1


def test_cache_shared_by_concurrent_writers(tmp_path):
    path = tmp_path / "shared.sqlite"
    caches = [JudgeCache(path) for _ in range(4)]

    def write(idx: int) -> None:
        for j in range(25):
            caches[idx].put(f"k{idx}-{j}", j % 2 == 0, "Judgement: 1", "m", PROMPT_VERSION)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(caches[0]) == 100
    assert caches[3].get("k0-2") == (True, "Judgement: 1")
    assert caches[1].get("missing") is None


def test_sync_wrapper_refuses_a_running_loop(server):
    client = make_client(server.url)

    async def inside() -> None:
        client.judge_sync("q", "a", "a")

    with pytest.raises(RuntimeError, match="await it"):
        asyncio.run(inside())


def test_client_survives_successive_event_loops(server):
    client = make_client(server.url)

    async def one() -> bool | None:
        return (await client.judge("q", "a", "a")).correct

    assert [asyncio.run(one()) for _ in range(3)] == [True, True, True]


def test_health_check_healthy(server):
    report = asyncio.run(make_client(server.url).check())
    assert report.healthy, report.render()
    assert report.models == [MODEL, "other-model"]
    assert [(p.name, p.got) for p in report.probes] == [("equivalent", True), ("different", False)]
    assert report.models_latency_s is not None and report.models_latency_s < 2


def test_health_check_flags_a_judge_that_always_says_yes(server):
    server.responder = lambda body: verdict(1)
    report = asyncio.run(make_client(server.url).check())
    assert not report.healthy
    assert "WRONG" in report.render()


def test_health_check_unknown_model_names_the_served_ones(server):
    report = asyncio.run(make_client(server.url, model="nope").check())
    assert not report.healthy
    assert "COF_JUDGE_MODEL to one of: judge-model, other-model" in report.render()


def test_cli_check_healthy(server, capsys, monkeypatch):
    monkeypatch.delenv("COF_JUDGE_URL", raising=False)
    assert cof_main(["judge", "check", "--url", server.url, "--model", MODEL]) == 0
    out = capsys.readouterr().out
    assert "judge check: HEALTHY" in out and "probe 'different'" in out


def test_cli_check_without_url_explains_the_fix(capsys, monkeypatch):
    monkeypatch.delenv("COF_JUDGE_URL", raising=False)
    assert cof_main(["judge", "check"]) == 1
    out = capsys.readouterr().out
    assert "COF_JUDGE_URL" in out and "launch/judge_server.sh" in out


def test_broken_cache_is_logged_not_fatal(server, tmp_path, caplog):
    client = make_client(server.url, cache_path=str(tmp_path))  # a directory: sqlite cannot open
    v = client.judge_sync("q", "a", "a")
    assert (v.correct, v.source) == (True, "judge")
    assert client.stats()["judge/cache_errors"] == 2  # the lookup and the store
    assert "going on without it" in caplog.text


def test_shared_client_is_built_once_from_env(monkeypatch):
    from cof_plugins.judge import client as client_module

    monkeypatch.setattr(client_module, "_shared", None)
    monkeypatch.setenv("COF_JUDGE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("COF_JUDGE_FALLBACK", "skip")
    first = client_module.shared_client()
    assert first is client_module.shared_client()
    assert (first.config.url, first.config.fallback) == ("http://127.0.0.1:1/v1", "skip")
