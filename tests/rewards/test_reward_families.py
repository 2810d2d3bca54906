"""The reward reads GLM-4.1V's decoded responses, whose role tokens vanish when decoded.

verl decodes a response with ``skip_special_tokens=True``; for Qwen the role names survive
as text ("user", "assistant"), for GLM ``<|user|>``/``<|assistant|>`` are special and leave
only newlines. The reward splits by the family the row was built for.
"""

from __future__ import annotations

import pytest

from cof_plugins.core.families import get_family
from cof_plugins.core.protocol import IMAGE_PLACEHOLDER, load_protocol
from cof_plugins.rewards import score_with_rules, split_by_suffix

PROTOCOL = load_protocol()
SUFFIX = PROTOCOL.user_suffix
CALL = (
    '<think>too small</think>\n<tool_call>\n{"name": "image_zoom_in_tool", '
    '"arguments": {"bbox_2d": [10, 20, 600, 900]}}\n</tool_call>'
)
MALFORMED = '<think>again</think> <tool_call>{"name": "image_zoom_in_tool", "arguments": {'
ERROR = "Your tool call could not be read: expected JSON; got '{' (JSON error at char 1)."
ANSWER = "<think>now it is clear</think>\n<answer><|begin_of_box|>B<|end_of_box|></answer>"
MC = {"options": ["red", "blue"], "question": "What colour is the sign?"}


def _glm_extra(num_turns: int) -> dict:
    create = {"create_kwargs": {"family": "glm4v", "frame_size": [448, 336]}}
    return {**MC, "num_turns": num_turns, "tools_kwargs": {"image_zoom_in_tool": create}}


@pytest.fixture(scope="module")
def decoded(tiny_model_factory) -> str:
    """A two-call GLM rollout decoded as verl decodes it (the real tokenizer and template)."""
    from transformers import AutoTokenizer

    from cof_plugins.core.chat_template import family_chat_template

    tok = AutoTokenizer.from_pretrained(tiny_model_factory("glm4v"))
    template = family_chat_template("glm4v")
    messages = PROTOCOL.prompt_messages("What colour is the sign?", ["red", "blue"])
    prompt = tok.apply_chat_template(
        messages, chat_template=template, add_generation_prompt=True, tokenize=False
    )
    crop = PROTOCOL.crop_user_turn(1).removeprefix(IMAGE_PLACEHOLDER)  # as the zoom tool sends
    turns = [
        {"role": "assistant", "content": CALL},
        {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": crop}]},
        {"role": "assistant", "content": MALFORMED},
        {"role": "tool", "content": f"{ERROR}\n{SUFFIX}"},
        {"role": "assistant", "content": ANSWER},
    ]
    full = tok.apply_chat_template(messages + turns, chat_template=template, tokenize=False)
    response = full[len(prompt) :] + get_family("glm4v").tokens.end_of_turn
    text = tok.decode(tok(response)["input_ids"], skip_special_tokens=True)
    assert "<|user|>" not in text and "user\n" not in text  # nothing of the roles is left
    return text


def test_glm_response_splits_into_the_assistants_turns(decoded):
    split = split_by_suffix(decoded, user_suffix=SUFFIX, expected_tool_turns=2)
    answer = ANSWER.replace("<|begin_of_box|>", "").replace("<|end_of_box|>", "")
    assert split.assistant == [CALL, MALFORMED, answer] and split.consistent
    assert split.tool_turns[1] == f"{ERROR}\n{SUFFIX}" and split.tool_turns[0].endswith(SUFFIX)


def test_glm_rollout_scores_by_its_own_turns(decoded):
    result = score_with_rules("vstar", decoded, "B", _glm_extra(num_turns=6))
    assert result.acc and result.format_ok is False  # the malformed call breaks the format
    clean = decoded.replace(MALFORMED, CALL)
    assert score_with_rules("vstar", clean, "B", _glm_extra(num_turns=6)).format_ok
    # Read as a Qwen response, the instruction inside the tool turns counts as the model's.
    qwen_read = score_with_rules("vstar", clean, "B", {**MC, "num_turns": 6})
    assert not qwen_read.format_ok


def test_suffix_split_edges():
    assert split_by_suffix("<answer>A</answer>", user_suffix=SUFFIX).assistant == [
        "<answer>A</answer>"
    ]
    open_turn = CALL + "\n\n" + SUFFIX  # truncated right after the tool turn
    split = split_by_suffix(open_turn, user_suffix=SUFFIX, expected_tool_turns=1)
    assert split.assistant == [CALL, ""] and split.tool_turns == ["\n" + SUFFIX]
    with pytest.raises(ValueError, match="user_suffix"):
        split_by_suffix("x", user_suffix="")
