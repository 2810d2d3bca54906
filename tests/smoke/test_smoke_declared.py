"""A smoke differs from its recipe only in keys the overlay files declare, and says which.

Fast: nothing trains here. Every recipe in recipes/ is covered by globbing, so a new recipe is
checked (and smoked, in test_smoke_recipes.py) without touching the tests.
"""

from __future__ import annotations

import os

import pytest

from cof_plugins.assets import recipes_dir
from cof_plugins.testbed.smoke import declared_keys, diff, undeclared

from .conftest import shipped

pytest.importorskip("verl")


@pytest.mark.parametrize("recipe", shipped("sft"), ids=lambda p: p.stem)
def test_sft_smoke_trains_the_recipe_but_for_declared_keys(recipe, smoke_assets, tmp_path):
    """The run config a smoke writes equals a normal run's on the same model/data/output,
    except in keys the overlay declares (so code cannot slip in a change unannounced)."""
    from cof_plugins.llamafactory.config import read_config, smoke_overlay
    from cof_plugins.llamafactory.smoke import plan
    from cof_plugins.llamafactory.train import prepare
    from cof_plugins.testbed.smoke import DATA_ENV, MODEL_ENV

    smoke = plan(recipe, [], smoke_assets)
    same = [
        f"model_name_or_path={os.environ[MODEL_ENV]}",
        f"dataset_dir={os.environ[DATA_ENV]}",
        f"output_dir={tmp_path}",
    ]
    normal = read_config(prepare(recipe, same, check=False))
    smoked = read_config(prepare(recipe, [f"output_dir={tmp_path}"], check=False, smoke=True))
    changed = diff(normal, smoked)
    assert undeclared(changed, declared_keys(smoke_overlay())) == []
    assert smoked["use_cpu"] is True and smoked["max_steps"] == 1
    assert not smoked.get("deepspeed") and not smoked.get("bf16")
    # What it prints is exactly what changed against the recipe as written.
    printed = {c.key for c in smoke.changes}
    assert set(changed) <= printed
    assert {"model_name_or_path", "output_dir"} <= printed


def test_sft_smoke_prints_old_and_new_values(smoke_assets):
    from cof_plugins.llamafactory.smoke import plan

    paper = recipes_dir() / "sft" / "paper_qwen2_5_vl_7b_lora.yaml"
    lines = [str(c) for c in plan(paper, [], smoke_assets).changes]
    assert "bf16: true -> false" in lines
    assert "deepspeed: cof:zero3 -> null" in lines
    assert "enable_liger_kernel: true -> false" in lines
    assert "learning_rate" not in " ".join(lines)


@pytest.mark.parametrize("recipe", shipped("rl"), ids=lambda p: p.stem)
def test_rl_smoke_changes_only_declared_keys_and_validates(recipe, smoke_assets):
    """The config ``cof rl --smoke`` trains (composed with the smoke overrides the code adds)
    against the recipe as written: every difference is a key of the overlay files."""
    from cof_plugins.verl.launcher import prepare
    from cof_plugins.verl.smoke import changes, overlay_files, plan

    smoke = plan(recipe, [], smoke_assets)
    prepared = prepare(smoke.recipe, smoke.overrides)
    changed = [c.key for c in changes(smoke, prepared)]
    assert changed and undeclared(changed, declared_keys(*overlay_files())) == []
    assert prepared.findings.errors == []
    config = prepared.config
    assert config.trainer.device == "cpu" and config.actor_rollout_ref.rollout.name == "hf"
    assert config.trainer.total_training_steps == 1


def test_rl_smoke_on_a_shared_cluster_changes_only_declared_keys(smoke_assets):
    from cof_plugins.verl.launcher import prepare
    from cof_plugins.verl.smoke import changes, overlay_files, plan

    smoke = plan("tiny_cpu", [], smoke_assets, address="127.0.0.1:6379")
    prepared = prepare(smoke.recipe, smoke.overrides)
    lines = [str(c) for c in changes(smoke, prepared)]
    assert "ray_kwargs.ray_init.address: local -> 127.0.0.1:6379" in lines
    assert "ray_kwargs.ray_init.num_cpus: 16 -> null" in lines
    keys = [line.split(":")[0] for line in lines]
    assert undeclared(keys, declared_keys(*overlay_files())) == []
    assert prepared.findings.errors == []


def test_rl_smoke_keeps_the_recipe_algorithm(smoke_assets):
    """Everything the overlay does not name runs as the recipe wrote it."""
    from cof_plugins.verl.launcher import prepare
    from cof_plugins.verl.recipe import compose_recipe, resolve
    from cof_plugins.verl.smoke import changes, plan

    smoke = plan("paper_qwen2_5_vl_7b_grpo", [], smoke_assets)
    prepared = prepare(smoke.recipe, smoke.overrides)
    lines = [str(c) for c in changes(smoke, prepared)]
    assert "trainer.device: cuda -> cpu" in lines
    assert "actor_rollout_ref.rollout.name: vllm -> hf" in lines
    paper = resolve(compose_recipe("paper_qwen2_5_vl_7b_grpo"))
    ran, actor = prepared.config.actor_rollout_ref, paper.actor_rollout_ref
    assert ran.actor.use_kl_loss and ran.actor.kl_loss_coef == actor.actor.kl_loss_coef
    assert ran.actor.optim.lr == actor.actor.optim.lr
    assert ran.rollout.multi_turn == actor.rollout.multi_turn
    assert prepared.config.trainer.save_freq == paper.trainer.save_freq


def test_undeclared_names_a_key_outside_every_overlay():
    declared = {"a.b", "c"}
    assert undeclared(["a.b", "a.b.x", "c", "a.z"], declared) == ["a.z"]
    before = {"a": {"b": 1, "k": {}}, "d": None}
    after = {"a": {"b": 2, "k": {"new": 1}}}
    assert diff(before, after) == ["a.b", "a.k.new"]  # null and unset are both "default"


def test_each_smoke_starts_from_a_fresh_output_folder(tmp_path):
    """A checkpoint left by an earlier smoke would make verl resume and train nothing."""
    from cof_plugins.testbed.smoke import SmokeAssets

    assets = SmokeAssets(tmp_path)
    recipe = recipes_dir() / "rl" / "tiny_cpu.yaml"
    old = assets.out(recipe) / "checkpoints" / "latest_checkpointed_iteration.txt"
    old.parent.mkdir(parents=True)
    old.write_text("1")
    assert not assets.out(recipe).exists()


def test_a_recipe_exempt_from_the_smoke_says_why_and_what_runs_it(capsys):
    from cof_plugins.assets import recipes_dir
    from cof_plugins.cli import main
    from cof_plugins.commands.smoke import exemption, shipped

    exempt = sorted(p.stem for p in recipes_dir().glob("*/*.yaml") if exemption(p))
    assert exempt == ["sifthinker_qwen2_5_vl_7b_grpo", "sifthinker_qwen2_5_vl_7b_lora",
                      "sifthinker_tiny_cpu", "sifthinker_tiny_cpu"]  # fmt: skip
    assert not [p for p in shipped() if p.stem.startswith("sifthinker")]
    assert main(["smoke", "rl/sifthinker_tiny_cpu"]) == 2
    err = capsys.readouterr().err
    assert "sifthinker_tiny_cpu.yaml is not smoked" in err and "SIFThinker quickstart" in err
