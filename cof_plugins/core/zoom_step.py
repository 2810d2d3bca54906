"""The zoom step: one assistant turn's tool calls in, crops and the model's replies out.

The verl tool (``cof_plugins.verl.tool``) and the evaluation loop (``cof_plugins.eval.loop``)
both call this module, so a call is validated, cropped and answered by the same code in RL
and in evaluation; ``tests/rl/test_zoom_step_parity.py`` feeds the same text to both.

A turn's calls are read by ``core.parser.parse_turn`` (``ParsedTurn.attempts``, in text
order: readable calls and the unreadable ones). ``run_turn`` picks the calls the profile
runs (all, the first, or the first N), then ``run_call`` turns each into a ``CallOutcome``:
an image or not, and the text that follows it. Each outcome is one reply: verl sends it as
one tool message, evaluation joins a turn's replies into one user turn exactly as the chat
template joins consecutive tool messages (``user_content``), so the model reads the same
tokens either way.

Where RL and evaluation legitimately differ, the profile says so (``StepConfig.for_stage``):
the release runs every call of an RL turn but only the first in evaluation, and returns the
whole frame scaled 2x for a failed call in evaluation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from cof_plugins.core.box_check import validate_box
from cof_plugins.core.coords import to_frame_pixels
from cof_plugins.core.frame import PixelBudget, frame_size, get_family, smart_resize
from cof_plugins.core.parser import ToolCall, ToolCallError
from cof_plugins.core.profiles import (
    FAILED_CALL_REPLIES,
    Profile,
    call_cap,
    check_call_policy,
    get_profile,
)
from cof_plugins.core.protocol import IMAGE_PLACEHOLDER
from cof_plugins.core.zoom import ZoomConfig, ZoomResult, resample_filter, zoom

Attempt = ToolCall | ToolCallError
KINDS = ("valid", "invalid", "parse_error", "limit")
# Box space the model writes in, per convention, so errors speak the model's own units.
_CONVENTION_FRAME = {"rel1000": (1000, 1000), "rel1": (1, 1)}
_SPECIAL = re.compile(r"<\|([^<>|]{0,40})\|>")


@dataclass(frozen=True)
class StepConfig:
    """How one stage (RL or evaluation) runs a turn's calls; build it with ``for_stage``."""

    zoom: ZoomConfig
    convention: str  # how the model writes boxes: "abs", "rel1000", "rel1"
    suffix: str  # the protocol's instruction, sent after every reply
    calls: str | int = "first"
    failed_call: str = "message"  # or "whole_frame"
    max_images: int | None = None  # images a conversation may hold; None: no cap here
    crop_note: bool = False  # prefix a crop's text with "Zoomed into ..."

    def __post_init__(self) -> None:
        check_call_policy(self.calls, "StepConfig.calls")
        if self.failed_call not in FAILED_CALL_REPLIES:
            raise ValueError(
                f"StepConfig.failed_call must be one of {', '.join(FAILED_CALL_REPLIES)}, "
                f"got {self.failed_call!r}"
            )
        if self.max_images is not None and self.max_images < 1:
            raise ValueError(f"StepConfig.max_images must be >= 1, got {self.max_images}")

    @classmethod
    def for_stage(
        cls,
        profile: str | Profile,
        stage: str,
        *,
        family: str,
        suffix: str,
        coords: str | None = None,
        zoom: dict[str, Any] | None = None,
        **options: Any,
    ) -> StepConfig:
        """The step of ``stage`` ("rl" or "eval") under ``profile``; ``zoom`` overrides
        ``ZoomConfig`` fields (pixel caps, ...), ``options`` the other fields."""
        if stage not in ("rl", "eval"):
            raise ValueError(f"stage must be 'rl' or 'eval', got {stage!r}")
        prof = get_profile(profile)
        config = ZoomConfig.for_family(family, **{**prof.zoom, **(zoom or {})})
        rl = stage == "rl"
        return cls(
            zoom=config,
            convention=coords or get_family(family).coords,
            suffix=suffix,
            calls=prof.rl_calls if rl else prof.eval_calls,
            failed_call="message" if rl else prof.eval_failed_call,
            **options,
        )


@dataclass(frozen=True)
class CallOutcome:
    """One call's reply: ``image`` (or None) followed by ``text``; ``kind`` counts it."""

    kind: str  # one of KINDS
    image: Image.Image | None
    text: str
    message: str = ""  # what the parser or the zoom said, for records
    bbox: tuple[float, ...] | None = None  # as the model wrote it
    box: tuple[float, ...] | None = None  # in frame pixels
    result: ZoomResult | None = None
    source: str = ""  # where the image came from: original, frame, whole_frame

    @property
    def penalised(self) -> bool:
        """The model's own mistake (a bad box or an unreadable call)."""
        return self.kind in ("invalid", "parse_error")

    @property
    def content(self) -> str:
        """This reply as string content with an ``<image>`` placeholder."""
        return (IMAGE_PLACEHOLDER if self.image is not None else "") + self.text


@dataclass(frozen=True)
class TurnResult:
    """The replies to one turn, in call order, and how many calls were not run."""

    outcomes: list[CallOutcome]
    not_run: int = 0

    @property
    def images(self) -> list[Image.Image]:
        return [o.image for o in self.outcomes if o.image is not None]

    def user_content(self) -> str:
        """One user turn holding every reply, as the chat template renders tool messages."""
        return "".join(o.content for o in self.outcomes)

    def counts(self) -> dict[str, int]:
        return count(self.outcomes)


def count(outcomes: Sequence[CallOutcome]) -> dict[str, int]:
    """Calls by kind, with the RL statistics' conventions (parse errors are also invalid)."""
    out = {"calls": len(outcomes), "valid": 0, "invalid": 0, "parse_errors": 0, "limit": 0}
    for o in outcomes:
        key = {"valid": "valid", "limit": "limit"}.get(o.kind, "invalid")
        out[key] += 1
        out["parse_errors"] += o.kind == "parse_error"
    pixels = [o.image.width * o.image.height for o in outcomes if o.kind == "valid" and o.image]
    out["crop_pixels"], out["max_crop_pixels"] = sum(pixels), max(pixels, default=0)
    return out


def select_calls(attempts: Sequence[Attempt], policy: str | int) -> list[Attempt]:
    """The calls of a turn that run under ``policy``, in text order."""
    cap = call_cap(policy)
    return list(attempts if cap is None else attempts[:cap])


def run_turn(
    attempts: Sequence[Attempt],
    frame: Image.Image,
    original: Image.Image | None,
    config: StepConfig,
    *,
    images_held: int = 1,
) -> TurnResult:
    """Run the calls ``config.calls`` selects; ``images_held`` counts images before the turn."""
    chosen = select_calls(attempts, config.calls)
    outcomes = [
        run_call(a, frame, original, config, images_held=images_held, index=i)
        for i, a in enumerate(chosen)
    ]
    return TurnResult(outcomes, len(attempts) - len(chosen))


def run_call(
    attempt: Attempt,
    frame: Image.Image,
    original: Image.Image | None,
    config: StepConfig,
    *,
    images_held: int = 1,
    index: int = 0,
) -> CallOutcome:
    """One call, the ``index``-th of its turn: a crop, or a reply saying what went wrong.

    Call ``index`` runs only while ``images_held + index < max_images``: siblings earlier in
    the turn are counted as if each returned an image, so RL (whose calls run concurrently)
    and evaluation refuse the same calls.
    """
    if config.max_images is not None and images_held + index >= config.max_images:
        message = (
            f"The zoom was not run: this conversation already holds {config.max_images} "
            "images, the most allowed. Answer from the images you have."
        )
        return CallOutcome("limit", None, _with_suffix(message, config), message)
    if isinstance(attempt, ToolCallError):
        return _failed("parse_error", attempt.message, frame, config, problem="box")
    bbox = attempt.bbox
    box, problem = _to_frame_pixels(bbox, frame.size, config)
    if box is None:
        return _failed("invalid", problem, frame, config, bbox=bbox, problem="box")
    source = original if config.zoom.full_resolution and original is not None else frame
    result = zoom(source, frame.size, list(box), config.zoom)
    if not result.ok:
        return _failed(
            "invalid", result.message, frame, config, bbox=bbox, box=box, result=result,
            problem=result.problem,
        )  # fmt: skip
    note = model_safe(result.message) if config.crop_note else ""
    text = f"{note}\n{config.suffix}"
    where = "original" if result.from_original else "frame"
    return CallOutcome("valid", result.crop, text, result.message, bbox, box, result, where)


def _to_frame_pixels(bbox: Any, frame: tuple[int, int], config: StepConfig) -> tuple[Any, str]:
    """The box in frame pixels; relative boxes are checked in the model's own units first."""
    if bbox is None:
        return None, "The call has no bbox_2d. Give bbox_2d as [x1, y1, x2, y2]."
    if config.convention in _CONVENTION_FRAME:
        units = _CONVENTION_FRAME[config.convention]
        check = validate_box(list(bbox), units, clamp=config.zoom.clamp)
        if not check.ok:
            return None, check.message
        bbox = check.box
    return to_frame_pixels(bbox, config.convention, frame), ""


def _failed(
    kind: str,
    message: str,
    frame: Image.Image,
    config: StepConfig,
    *,
    problem: str,
    **fields: Any,
) -> CallOutcome:
    """A call without a crop: the message, or (release evaluation) the whole frame."""
    if config.failed_call == "whole_frame":
        # The release's crop(None) returns the whole frame, resized as a crop would be; a
        # region its resize cannot handle raises there and the frame is sent as it is.
        image = frame.copy() if problem == "degenerate" else whole_frame(frame, config.zoom)
        text = "\n" + config.suffix
        return CallOutcome(kind, image, text, message, source="whole_frame", **fields)
    return CallOutcome(kind, None, _with_suffix(message, config), message, **fields)


def whole_frame(frame: Image.Image, config: ZoomConfig) -> Image.Image:
    """The whole frame upscaled like a crop (2x, then smart-resized into the crop budget)."""
    w, h = frame.size
    size = smart_resize(
        h * config.upscale, w * config.upscale, config.factor, config.min_pixels,
        config.max_pixels, rounding=config.rounding,
    )  # fmt: skip
    out = frame.resize((size[1], size[0]), config.filter)
    return out if out.mode == "RGB" else out.convert("RGB")


def _with_suffix(message: str, config: StepConfig) -> str:
    return f"{model_safe(message)}\n{config.suffix}"


def model_safe(text: str) -> str:
    """Neutralise text that the chat template or tokenizer would read as markup.

    Error messages quote the model's own output; an ``<image>`` there would become a vision
    placeholder with no image, and ``<|im_end|>`` a real end-of-turn token.
    """
    text = text.replace(IMAGE_PLACEHOLDER, "[image]").replace("<video>", "[video]")
    return _SPECIAL.sub(r"<\1>", text)


def make_frame(
    image: Image.Image, family: str, budget: PixelBudget, profile: str | Profile = "default"
) -> Image.Image:
    """The frame the model is shown: ``image`` smart-resized into ``budget`` as ``profile`` does."""
    prof = get_profile(profile)
    size = frame_size(image.size, family, budget, rounding=prof.frame_rounding)
    if size == image.size:
        return image
    return image.resize(size, resample_filter(prof.frame_resample))
