"""`cof validate` refuses a run that would waste a cluster: one test per failure.

Each test starts from the paper recipe with everything in order (model set, judge URL set,
checkpoints on), breaks one thing, and expects an error naming the key to change.
"""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("verl")

PAPER = "paper_qwen2_5_vl_7b_grpo"
JUDGE = "reward.custom_reward_function.reward_kwargs.judge"


@pytest.fixture
def ready(monkeypatch, tiny_model, tmp_path):
    """A launch environment in which the paper recipe validates without errors."""
    monkeypatch.setenv("COF_RL_MODEL", str(tiny_model))
    monkeypatch.setenv("COF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COF_JUDGE_URL", "http://127.0.0.1:9/v1")
    return monkeypatch


def errors(*overrides: str, recipe: str = PAPER) -> list[str]:
    from cof_plugins.verl.launcher import prepare

    return prepare(recipe, list(overrides)).findings.errors


def test_the_paper_recipe_passes_when_everything_is_in_place(ready):
    assert errors() == []


def test_no_checkpoint_is_refused(ready):
    (error,) = errors("trainer.save_freq=-1")
    assert "trainer.save_freq=-1" in error and "no checkpoint" in error


def test_every_gpu_recipe_saves_and_validates():
    from cof_plugins.verl.recipe import compose_recipe

    for name in (PAPER, f"{PAPER}_multi_node", "qwen2_5_vl_3b_single_gpu", "qwen3_vl_8b_grpo"):
        trainer = compose_recipe(name).trainer
        assert trainer.save_freq > 0 and trainer.test_freq > 0, name


def test_base_model_fallback_is_refused(ready):
    ready.delenv("COF_RL_MODEL")
    (error,) = errors()
    assert "COF_RL_MODEL is not set" in error and "Qwen/Qwen2.5-VL-7B-Instruct" in error
    # Naming the model on the command line is a choice, not a fallback.
    from cof_plugins.verl.recipe import compose_recipe

    path = compose_recipe(PAPER).actor_rollout_ref.model.path
    assert not [e for e in errors(f"actor_rollout_ref.model.path={path}") if "COF_RL_MODEL" in e]


def test_judge_expected_but_not_configured_is_refused(ready):
    ready.delenv("COF_JUDGE_URL")
    (error,) = errors()
    assert "COF_JUDGE_URL" in error and f"{JUDGE}=off" in error
    assert errors(f"{JUDGE}=off") == []  # rules only, chosen explicitly
    on = "+ray_kwargs.ray_init.runtime_env.env_vars.COF_JUDGE_URL=http://judge:8000/v1"
    assert errors(on) == []  # configured for the Ray workers instead of this shell


def test_crops_that_cannot_fit_the_response_are_refused(ready):
    # The paper recipe runs every call of a turn (max_parallel_calls 64); the tool's
    # max_images (6, the question image included) caps a trajectory at 5 crops.
    (error,) = errors("data.max_response_length=500")
    assert error.startswith("data.max_response_length=500 cannot hold 5 crop(s)")

    def response(*overrides: str) -> list[str]:
        # One call per turn is another profile's policy (its own error); only lengths here.
        return [e for e in errors(*overrides) if e.startswith("data.max_response_length")]

    # One call per turn: 3 turns (4 assistant turns, the last answers) x 1 call fit in 500.
    one = "actor_rollout_ref.rollout.multi_turn.max_parallel_calls=1"
    assert response("data.max_response_length=500", one) == []
    # Fewer turns, fewer crops: 150 tokens hold one crop, not three.
    (error,) = response("data.max_response_length=150", one)
    assert error.startswith("data.max_response_length=150 cannot hold 3 crop(s)")
    turns = "actor_rollout_ref.rollout.multi_turn.max_assistant_turns=2"
    assert response("data.max_response_length=150", one, turns) == []
    # Every parallel call of a turn returns a crop: 3 turns x 2 calls = 6, over the cap of 5.
    calls = "actor_rollout_ref.rollout.multi_turn.max_parallel_calls=2"
    (error,) = response("data.max_response_length=500", calls)
    assert "cannot hold 5 crop(s)" in error


def test_a_frame_that_cannot_fit_the_prompt_is_refused(ready, tmp_path):
    from cof_plugins.testbed.smoke import SmokeAssets

    ready.setenv("COF_DATA_DIR", str(SmokeAssets(tmp_path / "work").rl_data("qwen2_5_vl")))
    (error,) = errors("data.max_prompt_length=64")
    assert error.startswith("data.max_prompt_length=64 cannot hold the question")
    assert "budget of the rows in train.parquet" in error


def test_lengths_beyond_the_models_positions_are_refused(ready, tiny_model, tmp_path):
    short = tmp_path / "short_model"
    shutil.copytree(tiny_model, short)
    config = json.loads((short / "config.json").read_text())
    config["text_config"]["max_position_embeddings"] = 4096
    (short / "config.json").write_text(json.dumps(config))
    ready.setenv("COF_RL_MODEL", str(short))
    (error,) = errors()
    assert "exceeds the model's 4096 positions" in error


def test_too_few_images_for_vllm_is_refused(ready):
    (error,) = errors("actor_rollout_ref.rollout.limit_images=2")
    assert "limit_images=2" in error


def test_frame_budget_is_read_from_the_data(ready, tmp_path):
    from cof_plugins.core.frame import PixelBudget
    from cof_plugins.testbed.smoke import SmokeAssets
    from cof_plugins.testbed.tiny_model import TINY_BUDGET
    from cof_plugins.verl.cluster_checks import _frame_budget
    from cof_plugins.verl.recipe import compose_recipe, resolve

    data = SmokeAssets(tmp_path / "work").rl_data("qwen2_5_vl")
    ready.setenv("COF_DATA_DIR", str(data))
    budget, source = _frame_budget(resolve(compose_recipe(PAPER)))
    assert budget == TINY_BUDGET and "rows in train.parquet" in source
    ready.setenv("COF_DATA_DIR", str(tmp_path / "absent"))
    budget, source = _frame_budget(resolve(compose_recipe(PAPER)))
    assert budget == PixelBudget() and source.startswith("assumed")


def test_without_the_data_the_frame_check_only_warns(ready, monkeypatch):
    """The 3B recipe needs data built at a smaller budget; absent data is an assumption."""
    from cof_plugins.verl import cluster_checks

    monkeypatch.setattr(cluster_checks, "_processor_cap", lambda path: None)
    from cof_plugins.verl.launcher import prepare

    found = prepare("qwen2_5_vl_3b_single_gpu").findings
    assert found.errors == []
    assert any("max_prompt_length=8192" in w and "assumed" in w for w in found.warnings)
