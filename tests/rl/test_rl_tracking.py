"""GPU RL recipes log to TensorBoard and dump rollouts; `cof viz` draws from verl's dump.

The curves test uses verl's own `Tracking` with the recipe's logger and TENSORBOARD_DIR. The
dump is written by verl's own `RayPPOTrainer._log_rollout_data` from a real `DataProto`: the
token ids of a prompt built from a parquet row of `cof data to-parquet` and of a two-turn
response (a zoom call, the crop's user turn, an answer), as the agent loop lays them out,
tokenised with the tiny model's tokenizer. verl decodes them itself, as in training.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cof_plugins.assets import recipes_dir
from cof_plugins.cli import main as cof_main


def _gpu(path) -> bool:
    """Not a CPU recipe: neither `trainer.device: cpu` nor the CPU overlay."""
    text = path.read_text()
    return "\n  device: cpu" not in text and "- overlays/cpu" not in text


GPU_RECIPES = sorted(p.stem for p in (recipes_dir() / "rl").glob("*.yaml") if _gpu(p))


@pytest.mark.parametrize("name", GPU_RECIPES)
def test_gpu_recipes_track_locally_and_dump_rollouts(name, monkeypatch, tmp_path):
    from cof_plugins.verl.recipe import compose_recipe, resolve

    monkeypatch.setenv("COF_CKPT_DIR", str(tmp_path))
    config = resolve(compose_recipe(name))
    trainer = config.trainer
    assert list(trainer.logger) == ["console", "tensorboard"]
    run_dir = trainer.default_local_dir
    assert run_dir.startswith(str(tmp_path))
    assert trainer.rollout_data_dir == f"{run_dir}/rollouts"
    assert trainer.validation_data_dir == f"{run_dir}/validation"
    env_vars = config.ray_kwargs.ray_init.runtime_env.env_vars
    assert f"{run_dir}/tensorboard" == env_vars.TENSORBOARD_DIR
    header = (recipes_dir() / "rl" / f"{name}.yaml").read_text().split("defaults:")[0]
    assert "trainer.logger=[console,wandb]" in header and "swanlab" in header


def test_verl_tracking_writes_the_cof_curves_where_the_recipe_points(monkeypatch, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from verl.utils.tracking import Tracking

    monkeypatch.setenv("TENSORBOARD_DIR", str(tmp_path / "tb"))
    tracking = Tracking("cof", "run", default_backend=["console", "tensorboard"])
    for step, rate in ((1, 0.75), (2, 0.5)):
        tracking.log({"cof/tool_use/rate": rate, "cof/acc/mean": 0.25 * step}, step=step)
    tracking.finish()
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    rates = [(e.step, e.value) for e in events.Scalars("cof/tool_use/rate")]
    assert rates == [(1, 0.75), (2, 0.5)]
    assert [e.value for e in events.Scalars("cof/acc/mean")] == [0.25, 0.5]


# ------------------------------------------------------------------ verl's rollout dump


@pytest.fixture(scope="module")
def parquet(synth_dir, tmp_path_factory) -> Path:
    """The RL parquet of the synthetic samples, plus row 12: row 0's question on another image."""
    out = tmp_path_factory.mktemp("rl")
    lines = (synth_dir / "annotations.jsonl").read_text().splitlines()
    other = json.loads(lines[1])
    twin = {
        **json.loads(lines[0]),
        "id": "twin",
        **{k: other[k] for k in ("image", "width", "height")},
    }
    ann = out / "annotations.jsonl"
    ann.write_text("\n".join([*lines, json.dumps(twin)]) + "\n")
    (out / "images").symlink_to(synth_dir / "images")
    path = out / "train.parquet"
    assert cof_main(["data", "to-parquet", "--from", str(ann), "--out", str(path)]) == 0
    return path


def _zoom(box: list[int]) -> str:
    call = {"name": "image_zoom_in_tool", "arguments": {"bbox_2d": box}}
    return f"<think>Too small; zoom in.</think>\n<tool_call>\n{json.dumps(call)}\n</tool_call>"


def _turns(row: dict, box: list[int]) -> tuple[str, str]:
    """Prompt and response text with the chat template's special tokens, as verl holds them."""
    from cof_plugins.core.protocol import load_protocol

    vision = "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>"
    prompt = "".join(
        f"<|im_start|>{m['role']}\n{m['content'].replace('<image>', vision)}<|im_end|>\n"
        for m in row["prompt"]
    )
    crop_turn = load_protocol().crop_user_turn().replace("<image>", vision)
    response = (
        f"{_zoom(box)}<|im_end|>\n<|im_start|>user\n{crop_turn}<|im_end|>\n"
        "<|im_start|>assistant\n<think>The crop shows it.</think> <answer>B</answer><|im_end|>"
    )
    return prompt + "<|im_start|>assistant\n", response


def _pad(rows: list[list[int]], pad: int) -> torch.Tensor:
    width = max(map(len, rows))
    return torch.tensor([r + [pad] * (width - len(r)) for r in rows])


@pytest.fixture(scope="module")
def dump(parquet, tiny_model, tmp_path_factory) -> dict:
    """verl's legacy trainer dumps step 3 of two rollouts (rows 0 and 2 of the parquet)."""
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer
    from verl import DataProto
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    rows = pq.read_table(parquet, columns=["prompt", "reward_model", "extra_info"]).to_pylist()
    picked, boxes = [rows[0], rows[2]], [[40, 40, 120, 120], [100, 60, 400, 300]]
    texts = [_turns(row, box) for row, box in zip(picked, boxes, strict=True)]
    prompts = [tokenizer(p, add_special_tokens=False)["input_ids"] for p, _ in texts]
    responses = [tokenizer(r, add_special_tokens=False)["input_ids"] for _, r in texts]
    batch = DataProto.from_dict(
        tensors={
            "prompts": _pad(prompts, tokenizer.pad_token_id),
            "responses": _pad(responses, tokenizer.pad_token_id),
            "token_level_scores": torch.tensor([[0.0, 1.0], [0.0, 0.1]]),
        },
        non_tensors={"reward_model": np.array([r["reward_model"] for r in picked], dtype=object)},
    )

    class Dumper:  # the parts of RayPPOTrainer its dump methods read
        global_steps = 3
        _write_generations = staticmethod(RayPPOTrainer._write_generations)
        _dump_generations = RayPPOTrainer._dump_generations
        _init_dump_executor = RayPPOTrainer._init_dump_executor
        _shutdown_dump_executor = RayPPOTrainer._shutdown_dump_executor
        _log_rollout_data = RayPPOTrainer._log_rollout_data

    dumper = Dumper()
    dumper.tokenizer = tokenizer
    dumper._init_dump_executor()
    folder = tmp_path_factory.mktemp("run") / "rollouts"
    dumper._log_rollout_data(batch, {}, {}, str(folder))
    dumper._shutdown_dump_executor()
    return {"folder": folder, "boxes": boxes, "rows": picked}


def _viz(*argv: str) -> int:
    from cof_plugins.commands import eval as cmd

    parser = argparse.ArgumentParser()
    cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["viz", *argv])
    return args.func(args)


def test_viz_draws_a_verl_dump_row_with_the_tools_crop(dump, parquet, tmp_path):
    from cof_plugins.core.zoom import load_image, zoom
    from cof_plugins.eval import verl_dump

    assert sorted(p.name for p in dump["folder"].iterdir()) == ["3.jsonl"]  # verl: STEP.jsonl
    png = tmp_path / "one.png"
    argv = [str(dump["folder"]), "--index", "1", "--data", str(parquet), "-o", str(png)]
    assert _viz(*argv) == 0 and png.is_file()
    row = json.loads((dump["folder"] / "3.jsonl").read_text().splitlines()[1])
    assert row["step"] == 3 and "<tool_call>" in row["output"] and "<|" not in row["output"]
    source = verl_dump.find_source_row(row, parquet)
    create = dump["rows"][1]["extra_info"]["tools_kwargs"]["image_zoom_in_tool"]["create_kwargs"]
    assert (source.index, source.original) == (2, create["original_image"])
    drawn = verl_dump.dump_drawing(row, source)
    box = dump["boxes"][1]
    assert drawn.boxes == [(box, True)] and len(drawn.crops) == 1
    settings = verl_dump._tool_settings(source.family, None)
    expected = zoom(load_image(source.original), source.frame, box, settings.zoom_config())
    assert np.array_equal(np.asarray(drawn.crops[0]), np.asarray(expected.crop))


def test_viz_explains_what_a_verl_dump_needs(dump, parquet, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert _viz(str(dump["folder"]), "--index", "1", "-o", out) == 2
    assert "holds text only: pass --data" in capsys.readouterr().err
    assert _viz(str(dump["folder"]), "--step", "9", "--data", str(parquet), "-o", out) == 2
    assert "no step 9; steps: 3" in capsys.readouterr().err


def test_a_question_asked_of_two_images_needs_data_row(dump, parquet, tmp_path, capsys):
    out = tmp_path / "x.png"
    # Row 0's prompt and answer are also row 12's, on another image.
    assert _viz(str(dump["folder"]), "--data", str(parquet), "-o", str(out)) == 2
    assert "rows 0, 12" in capsys.readouterr().err and not out.exists()
    argv = [str(dump["folder"]), "--data", str(parquet), "--data-row", "0", "-o", str(out)]
    assert _viz(*argv) == 0 and out.is_file()
