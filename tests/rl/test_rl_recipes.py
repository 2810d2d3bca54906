"""Every shipped RL recipe composes against verl's own schema and passes ``cof validate``."""

from __future__ import annotations

import argparse

import pytest

pytest.importorskip("verl")

from cof_plugins.assets import recipes_dir
from cof_plugins.verl.recipe import RecipeError, compose_recipe, unknown_recipe_keys
from cof_plugins.verl.smoke import recipe_family

RECIPES = sorted(p.stem for p in (recipes_dir() / "rl").glob("*.yaml"))


def test_the_expected_recipes_ship():
    assert {
        "paper_qwen2_5_vl_7b_grpo",
        "paper_qwen2_5_vl_7b_grpo_multi_node",
        "qwen2_5_vl_3b_single_gpu",
        "qwen3_vl_8b_grpo",
        "qwen3_5_9b_grpo",
        "glm4v_9b_thinking_grpo",
        "tiny_cpu",
        "sifthinker_qwen2_5_vl_7b_grpo",
        "sifthinker_tiny_cpu",
    } <= set(RECIPES)


@pytest.mark.parametrize(
    ("name", "family", "checkpoint"),
    [
        ("glm4v_9b_thinking_grpo", "glm4v", "zai-org/GLM-4.1V-9B-Thinking"),
        ("qwen3_5_9b_grpo", "qwen3_5", "Qwen/Qwen3.5-9B"),
        ("qwen3_vl_8b_grpo", "qwen3_vl", "Qwen/Qwen3-VL-8B-Instruct"),
        ("paper_qwen2_5_vl_7b_grpo", "qwen2_5_vl", "Qwen/Qwen2.5-VL-7B-Instruct"),
    ],
)
def test_recipe_declares_its_family(name, family, checkpoint, monkeypatch):
    """Each recipe's tool names its family; model, patch size and template follow it."""
    from cof_plugins.core.chat_template import family_chat_template
    from cof_plugins.core.families import get_family
    from cof_plugins.verl.recipe import resolve

    monkeypatch.delenv("COF_RL_MODEL", raising=False)
    config = compose_recipe(name)
    assert recipe_family(config) == family
    spec, config = get_family(family), resolve(config)
    assert config.actor_rollout_ref.model.path == checkpoint == spec.checkpoint
    assert config.data.image_patch_size == spec.patch_size
    assert config.actor_rollout_ref.model.custom_chat_template == family_chat_template(spec)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_validates(name, tiny_model_factory, tmp_path, monkeypatch):
    from cof_plugins.verl.launcher import prepare

    model = tiny_model_factory(recipe_family(compose_recipe(name)) or "qwen2_5_vl")
    monkeypatch.setenv("COF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COF_JUDGE_URL", "http://127.0.0.1:9/v1")  # tiny_cpu turns it off
    prepared = prepare(name, [f"actor_rollout_ref.model.path={model}"])
    assert prepared.findings.errors == []
    config = prepared.config
    assert config.actor_rollout_ref.model.custom_chat_template.startswith("{#- CoF chat template")
    if name.startswith("sifthinker"):  # single turn, no tool
        assert config.actor_rollout_ref.rollout.agent.default_agent_loop == "single_turn_agent"
        assert config.data.train_files == f"{tmp_path}/train/rl.parquet"
        return
    assert config.actor_rollout_ref.rollout.multi_turn.format == "cof"
    assert config.data.train_files == f"{tmp_path}/rl/train.parquet"


def test_sifthinker_recipe_has_the_release_settings():
    from cof_plugins.verl.recipe import resolve

    c = resolve(compose_recipe("sifthinker_qwen2_5_vl_7b_grpo"))
    actor, rollout, model = (
        c.actor_rollout_ref.actor,
        c.actor_rollout_ref.rollout,
        (c.actor_rollout_ref.model),
    )
    assert (rollout.n, rollout.temperature, actor.optim.lr) == (8, 1.0, 1e-5)
    assert (actor.use_kl_loss, actor.kl_loss_coef, actor.kl_loss_type) == (True, 0.04, "low_var_kl")
    assert (actor.clip_ratio, actor.loss_agg_mode) == (0.2, "seq-mean-token-mean")
    assert (model.lora_rank, model.lora_alpha, model.exclude_modules) == (64, 128, ".*visual.*")
    assert not rollout.multi_turn.enable and c.trainer.total_epochs == 1
    assert rollout.response_length == 2048
    kwargs = c.reward.custom_reward_function.reward_kwargs
    assert kwargs.method == "sifthinker" and kwargs.progress_dir.endswith("/sif_progress")
    tiny = resolve(compose_recipe("sifthinker_tiny_cpu"))
    assert tiny.trainer.device == "cpu" and tiny.actor_rollout_ref.rollout.name == "hf"
    assert tiny.actor_rollout_ref.model.lora_rank == 0
    assert tiny.reward.custom_reward_function.reward_kwargs.method == "sifthinker"


def test_tool_recipes_still_need_their_tool(tmp_path):
    from cof_plugins.verl.launcher import prepare

    broken = prepare("tiny_cpu", ["actor_rollout_ref.rollout.multi_turn.enable=false"])
    assert any("multi_turn.enable is false" in e for e in broken.findings.errors)


def test_paper_recipe_has_the_paper_settings():
    from cof_plugins.verl.recipe import resolve

    c = resolve(compose_recipe("paper_qwen2_5_vl_7b_grpo"))
    actor, rollout = c.actor_rollout_ref.actor, c.actor_rollout_ref.rollout
    assert (c.data.train_batch_size, actor.ppo_mini_batch_size) == (64, 64)
    assert (actor.ppo_micro_batch_size_per_gpu, actor.optim.lr) == (1, 1e-6)
    assert (actor.kl_loss_coef, actor.kl_loss_type, actor.entropy_coeff) == (0.001, "low_var_kl", 0)
    assert (rollout.n, rollout.temperature, rollout.gpu_memory_utilization) == (6, 1.0, 0.4)
    assert (rollout.prompt_length, rollout.response_length) == (25600, 32756)
    assert (rollout.multi_turn.max_assistant_turns, rollout.multi_turn.max_user_turns) == (4, 4)
    assert (c.trainer.total_epochs, c.trainer.n_gpus_per_node) == (15, 8)


def test_paper_recipe_matches_the_release_launch_or_says_why():
    """Where the release's launch script differs, the recipe aligns or its header says why."""
    from cof_plugins.verl.recipe import find_recipe, resolve

    c = resolve(compose_recipe("paper_qwen2_5_vl_7b_grpo"))
    model, rollout = c.actor_rollout_ref.model, c.actor_rollout_ref.rollout
    assert rollout.tensor_model_parallel_size == 1
    assert model.enable_activation_offload and model.enable_gradient_checkpointing
    assert c.trainer.val_before_train is False
    assert c.actor_rollout_ref.actor.fsdp_config.param_offload
    header = find_recipe("paper_qwen2_5_vl_7b_grpo").read_text().split("defaults:")[0]
    assert rollout.name == "vllm" and "SGLang" in header
    # verl 0.9.1's agent loop never runs that check: the key stays at verl's default, and why.
    assert rollout.multi_turn.tokenization_sanity_check_mode == "strict"
    assert "tokenization sanity check" in header


def test_family_swap_changes_tool_and_patch_size_together(tiny_model_factory):
    from cof_plugins.verl.launcher import prepare

    qwen3 = prepare("qwen3_vl_8b_grpo").config
    assert qwen3.data.image_patch_size == 16
    assert qwen3.actor_rollout_ref.rollout.multi_turn.tool_config_path.endswith(
        "zoom_qwen3_vl.yaml"
    )
    mixed = prepare("qwen3_vl_8b_grpo", [f"actor_rollout_ref.model.path={tiny_model_factory()}"])
    assert any("'qwen2_5_vl'" in e and "qwen3_vl" in e for e in mixed.findings.errors)


def test_a_template_of_another_family_is_an_error(tiny_model_factory, monkeypatch):
    """GLM's tool with the Qwen template would train on turns the data never had."""
    from cof_plugins.verl.launcher import prepare

    monkeypatch.setenv("COF_JUDGE_URL", "http://127.0.0.1:9/v1")  # judged, as on a cluster

    model = tiny_model_factory("glm4v")
    wrong = prepare(
        "glm4v_9b_thinking_grpo",
        [f"actor_rollout_ref.model.path={model}",
         "actor_rollout_ref.model.custom_chat_template=${cof_chat_template:cof_qwen.jinja}"],
    )  # fmt: skip
    assert any("cof_glm4v.jinja" in e for e in wrong.findings.errors)
    assert (
        prepare("glm4v_9b_thinking_grpo", [f"actor_rollout_ref.model.path={model}"]).findings.errors
        == []
    )


def test_misspelt_key_in_a_recipe_file_is_rejected_by_name(tmp_path):
    recipe = tmp_path / "typo.yaml"
    recipe.write_text(
        "defaults:\n  - ppo_trainer\n  - _self_\n"
        "actor_rollout_ref:\n  rollout:\n    mutli_turn:\n      enable: true\n"
        "    limit_images: 6\n"
    )
    (problem,) = unknown_recipe_keys(recipe)
    assert "'actor_rollout_ref.rollout.mutli_turn.enable'" in problem
    assert "did you mean 'actor_rollout_ref.rollout.multi_turn'" in problem


def test_recipe_keys_are_checked_as_written_without_resolving(tmp_path):
    """Keys under mandatory (``???``) schema values, values no resolver knows yet, children
    of scalars and free-form blocks: each judged on the file's text, nothing resolved."""
    recipe = tmp_path / "mixed.yaml"
    recipe.write_text(
        "defaults:\n  - ppo_trainer\n  - _self_\n"
        "actor_rollout_ref:\n  rollout:\n    name: vllm\n"  # ??? in verl's schema
        "    temperature: ${not_a_resolver:x}\n"
        "    engine_kwargs:\n      vllm:\n        anything_goes: 1\n"
        "trainer:\n  total_epochs:\n    per_stage: 3\n"  # a scalar given children
        "  project_name: ${oc.env:NOT_SET_ANYWHERE}\n"
    )
    (problem,) = unknown_recipe_keys(recipe)
    assert "'trainer.total_epochs.per_stage'" in problem


def test_misspelt_override_is_rejected_by_name():
    with pytest.raises(RecipeError, match=r"did you mean 'data.train_batch_size'"):
        compose_recipe("tiny_cpu", ["data.train_bach_size=4"])


def test_unknown_recipe_name_lists_the_shipped_ones():
    with pytest.raises(RecipeError, match="tiny_cpu"):
        compose_recipe("no_such_recipe")


def test_validate_command_prints_settings_and_fails_on_errors(capsys, tmp_path):
    from cof_plugins.commands import rl

    parser = argparse.ArgumentParser()
    rl.add_parser(parser.add_subparsers())
    args = parser.parse_args(["validate", "tiny_cpu", "data.train_batch_size=1"])
    assert args.func(args) == 1
    out, err = capsys.readouterr()
    assert "actor_rollout_ref.rollout.multi_turn.format" in out and "cof" in out
    assert "validate_config" in err


def test_paper_recipe_runs_the_paper_profile_everywhere():
    """Tool, call policy, image cap and reward all say paper; crops stay in user turns."""
    from verl.tools.tool_registry import initialize_tools_from_config

    from cof_plugins.core.profiles import get_profile
    from cof_plugins.verl.recipe import resolve

    c = resolve(compose_recipe("paper_qwen2_5_vl_7b_grpo"))
    rollout = c.actor_rollout_ref.rollout
    (tool,) = initialize_tools_from_config(rollout.multi_turn.tool_config_path)
    assert tool.settings.profile == "paper" and tool.zoom_config.resample == "lanczos"
    assert rollout.multi_turn.max_parallel_calls >= 16 and tool.settings.max_images == 6
    assert rollout.limit_images >= tool.settings.max_images
    assert c.reward.custom_reward_function.reward_kwargs.profile == "paper"
    kwargs = dict(c.data.get("apply_chat_template_kwargs") or {})
    assert kwargs == get_profile("paper").chat_template_kwargs() == {}
    for name in ("tiny_cpu", "qwen3_vl_8b_grpo"):  # recipes that keep the default profile
        derived = resolve(compose_recipe(name))
        assert derived.actor_rollout_ref.rollout.multi_turn.max_parallel_calls == 1
        assert derived.reward.custom_reward_function.reward_kwargs.profile == "default"


def test_call_policy_and_image_limit_must_fit_the_profile(tiny_model_factory):
    from cof_plugins.verl.launcher import prepare

    model = f"actor_rollout_ref.model.path={tiny_model_factory()}"
    key = "actor_rollout_ref.rollout.multi_turn.max_parallel_calls"
    paper = prepare("paper_qwen2_5_vl_7b_grpo", [model, f"{key}=1"]).findings.errors
    assert any(key in e and "every call" in e for e in paper)
    default = prepare("tiny_cpu", [model, f"{key}=4"]).findings.errors
    assert any(f"{key}=4" in e and "set it to 1" in e for e in default)
    few = prepare("tiny_cpu", [model, "actor_rollout_ref.rollout.limit_images=2"]).findings
    assert any("limit_images=2" in e for e in few.errors)
