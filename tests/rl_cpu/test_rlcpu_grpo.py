"""verl's own V1 GRPO loop on CPU, end to end: `cof rl tiny_cpu` (trainer.device: cpu).

Two real steps (CPU platform, FSDP2 under gloo, hf rollout, agent loop with the zoom tool,
CoF reward, AGAR sampler, GRPO advantages, actor update, weight sync, checkpoint,
validation), then a second run that resumes from the checkpoint and trains step 3.

The rollout is scripted (``COF_HF_ROLLOUT_SCRIPT``): a random tiny model never writes a
tool call, so scripted turns stand in for a policy that does. A turn is scripted as
"after the zoom" only when its prompt holds two images, i.e. when the tool's crop really
came back into the conversation.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ZOOM = (
    '<think>{t}</think> <tool_call>{{"name": "image_zoom_in_tool", "arguments": '
    '{{"bbox_2d": [{b}]}}}}</tool_call>'
)
AFTER_ZOOM = "The crop shows it clearly."
SCRIPT = {
    "first_turn": [
        ZOOM.format(t="Too small to tell; zoom in.", b="4, 4, 60, 60"),
        "<think>It is visible directly.</think> <answer>A</answer>",
        ZOOM.format(t="Look closer.", b="8, 8, 72, 72"),
        "<think>It is visible directly.</think> <answer>B</answer>",
        "<think>It is visible directly.</think> <answer>D</answer>",
    ],
    "after_zoom": [f"<think>{AFTER_ZOOM}</think> <answer>{x}</answer>" for x in "DCA"],
}
TIERS = {"direct_correct": 1.0, "zoom_correct_when_direct_correct": 0.8, "zoom_correct": 1.0,
         "zoom_wrong": 0.5, "direct_wrong": 0.1}  # fmt: skip


def _cof(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cof_plugins.cli", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def workdir(tiny_model, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("rlcpu")
    _cof("data", "scenes", "-n", "8", "--sizes", "224,448", str(root / "synth"))
    (root / "data" / "rl").mkdir(parents=True)
    train = root / "data" / "rl" / "train.parquet"
    _cof(
        "data",
        "to-parquet",
        "--from",
        str(root / "synth" / "annotations.jsonl"),
        "--out",
        str(train),
    )
    (root / "data" / "rl" / "val.parquet").write_bytes(train.read_bytes())
    (root / "script.json").write_text(json.dumps(SCRIPT))
    return {"root": root, "model": tiny_model}


def _run(workdir: dict, name: str, *overrides: str) -> list[dict]:
    root = workdir["root"]
    metrics = root / f"{name}.jsonl"
    env = {
        **os.environ,
        "COF_RL_MODEL": str(workdir["model"]),
        "COF_DATA_DIR": str(root / "data"),
        "COF_CKPT_DIR": str(root / "ckpt"),
        "COF_HF_ROLLOUT_SCRIPT": str(root / "script.json"),
        "VERL_FILE_LOGGER_PATH": str(metrics),
    }
    args = [
        "trainer.save_freq=1", "trainer.logger=[console,file]",
        f"trainer.rollout_data_dir={root / 'dump'}", "actor_rollout_ref.actor.optim.lr=1e-4",
        "data.train_batch_size=2", "actor_rollout_ref.actor.ppo_mini_batch_size=2",
        "data.max_response_length=384", *overrides,
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "cof_plugins.cli", "rl", "tiny_cpu", *args]
    done = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads(line) for line in metrics.read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(workdir) -> dict:
    first = _run(workdir, "first", "trainer.total_training_steps=2", "trainer.test_freq=2")
    resumed = _run(
        workdir, "resumed", "trainer.total_training_steps=3", "trainer.total_epochs=2",
        "trainer.test_freq=-1", "trainer.resume_mode=auto",
    )  # fmt: skip
    return {"first": first, "resumed": resumed, **workdir}


def _by_step(log: list[dict]) -> dict[int, dict]:
    return {entry["step"]: entry["data"] for entry in log}


def _actor_state(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, weights_only=False, map_location="cpu")
    return {k: getattr(v, "_local_tensor", v) for k, v in state.items()}


def test_two_grpo_steps_update_the_policy(trained):
    from transformers import AutoModelForImageTextToText

    steps = _by_step(trained["first"])
    assert sorted(steps) == [1, 2]
    assert all(steps[s]["actor/grad_norm"] > 0 for s in steps)
    start = AutoModelForImageTextToText.from_pretrained(trained["model"]).state_dict()
    ckpt = trained["root"] / "ckpt" / "cof" / "tiny_cpu"
    after = _actor_state(ckpt / "global_step_2" / "actor" / "model_world_size_1_rank_0.pt")
    moved = [k for k in after if k in start and not torch.equal(after[k].float(), start[k].float())]
    assert len(moved) > len(after) // 2


def test_rollouts_zoom_and_the_crop_comes_back(trained):
    steps = _by_step(trained["first"])
    assert steps[1]["num_turns/max"] == 4 and steps[1]["cof/tool_calls/mean"] > 0
    rows = [json.loads(x) for x in (trained["root"] / "dump" / "1.jsonl").read_text().splitlines()]
    zoomed = [r["output"] for r in rows if "<tool_call>" in r["output"]]
    assert zoomed and all(AFTER_ZOOM in out for out in zoomed)


def _expected(group: list[dict]) -> list[float]:
    def fact(row):
        letters = re.findall(r"<answer>([A-D])</answer>", row["output"])
        return "<tool_call>" in row["output"], bool(letters) and letters[-1] == row["gts"]

    facts = [fact(r) for r in group]
    direct_ok = any(ok for zoom, ok in facts if not zoom)
    out = []
    for zoom, ok in facts:
        if not zoom:
            out.append(TIERS["direct_correct"] if ok else TIERS["direct_wrong"])
        elif ok:
            out.append(TIERS["zoom_correct_when_direct_correct" if direct_ok else "zoom_correct"])
        else:
            out.append(TIERS["zoom_wrong"])
    return out


def test_agar_scores_follow_the_paper_tiers_and_advantages_are_finite(trained):
    groups = defaultdict(list)
    for line in (trained["root"] / "dump" / "1.jsonl").read_text().splitlines():
        row = json.loads(line)
        groups[row["uid"].rsplit("_", 2)[0]].append(row)
    assert len(groups) == 2 and all(len(g) == 4 for g in groups.values())
    for group in groups.values():
        assert [r["score"] for r in group] == pytest.approx(_expected(group), abs=1e-6)
    step = _by_step(trained["first"])[1]
    low, high = step["critic/advantages/min"], step["critic/advantages/max"]
    assert math.isfinite(low) and math.isfinite(high) and low < 0 < high


def test_validation_runs_and_training_resumes_from_the_checkpoint(trained):
    assert "val-core/cof/acc/mean@1" in _by_step(trained["first"])[2]
    assert sorted(_by_step(trained["resumed"])) == [3]


def _local(value):
    return getattr(value, "_local_tensor", value)


def _optimizer_state(path: Path) -> tuple[dict[int, dict], dict]:
    state = torch.load(path, weights_only=False, map_location="cpu")
    moments = {i: {k: _local(v) for k, v in s.items()} for i, s in state["state"].items()}
    return moments, state["param_groups"][0]


def test_resume_restores_the_weights_and_the_optimizer_state(trained):
    """Step 3 of the resumed run is one AdamW step from exactly what step 2 saved.

    From the two checkpoints alone: Adam's step count goes on from step 2's; the moments
    are step 2's carried one step further (eliminating the unknown gradient g from
    m3 = b1*m2 + (1-b1)*g and v3 = b2*v2 + (1-b2)*g^2); and step 2's weights, moved by the
    update AdamW computes from step 3's moments, are step 3's weights. A resume from the
    base model, or with a fresh optimizer, fails each of these.
    """
    from transformers import AutoModelForImageTextToText

    ckpt = trained["root"] / "ckpt" / "cof" / "tiny_cpu"
    actor = {s: ckpt / f"global_step_{s}" / "actor" for s in (2, 3)}
    weights = {s: _actor_state(actor[s] / "model_world_size_1_rank_0.pt") for s in (2, 3)}
    optim = {s: _optimizer_state(actor[s] / "optim_world_size_1_rank_0.pt") for s in (2, 3)}
    names = [n for n, p in AutoModelForImageTextToText.from_pretrained(
        trained["model"]).named_parameters() if p.requires_grad]  # fmt: skip
    (m2, _), (m3, group) = optim[2], optim[3]
    assert sorted(m3) == list(range(len(names))) and sorted(m2) == sorted(m3)
    lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
    checked = 0
    for i, name in enumerate(names):
        s2, s3 = m2[i], m3[i]
        step = float(s3["step"])
        assert step == float(s2["step"]) + 1, (name, float(s2["step"]), step)
        grad = (s3["exp_avg"] - b1 * s2["exp_avg"]) / (1 - b1)
        expected_v = b2 * s2["exp_avg_sq"] + (1 - b2) * grad * grad
        torch.testing.assert_close(s3["exp_avg_sq"], expected_v, rtol=1e-3, atol=1e-12)
        w2, w3 = weights[2][name].float(), weights[3][name].float()
        denom = (s3["exp_avg_sq"].sqrt() / math.sqrt(1 - b2**step)) + eps
        expected_w = w2 * (1 - lr * wd) - (lr / (1 - b1**step)) * s3["exp_avg"] / denom
        torch.testing.assert_close(w3, expected_w, rtol=1e-4, atol=1e-6)
        checked += not torch.equal(w2, w3)
    assert checked > len(names) // 2  # the step moved most weights: nothing was skipped


def test_logged_metrics_tell_raw_score_accuracy_tool_use_and_agar_apart(trained):
    step = _by_step(trained["first"])[1]
    names = ("cof/score/mean", "cof/agar_score/mean", "cof/acc/mean", "cof/tool_use/rate",
             "cof/tool_calls/mean", "cof/format_ok/mean", "cof/judge/fallbacks_total")  # fmt: skip
    for name in names:
        assert name in step, f"{name} missing from the logged metrics: {sorted(step)}"
    assert 0.0 <= step["cof/tool_use/rate"] <= 1.0
    # AGAR reshapes scores, so the raw score and the AGAR score are logged as different facts.
    assert step["cof/score/mean"] != step["cof/agar_score/mean"]


def test_rl_checkpoint_exports_to_a_model_with_the_cof_protocol(trained, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from cof_plugins.core.chat_template import chat_template

    ckpt = trained["root"] / "ckpt" / "cof" / "tiny_cpu"
    out = tmp_path / "merged"
    _cof("export", "--rl-checkpoint", str(ckpt), "--out", str(out),
         "--min-pixels", "3136", "--max-pixels", "50176")  # fmt: skip
    processor = AutoProcessor.from_pretrained(out)
    assert processor.chat_template == chat_template()
    assert processor.image_processor.size["longest_edge"] == 50176
    merged = AutoModelForImageTextToText.from_pretrained(out).state_dict()
    latest = _actor_state(ckpt / "global_step_3" / "actor" / "model_world_size_1_rank_0.pt")
    shared = [k for k in latest if k in merged]
    assert len(shared) > len(latest) // 2
    # verl's merger writes bf16; the merged weights are the last step's, rounded once.
    assert all(torch.equal(merged[k], latest[k].to(merged[k].dtype)) for k in shared)
