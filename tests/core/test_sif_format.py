"""SIFThinker's protocol preset and reply parser: every rule, untrusted input, round trips."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cof_plugins.core.protocol import IMAGE_PLACEHOLDER, load_protocol
from cof_plugins.core.sif import (
    MAX_BOXES,
    format_area,
    format_reply,
    parse_sif,
    prompt_messages,
    user_turn,
)

GOOD = (
    '<think><area>[{"bbox_2d":[0,0,1,1],"depth":0.5}]</area><text>whole image</text>'
    '<area>[{"bbox_2d":[0.1,0.2,0.3,0.4],"depth":0.25},{"bbox_2d":[0.5,0.5,0.75,0.9],'
    '"depth":0.125}]</area><text>two boxes</text></think><answer>red</answer>'
)


def problems(text: str) -> list[str]:
    return list(parse_sif(text).problems)


def test_a_good_reply_parses_completely():
    parsed = parse_sif("  \n" + GOOD + "\n")
    assert parsed.well_formed and parsed.answer == "red"
    assert parsed.texts == ("whole image", "two boxes")
    assert [a.valid_boxes for a in parsed.areas] == [
        [(0.0, 0.0, 1.0, 1.0)],
        [(0.1, 0.2, 0.3, 0.4), (0.5, 0.5, 0.75, 0.9)],
    ]
    assert [b.depth for b in parsed.areas[1].boxes] == [0.25, 0.125]


def test_whitespace_between_blocks_is_allowed():
    spaced = GOOD.replace("</area><text>", "</area>\n<text>").replace("</think><a", "</think>\n<a")
    assert parse_sif(spaced).well_formed


def test_each_rule_has_its_own_message():
    cases = {
        GOOD.replace("0.3,0.4", "0.05,0.4"): "x2 (0.05) must be greater than x1 (0.1)",
        GOOD.replace("0.3,0.4", "0.1,0.4"): "x2 (0.1) must be greater than x1 (0.1)",
        GOOD.replace("0.3,0.4", "0.3,0.2"): "y2 (0.2) must be greater than y1 (0.2)",
        GOOD.replace("0.3,0.4", "0.3,0.1"): "y2 (0.1) must be greater than y1 (0.2)",
        GOOD.replace("0.25}", "0.2501}"): "has more than 3 decimals",
        GOOD.replace("0.25}", "2.5e-1}"): "has more than 3 decimals",
        GOOD.replace("[0.1,0.2", "[-0.1,0.2"): "outside [0, 1]",
        GOOD.replace('"depth":0.5', '"depth":"far"'): "depth must be a number",
        GOOD.replace(',"depth":0.5', ""): "exactly the keys bbox_2d and depth",
        GOOD.replace("[0,0,1,1]", "[0,0,1]"): "bbox_2d must be four numbers",
        GOOD.replace("[0,0,1,1]", "[0,0,true,1]"): "bbox_2d must be four numbers",
        GOOD.replace('[{"bbox_2d":[0,0,1,1],"depth":0.5}]', "[]"): "non-empty JSON list",
        GOOD.replace('"depth":0.5}]', '"depth":NaN}]'): "is not a JSON list",
        GOOD.replace("<think>", ""): "no <think> block",
        "x" + GOOD: "must start with <think>",
        GOOD.replace("</think>", ""): "no </think>",
        GOOD.replace("<text>two boxes</text>", ""): "must end with a <text>",
        GOOD.replace("<text>whole image</text>", ""): "both <area>",
        GOOD.replace("<think><area>", "<think><text>t</text><area>"): "must start with an <area>",
        GOOD.replace("whole image", ""): "<text> block 1 is empty",
        GOOD.replace("whole image", "see <answer>"): "contains the tag <answer>",
        GOOD.replace("<text>whole", "stray<text>whole"): "text outside <area>/<text> blocks",
        GOOD.replace("red", ""): "the <answer> block is empty",
        GOOD + "more": "text after </answer>",
        GOOD.replace("</answer>", ""): "never closed with </answer>",
        GOOD.replace("<answer>red</answer>", ""): "no <answer> block",
        GOOD.replace("</think><answer>", "</think>so<answer>"): "between </think> and <answer>",
        GOOD.replace("</area><text>two", "<text>two"): "never closed with </area>",
    }
    for text, expected in cases.items():
        found = problems(text)
        assert any(expected in p for p in found), (expected, found)


def test_readable_boxes_survive_other_problems():
    # The rewards score boxes even when the format fails.
    parsed = parse_sif(GOOD.replace("<think>", "oops "))
    assert not parsed.well_formed and len(parsed.areas) == 2 and parsed.answer == "red"


def test_too_many_boxes_are_cut_and_reported():
    box = '{"bbox_2d":[0,0,1,1],"depth":0.5}'
    text = GOOD.replace(f"[{box}]", "[" + ",".join([box] * (MAX_BOXES + 5)) + "]")
    parsed = parse_sif(text)
    assert len(parsed.areas[0].boxes) == MAX_BOXES
    assert any(f"at most {MAX_BOXES}" in p for p in parsed.problems)


def test_hostile_input_never_raises():
    for text in (None, 3, "", "<think>" * 50000, "<area>" + "[" * 200000 + "</area>",
                 "<think><area>" + "{" * 100000, "</think>" * 10000 + "<answer>"):  # fmt: skip
        parsed = parse_sif(text)
        assert not parsed.well_formed and len(parsed.problems) <= 21


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list('<>/[]{}:,".0123456789 areatxhinkswd_b')), max_size=300)
)
def test_parser_never_raises_on_fuzz(text):
    parse_sif(text)


def test_writer_and_parser_round_trip():
    boxes = [((0.12345, 0.2, 0.6, 0.81), 0.33333), ((0.0, 0.0, 1.0, 1.0), 1.0)]
    text = format_reply([(format_area(boxes), "a step")], "blue")
    parsed = parse_sif(text)
    assert parsed.well_formed, parsed.problems
    assert parsed.areas[0].valid_boxes[0] == (0.123, 0.2, 0.6, 0.81)
    assert parsed.areas[0].boxes[0].depth == 0.333


def test_prompts_follow_the_preset():
    preset = load_protocol("sifthinker")
    assert (
        preset.system == "You are a helpful assistant." and preset.extra["method"] == "sifthinker"
    )
    sft = user_turn("What colour is it?", with_depth=True)
    assert sft.startswith("Original image:<image>\nDepth image:<image>\nWhat colour is it?")
    assert sft.count(IMAGE_PLACEHOLDER) == 2 and "read from the depth image" in sft
    rl = user_turn("What colour is it?", with_depth=False)
    assert rl.count(IMAGE_PLACEHOLDER) == 1 and "Depth image" not in rl
    assert rl.endswith(preset.user_suffix)
    messages = prompt_messages("Q?", with_depth=False)
    assert [m["role"] for m in messages] == ["system", "user"]


def test_the_cof_tokenizer_corpus_ignores_the_sifthinker_preset():
    from cof_plugins.testbed.corpus import training_corpus

    cof = list(training_corpus(lines=4))
    assert not any("Depth image" in line or "<area>" in line for line in cof)
    sif = list(training_corpus(lines=4, method="sifthinker"))
    assert any("<area>" in line for line in sif)
