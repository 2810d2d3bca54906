"""What the Qwen families share: ChatML turns and Qwen's vision special tokens."""

from __future__ import annotations

from cof_plugins.core.families.spec import ChatFormat, Tokens

TOKENS = Tokens(
    special=(
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
    ),
    eos="<|im_end|>",
    pad="<|endoftext|>",
    end_of_turn="<|im_end|>",
    stop=("<|im_end|>",),
    image="<|image_pad|>",
    video="<|video_pad|>",
    image_span=("<|vision_start|>", "<|vision_end|>"),
    video_span=("<|vision_start|>", "<|vision_end|>"),
    config_ids={
        "image_token_id": "<|image_pad|>",
        "video_token_id": "<|video_pad|>",
        "vision_start_token_id": "<|vision_start|>",
        "vision_end_token_id": "<|vision_end|>",
    },
)

# cof_qwen.jinja serves every Qwen family: no default system prompt, <think> kept verbatim
# (the stock Qwen3 templates strip it), crops returned in the next user turn.
CHAT = ChatFormat(
    jinja="cof_qwen.jinja",
    prefix="",
    system="<|im_start|>system\n{content}<|im_end|>\n",
    user="<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n",
    assistant="{content}<|im_end|>\n",
)
