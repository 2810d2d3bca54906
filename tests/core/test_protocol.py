"""Protocol presets and the canonical chat template."""

from __future__ import annotations

import json

import pytest

from cof_plugins.core.chat_template import render
from cof_plugins.core.parser import format_tool_call, parse_turn
from cof_plugins.core.protocol import available_protocols, load_protocol

VISION = "<|vision_start|><|image_pad|><|vision_end|>"


def test_presets_are_named_variants():
    assert {"unified", "paper-eval", "paper-rl"} <= set(available_protocols())
    unified, paper_eval, paper_rl = (
        load_protocol(n) for n in ("unified", "paper-eval", "paper-rl")
    )
    assert paper_eval.system != unified.system  # own preamble
    assert paper_eval.user_suffix == unified.user_suffix  # inherited
    assert paper_rl.wrapper_position == "before_suffix"
    for proto in (unified, paper_eval, paper_rl):
        tools = proto.system.split("<tools>\n")[1].split("\n</tools>")[0]
        assert json.loads(tools)["function"]["name"] == "image_zoom_in_tool"


def test_unknown_preset_lists_available():
    with pytest.raises(KeyError, match="unified"):
        load_protocol("nope")


def test_question_text_letters_wrapper_and_suffix():
    proto = load_protocol("unified")
    text = proto.question_text("What colour is the star?", ["red", "blue", "green"])
    assert "(A) red\n(B) blue\n(C) green" in text
    assert proto.wrappers["multiple_choice"] in text
    assert text.endswith(proto.user_suffix)
    assert proto.wrappers["open"] in proto.question_text("How many?")
    rl = load_protocol("paper-rl").question_text("Q?", ["a", "b"])
    assert rl.index(proto.wrappers["multiple_choice"]) < rl.index(proto.user_suffix)
    with pytest.raises(ValueError, match="known kinds"):
        proto.question_text("Q?", kind="essay")


def _two_zoom_conversation():
    proto = load_protocol()
    call = format_tool_call("image_zoom_in_tool", {"bbox_2d": [10, 20, 110, 120]})
    return [
        *proto.prompt_messages("What word is on the sign?", ["cat", "sun"]),
        {"role": "assistant", "content": "<think>too small</think>\n" + call},
        {"role": "user", "content": proto.crop_user_turn()},
        {"role": "assistant", "content": "<think>closer</think>\n" + call},
        {"role": "user", "content": proto.crop_user_turn()},
        {"role": "assistant", "content": "<think>it says sun</think>\n<answer>B</answer>"},
    ]


def test_template_renders_turns_verbatim():
    msgs = _two_zoom_conversation()
    text = render(msgs)
    assert text.startswith("<|im_start|>system\n")
    assert text.count(VISION) == 3
    assert text.count("<|im_start|>assistant\n<think>") == 3
    assert "<|im_start|>user\n" + VISION + "\n" + load_protocol().user_suffix in text
    # Assistant text survives verbatim, tool call parseable from the rendered turn.
    turn = text.split("<|im_start|>assistant\n")[1].split("<|im_end|>")[0]
    assert parse_turn(turn).tool_calls[0].bbox == (10.0, 20.0, 110.0, 120.0)
    assert render(msgs[:2], add_generation_prompt=True).endswith("<|im_start|>assistant\n")


def test_tool_role_is_a_user_turn_and_structured_calls_render_inline():
    proto = load_protocol()
    base = proto.prompt_messages("Q?")
    call = {"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4]}}
    crop = [{"type": "image"}, {"type": "text", "text": "\n" + proto.user_suffix}]
    as_tool = [
        *base,
        {"role": "assistant", "content": "<think>x</think>", "tool_calls": [{"function": call}]},
        {"role": "tool", "content": crop},
    ]
    as_text = [*base, {"role": "assistant", "content": "<think>x</think>\n" + format_tool_call(
        "image_zoom_in_tool", {"bbox_2d": [1, 2, 3, 4]})},
        {"role": "user", "content": proto.crop_user_turn()}]  # fmt: skip
    assert render(as_tool) == render(as_text)


def test_template_matches_processor_rendering(tiny_model):
    import transformers

    processor = transformers.AutoProcessor.from_pretrained(tiny_model)
    msgs = _two_zoom_conversation()
    assert processor.apply_chat_template(msgs, tokenize=False) == render(msgs)


def test_crop_role_option_puts_tool_turns_in_the_assistant_role():
    """The release's RL appended crops with the assistant role: a named profile option."""
    from cof_plugins.core.profiles import get_profile

    messages = _two_zoom_conversation()[:3]
    messages[-1] = {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": "S"}]}
    as_user = render(messages)
    assert as_user.endswith(f"<|im_start|>user\n{VISION}S<|im_end|>\n")
    assert get_profile("paper").chat_template_kwargs() == {}  # paper keeps crops in user turns
    release = render(messages, cof_crop_role="assistant")
    assert release.endswith(f"<|im_start|>assistant\n{VISION}S<|im_end|>\n")
    assert release.replace(f"assistant\n{VISION}S", f"user\n{VISION}S") == as_user
