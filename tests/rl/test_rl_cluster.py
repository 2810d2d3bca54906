"""`cof cluster`: what the per-node check refuses, and waiting for nodes (injected clock)."""

from __future__ import annotations

import pytest

from cof_plugins.testbed.openai_server import FakeOpenAIServer, refused_url, truthful_judge
from cof_plugins.verl.cluster import NodeReport, judge_reachable, problems, wait_for_nodes


def _node(host: str, **changes) -> NodeReport:
    fields = dict(
        node_id=f"{host}-0123456789", host=host, gpus=8.0, registered=True,
        cof_version="0.1.0", verl_version="0.9.1", external_modules="", judge=None,
    )  # fmt: skip
    return NodeReport(**{**fields, **changes})


def test_a_ready_cluster_has_no_problems():
    assert problems([_node("a"), _node("b", judge="ok")], nnodes=2, gpus_per_node=8) == []


def test_each_problem_names_the_node_and_the_fix():
    found = problems(
        [
            _node("a", registered=False, external_modules="x.y"),
            _node("b", gpus=4.0, judge="unreachable (timed out)"),
            _node("c", cof_version="0.0.9"),
        ],
        nnodes=4,
        gpus_per_node=8,
    )
    text = "\n".join(found)
    assert "trainer.nnodes=4 but Ray has 3 alive node(s)" in text
    assert "node a" in text and "install cof-plugins in that node's environment" in text
    assert "'x.y'" in text
    assert "node b" in text and "trainer.n_gpus_per_node=8" in text and "--num-gpus" in text
    assert "judge at $COF_JUDGE_URL is unreachable (timed out)" in text
    assert "different versions" in text and "c: cof-plugins 0.0.9" in text
    assert len(found) == 5


def test_judge_reachability_is_a_real_request():
    with FakeOpenAIServer(truthful_judge, ("judge",)) as server:
        assert judge_reachable(server.url) == "ok"
        assert server.requests[-1].path == "/v1/models"
    assert judge_reachable(refused_url(), timeout_s=2).startswith("unreachable")


def test_waiting_for_nodes_returns_when_all_joined_and_times_out_otherwise():
    now = [0.0]
    seen = [[{"Alive": True}], [{"Alive": True}, {"Alive": False}], [{"Alive": True}] * 2]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    assert wait_for_nodes(2, 60, lambda: seen.pop(0), clock=lambda: now[0], sleep=sleep) == 2
    assert now[0] == 4.0  # two polls of 2 s
    now[0] = 0.0
    one = [{"Alive": True, "NodeManagerAddress": "10.0.0.1"}]
    with pytest.raises(TimeoutError, match=r"only 1 of 2 Ray nodes joined within 10s.*10\.0\.0\.1"):
        wait_for_nodes(2, 10, lambda: one, clock=lambda: now[0], sleep=sleep)
