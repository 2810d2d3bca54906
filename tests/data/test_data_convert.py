"""Conversions: function-call <-> canonical, DeepEyes, Mini-o3 crops of crops, box conventions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cof_plugins.core.frame import frame_size
from cof_plugins.core.parser import assistant_segments, parse_turn
from cof_plugins.core.protocol import load_protocol
from cof_plugins.core.registry import Registry, RegistryError
from cof_plugins.data.convert import ConvertConfig, convert_rows
from cof_plugins.data.styles.function_call import from_function_call, split_call, to_function_call
from cof_plugins.data.styles.mini_o3 import compose

P = load_protocol()


def boxes(row):
    return [c.bbox for t in assistant_segments(row["messages"]) for c in parse_turn(t).tool_calls]


def test_function_call_round_trip_is_exact(synthesized):
    for row in synthesized.rows:
        fc = to_function_call(row)
        roles = {c["from"] for c in fc["conversations"]}
        assert roles <= {"human", "gpt", "function_call", "observation"}
        back = from_function_call(fc, 0, P)
        assert back["messages"] == row["messages"] and back["images"] == row["images"]


def test_function_call_rows_with_thought_and_string_arguments():
    row = {
        "conversations": [
            {"from": "human", "value": "<image>Question: what is written?"},
            {"from": "function_call", "value": '<think>tiny</think>\n{"name": '
             '"image_zoom_in_tool", "arguments": "{\\"bbox_2d\\": [1, 2, 30, 40]}"}'},
            {"from": "observation", "value": "Here is the crop: <image>"},
            {"from": "gpt", "value": "<think>ok</think><answer>cat</answer>"},
        ],
        "images": ["a.png", {"path": "file:///abs/b.png"}],
        "answer": "cat",
    }  # fmt: skip
    out = from_function_call(row, 7, P)
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    assert out["messages"][0]["content"] == P.system
    assert out["messages"][2]["content"].startswith("<think>tiny</think>\n<tool_call>\n")
    assert boxes(out) == [(1.0, 2.0, 30.0, 40.0)]
    assert out["messages"][3]["content"] == P.crop_user_turn(1)
    assert out["images"] == ["a.png", "/abs/b.png"] and out["meta"]["answer"] == "cat"


def test_split_call_finds_trailing_json_only():
    assert split_call('think {not json} {"name": "x"}') == ("think {not json} ", {"name": "x"})
    assert split_call("no call here")[1] is None


def deepeyes_row():
    return {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]},
            {"role": "assistant", "content": '<think>a</think><tool_call>{"name": '
             '"image_zoom_in_tool", "arguments": {"bbox_2d": [112, 56, 224, 112], '
             '"label": "sign"}}</tool_call>'},
            {"role": "tool", "content": [{"type": "image"}]},
            {"role": "assistant", "content": "<think>b</think><answer>B</answer>"},
        ],
        "images": ["frame.png", "crop.png"],
    }  # fmt: skip


def test_deepeyes_to_canonical_in_the_family_convention(image_dir):
    cfg = ConvertConfig("deepeyes", family="qwen2_vl")
    (row,), bad = convert_rows([deepeyes_row()], cfg, image_dir)
    assert bad == []
    assert [m["role"] for m in row["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert row["messages"][1]["content"] == "<image>Q?"
    assert row["messages"][3]["content"] == P.crop_user_turn(1)
    assert boxes(row) == [(500.0, 250.0, 1000.0, 500.0)]  # 224x224 frame, 0-1000 scale
    assert '"label": "sign"' in row["messages"][2]["content"]


def test_deepeyes_tool_response_in_a_user_turn(image_dir):
    raw = deepeyes_row()
    raw["messages"][3] = {"role": "user", "content": "<tool_response><image></tool_response>"}
    (row,), _ = convert_rows([raw], ConvertConfig("deepeyes"), image_dir)
    assert row["messages"][3]["content"] == P.crop_user_turn(1)
    assert boxes(row) == [(112.0, 56.0, 224.0, 112.0)]


def test_mini_o3_crops_of_crops_map_back_to_the_frame(image_dir):
    raw = {
        "messages": [
            {"role": "user", "content": "<image>\nQuestion?"},
            {"role": "assistant", "content": '<think>a</think>\n<grounding>{"bbox_2d": '
             '[0.5, 0.5, 1.0, 1.0], "source": "original_image"}</grounding>'},
            {"role": "user", "content": "<image>"},
            {"role": "assistant", "content": '<think>b</think>\n<grounding>{"bbox_2d": '
             '[0.5, 0.0, 1.0, 0.5], "source": "observation_1"}</grounding>'},
            {"role": "tool", "content": "<image>"},
            {"role": "assistant", "content": "<think>c</think><answer>A</answer>"},
        ],
        "images": ["frame.png", "crop.png", "crop.png"],
    }  # fmt: skip
    (row,), bad = convert_rows([raw], ConvertConfig("mini-o3"), image_dir)
    assert bad == []
    assert boxes(row) == [(112.0, 112.0, 224.0, 224.0), (168.0, 112.0, 224.0, 168.0)]
    assert [m["role"] for m in row["messages"]][-3:] == ["assistant", "user", "assistant"]
    assert "<grounding>" not in json.dumps(row)


def test_mini_o3_unknown_observation_is_reported():
    raw = {
        "messages": [
            {"role": "user", "content": "<image>Q"},
            {"role": "assistant", "content": '<grounding>{"bbox_2d": [0, 0, 1, 1], '
             '"source": "observation_3"}</grounding>'},
        ],
        "images": ["frame.png"],
    }  # fmt: skip
    good, bad = convert_rows([raw], ConvertConfig("mini-o3", coords_to="rel1"), ".")
    assert good == [] and bad[0].startswith("row 0:") and "observation_3" in bad[0]


def test_compose_is_relative_to_the_parent_region():
    assert compose((0.2, 0.4, 0.6, 0.8), (0.5, 0.5, 1.0, 1.0)) == pytest.approx(
        (0.4, 0.6, 0.6, 0.8)
    )


def test_coords_abs_rel1000_abs_within_one_pixel(synthesized):
    out = synthesized.path.parent
    to = ConvertConfig("canonical", coords_from="abs", coords_to="rel1000")
    rel, bad = convert_rows(synthesized.rows, to, out)
    back, bad2 = convert_rows(rel, ConvertConfig("canonical", coords_from="rel1000",
                                                 coords_to="abs"), out)  # fmt: skip
    assert bad == bad2 == []
    pairs = [(a, b) for r0, r2 in zip(synthesized.rows, back, strict=True)
             for a, b in zip(boxes(r0), boxes(r2), strict=True)]  # fmt: skip
    assert pairs and all(abs(x - y) <= 1 for a, b in pairs for x, y in zip(a, b, strict=True))
    zoomed = next(i for i, r in enumerate(synthesized.rows) if boxes(r))
    assert boxes(rel[zoomed]) != boxes(synthesized.rows[zoomed])


def test_swapping_families_moves_boxes_to_the_new_frame(image_dir, make_png):
    make_png(image_dir / "wide.png", (448, 252))
    raw = deepeyes_row()
    raw["images"][0] = "wide.png"
    src_frame, dst_frame = frame_size((448, 252), "qwen2_5_vl"), frame_size((448, 252), "qwen3_vl")
    assert src_frame != dst_frame
    cfg = ConvertConfig("deepeyes", family="qwen2_5_vl", to_family="qwen3_vl", coords_to="abs")
    (row,), _ = convert_rows([raw], cfg, image_dir)
    _, y1, x2, _ = boxes(row)[0]
    assert x2 == round(224 * dst_frame[0] / src_frame[0]) and y1 == round(
        56 * dst_frame[1] / src_frame[1]
    )


def test_bad_rows_are_reported_with_their_index(image_dir):
    rows = [deepeyes_row(), {"messages": [{"role": "wizard", "content": "x"}]}, "junk"]
    good, bad = convert_rows(rows, ConvertConfig("deepeyes"), image_dir)
    assert len(good) == 1
    assert bad[0].startswith("row 1: message 0 has unknown role 'wizard'")
    assert bad[1].startswith("row 2: expected an object")


def test_function_call_without_json_is_reported():
    row = {"conversations": [{"from": "human", "value": "<image>q"},
                             {"from": "function_call", "value": "zoom please"}]}  # fmt: skip
    _, bad = convert_rows([row], ConvertConfig("function-call"), ".")
    assert bad and bad[0].startswith("row 0: function_call value does not end with a JSON call")


def test_cli_convert_rebases_paths_and_records_provenance(image_dir, tmp_path):
    src = image_dir / "de.jsonl"
    src.write_text(json.dumps(deepeyes_row()) + "\n")
    out = tmp_path / "elsewhere" / "canon.json"
    cmd = [sys.executable, "-m", "cof_plugins.cli", "data", "convert", "--from", str(src),
           "--style", "deepeyes", "--out", str(out), "--family", "qwen3_vl"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(out.read_text())
    assert (out.parent / row["images"][0]).resolve() == (image_dir / "frame.png").resolve()
    assert json.loads(out.with_name("canon.json.provenance.json").read_text())["inputs"]


def _style_choices() -> list[str]:
    from cof_plugins.cli import build_parser

    (data,) = [a for a in build_parser()._subparsers._group_actions if "data" in a.choices]
    convert = data.choices["data"]._subparsers._group_actions[0].choices["convert"]
    (style,) = [a for a in convert._actions if a.dest == "style"]
    return list(style.choices)


def test_styles_are_one_registry_the_cli_offers():
    from cof_plugins.data.styles import STYLES, Style
    from cof_plugins.data.styles.deepeyes import from_deepeyes

    assert _style_choices() == STYLES.names()
    assert STYLES.names() == ["function-call", "deepeyes", "mini-o3", "canonical"]
    with pytest.raises(RegistryError) as err:
        ConvertConfig("deep-eyes")
    assert "did you mean 'deepeyes'" in str(err.value)
    assert "valid: function-call, deepeyes, mini-o3, canonical" in str(err.value)
    with pytest.raises(RegistryError, match="'deepeyes' is already registered"):
        STYLES.register("deepeyes", Style(from_function_call, coords="abs"))
    assert STYLES.get("deepeyes").read is from_deepeyes


def test_runner_reads_rows_through_the_registered_style(monkeypatch, image_dir):
    """A style registered under a new name is what the runner calls, its convention too."""
    import cof_plugins.data.convert as runner
    from cof_plugins.data.styles import Style

    seen = []

    def read(row, i, protocol):
        seen.append(i)
        call = json.dumps({"name": "image_zoom_in_tool", "arguments": {"bbox_2d": row}})
        text = f"<tool_call>{call}</tool_call>"
        messages = [{"role": "user", "content": "<image>q"}, {"role": "assistant", "content": text}]
        return {"messages": messages, "images": ["frame.png"], "meta": {}}

    table = Registry("conversion style")
    table.register("fractions", Style(read, coords="rel1"))
    monkeypatch.setattr(runner, "STYLES", table)
    cfg = ConvertConfig("fractions", family="qwen3_vl")  # qwen3_vl writes 0-1000 boxes
    good, bad = convert_rows([[0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]], cfg, image_dir)
    assert not bad and seen == [0, 1]
    assert [boxes(row) for row in good] == [[(100, 200, 300, 400)], [(0, 0, 1000, 1000)]]
    with pytest.raises(RegistryError, match="valid: fractions"):
        ConvertConfig("deepeyes")
