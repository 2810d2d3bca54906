"""One RL launch path: `cof rl` composes the recipe once and takes the device from it.

verl's ``run_ppo`` and ``auto_set_device`` are replaced by recorders here (they would start
Ray and fix this test process's platform); everything before them is the real path.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("verl")

ENV_VARS = "ray_kwargs.ray_init.runtime_env.env_vars"


@pytest.fixture
def launched(monkeypatch, tiny_model, tmp_path):
    """Run `cof rl RECIPE` up to verl's run_ppo; return (configs run_ppo got, compose count)."""
    import verl.trainer.main_ppo as main_ppo
    import verl.utils.device as device

    from cof_plugins.verl import launcher, recipe

    for name in ("VERL_PLATFORM", "COF_HF_ROLLOUT_SCRIPT"):
        monkeypatch.delenv(name, raising=False)  # restored after: train() sets it on CPU
    monkeypatch.setenv("COF_RL_MODEL", str(tiny_model))
    monkeypatch.setenv("COF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COF_JUDGE_URL", "http://127.0.0.1:9/v1")
    ran, composed = [], []
    real = recipe.compose_recipe

    def counting(*args, **kwargs):
        composed.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(launcher, "compose_recipe", counting)
    monkeypatch.setattr(recipe, "compose_recipe", counting)
    monkeypatch.setattr(main_ppo, "run_ppo", lambda config, task_runner_class: ran.append(config))
    monkeypatch.setattr(device, "auto_set_device", lambda config: None)

    def launch(name: str) -> int:
        from cof_plugins.commands import rl

        parser = argparse.ArgumentParser()
        rl.add_parser(parser.add_subparsers())
        args = parser.parse_args(["rl", name])
        return args.func(args)

    return launch, ran, composed


def test_cpu_recipe_is_composed_once_and_runs_on_the_cpu_platform(launched):
    launch, ran, composed = launched
    assert launch("tiny_cpu") == 0
    assert len(composed) == 1 and len(ran) == 1
    env = ran[0].ray_kwargs.ray_init.runtime_env.env_vars
    assert ran[0].trainer.device == "cpu" and env.VERL_PLATFORM == "cpu"
    modules = env.VERL_USE_EXTERNAL_MODULES.split(",")
    assert modules[0] == "cof_plugins.verl.cpu.autoload" and "cof_plugins.verl.autoload" in modules


def test_gpu_recipe_takes_the_same_path_without_the_cpu_platform(launched, monkeypatch):
    launch, ran, composed = launched
    monkeypatch.setenv("COF_HF_ROLLOUT_SCRIPT", "/not/forwarded/on/gpu.json")
    assert launch("paper_qwen2_5_vl_7b_grpo") == 0
    assert len(composed) == 1 and ran[0].trainer.device == "cuda"
    env = ran[0].ray_kwargs.ray_init.runtime_env.env_vars
    assert "VERL_PLATFORM" not in env and "COF_HF_ROLLOUT_SCRIPT" not in env
    assert env.VERL_USE_EXTERNAL_MODULES == "cof_plugins.verl.autoload"


def test_there_is_no_second_entry_module():
    assert importlib.util.find_spec("cof_plugins.verl.cpu.run") is None


def test_cpu_values_live_in_the_overlay_and_nowhere_in_python():
    """tiny_cpu takes the device from overlays/cpu.yaml; no Python restates those values."""
    from omegaconf import OmegaConf

    from cof_plugins.assets import recipes_dir
    from cof_plugins.testbed.smoke import leaf_items
    from cof_plugins.verl.recipe import compose_recipe, unknown_recipe_keys

    overlay = recipes_dir() / "rl" / "overlays" / "cpu.yaml"
    assert unknown_recipe_keys(overlay) == []
    tiny = compose_recipe("tiny_cpu")
    device = dict(leaf_items(OmegaConf.to_container(OmegaConf.load(overlay))))
    for key, value in device.items():
        assert OmegaConf.select(tiny, key) == value, key
    written = OmegaConf.load(recipes_dir() / "rl" / "tiny_cpu.yaml")
    assert not set(dict(leaf_items(OmegaConf.to_container(written)))) & set(device)
    package = Path(__file__).resolve().parents[2] / "cof_plugins"
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for needle in ("num_data_storage_units", "rollout.name=hf", "trainer.device=cpu"):
            assert needle not in text, f"{path} restates the CPU overlay ({needle})"
