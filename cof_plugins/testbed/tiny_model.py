"""Tiny VLMs of each supported family, built offline in seconds (random weights).

Tests and the quickstart use them in place of real checkpoints: same classes, same processor,
same chat template and special tokens as the real models (all read from the family's
``FamilySpec``), with a byte-level BPE tokenizer trained locally (no hub). The CoF tags are
ordinary (non-special) added tokens, because verl decodes rewards with
``skip_special_tokens=True`` and would otherwise erase them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from cof_plugins.core.families import FamilySpec, get_family
from cof_plugins.core.frame import PixelBudget
from cof_plugins.testbed.corpus import training_corpus

log = logging.getLogger(__name__)

COF_TAGS = ("<tool_call>", "</tool_call>", "<think>", "</think>", "<answer>", "</answer>")
# SIFThinker's block tags, added (as ordinary tokens) to tiny models built for that method,
# with one token per number of up to two decimals as JSON writes them (0.0, 0.5, 0.25, 1.0):
# a 1M-parameter model learns boxes of whole-number tokens in minutes, digit strings not.
SIF_TAGS = ("<area>", "</area>", "<text>", "</text>")
SIF_NUMBERS = (
    "0.0",
    "1.0",
    *(f"0.{i}" for i in range(1, 10)),
    *(f"0.{i:02d}" for i in range(1, 100) if i % 10),
)
METHODS = ("cof", "sifthinker")
# Small enough for 2 CPU cores, large enough for multi-image CoF conversations.
TINY_BUDGET = PixelBudget(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 64)


@dataclass(frozen=True)
class TinySize:
    vocab_size: int = 1024
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128
    vision_hidden: int = 32
    vision_depth: int = 2

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


# "tiny" keeps tests fast; "small" (about 1M parameters) learns the CoF turn format on CPU in
# minutes, so the quickstart and the RL-on-CPU path start from it.
SIZES = {
    "tiny": TinySize(),
    "small": TinySize(hidden=128, layers=4, heads=4, kv_heads=2, intermediate=384),
    "medium": TinySize(hidden=192, layers=4, heads=4, kv_heads=2, intermediate=512),
}


def build_tokenizer(
    vocab_size: int = 1024, family: str | FamilySpec = "qwen2_5_vl", method: str = "cof"
):
    """Train a byte-level BPE on the method's corpus, with the family's special tokens."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokens = get_family(family).tokens
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(tokens.special),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(training_corpus(method=method), trainer=trainer)
    tok = getattr(transformers, get_family(family).classes.tokenizer)(
        tokenizer_object=bpe,
        bos_token=None,
        eos_token=tokens.eos,
        pad_token=tokens.pad,
        unk_token=None,
        additional_special_tokens=[t for t in tokens.special if t != tokens.pad],
    )
    extra = (*SIF_TAGS, *SIF_NUMBERS) if method == "sifthinker" else ()
    tok.add_tokens([*COF_TAGS, *extra], special_tokens=False)
    tok.model_max_length = 32768
    return tok


def _token_ids(tok, spec: FamilySpec) -> dict[str, int]:
    ids = {key: tok.convert_tokens_to_ids(token) for key, token in spec.tokens.config_ids.items()}
    ids.update(
        bos_token_id=tok.convert_tokens_to_ids(spec.tokens.pad),
        eos_token_id=tok.convert_tokens_to_ids(spec.tokens.eos),
        pad_token_id=tok.convert_tokens_to_ids(spec.tokens.pad),
    )
    return ids


def mrope_section(rotary_dim: int) -> list[int]:
    """Split the rotary frequencies (``rotary_dim / 2``) across (t, h, w)."""
    if rotary_dim == 16:
        return [2, 3, 3]
    return [rotary_dim // 2 - 2 * (rotary_dim // 6), rotary_dim // 6, rotary_dim // 6]


def _text_config(size: TinySize, vocab: int, ids: dict[str, int], spec: FamilySpec) -> dict:
    text = dict(
        vocab_size=vocab,
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads,
        # Qwen2.5-VL-7B's own, so recipes' lengths check against the tiny stand-in as they
        # would against the real model (`cof validate` compares them).
        max_position_embeddings=128000,
        tie_word_embeddings=True,
        bos_token_id=ids["bos_token_id"],
        eos_token_id=ids["eos_token_id"],
        pad_token_id=ids["pad_token_id"],
    )
    text.update(spec.tiny.text)
    text.update({key: getattr(size, attr) for key, attr in spec.tiny.text_sizes.items()})
    rotary = int(size.head_dim * spec.tiny.rope.get("partial_rotary_factor", 1.0))
    text["rope_parameters"] = {**spec.tiny.rope, "mrope_section": mrope_section(rotary)}
    return text


def _vision_config(size: TinySize, spec: FamilySpec) -> dict:
    sizes = {key: getattr(size, attr) for key, attr in spec.tiny.vision_sizes.items()}
    return {**spec.tiny.vision, **sizes}


def build_config(family: str | FamilySpec, tok, size: TinySize = TinySize()):
    """A real config of ``family`` (its own config class) with tiny text and vision towers."""
    import transformers

    spec = get_family(family)
    ids = _token_ids(tok, spec)
    cfg = getattr(transformers, spec.classes.config)(
        text_config=_text_config(size, len(tok), ids, spec),
        vision_config=_vision_config(size, spec),
        **{key: ids[key] for key in spec.tokens.config_ids},
    )
    cfg.tie_word_embeddings = True
    return cfg


def build_processor(family: str | FamilySpec, tok, budget: PixelBudget = TINY_BUDGET):
    """The family's real processor classes with small pixel bounds and its CoF chat template."""
    import transformers

    from cof_plugins.core.chat_template import family_chat_template

    spec = get_family(family)
    low, high = spec.processor_bounds(budget.min_pixels, budget.max_pixels)
    geometry = {"patch_size": spec.patch_size, "merge_size": spec.merge_size}
    image_processor = getattr(transformers, spec.classes.image_processor)(
        size={"shortest_edge": low, "longest_edge": high}, **geometry
    )
    video = getattr(transformers, spec.classes.video_processor)(**geometry)
    template = family_chat_template(spec)
    tok.chat_template = template
    processor = getattr(transformers, spec.classes.processor)
    return processor(image_processor=image_processor, tokenizer=tok, video_processor=video,
                     chat_template=template)  # fmt: skip


def build_tiny_model(
    out_dir: str | Path,
    family: str = "qwen2_5_vl",
    *,
    seed: int = 0,
    size: TinySize = TinySize(),
    method: str = "cof",
) -> Path:
    """Write a complete tiny checkpoint (config, weights, tokenizer, processor) to ``out_dir``.

    ``method`` picks the tokenizer's corpus and tags (``sifthinker`` adds its block tags).
    """
    import torch
    import transformers

    spec = get_family(family)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = build_tokenizer(size.vocab_size, spec, method)
    config = build_config(spec, tok, size)
    model = transformers.AutoModelForImageTextToText.from_config(config)
    model.generation_config.eos_token_id = [tok.convert_tokens_to_ids(t) for t in spec.tokens.stop]
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    build_processor(spec, tok).save_pretrained(out)
    tok.save_pretrained(out)
    (out / "cof_tiny.json").write_text(
        json.dumps({"family": spec.name, "seed": seed, "method": method}) + "\n"
    )
    log.info("tiny %s model written to %s (%d parameters)", spec.name, out,
             sum(p.numel() for p in model.parameters()))  # fmt: skip
    return out
