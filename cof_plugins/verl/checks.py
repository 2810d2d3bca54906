"""What ``cof validate`` checks in a composed RL config, without starting Ray or a GPU.

Each check returns findings instead of raising, so one run reports every problem at once.
Errors stop ``cof rl``; warnings (data not present on this machine, reward module not
written yet) do not, because the launch machine is often not the one that trains.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from cof_plugins.verl.recipe import select

MULTI_TURN = "actor_rollout_ref.rollout.multi_turn"
# Keys printed by ``cof validate``: what a reader checks before spending GPU hours.
KEY_SETTINGS = (
    "actor_rollout_ref.model.path",
    "algorithm.adv_estimator",
    "data.train_files",
    "data.val_files",
    "data.train_batch_size",
    "data.max_prompt_length",
    "data.max_response_length",
    "data.image_patch_size",
    "actor_rollout_ref.actor.optim.lr",
    "actor_rollout_ref.actor.ppo_mini_batch_size",
    "actor_rollout_ref.actor.use_kl_loss",
    "actor_rollout_ref.actor.kl_loss_coef",
    "actor_rollout_ref.rollout.name",
    "actor_rollout_ref.rollout.n",
    "actor_rollout_ref.rollout.limit_images",
    f"{MULTI_TURN}.format",
    f"{MULTI_TURN}.max_assistant_turns",
    f"{MULTI_TURN}.max_user_turns",
    f"{MULTI_TURN}.max_tool_response_length",
    f"{MULTI_TURN}.tool_config_path",
    "actor_rollout_ref.rollout.agent.default_agent_loop",
    "reward.custom_reward_function.path",
    "reward.custom_reward_function.name",
    "trainer.nnodes",
    "trainer.n_gpus_per_node",
    "trainer.total_epochs",
    "trainer.default_local_dir",
)


@dataclass
class Findings:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


# A check reads the composed config and appends to the findings; it never raises on purpose.
Check = Callable[[DictConfig, Findings], None]


def single_turn(config: DictConfig) -> bool:
    """A single-turn recipe (SIFThinker): no tools, verl's ``single_turn_agent``."""
    loop = select(config, "actor_rollout_ref.rollout.agent.default_agent_loop")
    return not select(config, f"{MULTI_TURN}.enable") and loop == "single_turn_agent"


def check_config(config: DictConfig, unresolved: dict[str, Any] | None = None) -> Findings:
    """Run every check on a composed and resolved config.

    ``unresolved`` is the same config before resolution (``prepare`` keeps it): the model
    check needs to see ``${oc.env:...}`` fallbacks as written. Single-turn recipes skip the
    tool checks (parser, agent loop, tool YAML, crop budgets): they have no tool by design.
    """
    from cof_plugins.verl import cluster_checks as cluster

    found = Findings()
    tool_checks: list[Check] = [] if single_turn(config) else [_parser, _agent_loop, _tools]
    checks: list[Check] = [
        _types, *tool_checks, _chat_template, _reward, _data, _verl_rules,
        cluster.check_checkpoints, cluster.check_judge, cluster.check_token_budget,
    ]  # fmt: skip
    if unresolved is not None:
        checks.append(partial(cluster.check_model_source, unresolved=unresolved))
    for check in checks:
        try:
            check(config, found)
        except Exception as exc:  # a crashing check is itself a finding, not a traceback
            name = getattr(check, "__name__", None) or check.func.__name__  # type: ignore[attr-defined]
            found.errors.append(f"{name.strip('_')}: {type(exc).__name__}: {exc}")
    return found


def _types(config: DictConfig, found: Findings) -> None:
    """Numbers and booleans where verl's schema has them (``recipe.wrong_types``)."""
    from cof_plugins.verl.recipe import wrong_types

    found.errors += [f"{p}; fix the recipe or the override" for p in wrong_types(config)]


def _parser(config: DictConfig, found: Findings) -> None:
    from cof_plugins.verl.registration import registered_parsers

    name = select(config, f"{MULTI_TURN}.format")
    if name not in registered_parsers():
        found.errors.append(
            f"{MULTI_TURN}.format={name!r} is not a registered tool parser; registered: "
            f"{', '.join(registered_parsers())}"
        )
    elif name != "cof":
        found.warnings.append(
            f"{MULTI_TURN}.format={name!r}: unreadable tool calls will be dropped and end the "
            "rollout; use 'cof' so the model is told what was wrong"
        )


def _agent_loop(config: DictConfig, found: Findings) -> None:
    if not select(config, f"{MULTI_TURN}.enable"):
        found.errors.append(f"{MULTI_TURN}.enable is false: the zoom tool would never be offered")
    loop = select(config, "actor_rollout_ref.rollout.agent.default_agent_loop")
    if loop != "tool_agent":
        found.warnings.append(
            f"actor_rollout_ref.rollout.agent.default_agent_loop={loop!r}: rows without an "
            "agent_name column will not use tools (expected 'tool_agent')"
        )


def _tools(config: DictConfig, found: Findings) -> None:
    path = select(config, f"{MULTI_TURN}.tool_config_path")
    if not path:
        found.errors.append(f"{MULTI_TURN}.tool_config_path is not set")
        return
    if not Path(path).is_file():
        found.errors.append(f"{MULTI_TURN}.tool_config_path: no such file {path}")
        return
    from verl.tools.tool_registry import initialize_tools_from_config

    with contextlib.redirect_stdout(io.StringIO()):  # BaseTool prints every schema
        tools = initialize_tools_from_config(path)
    _tool_response_budget(config, tools, found)
    for tool in tools:
        _family_agrees(config, tool, found)
        _profile_agrees(config, tool, found)


def _tool_response_budget(config: DictConfig, tools: list[Any], found: Findings) -> None:
    limit = select(config, f"{MULTI_TURN}.max_tool_response_length") or 0
    for tool in tools:
        protocol = getattr(tool, "protocol", None)
        if protocol is None:
            continue
        # An error reply is a message (up to ~400 characters) followed by the suffix.
        need = len(protocol.user_suffix) + 400
        if limit < need:
            found.errors.append(
                f"{MULTI_TURN}.max_tool_response_length={limit} would cut the tool's replies "
                f"(the instruction alone is {len(protocol.user_suffix)} characters); "
                f"set it to at least {need}"
            )


def _family_agrees(config: DictConfig, tool: Any, found: Findings) -> None:
    """The tool's family, verl's image patch size and the model's type must agree."""
    from cof_plugins.core.chat_template import family_chat_template
    from cof_plugins.core.frame import get_family

    settings = getattr(tool, "settings", None)
    if settings is None:
        return
    spec = get_family(settings.family)
    patch = select(config, "data.image_patch_size")
    if patch not in (None, spec.patch_size):
        found.errors.append(
            f"data.image_patch_size={patch} but the zoom tool's family {spec.name} uses "
            f"{spec.patch_size}-pixel patches; frames would not match the data"
        )
    model_type = _model_type(select(config, "actor_rollout_ref.model.path"))
    if model_type and model_type != spec.hf_model_type:
        found.errors.append(
            f"the model at actor_rollout_ref.model.path is a {model_type!r} but the zoom tool "
            f"is configured for family {spec.name!r}; use the tool YAML of that family"
        )
    template = select(config, "actor_rollout_ref.model.custom_chat_template")
    if template and template != family_chat_template(spec):
        found.errors.append(
            f"actor_rollout_ref.model.custom_chat_template is not the CoF template of the zoom "
            f"tool's family {spec.name!r}; use ${{cof_chat_template:{spec.chat.jinja}}}"
        )


def _profile_agrees(config: DictConfig, tool: Any, found: Findings) -> None:
    """The calls verl runs per turn and its image limit fit the tool's profile."""
    from cof_plugins.verl.tool_settings import ToolSettings, rollout_problems

    settings = getattr(tool, "settings", None)
    if isinstance(settings, ToolSettings):
        found.errors.extend(rollout_problems(
            settings, select(config, f"{MULTI_TURN}.max_parallel_calls"),
            select(config, "actor_rollout_ref.rollout.limit_images"),
            select(config, f"{MULTI_TURN}.max_assistant_turns"),
        ))  # fmt: skip


def _model_type(path: Any) -> str | None:
    config = Path(str(path)).expanduser() / "config.json" if path else None
    if config is None or not config.is_file():
        return None
    return json.loads(config.read_text(encoding="utf-8")).get("model_type")


def _chat_template(config: DictConfig, found: Findings) -> None:
    import jinja2

    template = select(config, "actor_rollout_ref.model.custom_chat_template")
    if not template:
        found.errors.append(
            "actor_rollout_ref.model.custom_chat_template is not set: the stock templates do "
            "not render tool turns as the CoF data holds them; use "
            "${cof_chat_template:NAME} with the family's template ("
            + ", ".join(_family_templates())
            + ")"
        )
        return
    try:
        jinja2.Environment().parse(template)
    except jinja2.TemplateSyntaxError as exc:
        found.errors.append(f"custom_chat_template does not compile: {exc}")


def _family_templates() -> list[str]:
    from cof_plugins.core.families import FAMILIES

    return [f"{s.name}: {s.chat.jinja}" for s in FAMILIES.specs()]


def _reward(config: DictConfig, found: Findings) -> None:
    path = select(config, "reward.custom_reward_function.path")
    name = select(config, "reward.custom_reward_function.name")
    if not path:
        found.warnings.append("reward.custom_reward_function.path is unset: verl's default scorer")
        return
    if not str(path).startswith("pkg://"):
        if not Path(path).is_file():
            found.errors.append(f"reward.custom_reward_function.path: no such file {path}")
        return
    module = str(path).removeprefix("pkg://").replace("/", ".")
    if importlib.util.find_spec(module) is None:
        found.warnings.append(f"reward module {module} is not installed yet; training would fail")
        return
    if not callable(getattr(importlib.import_module(module), str(name), None)):
        found.errors.append(f"reward module {module} has no function {name!r}")


def _data(config: DictConfig, found: Findings) -> None:
    for key in ("data.train_files", "data.val_files"):
        value = select(config, key)
        files = (
            list(value) if isinstance(value, list | tuple) or OmegaConf.is_list(value) else [value]
        )
        for file in files:
            if file and not Path(str(file)).expanduser().exists():
                found.warnings.append(f"{key}: {file} does not exist on this machine")
    if select(config, "trainer.use_v1") and importlib.util.find_spec("transfer_queue") is None:
        found.warnings.append(
            "trainer.use_v1 is true but transfer_queue is not installed here; the trainer "
            "imports it (pip install 'verl[verl-core]==0.9.1')"
        )


def _verl_rules(config: DictConfig, found: Findings) -> None:
    """verl's own pre-flight validation (batch divisibility, micro-batch keys, ...)."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    # It prints and warns (e.g. "critic disabled" for GRPO); its failures are what matters here.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            validate_config(config, need_reference_policy(config), need_critic(config))
        except (AssertionError, ValueError) as exc:
            if _vllm_missing(config, exc):
                found.warnings.append(
                    "vLLM is not installed here, so verl's LoRA-rank check for vLLM (its "
                    "last check) was skipped; run `cof validate` in the RL environment"
                )
                return
            found.errors.append(f"verl's validate_config: {exc}")


def _vllm_missing(config: DictConfig, exc: Exception) -> bool:
    """verl imports vLLM to check a LoRA rank; without vLLM that import raises."""
    uses_vllm = select(config, "actor_rollout_ref.rollout.name") == "vllm"
    return uses_vllm and importlib.util.find_spec("vllm") is None and "vllm" in str(exc)


def key_settings(config: DictConfig) -> list[tuple[str, Any]]:
    """(key, value) of the settings worth reading before a run; long values shortened."""
    out = []
    for key in KEY_SETTINGS:
        value = select(config, key)
        value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        out.append((key, value))
    template = select(config, "actor_rollout_ref.model.custom_chat_template") or ""
    out.append(("actor_rollout_ref.model.custom_chat_template", f"<{len(template)} characters>"))
    return out
