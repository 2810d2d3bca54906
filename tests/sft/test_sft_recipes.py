"""Every shipped recipe parses with LLaMA-Factory's real argument parser; cof: names resolve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cof_plugins.llamafactory.config import (
    RecipeError,
    available_ds_configs,
    load_recipe,
    resolve_config,
)
from cof_plugins.llamafactory.recipes import validate_recipe

from .conftest import RECIPES

ALL = sorted(p.name for p in RECIPES.glob("*.yaml"))


def test_the_expected_recipes_ship():
    expected = {
        "paper_qwen2_5_vl_7b_lora.yaml",
        "qwen2_5_vl_7b_full.yaml",
        "tiny_cpu.yaml",
        "qwen2_5_vl_3b_single_gpu.yaml",
        "qwen2_5_vl_32b_lora.yaml",
        "qwen3_vl_8b_lora.yaml",
        "sifthinker_qwen2_5_vl_7b_lora.yaml",
        "sifthinker_tiny_cpu.yaml",
        "qwen3_5_9b_lora.yaml",
        "glm4v_9b_thinking_lora.yaml",
    }
    assert expected <= set(ALL)
    assert {"zero2", "zero3", "zero3_offload"} <= set(available_ds_configs())


def _family(name: str) -> str:
    """A recipe's family, read from its template (how an SFT recipe declares it)."""
    from cof_plugins.llamafactory.templates import family_of_template

    return family_of_template(
        str(load_recipe(RECIPES / name, ["model_name_or_path=x"])["template"])
    )


@pytest.mark.parametrize("name", ALL)
def test_recipe_parses_with_llamafactory(name, tiny_model_factory, tmp_path):
    text = (RECIPES / name).read_text()
    assert text.startswith("#") and "cof sft recipes/sft/" + name in text.replace("\\\n", "")
    model = tiny_model_factory(_family(name))
    overrides = [f"model_name_or_path={model}", f"output_dir={tmp_path}"]
    (model, data, training, finetuning, _), _ = validate_recipe(RECIPES / name, overrides)
    assert data.template.startswith("cof_")
    assert finetuning.stage == "sft" and training.do_train
    assert training.seed == 42
    assert training.report_to in ([], ["none"], "none") or "tensorboard" in training.report_to
    assert model.image_max_pixels >= model.image_min_pixels


@pytest.mark.parametrize(
    ("name", "family"),
    [("glm4v_9b_thinking_lora.yaml", "glm4v"), ("qwen3_5_9b_lora.yaml", "qwen3_5"),
     ("qwen3_vl_8b_lora.yaml", "qwen3_vl"), ("paper_qwen2_5_vl_7b_lora.yaml", "qwen2_5_vl")],
)  # fmt: skip
def test_family_recipes_declare_their_family(name, family):
    from cof_plugins.core.families import get_family

    raw = load_recipe(RECIPES / name)
    assert _family(name) == family and raw["template"] == get_family(family).cof_template
    assert raw["model_name_or_path"] == get_family(family).checkpoint
    assert (raw["image_min_pixels"], raw["image_max_pixels"]) == (112**2, 3840**2)


@pytest.mark.parametrize("name", ALL)
def test_lora_recipes_name_their_familys_targets(name):
    """The language model's and the projector's linear layers, as the family declares them."""
    from cof_plugins.core.families import get_family

    from .test_sft_projector import treatment

    raw = load_recipe(RECIPES / name, ["model_name_or_path=x"])
    if raw["finetuning_type"] == "lora":
        targets = get_family(_family(name)).llamafactory
        frozen = treatment(name) == "frozen"  # the header says the projector stays frozen
        assert raw["lora_target"] == (targets.lm_lora_targets if frozen else targets.lora_targets)


def test_paper_recipe_has_the_paper_settings(tiny_model, tmp_path):
    overrides = [f"model_name_or_path={tiny_model}", f"output_dir={tmp_path}"]
    (model, data, training, ft, _), notes = validate_recipe(
        RECIPES / "paper_qwen2_5_vl_7b_lora.yaml", overrides
    )
    lm = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert (ft.finetuning_type, ft.lora_rank) == ("lora", 32)
    assert ft.lora_target == [*lm, "merger.mlp.0", "merger.mlp.2"]  # test_sft_projector.py
    assert ft.freeze_vision_tower and not ft.freeze_multi_modal_projector
    assert ft.additional_target is None  # the projector is trained through LoRA, not fully
    assert training.learning_rate == 1e-5 and training.num_train_epochs == 3
    assert training.lr_scheduler_type == "cosine" and training.warmup_ratio == 0.1
    assert (training.per_device_train_batch_size, training.gradient_accumulation_steps) == (2, 2)
    assert data.cutoff_len == 81920 and training.bf16
    assert (model.image_min_pixels, model.image_max_pixels) == (112**2, 3840**2)
    raw = load_recipe(RECIPES / "paper_qwen2_5_vl_7b_lora.yaml")
    assert raw["deepspeed"] == "cof:zero3" and raw["enable_liger_kernel"] is True
    assert all(("set aside" in n) or ("JSON only" in n) or ("use_cpu" in n) for n in notes)


def test_sifthinker_recipe_has_the_release_settings(tiny_model, tmp_path):
    overrides = [f"model_name_or_path={tiny_model}", f"output_dir={tmp_path}"]
    (model, data, training, ft, _), _ = validate_recipe(
        RECIPES / "sifthinker_qwen2_5_vl_7b_lora.yaml", overrides
    )
    lm = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    # The release's `all`: the language model's linear layers (the projector stays frozen).
    assert (ft.finetuning_type, ft.lora_rank, ft.lora_target) == ("lora", 8, lm)
    assert training.learning_rate == 1e-4 and training.num_train_epochs == 3
    assert training.lr_scheduler_type == "cosine" and training.warmup_ratio == 0.1
    assert (training.per_device_train_batch_size, training.gradient_accumulation_steps) == (2, 8)
    assert data.cutoff_len == 2048 and data.val_size == 0.1 and training.bf16
    assert model.image_max_pixels == 262144 and ft.freeze_vision_tower


def test_a_typo_is_rejected_by_the_parser(tiny_model):
    with pytest.raises(ValueError, match="lora_rnak"):
        validate_recipe(
            RECIPES / "tiny_cpu.yaml", [f"model_name_or_path={tiny_model}", "lora_rnak=4"]
        )


def test_overrides_are_typed_like_llamafactory_cli(tmp_path):
    cfg = load_recipe(
        RECIPES / "tiny_cpu.yaml", ["learning_rate=2e-5", "max_steps=7", "model_name_or_path=/m"]
    )
    assert cfg["learning_rate"] == 2e-5 and cfg["max_steps"] == 7
    with pytest.raises(RecipeError, match="not key=value"):
        load_recipe(RECIPES / "tiny_cpu.yaml", ["learning_rate"])
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")


def test_missing_env_var_names_the_fix(monkeypatch):
    monkeypatch.delenv("COF_TINY_MODEL", raising=False)
    with pytest.raises(RecipeError, match="model_name_or_path="):
        load_recipe(RECIPES / "tiny_cpu.yaml")


def test_cof_names_resolve(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    cfg = resolve_config(
        {
            "deepspeed": "cof:zero3",
            "dataset_dir": f"cof:{data}",
            "output_dir": str(tmp_path / "out"),
        }
    )
    assert json.loads(Path(cfg["deepspeed"]).read_text())["zero_optimization"]["stage"] == 3
    info = json.loads((tmp_path / "out/cof_dataset_info/dataset_info.json").read_text())
    assert info["cof_sft"]["file_name"] == str(data / "train.json")
    assert cfg["media_dir"] == str(data)
    with pytest.raises(RecipeError, match="cof:zero3_offload"):
        resolve_config({"deepspeed": "cof:zero9", "output_dir": str(tmp_path)})
    with pytest.raises(RecipeError, match="does not exist"):
        resolve_config({"dataset_dir": "cof:/no/such/dir", "output_dir": str(tmp_path)})


def test_shipped_dataset_info_names_every_role():
    from cof_plugins.llamafactory.config import shipped_dataset_info

    entry = shipped_dataset_info()["cof_sft"]
    assert entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "messages", "images": "images"}
    tags = {
        "role_tag",
        "content_tag",
        "system_tag",
        "user_tag",
        "assistant_tag",
        "observation_tag",
        "function_tag",
    }
    assert set(entry["tags"]) == tags and all(entry["tags"].values())


@pytest.mark.parametrize("name", ALL)
def test_every_shipped_recipe_has_the_declared_types(name, tiny_model, tmp_path):
    from cof_plugins.llamafactory.arg_types import type_problems

    overrides = [f"model_name_or_path={tiny_model}", f"output_dir={tmp_path}"]
    assert type_problems(load_recipe(RECIPES / name, overrides)) == []


def test_a_value_of_the_wrong_type_stops_cof_sft_before_anything_is_written(tmp_path, capsys):
    """LLaMA-Factory's parse_dict does not check types: learning_rate=abc would reach the
    optimiser. Checked up front, each bad key named, and nothing written to output_dir."""
    from cof_plugins.cli import main

    out = tmp_path / "out"
    code = main(["sft", str(RECIPES / "tiny_cpu.yaml"), "model_name_or_path=/m",
                 f"output_dir={out}", "learning_rate=abc", "lora_rank=8.5", "bf16=maybe",
                 "--dry-run"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "learning_rate='abc': LLaMA-Factory expects a number such as 2e-5" in err
    assert "lora_rank=8.5: LLaMA-Factory expects an integer" in err
    assert "bf16='maybe': LLaMA-Factory expects true or false" in err
    assert not out.exists()
