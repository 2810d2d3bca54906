"""``ZoomInTool``: CoF's ``image_zoom_in_tool`` as a verl ``BaseTool``.

verl 0.9.1's ToolAgentLoop calls ``create(create_kwargs=...)`` (the row's
``extra_info.tools_kwargs.image_zoom_in_tool.create_kwargs`` as ONE keyword), then
``execute(instance_id, arguments, agent_data=...)``, then ``release`` for every single call
it runs (the first ``max_parallel_calls`` calls of a turn, concurrently).
The frame the model saw is ``agent_data.image_data[0]``; the original's path and the frame
size the data was built for come in ``create_kwargs``.

What a call does is ``core.zoom_step.run_call``, the same function the evaluation loop runs:
this class only finds the call's images and its place in the turn, and turns the outcome
into verl's ``ToolResponse``.

Never raises at the model: a bad box, an unreadable call (see ``tool_parser``) or an internal
failure all come back as text, with a small configurable step penalty for the model's own
mistakes and none for setup errors. verl discards ``execute``'s metrics, so the statistics go
into ``agent_data.extra_fields``, which reaches the reward function's ``extra_info`` (via the
agent loop's ``tool_extra_fields``). Keys, all scalars so verl can batch them; rollouts that
never call the tool lack them (the reward sees None):
``cof_zoom_calls``, ``cof_zoom_valid``, ``cof_zoom_invalid``, ``cof_zoom_parse_errors``,
``cof_zoom_setup_errors``, ``cof_zoom_crop_pixels`` (sum) and ``cof_zoom_max_crop_pixels``.

Pixels are decoded and resampled in a worker thread, off the agent loop's event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from uuid import uuid4

from PIL import Image
from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from cof_plugins.core.parser import ZOOM_TOOL, ToolCallError, call_from_arguments
from cof_plugins.core.protocol import load_protocol
from cof_plugins.core.zoom import ImageLoadError, load_image
from cof_plugins.core.zoom_step import CallOutcome, StepConfig, model_safe, run_call
from cof_plugins.verl.tool_parser import PARSE_ERROR_KEY
from cof_plugins.verl.tool_settings import ToolSettings, parse_settings

__all__ = ["STAT_PREFIX", "ZoomInTool", "model_safe", "record_stats"]

log = logging.getLogger(__name__)

STAT_PREFIX = "cof_zoom_"
# Where a tool keeps, per rollout, which calls of the current turn it has placed.
_CLAIMS = "_cof_zoom_claims"


@dataclass(frozen=True)
class _Instance:
    original_image: str | None
    frame_size: tuple[int, int] | None
    family: str | None


@dataclass(frozen=True)
class _Outcome:
    response: ToolResponse
    reward: float
    kind: str  # "valid", "invalid", "parse_error", "limit" or "setup_error"
    crop_pixels: int = 0


class _SetupError(Exception):
    """Not the model's fault: data and config disagree; the message says how to fix it."""


class ZoomInTool(BaseTool):
    """Crop, enlarge and return the region a model asks for (``class_name`` in the tool YAML)."""

    def __init__(self, config: dict, tool_schema: OpenAIFunctionToolSchema | None = None):
        # Cheap on purpose: verl's trainer also builds tools (to filter prompts by length).
        self.settings: ToolSettings = parse_settings(config)
        self.zoom_config = self.settings.zoom_config()
        self._instances: dict[str, _Instance] = {}
        self._warned: set[str] = set()
        super().__init__(config, tool_schema)

    def get_openai_tool_schema(self) -> OpenAIFunctionToolSchema:
        """Without ``tool_schema`` in the YAML, the protocol preset's schema is the one source."""
        return OpenAIFunctionToolSchema.model_validate(self.protocol.tool_schema)

    @cached_property
    def protocol(self):
        return load_protocol(self.settings.protocol)

    async def create(
        self, instance_id: str | None = None, **kwargs: Any
    ) -> tuple[str, ToolResponse]:
        create_kwargs = dict(kwargs.get("create_kwargs") or {})
        create_kwargs.update({k: v for k, v in kwargs.items() if k != "create_kwargs"})
        instance_id = instance_id or uuid4().hex
        frame = create_kwargs.get("frame_size")
        self._instances[instance_id] = _Instance(
            original_image=create_kwargs.get("original_image"),
            frame_size=(int(frame[0]), int(frame[1])) if frame else None,
            family=create_kwargs.get("family"),
        )
        return instance_id, ToolResponse()

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        self._instances.pop(instance_id, None)

    async def execute(
        self, instance_id: str, parameters: dict[str, Any], **kwargs: Any
    ) -> tuple[ToolResponse, float, dict]:
        agent_data = kwargs.get("agent_data")
        instance = self._instances.get(instance_id) or _Instance(None, None, None)
        try:
            outcome = await self._run(instance, parameters, agent_data)
        except _SetupError as exc:
            self._warn_once(str(exc))
            outcome = self._failure(f"The zoom tool cannot be used here: {exc}", "setup_error")
        except Exception as exc:  # the model must never see a traceback or lose its turn
            log.exception("zoom tool failed")
            outcome = self._failure(f"The zoom tool failed ({type(exc).__name__}).", "setup_error")
        metrics = record_stats(agent_data, outcome.kind, outcome.crop_pixels)
        return outcome.response, outcome.reward, metrics

    async def _run(self, instance: _Instance, parameters: Any, agent_data: Any) -> _Outcome:
        if isinstance(parameters, dict) and PARSE_ERROR_KEY in parameters:
            attempt = ToolCallError("", str(parameters[PARSE_ERROR_KEY]))
        else:
            attempt = call_from_arguments(ZOOM_TOOL, parameters)
        frame = self._frame_image(agent_data, instance)
        index = call_index(agent_data, parameters)
        images_held = len(getattr(agent_data, "image_data", None) or [])
        step = self.step_config
        if step.zoom.full_resolution and not isinstance(attempt, ToolCallError):
            original = await self._original(instance, frame)
        else:
            original = None
        outcome = await asyncio.to_thread(
            run_call, attempt, frame, original, step, images_held=images_held, index=index
        )
        return self._outcome(outcome)

    @cached_property
    def step_config(self) -> StepConfig:
        return self.settings.step_config(self.protocol.user_suffix)

    def _frame_image(self, agent_data: Any, instance: _Instance) -> Image.Image:
        images = getattr(agent_data, "image_data", None) or []
        if not images or not isinstance(images[0], Image.Image):
            raise _SetupError("this conversation has no image to zoom into")
        frame = images[0].size
        family = instance.family
        if family and family != self.settings.family:
            raise _SetupError(
                f"the data was prepared for family {family!r} but the tool is configured for "
                f"{self.settings.family!r}; set config.family in the tool YAML to match"
            )
        if self.settings.strict_frame and instance.frame_size and instance.frame_size != frame:
            w, h = instance.frame_size
            raise _SetupError(
                f"the model was shown a {frame[0]}x{frame[1]} image but the data expects a "
                f"{w}x{h} frame; the rollout's pixel budget (the row's images min/max_pixels) "
                f"differs from the one the data was built with; rebuild the data or the budget"
            )
        return images[0]

    async def _original(self, instance: _Instance, frame: Image.Image) -> Image.Image | None:
        """The full-resolution original when the data names one; None crops the frame."""
        if not instance.original_image:
            return None
        try:
            return await asyncio.to_thread(
                load_image, instance.original_image, max_image_pixels=self.settings.max_image_pixels
            )
        except (ImageLoadError, OSError, TypeError) as exc:
            self._warn_once(f"cropping the frame instead of the original: {exc}")
            return None

    def _outcome(self, outcome: CallOutcome) -> _Outcome:
        if outcome.kind == "valid":
            reward, kind = float(self.settings.valid_call_reward), "valid"
        elif outcome.penalised:
            reward, kind = float(self.settings.invalid_call_reward), outcome.kind
        else:  # the image cap: not the model's mistake
            reward, kind = 0.0, "limit"
        if outcome.image is None:
            response = ToolResponse(text=outcome.text)
        else:
            response = ToolResponse(image=[outcome.image], text=outcome.text)
        pixels = outcome.image.width * outcome.image.height if kind == "valid" else 0
        return _Outcome(response, reward, kind, pixels)

    def _failure(self, message: str, kind: str) -> _Outcome:
        text = f"{model_safe(message)}\n{self.protocol.user_suffix}"
        reward = 0.0 if kind == "setup_error" else float(self.settings.invalid_call_reward)
        return _Outcome(ToolResponse(text=text), reward, kind)

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("zoom tool: %s", message)


def call_index(agent_data: Any, parameters: Any) -> int:
    """This call's place among its turn's calls; verl runs them concurrently and does not say.

    Found by matching the decoded arguments against ``agent_data.tool_calls`` (what verl
    decodes them from); equal calls take their places in turn. The claims are kept on
    ``agent_data`` under a private attribute and start afresh with each assistant turn.
    """
    calls = getattr(agent_data, "tool_calls", None) or []
    turn = getattr(agent_data, "assistant_turns", None)
    claims = getattr(agent_data, _CLAIMS, None)
    if claims is None or claims[0] != turn:
        claims = (turn, set())
        try:
            setattr(agent_data, _CLAIMS, claims)
        except AttributeError:
            return 0
    for i, call in enumerate(calls):
        if i in claims[1]:
            continue
        try:
            arguments = json.loads(getattr(call, "arguments", None))
        except (TypeError, ValueError):
            continue
        if arguments == parameters:
            claims[1].add(i)
            return i
    return 0


def record_stats(agent_data: Any, kind: str, crop_pixels: int = 0) -> dict[str, int]:
    """Count one call in ``agent_data.extra_fields``, which reaches the reward."""
    fields = getattr(agent_data, "extra_fields", None)
    if not isinstance(fields, dict):
        fields = {}
    key = {"valid": "valid", "setup_error": "setup_errors", "limit": "limit"}.get(kind, "invalid")
    increments = {"calls": 1, key: 1}
    if kind == "parse_error":
        increments["parse_errors"] = 1
    names = ("calls", "valid", "invalid", "parse_errors", "setup_errors", "limit", "crop_pixels")
    for name in names:
        fields.setdefault(STAT_PREFIX + name, 0)
    for name, n in increments.items():
        fields[STAT_PREFIX + name] += n
    fields[STAT_PREFIX + "crop_pixels"] += crop_pixels
    best = fields.get(STAT_PREFIX + "max_crop_pixels") or 0
    fields[STAT_PREFIX + "max_crop_pixels"] = max(best, crop_pixels)
    return {"kind": kind, "crop_pixels": crop_pixels}
