"""Two GRPO steps through verl's own trainer on CPU for GLM-4.1V and Qwen3.5.

The same machinery as ``test_rlcpu_grpo.py`` (``tiny_cpu`` recipe: CPU platform, FSDP2 under
gloo, hf rollout, agent loop, zoom tool, CoF reward, AGAR sampler), with the family swapped
by the overrides a family recipe sets (tool YAML, chat template, patch size) and data built
with ``--family``. Turns are scripted, as there: a random tiny model never writes a call.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from cof_plugins.core.families import get_family

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

AFTER_ZOOM = "The crop shows it clearly."
SCRIPT = {
    "first_turn": [
        '<think>Too small; zoom in.</think> <tool_call>{"name": "image_zoom_in_tool", '
        '"arguments": {"bbox_2d": [100, 100, 600, 600]}}</tool_call>',
        "<think>It is visible directly.</think> <answer>A</answer>",
    ],
    "after_zoom": [f"<think>{AFTER_ZOOM}</think> <answer>B</answer>"],
}
TIER_SCORES = {1.0, 0.8, 0.5, 0.1}  # AGAR's paper tiers: what any rollout can score here


def _cof(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cof_plugins.cli", *args], check=True, timeout=120)


def family_overrides(family: str) -> list[str]:
    """What a family's GPU recipe changes over the paper's, as overrides of ``tiny_cpu``."""
    spec = get_family(family)
    return [
        "actor_rollout_ref.rollout.multi_turn.tool_config_path="
        f"${{cof_asset:recipes/rl/tools/zoom_{family}.yaml}}",
        f"actor_rollout_ref.model.custom_chat_template=${{cof_chat_template:{spec.chat.jinja}}}",
        f"data.image_patch_size={spec.patch_size}",
    ]


@pytest.mark.parametrize("family", ["glm4v", "qwen3_5"])
def test_two_grpo_steps(family, tiny_model_factory, tmp_path):
    root = tmp_path
    _cof("data", "scenes", "-n", "4", "--sizes", "224,448", str(root / "synth"))
    (root / "data" / "rl").mkdir(parents=True)
    train = root / "data" / "rl" / "train.parquet"
    _cof("data", "to-parquet", "--from", str(root / "synth" / "annotations.jsonl"),
         "--out", str(train), "--family", family)  # fmt: skip
    (root / "data" / "rl" / "val.parquet").write_bytes(train.read_bytes())
    (root / "script.json").write_text(json.dumps(SCRIPT))
    metrics = root / "metrics.jsonl"
    env = {**os.environ, "COF_RL_MODEL": str(tiny_model_factory(family)),
           "COF_DATA_DIR": str(root / "data"), "COF_CKPT_DIR": str(root / "ckpt"),
           "COF_HF_ROLLOUT_SCRIPT": str(root / "script.json"),
           "VERL_FILE_LOGGER_PATH": str(metrics)}  # fmt: skip
    args = [
        "trainer.total_training_steps=2", "trainer.test_freq=-1",
        "trainer.logger=[console,file]", f"trainer.rollout_data_dir={root / 'dump'}",
        "data.train_batch_size=2", "actor_rollout_ref.actor.ppo_mini_batch_size=2",
        "actor_rollout_ref.rollout.n=2", "data.max_response_length=384",
        "actor_rollout_ref.actor.optim.lr=1e-4", *family_overrides(family),
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "cof_plugins.cli", "rl", "tiny_cpu", *args]
    done = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    steps = {e["step"]: e["data"] for e in map(json.loads, metrics.read_text().splitlines())}
    assert sorted(steps) == [1, 2]
    assert all(math.isfinite(s["actor/grad_norm"]) for s in steps.values())
    assert any(s["actor/grad_norm"] > 0 for s in steps.values())
    assert steps[1]["num_turns/max"] == 4 and steps[1]["cof/tool_calls/mean"] > 0
    # The reward read every turn of the family's layout: scripted turns are all well formed.
    assert all(s["cof/format_ok/mean"] == 1.0 for s in steps.values())
    rows = [json.loads(x) for x in (root / "dump" / "1.jsonl").read_text().splitlines()]
    zoomed = [r for r in rows if "<tool_call>" in r["output"]]
    assert zoomed and all(AFTER_ZOOM in r["output"] for r in zoomed)  # the crop came back
    assert {round(r["score"], 6) for r in rows} <= TIER_SCORES
