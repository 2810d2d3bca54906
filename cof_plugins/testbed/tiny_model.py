"""Tiny VLMs of each supported family, built offline in seconds (random weights).

Tests and the quickstart use them in place of real checkpoints: same classes, same processor,
same chat template and special tokens as the real models, with a byte-level BPE tokenizer
trained locally (no hub). The CoF tags are ordinary (non-special) added tokens, because
verl decodes rewards with ``skip_special_tokens=True`` and would otherwise erase them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from cof_plugins.core.frame import PixelBudget, get_family
from cof_plugins.testbed.corpus import training_corpus

log = logging.getLogger(__name__)

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
COF_TAGS = ("<tool_call>", "</tool_call>", "<think>", "</think>", "<answer>", "</answer>")
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


# "tiny" keeps tests fast; "small" (about 1M parameters) learns the CoF turn format on CPU in
# minutes, so the quickstart and the RL-on-CPU path start from it.
SIZES = {
    "tiny": TinySize(),
    "small": TinySize(hidden=128, layers=4, heads=4, kv_heads=2, intermediate=384),
    "medium": TinySize(hidden=192, layers=4, heads=4, kv_heads=2, intermediate=512),
}


def build_tokenizer(vocab_size: int = 1024):
    """Train a byte-level BPE on the CoF corpus and wrap it as a Qwen2 tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(training_corpus(), trainer=trainer)
    tok = Qwen2TokenizerFast(
        tokenizer_object=bpe,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]),
    )
    tok.add_tokens(list(COF_TAGS), special_tokens=False)
    tok.model_max_length = 32768
    return tok


def _chat_template() -> str:
    from cof_plugins.core.chat_template import chat_template

    return chat_template()


def _token_ids(tok) -> dict[str, int]:
    ids = {name: tok.convert_tokens_to_ids(t) for name, t in (
        ("image_token_id", "<|image_pad|>"),
        ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"),
        ("vision_end_token_id", "<|vision_end|>"),
    )}  # fmt: skip
    ids.update(
        bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
    )
    return ids


def _text_config(size: TinySize, vocab: int, ids: dict[str, int], family: str) -> dict:
    head_dim = size.hidden // size.heads
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
    # mrope sections split head_dim / 2 frequencies across (t, h, w).
    section = (
        [2, 3, 3]
        if head_dim == 16
        else [head_dim // 2 - 2 * (head_dim // 6), head_dim // 6, head_dim // 6]
    )
    if family == "qwen3_vl":
        text.update(head_dim=head_dim, rope_parameters={
            "rope_type": "default", "rope_theta": 5e5, "mrope_section": section,
            "mrope_interleaved": True,
        })  # fmt: skip
    else:
        text.update(
            rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": section}
        )
    return text


def _vision_config(size: TinySize, family: str) -> dict:
    common = dict(depth=size.vision_depth, num_heads=2, in_channels=3, temporal_patch_size=2)
    if family == "qwen2_vl":
        return {**common, "embed_dim": size.vision_hidden, "hidden_size": size.hidden,
                "mlp_ratio": 2, "patch_size": 14, "spatial_merge_size": 2}  # fmt: skip
    if family == "qwen2_5_vl":
        return {**common, "hidden_size": size.vision_hidden, "intermediate_size": 64,
                "out_hidden_size": size.hidden, "patch_size": 14, "spatial_merge_size": 2,
                "window_size": 56, "fullatt_block_indexes": [size.vision_depth - 1]}  # fmt: skip
    return {**common, "hidden_size": size.vision_hidden, "intermediate_size": 64,
            "out_hidden_size": size.hidden, "patch_size": 16, "spatial_merge_size": 2,
            "num_position_embeddings": 64, "deepstack_visual_indexes": [0]}  # fmt: skip


def build_config(family: str, tok, size: TinySize = TinySize()):
    """A real ``*VLConfig`` of ``family`` with tiny text and vision towers."""
    import transformers

    get_family(family)
    ids = _token_ids(tok)
    cls = {
        "qwen2_vl": transformers.Qwen2VLConfig,
        "qwen2_5_vl": transformers.Qwen2_5_VLConfig,
        "qwen3_vl": transformers.Qwen3VLConfig,
    }[family]
    token_ids = {
        k: v for k, v in ids.items() if "token_id" in k and "bos" not in k and "pad" not in k
    }
    cfg = cls(
        text_config=_text_config(size, len(tok), ids, family),
        vision_config=_vision_config(size, family),
        **{k: v for k, v in token_ids.items() if k != "eos_token_id"},
    )
    cfg.tie_word_embeddings = True
    return cfg


def build_processor(family: str, tok, budget: PixelBudget = TINY_BUDGET):
    """The family's real processor class with small pixel bounds and the CoF chat template."""
    import transformers

    spec = get_family(family)
    size = {"shortest_edge": budget.min_pixels, "longest_edge": budget.max_pixels}
    image_processor = transformers.Qwen2VLImageProcessor(
        size=size, patch_size=spec.patch_size, merge_size=spec.merge_size
    )
    if family == "qwen3_vl":
        video = transformers.Qwen3VLVideoProcessor(patch_size=16, merge_size=2)
        cls = transformers.Qwen3VLProcessor
    else:
        video = transformers.Qwen2VLVideoProcessor(patch_size=14, merge_size=2)
        cls = (
            transformers.Qwen2_5_VLProcessor
            if family == "qwen2_5_vl"
            else transformers.Qwen2VLProcessor
        )
    tok.chat_template = _chat_template()
    return cls(image_processor=image_processor, tokenizer=tok, video_processor=video,
               chat_template=_chat_template())  # fmt: skip


def build_tiny_model(
    out_dir: str | Path, family: str = "qwen2_5_vl", *, seed: int = 0, size: TinySize = TinySize()
) -> Path:
    """Write a complete tiny checkpoint (config, weights, tokenizer, processor) to ``out_dir``."""
    import torch
    import transformers

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = build_tokenizer(size.vocab_size)
    config = build_config(family, tok, size)
    model = transformers.AutoModelForImageTextToText.from_config(config)
    model.generation_config.eos_token_id = [tok.convert_tokens_to_ids("<|im_end|>")]
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    build_processor(family, tok).save_pretrained(out)
    tok.save_pretrained(out)
    (out / "cof_tiny.json").write_text(json.dumps({"family": family, "seed": seed}) + "\n")
    log.info("tiny %s model written to %s (%d parameters)", family, out,
             sum(p.numel() for p in model.parameters()))  # fmt: skip
    return out
