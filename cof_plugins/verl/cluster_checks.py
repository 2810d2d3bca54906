"""Checks that refuse an RL run which would waste a cluster, before any GPU is spent.

Each finding names the key to change. They run on the composed config (``cof validate`` and
``cof rl``), so a paper-scale run fails here in seconds instead of hours in:

- no checkpoint: verl 0.9.1's ``trainer.save_freq`` defaults to -1, and then the trainer
  saves nothing, not even after the last step (``trainer/ppo/v1/trainer_base.py``);
- the wrong starting model: ``${oc.env:COF_RL_MODEL,<hub id>}`` silently falls back to the
  base model when the variable is unset, while the recipe trains the SFT checkpoint;
- a missing judge: ``judge: auto`` quietly scores by rules only when no judge is configured;
- images that cannot fit: the frame plus every crop a trajectory can receive, plus text,
  against ``data.max_prompt_length``, ``data.max_response_length`` and the model's positions,
  counted with the family's processor arithmetic (``core.frame``).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from cof_plugins.core.frame import PixelBudget, image_tokens
from cof_plugins.verl.recipe import lookup, select

MODEL_KEY = "actor_rollout_ref.model.path"
MULTI_TURN = "actor_rollout_ref.rollout.multi_turn"
REWARD_KWARGS = "reward.custom_reward_function.reward_kwargs"
RUNTIME_ENV_VARS = "ray_kwargs.ray_init.runtime_env.env_vars"
JUDGE_URL_ENV = "COF_JUDGE_URL"
COF_REWARD = "pkg://cof_plugins.verl.reward"
# ``${oc.env:VAR,DEFAULT}`` exactly, as the recipes write their paths.
_ENV_FALLBACK = re.compile(r"\$\{oc\.env:(\w+),([^${}]+)\}")
# A lower bound on text tokens: BPE vocabularies of these models average about 4 characters
# a token on English prose, and the check must only fail when the run certainly cannot fit.
CHARS_PER_TOKEN = 4


def check_checkpoints(config: DictConfig, found: Any) -> None:
    """A run must write checkpoints; one without validation is only worth a warning."""
    save = select(config, "trainer.save_freq")
    if not isinstance(save, int) or save <= 0:
        found.errors.append(
            f"trainer.save_freq={save}: verl then writes no checkpoint at all, not even after "
            "the last step, and the run leaves nothing to export or resume; set "
            "trainer.save_freq=N (a checkpoint every N steps and at the end)"
        )
    test = select(config, "trainer.test_freq")
    if (not isinstance(test, int) or test <= 0) and not select(config, "trainer.val_before_train"):
        found.warnings.append(
            f"trainer.test_freq={test} and no validation before training: the run reports no "
            "validation score; set trainer.test_freq=N"
        )


def check_model_source(config: DictConfig, found: Any, unresolved: dict[str, Any]) -> None:
    """The model path must not silently fall back to the recipe's default (a base model)."""
    written = lookup(unresolved, MODEL_KEY)
    match = _ENV_FALLBACK.fullmatch(str(written)) if isinstance(written, str) else None
    if match is None or match.group(1) in os.environ:
        return
    var, default = match.groups()
    found.errors.append(
        f"{var} is not set, so {MODEL_KEY} falls back to {default!r}: the recipe's default, "
        f"not the SFT checkpoint RL should start from. Export {var}=/path/to/sft-checkpoint, "
        f"or pass {MODEL_KEY}={default} to start from it on purpose"
    )


def check_judge(config: DictConfig, found: Any) -> None:
    """``judge: auto`` or ``on`` needs a judge URL where the reward workers will read it."""
    if select(config, "reward.custom_reward_function.path") != COF_REWARD:
        return
    mode = str(select(config, f"{REWARD_KWARGS}.judge", default="auto"))
    if mode not in ("auto", "on"):
        return
    in_runtime_env = select(config, f"{RUNTIME_ENV_VARS}.{JUDGE_URL_ENV}")
    if in_runtime_env or os.environ.get(JUDGE_URL_ENV):
        if not in_runtime_env and _external_cluster(config):
            found.warnings.append(
                f"{JUDGE_URL_ENV} is set in this shell only: Ray workers on other nodes will not "
                f"see it; pass +{RUNTIME_ENV_VARS}.{JUDGE_URL_ENV}=... (and COF_JUDGE_MODEL)"
            )
        return
    found.errors.append(
        f"{REWARD_KWARGS}.judge={mode!r} expects an LLM judge, but {JUDGE_URL_ENV} is set "
        f"neither in this environment nor in {RUNTIME_ENV_VARS}: answers the rules cannot "
        "settle would silently score as wrong. Start one (launch/judge_server.sh) and export "
        f"{JUDGE_URL_ENV} and COF_JUDGE_MODEL, or score by rules only on purpose: "
        f"{REWARD_KWARGS}.judge=off"
    )


def _external_cluster(config: DictConfig) -> bool:
    nodes = select(config, "trainer.nnodes") or 1
    return nodes > 1 or select(config, "ray_kwargs.ray_init.address") not in (None, "", "local")


@dataclass(frozen=True)
class TokenBudget:
    """The worst case one trajectory can reach, in tokens, and where each figure comes from."""

    frame: int
    crop: int
    crops: int
    prompt_text: int
    crop_text: int
    frame_source: str
    # The frame's budget is the to-parquet default, not read from the data (not on this host).
    frame_assumed: bool

    @property
    def prompt(self) -> int:
        return self.frame + self.prompt_text

    @property
    def response(self) -> int:
        return self.crops * (self.crop + self.crop_text)


def check_token_budget(config: DictConfig, found: Any) -> None:
    """Frame + most crops + text must fit the prompt, response and model lengths."""
    settings = tool_settings(config)
    if settings is None:
        return
    crops = max_crops(config, settings.max_images)
    if crops is None:
        found.warnings.append(
            f"{MULTI_TURN}.max_assistant_turns is unset: the number of crops per trajectory "
            "is unbounded, so their image tokens cannot be checked against the lengths"
        )
        return
    budget = token_budget(config, settings, crops)
    prompt_error, *errors = budget_errors(config, budget)
    if prompt_error:
        (found.warnings if budget.frame_assumed else found.errors).append(prompt_error)
    found.errors.extend(e for e in errors if e)


def max_crops(config: DictConfig, max_images: int | None = None) -> int | None:
    """Most crops one trajectory can receive: every assistant turn but the last may call,
    and the tool's ``max_images`` (question image included) caps them all."""
    assistant = select(config, f"{MULTI_TURN}.max_assistant_turns")
    if not assistant:
        return None if max_images is None else max_images - 1
    user = select(config, f"{MULTI_TURN}.max_user_turns") or assistant
    calls = select(config, f"{MULTI_TURN}.max_parallel_calls") or 1
    crops = max(0, min(assistant - 1, user)) * calls
    return crops if max_images is None else min(crops, max_images - 1)


def token_budget(config: DictConfig, settings: Any, crops: int) -> TokenBudget:
    from cof_plugins.core.protocol import load_protocol

    cap = _processor_cap(select(config, MODEL_KEY))
    frame_budget, source = _frame_budget(config)
    zoom = settings.zoom_config()
    crop_budget = PixelBudget(zoom.min_pixels, zoom.max_pixels)
    protocol = load_protocol(settings.protocol)
    first = protocol.system + protocol.first_user_turn("?")
    return TokenBudget(
        frame=_largest(frame_budget, cap, settings.family),
        crop=_largest(crop_budget, cap, settings.family),
        crops=crops,
        prompt_text=len(first) // CHARS_PER_TOKEN,
        crop_text=len(protocol.crop_user_turn()) // CHARS_PER_TOKEN,
        frame_source=source,
        frame_assumed=source.startswith("assumed"),
    )


def budget_errors(config: DictConfig, budget: TokenBudget) -> list[str | None]:
    """[prompt, response, positions]: a message for each length the worst-case
    trajectory exceeds (naming the keys to change), None where it fits."""
    prompt_len = select(config, "data.max_prompt_length")
    response_len = select(config, "data.max_response_length")
    tool = select(config, f"{MULTI_TURN}.tool_config_path")
    out: list[str | None] = [None, None, None]
    if budget.prompt > prompt_len:
        out[0] = (
            f"data.max_prompt_length={prompt_len} cannot hold the question: its frame alone is "
            f"up to {budget.frame} image tokens ({budget.frame_source}) plus about "
            f"{budget.prompt_text} of text; raise data.max_prompt_length to at least "
            f"{budget.prompt} or build the data with a smaller --max-pixels"
        )
    if budget.response > response_len:
        out[1] = (
            f"data.max_response_length={response_len} cannot hold {budget.crops} crop(s) of up "
            f"to {budget.crop} image tokens each (zoom.max_pixels in {tool}) plus about "
            f"{budget.crop_text} tokens of instruction after each: at least {budget.response}; "
            f"raise data.max_response_length, lower zoom.max_pixels, or lower "
            f"{MULTI_TURN}.max_assistant_turns / max_parallel_calls / the tool's max_images"
        )
    positions = _max_positions(select(config, MODEL_KEY))
    total = prompt_len + response_len
    if positions and total > positions:
        out[2] = (
            f"data.max_prompt_length + data.max_response_length = {total} exceeds the model's "
            f"{positions} positions (max_position_embeddings); lower them"
        )
    # (limit_images against the images a rollout can hold: tool_settings.rollout_problems.)
    return out


def _largest(budget: PixelBudget, cap: int | None, family: str) -> int:
    """Image tokens of the largest image a budget admits (and the processor's own cap)."""
    if cap:
        from cof_plugins.core.families import get_family

        cap //= get_family(family).vision.budget_scale  # GLM's processor counts 2 frames
        budget = PixelBudget(min(budget.min_pixels, cap), min(budget.max_pixels, cap))
    side = math.isqrt(budget.max_pixels)
    return image_tokens((side, side), family, budget)


def _frame_budget(config: DictConfig) -> tuple[PixelBudget, str]:
    """The data's own budget (rows carry min/max_pixels), or the to-parquet default."""
    files = select(config, "data.train_files")
    if OmegaConf.is_list(files) or isinstance(files, list | tuple):
        files = files[0] if len(files) else None
    path = Path(str(files)).expanduser() if files else None
    if path is not None and path.is_file():
        budget = _parquet_budget(path)
        if budget is not None:
            return budget, f"budget of the rows in {path.name}"
    return PixelBudget(), "assumed: the default budget of `cof data to-parquet`, data not here"


def _parquet_budget(path: Path) -> PixelBudget | None:
    try:
        import pyarrow.parquet as pq

        rows = pq.read_table(path, columns=["images"]).column("images").to_pylist()
    except Exception:  # not our layout: nothing to learn from it
        return None
    bounds = [
        (int(i["min_pixels"]), int(i["max_pixels"]))
        for row in rows
        for i in row or []
        if isinstance(i, dict) and i.get("max_pixels")
    ]
    if not bounds:
        return None
    return PixelBudget(min(b[0] for b in bounds), max(b[1] for b in bounds))


def _model_file(path: Any, name: str) -> dict[str, Any] | None:
    file = Path(str(path)).expanduser() / name if path else None
    if file is None or not file.is_file():
        return None
    return json.loads(file.read_text(encoding="utf-8"))


def _processor_cap(path: Any) -> int | None:
    """The processor's own max_pixels (a local checkpoint only; hub ids are not fetched).

    transformers 5 saves it nested in ``processor_config.json``; older checkpoints keep a
    ``preprocessor_config.json`` with ``max_pixels``.
    """
    pre = (_model_file(path, "processor_config.json") or {}).get("image_processor")
    pre = pre or _model_file(path, "preprocessor_config.json") or {}
    return pre.get("max_pixels") or (pre.get("size") or {}).get("longest_edge")


def _max_positions(path: Any) -> int | None:
    config = _model_file(path, "config.json") or {}
    text = config.get("text_config") or {}
    return text.get("max_position_embeddings") or config.get("max_position_embeddings")


def tool_settings(config: DictConfig) -> Any:
    """The zoom tool's settings from the tool YAML (None when it is not CoF's tool)."""
    from cof_plugins.verl.tool_settings import parse_settings

    path = select(config, f"{MULTI_TURN}.tool_config_path")
    if not path or not Path(path).is_file():
        return None
    for tool in OmegaConf.to_container(OmegaConf.load(path)).get("tools", []):
        if str(tool.get("class_name", "")).startswith("cof_plugins."):
            return parse_settings(tool.get("config"))
    return None
