"""CoF chat templates for LLaMA-Factory, token-for-token equal to each family's Jinja template.

LLaMA-Factory builds training ids from per-role string slots; one ``cof_<family>`` template
per family spells that family's canonical Jinja template from its ``FamilySpec.chat`` slots:
no default system prompt, tool turns as user turns, assistant text verbatim (``<think>``
kept, unlike the stock ``qwen3_vl``/``qwen3_5``/``glm4v`` reasoning templates). A test checks
the ids against the processor's own rendering of the Jinja template for every family.

GLM-4.1V ends a turn by writing the next turn's opener (``<|user|>``): its template moves
that token from the start of each following user turn to the end of the assistant turn
before it (and closes the last one with it), so the model is trained to write it and the ids
are the ones a rollout builds.

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
from functools import cache
from typing import TYPE_CHECKING

from llamafactory.data.formatter import (
    EmptyFormatter,
    FunctionFormatter,
    StringFormatter,
    ToolFormatter,
)
from llamafactory.data.mm_plugin import PLUGINS
from llamafactory.data.template import TEMPLATES, Template, register_template
from PIL import Image

from cof_plugins.core.chat_template import family_chat_template
from cof_plugins.core.families import FAMILIES, FamilySpec, get_family
from cof_plugins.core.frame import PixelBudget, frame_size
from cof_plugins.core.pixels import to_rgb
from cof_plugins.llamafactory import TEMPLATE_FOR_FAMILY

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizer

# Marks a template object as ours, so register() can tell "already registered" from "taken".
COF_MARKER = "cof_plugins"
MASKVIS_SUFFIX = "_maskvis"
# Template name -> model family (core.families.FAMILIES).
TEMPLATE_FAMILIES = {template: family for family, template in TEMPLATE_FOR_FAMILY.items()}


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


@cache
def frame_plugin_class(name: str) -> type:
    """LLaMA-Factory's multimodal plugin ``name`` with the CoF frame resize mixed in."""
    base = PLUGINS[name]
    namespace = {"__annotations__": {"family": str}, "family": ""}
    return dataclass(type(f"Cof{base.__name__}", (_FramePluginMixin, base), namespace))


def family_plugin(spec: FamilySpec):
    """The family's multimodal plugin, resizing every image to the family's frame."""
    cls = frame_plugin_class(spec.llamafactory.mm_plugin)
    return cls(spec.tokens.image, spec.tokens.video, None, family=spec.name)


@dataclass
class CofTemplate(Template):
    """The CoF template: thinking kept verbatim, the family's Jinja as the tokenizer template."""

    cof_marker = COF_MARKER

    @property
    def family(self) -> FamilySpec:
        return get_family(self.mm_plugin.family)

    def _get_jinja_template(self, tokenizer: PreTrainedTokenizer) -> str:
        return family_chat_template(self.family)

    def encode_multiturn(
        self,
        tokenizer: PreTrainedTokenizer,
        messages: list[dict[str, str]],
        system: str | None = None,
        tools: str | None = None,
        discarding_history_cot: bool = False,
    ) -> list[tuple[list[int], list[int]]]:
        pairs = super().encode_multiturn(tokenizer, messages, system, tools, discarding_history_cot)
        if not self.family.chat.opener_ends_turn:
            return pairs
        return close_with_opener(
            pairs, tokenizer.convert_tokens_to_ids(self.family.tokens.end_of_turn)
        )


def close_with_opener(
    pairs: list[tuple[list[int], list[int]]], opener: int
) -> list[tuple[list[int], list[int]]]:
    """Move each later turn's leading ``opener`` to the end of the target before it.

    The last target gets one too: the model ends every turn by writing it.
    """
    out = [(list(source), list(target)) for source, target in pairs]
    for k in range(1, len(out)):
        if out[k][0][:1] == [opener]:
            out[k - 1][1].append(out[k][0].pop(0))
    if out:
        out[-1][1].append(opener)
    return out


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
    """Ids of the vision-span tokens (of any family) this tokenizer knows."""
    vocab = tokenizer.get_vocab()
    tokens = {token for spec in FAMILIES.specs() for token in spec.tokens.vision}
    return {vocab[token] for token in tokens if token in vocab}


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


def _slot(text: str) -> str:
    return text.replace("{content}", "{{content}}")


def _register_one(name: str, spec: FamilySpec, template_class: type[Template]) -> None:
    chat, tokens = spec.chat, spec.tokens
    user = StringFormatter(slots=[_slot(chat.user)])
    register_template(
        name=name,
        format_prefix=EmptyFormatter(slots=[chat.prefix]) if chat.prefix else None,
        format_user=user,
        format_assistant=StringFormatter(slots=[_slot(chat.assistant)]),
        format_system=StringFormatter(slots=[_slot(chat.system)]),
        # Structured calls render as the Jinja template renders `tool_calls`.
        format_function=FunctionFormatter(slots=[_slot(chat.assistant)], tool_format="qwen"),
        # A returned crop is a plain user turn, exactly as the Jinja template's `tool` role.
        format_observation=user,
        format_tools=ToolFormatter(tool_format="qwen"),
        default_system="",
        stop_words=[tokens.end_of_turn]
        + [t for t in tokens.stop if t not in (tokens.end_of_turn, tokens.eos)],
        # Qwen: <|im_end|> becomes the eos; GLM keeps <|endoftext|> and stops at <|user|>.
        replace_eos=not chat.opener_ends_turn,
        replace_jinja_template=True,
        mm_plugin=family_plugin(spec),
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
        _register_one(name, get_family(TEMPLATE_FAMILIES[base]), cls)
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
