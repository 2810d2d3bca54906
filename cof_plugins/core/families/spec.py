"""What a model family is, as data: one ``FamilySpec`` per family, read by every host.

A family is everything that changes when the base VLM changes: the frame arithmetic of its
image processor, the box convention its tool calls use, its chat format and special tokens,
the LLaMA-Factory template and multimodal plugin it extends, the transformers classes to
build it from, and what verl or the CPU cannot do with it. Host modules (``llamafactory/``,
``verl/``, ``testbed/``, ``eval/``) import the classes named here lazily, by name, so this
module stays plain Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# The aspect-ratio limit every supported image processor enforces.
MAX_ASPECT_RATIO = 200
BUDGET_RULES = ("area", "temporal")
# How sides are first rounded to the factor: the Qwen-VL image processors (transformers) round
# a side below factor/2 to 0; qwen-vl-utils (the release's tool, evaluation and data loaders)
# rounds it up to one factor and drops the factor floor when shrinking. They differ only for
# sides under factor/2 pixels and for crops near the pixel cap.
ROUNDINGS = ("processor", "qwen_vl_utils")


@dataclass(frozen=True)
class Vision:
    """Image geometry of the vision tower and how its processor reads a pixel budget.

    ``budget_rule``: ``area`` (Qwen-VL) bounds the frame's height * width by the processor's
    ``[shortest_edge, longest_edge]``; ``temporal`` (GLM-4.1V) bounds
    ``temporal_patch_size * height * width``, because the processor resizes a still image as
    a clip of that many frames, and first scales up images with a side below the factor.
    """

    patch_size: int
    merge_size: int = 2
    temporal_patch_size: int = 2
    budget_rule: str = "area"

    def __post_init__(self) -> None:
        if self.budget_rule not in BUDGET_RULES:
            raise ValueError(f"budget_rule must be one of {BUDGET_RULES}, got {self.budget_rule!r}")

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    @property
    def budget_scale(self) -> int:
        """Processor bound per frame pixel: the recipe budget times this reaches the processor."""
        return self.temporal_patch_size if self.budget_rule == "temporal" else 1


@dataclass(frozen=True)
class Tokens:
    """The family's special tokens and the roles the stack needs them in."""

    special: tuple[str, ...]  # in vocabulary order; all special (skipped when decoding)
    eos: str  # the tokenizer's eos_token
    pad: str
    end_of_turn: str  # what the model writes to end its turn; rollouts and eval stop there
    stop: tuple[str, ...]  # every token generation stops at (generation_config.eos_token_id)
    image: str  # placeholder the processor expands into one token per merged patch
    video: str
    image_span: tuple[str, str]  # tokens around an image's placeholders
    video_span: tuple[str, str]
    # Model-config attribute -> token, e.g. {"image_token_id": "<|image_pad|>"}.
    config_ids: dict[str, str] = field(default_factory=dict)

    @property
    def vision(self) -> tuple[str, ...]:
        """Every token of an image or video span (kept out of the loss in assistant turns)."""
        return (*self.image_span, *self.video_span, self.image, self.video)


@dataclass(frozen=True)
class ChatFormat:
    """How a conversation is written: the Jinja template and the same turns as string slots.

    ``user`` ends with the generation prompt, as LLaMA-Factory's slots do; ``assistant`` is
    what follows the model's text. Families whose turn-opening token also ends the model's
    turn (GLM: ``<|user|>``) have an empty ``assistant`` closing and ``opener_ends_turn``.
    """

    jinja: str  # file name in data_templates/chat_templates
    prefix: str
    system: str
    user: str
    assistant: str
    opener_ends_turn: bool = False
    think: tuple[str, str] = ("<think>", "</think>")
    answer: tuple[str, str] = ("<answer>", "</answer>")
    # Markers the model puts around a box or a final answer (GLM-4.1V); read, never written.
    box_markers: tuple[str, str] | None = None
    # Whether role names survive decoding with skip_special_tokens (Qwen: "user"/"assistant"
    # are plain text after <|im_start|>; GLM: <|user|> is one special token and vanishes).
    # The reward splits verl's decoded response into turns by it (rewards.segments).
    roles_in_decoded_text: bool = True


@dataclass(frozen=True)
class Classes:
    """transformers class names (imported lazily by the host that needs them)."""

    config: str
    processor: str
    image_processor: str
    video_processor: str
    tokenizer: str = "Qwen2TokenizerFast"
    model: str = "AutoModelForImageTextToText"


@dataclass(frozen=True)
class LlamaFactory:
    """The stock LLaMA-Factory template the CoF template extends, its multimodal plugin, and
    the LoRA targets the recipes name: the language model's linear layers (what 0.9.5's
    ``all`` finds) and the projector's (which ``all`` skips)."""

    base_template: str
    mm_plugin: str
    lm_lora_targets: str = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    projector_lora_targets: str = "merger.linear_fc1,merger.linear_fc2"

    @property
    def lora_targets(self) -> str:
        return f"{self.lm_lora_targets},{self.projector_lora_targets}"


@dataclass(frozen=True)
class Tiny:
    """How to shape a tiny random model of the family from its real config classes.

    ``text`` and ``vision`` are constant config keys of the family; ``*_sizes`` map a config
    key to the ``TinySize`` attribute that sets it (the towers name their widths
    differently); ``rope`` is ``rope_parameters`` minus ``mrope_section``, which the builder
    derives from the rotary width.
    """

    rope: dict[str, Any]
    vision: dict[str, Any]
    vision_sizes: dict[str, str]
    text: dict[str, Any] = field(default_factory=dict)
    text_sizes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FamilySpec:
    """One base-model family, declared once (``cof_plugins.core.families.<name>``)."""

    name: str
    title: str  # human name, e.g. "Qwen2.5-VL"
    hf_model_type: str  # config.json model_type; verl picks its token builder by it
    checkpoint: str  # the hub checkpoint the GPU recipes start from
    vision: Vision
    coords: str  # box convention of tool calls (core.coords)
    tokens: Tokens
    chat: ChatFormat
    classes: Classes
    llamafactory: LlamaFactory
    tiny: Tiny
    # What a trainer cannot do with this family somewhere; `cof doctor` prints these.
    limits: tuple[str, ...] = ()

    @property
    def patch_size(self) -> int:
        return self.vision.patch_size

    @property
    def merge_size(self) -> int:
        return self.vision.merge_size

    @property
    def factor(self) -> int:
        """Frame sides are multiples of this (patch size times the spatial merge)."""
        return self.vision.factor

    @property
    def cof_template(self) -> str:
        """Name of the CoF LLaMA-Factory template registered for this family."""
        return f"cof_{self.name}"

    def processor_bounds(self, min_pixels: int, max_pixels: int) -> tuple[int, int]:
        """The image processor's (shortest_edge, longest_edge) for a frame-area budget."""
        scale = self.vision.budget_scale
        return min_pixels * scale, max_pixels * scale

    def resize(
        self,
        height: int,
        width: int,
        min_pixels: int,
        max_pixels: int,
        *,
        rounding: str = "processor",
    ) -> tuple[int, int]:
        """(height, width) of the frame for a frame-area budget.

        ``processor``: as the family's real image processor does it (its own budget rule).
        ``qwen_vl_utils``: as that library resizes, whatever the family (it reads the budget
        as frame area and knows nothing of GLM's two-frame clips).
        """
        if rounding == "qwen_vl_utils":
            return smart_resize(
                height, width, self.factor, min_pixels, max_pixels, rounding=rounding
            )
        low, high = self.processor_bounds(min_pixels, max_pixels)
        if self.vision.budget_rule == "temporal":
            return temporal_resize(height, width, self.factor, low, high, self.vision)
        return smart_resize(height, width, self.factor, low, high, rounding=rounding)


def _check_size(height: float, width: float) -> None:
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"image {width}x{height} has aspect ratio above {MAX_ASPECT_RATIO}; "
            "the image processors refuse it, so crop or pad it first"
        )


def smart_resize(
    height: float,
    width: float,
    factor: int,
    min_pixels: int,
    max_pixels: int,
    *,
    rounding: str = "processor",
) -> tuple[int, int]:
    """Return (height, width): sides snapped to ``factor`` with area inside the bounds.

    ``rounding="processor"`` is the Qwen-VL image processors' arithmetic (including Python's
    round-half-even), so the result equals what the processor produces; tests check this
    against the real processors of each family. ``"qwen_vl_utils"`` is that library's
    variant, which the release used for its frames and crops (see ``ROUNDINGS``).
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; use one of {', '.join(ROUNDINGS)}")
    _check_size(height, width)
    return _snap(height, width, factor, min_pixels, max_pixels, frames=1, rounding=rounding)


def temporal_resize(
    height: int, width: int, factor: int, min_pixels: int, max_pixels: int, vision: Vision
) -> tuple[int, int]:
    """GLM-4.1V's rule: an image is a clip of ``temporal_patch_size`` frames.

    Sides below ``factor`` are scaled up first (truncating, as the processor does); then the
    clip's pixels ``t * h * w`` must fit the processor's bounds.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    _check_size(height, width)
    frames = vision.temporal_patch_size
    return _snap(height, width, factor, min_pixels, max_pixels, frames=frames, rounding="processor")


def _snap(
    height: float,
    width: float,
    factor: int,
    min_pixels: int,
    max_pixels: int,
    *,
    frames: int,
    rounding: str,
) -> tuple[int, int]:
    vl_utils = rounding == "qwen_vl_utils"
    low = factor if vl_utils else 0
    h_bar = max(low, round(height / factor) * factor)
    w_bar = max(low, round(width / factor) * factor)
    if frames * h_bar * w_bar > max_pixels:
        beta = math.sqrt((frames * height * width) / max_pixels)
        low = 0 if vl_utils else factor
        h_bar = max(low, math.floor(height / beta / factor) * factor)
        w_bar = max(low, math.floor(width / beta / factor) * factor)
    elif frames * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar
