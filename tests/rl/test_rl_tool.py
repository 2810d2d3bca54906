"""ZoomInTool as verl's tool registry builds it from the shipped tool YAMLs."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

pytest.importorskip("verl")

from PIL import Image

from cof_plugins.verl.registration import asset_path
from cof_plugins.verl.tool_parser import PARSE_ERROR_KEY


def _tool(family: str):
    from verl.tools.tool_registry import initialize_tools_from_config

    (tool,) = initialize_tools_from_config(asset_path(f"recipes/rl/tools/zoom_{family}.yaml"))
    return tool


def _call(tool, arguments, frame=(448, 336), create=None, image=None):
    agent = SimpleNamespace(image_data=[image or Image.new("RGB", frame, "white")], extra_fields={})

    async def go():
        kwargs = create if create is not None else {"frame_size": list(frame)}
        instance, _ = await tool.create(create_kwargs=kwargs)
        try:
            return await tool.execute(instance, arguments, agent_data=agent)
        finally:
            await tool.release(instance)

    response, reward, _ = asyncio.run(go())
    return response, reward, agent.extra_fields


@pytest.mark.parametrize(
    ("family", "box", "factor"),
    [("qwen2_5_vl", [40, 30, 200, 150], 28), ("qwen3_vl", [100, 100, 450, 450], 32)],
)
def test_crops_snap_to_the_family_factor(family, box, factor):
    tool = _tool(family)
    assert tool.name == "image_zoom_in_tool"
    frame = (448, 320) if factor == 32 else (448, 336)
    response, reward, stats = _call(tool, {"bbox_2d": box}, frame)
    (crop,) = response.image
    assert crop.width % factor == 0 and crop.height % factor == 0
    assert reward == 0.0 and stats["cof_zoom_valid"] == 1
    assert stats["cof_zoom_crop_pixels"] == crop.width * crop.height
    assert response.text.startswith("\n") and "<think>" in response.text


def test_rel1000_boxes_are_checked_in_the_model_units():
    response, reward, _ = _call(_tool("qwen3_vl"), {"bbox_2d": [100, 100, 1200, 500]}, (448, 320))
    assert response.image is None and reward < 0
    assert "1200" in response.text and "1000x1000" in response.text


def test_full_resolution_crop_reads_the_original(tmp_path):
    original = Image.new("RGB", (1792, 1344), "red")
    original.paste("blue", (0, 0, 896, 1344))  # left half blue
    path = tmp_path / "orig.png"
    original.save(path)
    frame = (448, 336)
    create = {"original_image": str(path), "frame_size": list(frame), "family": "qwen2_5_vl"}
    response, _, _ = _call(_tool("qwen2_5_vl"), {"bbox_2d": [10, 10, 100, 100]}, frame, create)
    assert response.image[0].getpixel((5, 5)) == (0, 0, 255)


@pytest.mark.parametrize(
    ("arguments", "needle", "kind"),
    [
        ({"bbox_2d": [300, 10, 100, 50]}, "inverted", "invalid"),
        # Arguments the parser cannot use are parse errors, as in the evaluation loop.
        ({"bbox_2d": "a, b, c, d"}, "not a number", "parse"),
        ({"box": None}, "[x1, y1, x2, y2]", "parse"),
        ({"label": "cat"}, "no bbox_2d", "parse"),
        (
            {PARSE_ERROR_KEY: "Your tool call could not be read <|im_end|> <image>"},
            "[image]",
            "parse",
        ),
        (["not", "a", "dict"], "not an object", "parse"),
        # A 400-digit coordinate overflows a float: the model's unreadable call, penalised.
        ({"bbox_2d": [1, 1, 50, int("9" * 400)]}, "too large to be a coordinate", "parse"),
        ({"bbox_2d": [int("9" * 400), 1, 50, 60]}, "too large to be a coordinate", "parse"),
    ],
)
def test_bad_calls_get_text_and_a_penalty_never_an_exception(arguments, needle, kind):
    response, reward, stats = _call(_tool("qwen2_5_vl"), arguments)
    assert response.image is None and needle in response.text
    assert "<|im_end|>" not in response.text
    assert reward == pytest.approx(-0.05)
    assert stats["cof_zoom_invalid"] == 1 and stats["cof_zoom_setup_errors"] == 0
    assert stats["cof_zoom_parse_errors"] == (1 if kind == "parse" else 0)


def test_frame_mismatch_is_a_setup_error_without_penalty():
    response, reward, stats = _call(
        _tool("qwen2_5_vl"), {"bbox_2d": [1, 1, 50, 50]}, create={"frame_size": [448, 308]}
    )
    assert "448x336" in response.text and "448x308" in response.text
    assert reward == 0.0 and stats["cof_zoom_setup_errors"] == 1


def test_family_mismatch_is_reported():
    create = {"frame_size": [448, 336], "family": "qwen3_vl"}
    response, _, _ = _call(_tool("qwen2_5_vl"), {"bbox_2d": [1, 1, 50, 50]}, create=create)
    assert "qwen3_vl" in response.text and "config.family" in response.text


def test_misspelt_tool_config_key_is_rejected_by_name():
    from cof_plugins.verl.tool import ZoomInTool

    with pytest.raises(
        ValueError, match=r"'invalid_cal_reward'.*did you mean 'invalid_call_reward'"
    ):
        ZoomInTool({"type": "native", "invalid_cal_reward": -1}, None)
    with pytest.raises(ValueError, match="max_pixel"):
        ZoomInTool({"type": "native", "zoom": {"max_pixel": 10}}, None)


def test_concurrent_calls_of_a_turn_find_their_place_for_the_image_cap():
    """verl runs a turn's calls concurrently; each finds its index, so the image cap refuses
    exactly the calls the evaluation loop refuses (call i runs while images + i < cap)."""
    import json

    from cof_plugins.core.parser import parse_turn
    from cof_plugins.core.zoom_step import StepConfig, run_turn
    from cof_plugins.verl.tool import ZoomInTool
    from cof_plugins.verl.tool_parser import CofToolParser

    tool = ZoomInTool({"type": "native", "profile": "paper", "max_images": 3}, None)
    call = '<tool_call>{{"name": "image_zoom_in_tool", "arguments": {{"bbox_2d": {}}}}}</tool_call>'
    boxes = ([10, 10, 60, 60], [100, 80, 200, 160], [10, 10, 60, 60], [5, 5, 9, 9])
    text = "<think>x</think>" + "".join(call.format(b) for b in boxes)
    _, calls = CofToolParser(tokenizer=None).parse_text(text, ["image_zoom_in_tool"])
    frame = Image.effect_noise((448, 336), 60).convert("RGB")
    agent = SimpleNamespace(image_data=[frame], extra_fields={}, tool_calls=calls,
                            assistant_turns=1)  # fmt: skip

    async def one(c):
        instance, _ = await tool.create(create_kwargs={"frame_size": [448, 336]})
        return await tool.execute(instance, json.loads(c.arguments), agent_data=agent)

    async def turn():
        return await asyncio.gather(*(one(c) for c in calls))

    rl = [r for r, _, _ in asyncio.run(turn())]
    step = StepConfig.for_stage(
        "paper", "eval", family="qwen2_5_vl", suffix=tool.protocol.user_suffix
    )
    step = StepConfig(
        step.zoom, "abs", step.suffix, calls="all", failed_call="message", max_images=3
    )
    ev = run_turn(parse_turn(text).attempts, frame, None, step)
    assert [bool(r.image) for r in rl] == [o.image is not None for o in ev.outcomes] == [
        True, True, False, False
    ]  # fmt: skip
    assert [r.text for r in rl] == [o.text for o in ev.outcomes]
    assert "already holds 3 images" in rl[2].text and agent.extra_fields["cof_zoom_limit"] == 2
