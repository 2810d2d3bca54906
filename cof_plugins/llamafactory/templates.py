"""CoF chat templates for LLaMA-Factory, token-for-token equal to ``cof_qwen.jinja``.

LLaMA-Factory builds training ids from per-role string slots; these slots spell the canonical
Jinja template (``cof_plugins.core.chat_template``): no default system prompt, user and tool
turns as ``<|im_start|>user``, assistant text verbatim (``<think>`` kept, unlike the stock
``qwen3_vl`` reasoning template), ``<|im_end|>`` as the stop word. A test checks the ids
against the processor's own rendering of the Jinja template.

Two choices the stock templates do not offer:

- ``*_maskvis`` templates keep vision tokens out of the loss inside trained (assistant) turns,
  for data whose crops sit inside the assistant turn ("in-turn" layout). The whole vision span
  is masked (``<|vision_start|>``, pads, ``<|vision_end|>``), not only ``<|image_pad|>`` as
  the release's fork did: the model must not learn to emit a span the tool inserts.
- the multimodal plugins resize each image to exactly ``core.frame.frame_size`` for the
  recipe's ``image_min_pixels``/``image_max_pixels`` and give the processor the same bounds,
  so the frame seen in SFT is the frame RL and eval compute (stock LLaMA-Factory pre-scales
  with its own rounding and then the processor applies its own, different, budget).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llamafactory.data.formatter import FunctionFormatter, StringFormatter, ToolFormatter
from llamafactory.data.mm_plugin import Qwen2VLPlugin, Qwen3VLPlugin
from llamafactory.data.template import TEMPLATES, Template, register_template
from PIL import Image

from cof_plugins.core.chat_template import chat_template
from cof_plugins.core.frame import PixelBudget, frame_size
from cof_plugins.core.pixels import to_rgb
from cof_plugins.llamafactory import TEMPLATE_FOR_FAMILY

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizer

# Marks a template object as ours, so register() can tell "already registered" from "taken".
COF_MARKER = "cof_plugins"
MASKVIS_SUFFIX = "_maskvis"
# Template name -> model family (core.frame.FAMILIES).
TEMPLATE_FAMILIES = {template: family for family, template in TEMPLATE_FOR_FAMILY.items()}
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")


class _FramePluginMixin:
    """Resize every image to the CoF frame and align the processor's own pixel bounds."""

    family: str

    def _preprocess_image(self, image, image_max_pixels: int, image_min_pixels: int, **kwargs):
        budget = PixelBudget(min_pixels=image_min_pixels, max_pixels=image_max_pixels)
        size = frame_size(image.size, self.family, budget)
        image = to_rgb(image)  # 16-bit and transparent images as every other stage reads them
        if size != image.size:
            image = image.resize(size, Image.Resampling.BICUBIC)
        return image

    def _get_mm_inputs(self, images, videos, audios, processor, *args, **kwargs):
        if images and processor is not None:
            sync_processor_budget(processor)
        return super()._get_mm_inputs(images, videos, audios, processor, *args, **kwargs)


def sync_processor_budget(processor) -> None:
    """Give the image processor the budget LLaMA-Factory attached to the processor.

    ``image_min_pixels``/``image_max_pixels`` come from the recipe (``patch_processor``); the
    image processor would otherwise re-resize our frame-sized images with its own bounds.
    """
    from cof_plugins.hf_checkpoint import set_image_budget

    image_processor = getattr(processor, "image_processor", None)
    low = getattr(processor, "image_min_pixels", None)
    high = getattr(processor, "image_max_pixels", None)
    if image_processor is None or low is None or high is None:
        return
    set_image_budget(image_processor, PixelBudget(int(low), int(high)))


@dataclass
class CofQwen2VLPlugin(_FramePluginMixin, Qwen2VLPlugin):
    family: str = "qwen2_5_vl"


@dataclass
class CofQwen3VLPlugin(_FramePluginMixin, Qwen3VLPlugin):
    family: str = "qwen3_vl"


@dataclass
class CofTemplate(Template):
    """The CoF template: thinking kept verbatim, canonical Jinja as the tokenizer template."""

    cof_marker = COF_MARKER

    def _get_jinja_template(self, tokenizer: PreTrainedTokenizer) -> str:
        return chat_template()


@dataclass
class CofMaskVisionTemplate(CofTemplate):
    """Like ``CofTemplate`` but vision tokens inside assistant turns carry no loss.

    LLaMA-Factory labels each (source, target) pair as (ignored, trained); splitting a target
    at its vision spans and moving each span into the next pair's source keeps ``input_ids``
    identical and takes exactly those spans out of the labels.
    """

    def encode_multiturn(
        self,
        tokenizer: PreTrainedTokenizer,
        messages: list[dict[str, str]],
        system: str | None = None,
        tools: str | None = None,
        discarding_history_cot: bool = False,
    ) -> list[tuple[list[int], list[int]]]:
        pairs = super().encode_multiturn(tokenizer, messages, system, tools, discarding_history_cot)
        vision = vision_token_ids(tokenizer)
        return [piece for source, target in pairs for piece in split_vision(source, target, vision)]


def vision_token_ids(tokenizer: PreTrainedTokenizer) -> set[int]:
    """Ids of the vision-span tokens this tokenizer knows."""
    vocab = tokenizer.get_vocab()
    return {vocab[token] for token in VISION_TOKENS if token in vocab}


def split_vision(
    source: list[int], target: list[int], vision: set[int]
) -> list[tuple[list[int], list[int]]]:
    """Split one (source, target) pair so every vision token of ``target`` lands in a source."""
    pieces: list[tuple[list[int], list[int]]] = []
    src, tgt = list(source), []
    for token in target:
        if token in vision:
            if tgt:
                pieces.append((src, tgt))
                src, tgt = [], []
            src.append(token)
        else:
            tgt.append(token)
    pieces.append((src, tgt))
    return pieces


def _plugin(family: str):
    tokens = dict(image_token="<|image_pad|>", video_token="<|video_pad|>", audio_token=None)
    if family == "qwen3_vl":
        return CofQwen3VLPlugin(**tokens, family=family)
    return CofQwen2VLPlugin(**tokens, family=family)


def _register_one(name: str, family: str, template_class: type[Template]) -> None:
    register_template(
        name=name,
        format_user=StringFormatter(
            slots=["<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"]
        ),
        format_assistant=StringFormatter(slots=["{{content}}<|im_end|>\n"]),
        format_system=StringFormatter(slots=["<|im_start|>system\n{{content}}<|im_end|>\n"]),
        # Structured calls render as the Jinja template renders `tool_calls`.
        format_function=FunctionFormatter(slots=["{{content}}<|im_end|>\n"], tool_format="qwen"),
        # A returned crop is a plain user turn, exactly as the Jinja template's `tool` role.
        format_observation=StringFormatter(
            slots=["<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"]
        ),
        format_tools=ToolFormatter(tool_format="qwen"),
        default_system="",
        stop_words=["<|im_end|>"],
        replace_eos=True,
        replace_jinja_template=True,
        mm_plugin=_plugin(family),
        template_class=template_class,
    )


def template_names() -> list[str]:
    """Every template name ``register_templates`` provides."""
    return [n + sfx for n in TEMPLATE_FAMILIES for sfx in ("", MASKVIS_SUFFIX)]


def is_cof_template(template: object) -> bool:
    return getattr(template, "cof_marker", None) == COF_MARKER


def register_templates() -> list[str]:
    """Register the CoF templates; skip ours, refuse to replace anyone else's."""
    for name in template_names():
        existing = TEMPLATES.get(name)
        if existing is not None:
            if not is_cof_template(existing):
                raise ValueError(
                    f"LLaMA-Factory template {name!r} is already registered by someone else "
                    f"({type(existing).__module__}.{type(existing).__qualname__}); cof-plugins "
                    "will not replace it. Remove the other registration or rename it."
                )
            continue
        base = name.removesuffix(MASKVIS_SUFFIX)
        cls = CofMaskVisionTemplate if name.endswith(MASKVIS_SUFFIX) else CofTemplate
        _register_one(name, TEMPLATE_FAMILIES[base], cls)
    return template_names()


def registered_cof_templates() -> list[str]:
    """CoF templates present in LLaMA-Factory's registry right now (evidence per process)."""
    return sorted(name for name, tpl in TEMPLATES.items() if is_cof_template(tpl))


def family_of_template(name: str) -> str:
    """Model family of a CoF template name (with or without the mask suffix)."""
    base = name.removesuffix(MASKVIS_SUFFIX)
    if base not in TEMPLATE_FAMILIES:
        raise KeyError(f"{name!r} is not a CoF template; CoF templates: {template_names()}")
    return TEMPLATE_FAMILIES[base]
