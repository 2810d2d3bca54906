"""Chain-of-Spot core: presets, box frames (hand-computed), the strict parser, the crop."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from cof_plugins.core.cos import (
    PAD_RGB,
    RoiFrame,
    RoiShape,
    box_iou,
    expand_to_square,
    load_cos_protocol,
    overlaps,
    padded_square,
    parse_roi,
    roi_from_box,
)
from cof_plugins.core.frame import PixelBudget
from cof_plugins.core.protocol import ProtocolError, available_protocols, load_protocol

TINY = PixelBudget(3136, 50176)
HALF = PixelBudget(3136, 224 * 112)  # a 448 x 224 image becomes a 224 x 112 frame


def test_presets_are_chain_of_spot_and_kept_out_of_cof_lists():
    assert {"chain-of-spot", "chain-of-spot-native"} <= set(available_protocols())
    assert not {"chain-of-spot", "chain-of-spot-native"} & set(available_protocols("cof"))
    faithful, native = load_cos_protocol("chain-of-spot"), load_cos_protocol("chain-of-spot-native")
    assert (faithful.box_frame, native.box_frame) == ("padded", "native")
    assert faithful.crop_turn == native.crop_turn  # inherited key by key under extra
    assert faithful.protocol.system == "" and faithful.system_messages() == []
    turn = faithful.roi_turn("  What colour is the sign? ")
    assert turn.startswith("<image>\nQuestion: What colour is the sign?\n")
    assert "padded to a square" in turn and "padded" not in native.roi_turn("Q?")
    answer = faithful.answer_turn("What colour?", ["red", "blue"])
    assert answer.startswith("<image>\nHere is your region of interest")
    assert answer.endswith("(A) red\n(B) blue\n" + faithful.protocol.wrappers["multiple_choice"])
    assert faithful.plain_turn("Q2?", first=True).startswith(faithful.other_rounds + "\nQ2?")
    assert faithful.plain_turn("Q3?").startswith("Q3?")


def _write(tmp_path, text: str):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("extra:\n  box_frame: square\n", "extra.box_frame"),
        ("extra:\n  decimals: 0\n", "extra.decimals"),
        ("extra:\n  roi_request: no placeholder\n", "must hold {question}"),
        ("extra:\n  crop_turn: 'the {answer}'\n", "placeholder {answer}"),
        ("extra: [1, 2]\n", "key 'extra' must be a mapping"),
        ("system: 'Use {tool}'\n", r"key 'system' has the placeholder \{tool\}"),
    ],
)
def test_a_bad_chain_of_spot_file_names_the_key(tmp_path, body, match):
    path = _write(tmp_path, "inherit: chain-of-spot\n" + body)
    with pytest.raises(ProtocolError, match=match) as err:
        load_cos_protocol(path)
    assert str(path) in str(err.value)


def test_a_file_inheriting_chain_of_spot_may_set_a_system_prompt_without_tools(tmp_path):
    """Tool-less is decided on the merged keys: the child need not repeat tool_schema: {}."""
    cos = load_cos_protocol(_write(tmp_path, "inherit: chain-of-spot\nsystem: Be brief.\n"))
    assert cos.system_messages() == [{"role": "system", "content": "Be brief."}]


def test_a_cof_preset_is_refused_as_chain_of_spot():
    with pytest.raises(ProtocolError, match="for method 'cof'"):
        load_cos_protocol("unified")
    assert load_protocol("unified").method == "cof"


def test_padded_square_is_llavas_expand2square():
    assert padded_square((400, 200)) == (400, 0, 100)
    assert padded_square((201, 400)) == (400, 99, 0)
    image = Image.new("RGB", (4, 2), (255, 0, 0))
    square = expand_to_square(image)
    assert square.size == (4, 4)
    assert square.getpixel((0, 0)) == PAD_RGB and square.getpixel((0, 3)) == PAD_RGB
    assert square.getpixel((0, 1)) == (255, 0, 0) and square.getpixel((3, 2)) == (255, 0, 0)
    assert expand_to_square(Image.new("RGB", (3, 3))).size == (3, 3)


def test_roi_from_box_is_a_square_around_the_target():
    roi = roi_from_box((100, 100, 120, 110), (400, 300), RoiShape(margin=0.5, min_side=0.0))
    assert roi == (90.0, 85.0, 130.0, 125.0)  # side 20 * 2 = 40, centred on (110, 105)
    roi = roi_from_box((100, 100, 120, 110), (400, 300), RoiShape(margin=0.5, min_side=0.25))
    assert roi == (60.0, 55.0, 160.0, 155.0)  # least side 0.25 * 400
    edge = roi_from_box((390, 290, 400, 300), (400, 300), RoiShape(margin=0.5, min_side=0.25))
    assert edge == (300.0, 200.0, 400.0, 300.0)  # moved inside the image, not shrunk
    wide = roi_from_box((10, 140, 20, 150), (400, 300), RoiShape(margin=0.0, min_side=0.9))
    assert wide[2] - wide[0] == wide[3] - wide[1] == 360.0
    assert wide[1] == (300 - 360) / 2  # taller than the image: centred, into the padding
    whole = roi_from_box((0, 0, 400, 300), (400, 300), RoiShape(margin=1.0))
    assert whole == (0.0, -50.0, 400.0, 350.0)  # capped at the padded square


def test_padded_frame_writes_the_release_string():
    frame = RoiFrame("padded", (400, 200))
    assert frame.write((100, 50, 200, 150)) == "[0.25, 0.375, 0.5, 0.625]"
    assert frame.write((0, -100, 400, 300)) == "[0.0, 0.0, 1.0, 1.0]"
    assert RoiFrame("padded", (300, 300)).write((0, 0, 100, 200)) == "[0.0, 0.0, 0.333, 0.667]"
    assert RoiFrame("padded", (300, 300), decimals=2).write((0, 0, 100, 200)) == (
        "[0.0, 0.0, 0.33, 0.67]"
    )


def test_native_frame_is_the_familys_convention():
    qwen25 = RoiFrame("native", (448, 224), "qwen2_5_vl", HALF)
    assert qwen25.frame == (224, 112)
    assert qwen25.write((112, 56, 224, 168)) == "[56, 28, 112, 84]"  # frame pixels
    assert qwen25.write((112, -50, 224, 168)) == "[56, 0, 112, 84]"  # clipped to the image
    qwen3 = RoiFrame("native", (448, 224), "qwen3_vl", HALF)
    assert qwen3.write((112, 56, 224, 168)) == "[250, 250, 500, 750]"  # 0-1000 of the frame


def test_reading_maps_back_to_original_pixels_and_names_problems():
    padded = RoiFrame("padded", (400, 200))
    assert padded.read((0.25, 0.375, 0.5, 0.625)) == ((100.0, 50.0, 200.0, 150.0), None)
    assert padded.read((0.25, 0.375, 0.5, 1.7))[0] == (100.0, 50.0, 200.0, 300.0)  # clamped
    assert padded.read((0.5, 0.4, 0.5, 0.6)) == (None, "degenerate")
    assert padded.read((0.6, 0.4, 0.5, 0.6)) == (None, "degenerate")
    assert padded.read((0.1, 0.0, 0.9, 0.2)) == (None, "outside")  # on the padding only
    assert padded.read((2.0, 2.0, 3.0, 3.0)) == (None, "outside")
    native = RoiFrame("native", (448, 224), "qwen2_5_vl", HALF)
    assert native.read((56, 28, 112, 84)) == ((112.0, 56.0, 224.0, 168.0), None)
    assert native.read((300, 0, 400, 50)) == (None, "outside")


def test_padded_crop_comes_from_the_padded_square_and_is_square():
    image = Image.new("RGB", (400, 200), (255, 0, 0))
    frame = RoiFrame("padded", image.size)
    roi, _ = frame.read((0.0, 0.0, 0.5, 0.5))  # the top half is padding: y in [-100, 100)
    crop = frame.crop(image, roi)
    assert crop.size == (200, 200)
    assert crop.getpixel((10, 10)) == PAD_RGB and crop.getpixel((10, 150)) == (255, 0, 0)
    thin, _ = frame.read((0.0, 0.3, 0.5, 0.4))
    assert frame.crop(image, thin).size == (200, 200)  # padded to a square again


def test_native_crop_is_cut_from_the_image_at_full_resolution():
    image = Image.effect_noise((448, 224), 60).convert("RGB")
    frame = RoiFrame("native", image.size, "qwen2_5_vl", HALF)
    roi, _ = frame.read((56, 28, 112, 84))
    assert frame.crop(image, roi).tobytes() == image.crop((112, 56, 224, 168)).tobytes()
    tiny, _ = frame.read((100, 50, 101, 51))
    assert frame.crop(image, tiny).size == (28, 28)  # grown to one patch group


@pytest.mark.parametrize(
    "text",
    ["[0.1, 0.2, 0.3, 0.4]", " [1,2,3,4]\n", "[0, 0, 1.0, 1]", "[-0.5, 0.2, 0.3, 0.4]"],
)
def test_parser_reads_exactly_four_plain_numbers(text):
    reply = parse_roi(text)
    assert reply.problem is None and len(reply.values) == 4


@pytest.mark.parametrize(
    "text",
    [
        "[0.1, 0.2, 0.3, 0.4, 0.5]", "[0.1, 0.2, 0.3]", "The box is [0.1, 0.2, 0.3, 0.4]",
        "[0.1, 0.2, 0.3, 0.4] ok", "[1e-3, 0.2, 0.3, 0.4]", "[nan, 0.2, 0.3, 0.4]",
        "(0.1, 0.2, 0.3, 0.4)", "[0.1,, 0.2, 0.3, 0.4]", "[٣, 0.2, 0.3, 0.4]", "", None, 7,
        "[" + "1" * 300 + ", 0, 1, 1]",
    ],
)  # fmt: skip
def test_parser_refuses_anything_else_without_raising(text):
    assert parse_roi(text) == parse_roi("nonsense")
    assert parse_roi(text).values is None and parse_roi(text).problem == "unparsable"


def test_parser_gives_up_at_once_on_a_runaway_generation():
    assert parse_roi("[" + "0, " * 500_000 + "1]").problem == "unparsable"
    assert parse_roi("[0.1" + " " * 300 + ", 0.2, 0.3, 0.4]").problem == "unparsable"  # cap


@settings(max_examples=200, deadline=None)
@given(
    st.integers(64, 2000), st.integers(64, 2000), st.floats(0, 1), st.floats(0, 1),
    st.floats(0.01, 0.3), st.sampled_from(["padded", "native"]),
)  # fmt: skip
def test_every_written_roi_reads_back_and_covers_its_target(w, h, fx, fy, frac, kind):
    side = max(2.0, frac * min(w, h))
    x1, y1 = fx * (w - side), fy * (h - side)
    target = (x1, y1, x1 + side, y1 + side)
    roi = roi_from_box(target, (w, h))
    frame = RoiFrame(kind, (w, h), "qwen2_5_vl", TINY)
    read, problem = frame.read(parse_roi(frame.write(roi)).values)
    assert problem is None and overlaps(read, target)
    if kind == "native":  # Qwen's frame has no padding: the square is clipped to the image
        roi = (max(roi[0], 0), max(roi[1], 0), min(roi[2], w), min(roi[3], h))
    assert box_iou(read, roi) > 0.8  # only rounding separates them


def test_iou_and_overlap():
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert overlaps((0, 0, 2, 2), (1, 1, 3, 3)) and not overlaps((0, 0, 1, 1), (1, 0, 2, 1))
