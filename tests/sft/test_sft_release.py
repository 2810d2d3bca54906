"""A user of the Chain-of-Focus release brings its SFT config: `cof sft` says what each key
means here, and `cof sft migrate` writes the equivalent recipe.

RELEASE below re-states, key by key, the release's `configs/sft_lora-7b.yaml` as published
(placeholder paths included), and `_release_info` its `dataset_info.json`; both are written
here from the published files' contents, not downloaded, and trimmed of keys that change
nothing here (e.g. logging steps).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from cof_plugins.commands import sft as sft_cmd
from cof_plugins.llamafactory.config import load_recipe
from cof_plugins.llamafactory.recipes import validate_recipe
from cof_plugins.llamafactory.train import refuse_release_config

from .conftest import RECIPES

RELEASE = """\
model_name_or_path: Qwen/Qwen2.5-VL-7B-Instruct
image_max_pixels: 14745600
image_min_pixels: 12544
trust_remote_code: true
deepspeed: ./LLaMA-Factory/examples/deepspeed/ds_z3_config.json
flash_attn: fa2
enable_liger_kernel: true
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 32
lora_target: all
freeze_vision_tower: true
freeze_multi_modal_projector: false
freeze_language_model: false
dataset: cof-sft-data-5.4k
dataset_dir: /your/path/to/images
template: qwen2_vl
cutoff_len: 81920
overwrite_cache: true
output_dir: /your/path/to/output
per_device_train_batch_size: 2
gradient_accumulation_steps: 2
learning_rate: 1.0e-5
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
report_to: wandb
run_name: cof-sft-7b-32rank-lora
"""

# Older release configs spell the pixel budget without the image_ prefix.
OLD_NAMES = RELEASE.replace("image_max_pixels", "max_pixels").replace("image_min", "min")


def _release_info(file_name: str) -> dict:
    tags = {"role_tag": "role", "content_tag": "content", "system_tag": "system",
            "user_tag": "user", "assistant_tag": "assistant"}  # fmt: skip
    entry = {"file_name": file_name, "formatting": "sharegpt",
             "columns": {"messages": "messages", "images": "images"}, "tags": tags}  # fmt: skip
    return {"cof-sft-data-5.4k": entry}


def cof(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="cof")
    sft_cmd.add_parser(parser.add_subparsers())
    args, extra = parser.parse_known_args(list(argv))  # as cof_plugins.cli.main does
    args.extra = extra
    return args.func(args)


def _release(tmp_path: Path, text: str = RELEASE, **changes: str) -> Path:
    config = yaml.safe_load(text)
    config.update(changes)
    path = tmp_path / "sft_lora-7b.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _migrate(tmp_path: Path, data: Path, **changes: str) -> tuple[int, Path]:
    release = _release(tmp_path, dataset_dir=str(data), **changes)
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps(_release_info(str(data / "train.json"))))
    out = tmp_path / "recipe.yaml"
    code = cof("sft", "migrate", str(release), "--dataset-info", str(info), "--out", str(out))
    return code, out


def test_cof_sft_refuses_a_release_config_naming_each_mapping(tmp_path, capsys):
    assert cof("sft", str(_release(tmp_path))) == 2
    err = capsys.readouterr().err
    assert "looks like a config of the Chain-of-Focus release" in err
    assert "template: qwen2_vl -> cof_qwen2_5_vl" in err
    assert "deepspeed: ./LLaMA-Factory/examples/deepspeed/ds_z3_config.json -> cof:zero3" in err
    assert "lora_target: all -> q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj," in err
    assert "merger.mlp.0,merger.mlp.2" in err
    assert "cof sft migrate" in err


def test_older_pixel_key_names_are_named_too(tmp_path, capsys):
    text = RELEASE.replace("image_max_pixels", "max_pixels").replace(
        "image_min_pixels", "min_pixels"
    )
    assert cof("sft", str(_release(tmp_path, text))) == 2
    err = capsys.readouterr().err
    assert "max_pixels: 14745600 -> image_max_pixels" in err
    assert "min_pixels: 12544 -> image_min_pixels" in err


def test_shipped_recipes_are_not_mistaken_for_release_configs():
    for recipe in sorted(RECIPES.glob("*.yaml")):
        config = load_recipe(recipe, ["model_name_or_path=x"])
        refuse_release_config(config, recipe)  # raises on a release-style config


def test_migrate_writes_a_recipe_llamafactory_parses(tmp_path, cof_data, tiny_model, capsys):
    code, out = _migrate(tmp_path, cof_data)
    assert code == 0 and "wrote" in capsys.readouterr().out
    recipe = yaml.safe_load(out.read_text())
    release = yaml.safe_load(RELEASE)
    assert recipe["template"] == "cof_qwen2_5_vl"
    assert recipe["deepspeed"] == "cof:zero3"
    lm = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert recipe["lora_target"].split(",") == [*lm, "merger.mlp.0", "merger.mlp.2"]
    assert recipe["freeze_multi_modal_projector"] is False and "additional_target" not in recipe
    assert recipe["dataset"] == "cof_sft"
    assert recipe["dataset_dir"] == f"cof:{cof_data / 'train.json'}"
    assert recipe["media_dir"] == str(cof_data)
    assert recipe["output_dir"] == "saves/qwen2_5_vl/lora/cof_sft"
    changed = {"template", "deepspeed", "lora_target", "dataset",
               "dataset_dir", "output_dir"}  # fmt: skip
    assert {k: v for k, v in release.items() if k not in changed} == {
        k: v for k, v in recipe.items() if k in release and k not in changed
    }
    refuse_release_config(load_recipe(out), out)  # `cof sft` takes the result
    overrides = [f"model_name_or_path={tiny_model}", f"output_dir={tmp_path / 'o'}"]
    (model, data, training, ft, _), _ = validate_recipe(out, overrides)
    assert data.template == "cof_qwen2_5_vl" and ft.additional_target is None
    assert ft.lora_target == [*lm, "merger.mlp.0", "merger.mlp.2"]
    assert ft.freeze_multi_modal_projector is False
    assert (model.image_min_pixels, model.image_max_pixels) == (112**2, 3840**2)
    assert training.report_to == ["wandb"]  # the user's choice is kept
    header = out.read_text().split("\n\n")[0]
    assert "template: qwen2_vl -> cof_qwen2_5_vl" in header


def test_in_turn_crops_get_the_masking_template(tmp_path, cof_data_in_turn):
    code, out = _migrate(tmp_path, cof_data_in_turn)
    assert code == 0
    assert yaml.safe_load(out.read_text())["template"] == "cof_qwen2_5_vl_maskvis"


def test_old_pixel_names_become_the_new_ones(tmp_path, cof_data):
    text = RELEASE.replace("image_max_pixels", "max_pixels").replace(
        "image_min_pixels", "min_pixels"
    )
    release = _release(tmp_path, text, dataset_dir=str(cof_data))
    out = tmp_path / "r.yaml"
    assert cof("sft", "migrate", str(release), "--out", str(out)) == 0
    recipe = yaml.safe_load(out.read_text())
    assert (recipe["image_max_pixels"], recipe["image_min_pixels"]) == (14745600, 12544)
    assert "max_pixels" not in recipe and "min_pixels" not in recipe


def test_missing_data_gets_the_default_folder_and_the_prepare_hint(tmp_path, capsys):
    release = _release(tmp_path)
    out = tmp_path / "r.yaml"
    assert cof("sft", "migrate", str(release), "--out", str(out)) == 0
    assert yaml.safe_load(out.read_text())["dataset_dir"] == "cof:data/cof_sft"
    assert "cof data prepare cof-sft" in capsys.readouterr().out


def test_outputs_are_never_clobbered(tmp_path, cof_data, capsys):
    code, out = _migrate(tmp_path, cof_data)
    assert code == 0
    out.write_text("mine\n")
    code, _ = _migrate(tmp_path, cof_data)
    assert code == 2 and out.read_text() == "mine\n"
    assert "--overwrite" in capsys.readouterr().err
    release = tmp_path / "sft_lora-7b.yaml"
    code = cof("sft", "migrate", str(release), "--out", str(release), "--overwrite")
    assert code == 2 and "is also the input" in capsys.readouterr().err
    code = cof("sft", "migrate", str(release), "--out", str(out), "--overwrite")
    assert code == 0 and out.read_text().startswith("# Migrated")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_dataset_the_info_file_lacks_is_named(tmp_path, capsys):
    release = _release(tmp_path, dataset="other-data")
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps(_release_info("x.json")))
    code = cof("sft", "migrate", str(release), "--dataset-info", str(info), "--out", "r.yaml")
    assert code == 2
    assert "'other-data' is not an entry" in capsys.readouterr().err
    assert not Path("r.yaml").exists()


@pytest.mark.parametrize(
    ("path", "expected"),
    [("ds_z2_config.json", "cof:zero2"), ("ds_z3_offload_config.json", "cof:zero3_offload")],
)
def test_deepspeed_stage_is_kept(tmp_path, capsys, path, expected):
    assert cof("sft", str(_release(tmp_path, deepspeed=f"/nowhere/{path}"))) == 2
    assert f"-> {expected}:" in capsys.readouterr().err


def test_released_data_and_models_are_named_with_their_real_owner():
    import re

    root = RECIPES.parents[1]
    files = [root / "README.md", *(root / "cof_plugins").rglob("*.py"), *root.glob("recipes/**/*")]
    released = r"CoF-SFT-Data-5\.4k|CoF-RL-Data|CoF-sft-model-7b|CoF-rl-model-7b"
    names = re.compile(rf"(?<![\w/.-])([\w.-]+)/({released})")  # hub ids, not local paths
    found = {m for f in files if f.is_file() for m in names.findall(f.read_text(errors="replace"))}
    assert {owner for owner, _ in found} == {"xintongzhang"}
    readme = (root / "README.md").read_text()
    assert {name for _, name in names.findall(readme)} == {
        "CoF-SFT-Data-5.4k", "CoF-RL-Data", "CoF-sft-model-7b", "CoF-rl-model-7b"
    }  # fmt: skip
