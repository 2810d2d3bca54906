"""RL and evaluation run one zoom step: the same model text gives the same crops and replies.

The RL side is verl's own path: the registered ``cof`` parser turns the turn's text into
calls, the first ``max_parallel_calls`` of them go (concurrently, as ToolAgentLoop sends
them) through ``create -> execute -> release`` of the ``ZoomInTool`` built by verl's tool
registry, and each reply becomes one ``tool`` message. The evaluation side is the loop's
``start`` and ``advance``. For every protocol preset, both families' coordinate conventions
and both profiles, turns with several calls, bad boxes and unreadable calls must give
byte-identical crops, identical text (rendered by the chat template) and identical counts.

Where the profiles make RL and evaluation differ on purpose, the test says so and checks
each side against the profile: under ``paper`` RL runs every call and answers a failed one
with a message, while evaluation runs only the first and returns the whole frame scaled 2x.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("verl")

from omegaconf import OmegaConf
from PIL import Image

from cof_plugins.core.chat_template import render
from cof_plugins.core.frame import PixelBudget, frame_size, get_family
from cof_plugins.core.profiles import call_cap, get_profile
from cof_plugins.core.protocol import available_protocols, load_protocol
from cof_plugins.core.zoom_step import whole_frame
from cof_plugins.eval.benchmarks import Sample
from cof_plugins.eval.images import ImageRef
from cof_plugins.eval.loop import LoopConfig, advance, start
from cof_plugins.verl.tool_parser import CofToolParser

RL_CROP_CAP = 5120 * 28 * 28  # the tool's crop cap; evaluation is given the same one here
BUDGET = {"min_pixels": 112 * 112, "max_pixels": 640 * 480}  # frames smaller than the original


def _call(box, quote='"') -> str:
    body = json.dumps({"name": "image_zoom_in_tool", "arguments": {"bbox_2d": box}})
    return "<tool_call>\n" + body.replace('"', quote) + "\n</tool_call>"


def turns(w: float, h: float) -> dict[str, str]:
    """Assistant turns in the model's own units (frame pixels, or 0-1000)."""
    a, b = [0.1 * w, 0.2 * h, 0.3 * w, 0.45 * h], [0.55 * w, 0.5 * h, 0.62 * w, 0.58 * h]
    thin = [0.4 * w, 0.3 * h, 0.4 * w + 0.2, 0.6 * h]
    outside, inverted = [0.2 * w, 0.2 * h, 1.3 * w, 0.5 * h], [0.6 * w, 0.2 * h, 0.3 * w, 0.5 * h]
    garbage = '<tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2,\n'
    think = "<think>The sign is small; look closer.</think>\n"
    return {
        "two_valid": think + _call(a) + "\n" + _call(b),
        "bad_box_then_valid": think + _call(outside) + "\n" + _call(a),
        "unreadable_then_valid": think + garbage + "</tool_call>\n" + _call(b),
        "lenient_single_quotes": think + _call(a, quote="'"),
        "thin_then_inverted_then_unreadable": think + _call(thin) + _call(inverted) + garbage,
        "label_no_box": think + '<tool_call>{"name": "image_zoom_in_tool", '
        '"arguments": {"label": "sign"}}</tool_call>',
    }


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A textured original larger than its frame, so full-resolution crops are tested too."""
    rng = np.random.default_rng(5)
    image = Image.fromarray(rng.integers(0, 256, (1000, 1400, 3), dtype=np.uint8))
    path = tmp_path_factory.mktemp("parity") / "original.png"
    image.save(path)
    return path


def _loop_config(family, preset, profile) -> LoopConfig:
    return LoopConfig(family=family, protocol=preset, profile=profile,
                      crop_max_pixels=RL_CROP_CAP, **BUDGET)  # fmt: skip


def _eval_side(path, family, preset, profile, text):
    cfg = _loop_config(family, preset, profile)
    protocol = load_protocol(preset)
    sample = Sample("s", ImageRef("path", str(path)), "What does the sign say?", "A", ("x", "y"))
    traj = start(sample, None, cfg, protocol)
    advance(traj, text, None, cfg, protocol)
    return traj


def _frame_size(path, family, profile="default") -> tuple[int, int]:
    rounding = get_profile(profile).frame_rounding
    with Image.open(path) as image:
        return frame_size(image.size, family, PixelBudget(**BUDGET), rounding=rounding)


def _tool(tmp_path, family, preset, profile):
    from verl.tools.tool_registry import initialize_tools_from_config

    config = {"type": "native", "family": family, "protocol": preset, "profile": profile}
    path = tmp_path / f"tool_{family}_{preset}_{profile}.yaml"
    tools = {"tools": [{"class_name": "cof_plugins.verl.ZoomInTool", "config": config}]}
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(tools)))
    (tool,) = initialize_tools_from_config(str(path))
    return tool


def _rl_side(tool, frame, path, family, text, max_parallel_calls):
    """What verl's ToolAgentLoop does with one assistant turn (parser, then each call)."""
    parser = CofToolParser(tokenizer=None)
    _, calls = parser.parse_text(text, ["image_zoom_in_tool"])
    agent = SimpleNamespace(image_data=[frame], extra_fields={}, tool_calls=calls,
                            assistant_turns=1)  # fmt: skip
    create = {"frame_size": list(frame.size), "family": family, "original_image": str(path)}

    async def one(call):
        instance, _ = await tool.create(create_kwargs=create)
        try:
            return await tool.execute(instance, json.loads(call.arguments), agent_data=agent)
        finally:
            await tool.release(instance)

    async def turn():
        return await asyncio.gather(*(one(c) for c in calls[:max_parallel_calls]))

    responses = [r for r, _, _ in asyncio.run(turn())]
    return responses, agent.extra_fields, len(calls)


def _rl_content(response) -> str:
    return "<image>" * len(response.image or []) + (response.text or "")


def _tool_content(response) -> list[dict]:
    """The tool message verl's ToolAgentLoop builds from one reply."""
    images = [{"type": "image"} for _ in response.image or []]
    return [*images, {"type": "text", "text": response.text or ""}]


def _eval_counts(records) -> dict[str, int]:
    return {
        "calls": len(records), "valid": sum(r["kind"] == "crop" for r in records),
        "invalid": sum(r["kind"] in ("box", "parse") for r in records),
        "parse_errors": sum(r["kind"] == "parse" for r in records),
    }  # fmt: skip


def _rl_counts(fields) -> dict[str, int]:
    keys = ("calls", "valid", "invalid", "parse_errors")
    return {k: fields.get(f"cof_zoom_{k}", 0) for k in keys}


def _bytes(images) -> list[tuple]:
    return [(im.size, im.tobytes()) for im in images]


# paper, RL: which calls of each turn return an image (every call runs).
PAPER_RL_IMAGES = {
    "two_valid": [True, True],
    "bad_box_then_valid": [False, True],
    "unreadable_then_valid": [False, True],
    "lenient_single_quotes": [True],
    "thin_then_inverted_then_unreadable": [False, False, False],  # 0 px wide after int()
    "label_no_box": [False],
}
# Default profile: the first call's kind (a thin box grows to 28 px, so it crops).
DEFAULT_FIRST = {
    "two_valid": "crop", "bad_box_then_valid": "box", "unreadable_then_valid": "parse",
    "lenient_single_quotes": "crop", "thin_then_inverted_then_unreadable": "crop",
    "label_no_box": "parse",
}  # fmt: skip

# Protocols with the zoom tool (SIFThinker's has none: `tool_schema: {}`).
TOOL_PROTOCOLS = [p for p in available_protocols() if load_protocol(p).tool_schema]
CASES = [(p, f) for p in TOOL_PROTOCOLS for f in ("qwen2_5_vl", "qwen3_vl")]


@pytest.mark.parametrize(("preset", "family"), CASES)
def test_default_profile_rl_and_eval_give_identical_replies(tmp_path, original, preset, family):
    """Default profile: RL and evaluation run the same (first) call and answer it alike."""
    profile = get_profile("default")
    assert call_cap(profile.rl_calls) == call_cap(profile.eval_calls) == 1
    tool = _tool(tmp_path, family, preset, "default")
    units = (1000, 1000) if get_family(family).coords == "rel1000" else None
    for name, text in turns(*(units or _frame_size(original, family))).items():
        traj = _eval_side(original, family, preset, "default", text)
        responses, fields, n_calls = _rl_side(tool, traj.images[0], original, family, text, 1)
        eval_content = traj.messages[-1]["content"]
        assert traj.messages[-1]["role"] == "user" and n_calls >= 1, name
        # Crops: the same pixels, byte for byte.
        rl_images = [im for r in responses for im in (r.image or [])]
        assert _bytes(rl_images) == _bytes(traj.images[1:]), name
        # Text: the same string, and the same tokens once the chat template renders it.
        assert "".join(_rl_content(r) for r in responses) == eval_content, name
        as_tool = [{"role": "tool", "content": _tool_content(r)} for r in responses]
        assert render(as_tool) == render([{"role": "user", "content": eval_content}]), name
        # Counts: by kind, as the reward and the report read them.
        assert _rl_counts(fields) == _eval_counts(traj.turns[-1]["calls"]), name
        assert traj.turns[-1].get("calls_not_run", 0) == n_calls - 1, name
        assert [c["kind"] for c in traj.turns[-1]["calls"]] == [DEFAULT_FIRST[name]], name
        assert eval_content.endswith("\n" + load_protocol(preset).user_suffix), name


@pytest.mark.parametrize("preset", TOOL_PROTOCOLS)
def test_paper_profile_rl_runs_every_call_eval_only_the_first(tmp_path, original, preset):
    """paper: RL answers every call (failed ones with a message); evaluation answers the
    first, with the crop when it succeeds and the whole frame scaled 2x when it fails."""
    family, protocol = "qwen2_5_vl", load_protocol(preset)
    tool = _tool(tmp_path, family, preset, "paper")
    for name, text in turns(*_frame_size(original, family, "paper")).items():
        traj = _eval_side(original, family, preset, "paper", text)
        frame = traj.images[0]
        # The recipe's max_parallel_calls for the profile (cof validate checks the recipe).
        parallel = call_cap(get_profile("paper").rl_calls) or 64
        responses, fields, n_calls = _rl_side(tool, frame, original, family, text, parallel)
        assert len(responses) == n_calls, name  # RL: every call
        assert [bool(r.image) for r in responses] == PAPER_RL_IMAGES[name], name
        (record,) = traj.turns[-1]["calls"]  # evaluation: the first call only
        first = responses[0]
        if record["kind"] == "crop":  # the same crop and reply on both sides
            assert _bytes(first.image) == _bytes(traj.images[1:]), name
            assert _rl_content(first) == traj.messages[-1]["content"], name
        else:  # RL tells the model; evaluation sends the whole frame instead
            assert first.image is None and first.text.endswith(protocol.user_suffix), name
            eval_zoom = _loop_config(family, preset, "paper").zoom_config()
            degenerate = record.get("problem") == "degenerate"
            expected = frame if degenerate else whole_frame(frame, eval_zoom)
            assert _bytes(traj.images[1:]) == _bytes([expected]), name
            assert traj.messages[-1]["content"] == "<image>\n" + protocol.user_suffix, name
        assert _rl_counts(fields)["calls"] == n_calls, name
