"""Bad data in: every case is one clear error naming the file or the row, never a traceback."""

from __future__ import annotations

import json

import pytest
from PIL import Image

BIG = int("9" * 400)


def _rows_file(tmp_path, rows, name="ann.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["data", "validate", "FILE"],
        ["data", "synthesize", "--from", "FILE", "--out", "OUT"],
        ["data", "convert", "--from", "FILE", "--style", "canonical", "--out", "OUT.json"],
        ["data", "to-parquet", "--from", "FILE", "--out", "OUT.parquet"],
    ],
    ids=["validate", "synthesize", "convert", "to-parquet"],
)
def test_non_utf8_data_file_names_the_byte(command, cof, tmp_path):
    data = tmp_path / "latin1.jsonl"
    data.write_bytes(b'{"question": "caf\xe9?", "image": "a.png", "answer": "x"}\n')
    args = [str(data) if a == "FILE" else a.replace("OUT", str(tmp_path / "out")) for a in command]
    result = cof(*args)
    assert result.code != 0
    assert "not UTF-8" in result.err and "byte offset 17" in result.err and "latin1" in result.err
    assert not list(tmp_path.glob("out*"))


def test_json_syntax_error_names_line_and_column(cof, tmp_path):
    data = tmp_path / "rows.json"
    data.write_text('[\n {"messages": [], "images": []},\n {"messages": [] "images": []}\n]\n')
    result = cof("data", "validate", data)
    assert result.code != 0 and f"{data}: not valid JSON at line 3 column 18" in result.err


def test_huge_and_non_finite_box_numbers_are_row_errors(cof, tmp_path, scene_annotations):
    rows = [dict(r) for r in scene_annotations[:3]]
    rows[1]["bbox"] = [1, 1, 50, BIG]
    rows[2]["bbox"] = [1, 1, 50, 1e999]  # json writes Infinity
    data = _rows_file(tmp_path, rows)
    result = cof("data", "synthesize", "--from", data, "--out", tmp_path / "out")
    assert result.code == 1
    assert "row 1: bbox must be" in result.out
    assert "row 2: bbox has a value that is not finite" in result.out
    assert len(json.loads((tmp_path / "out" / "train.json").read_text())) == 1


def test_box_far_outside_the_image_is_refused_by_synthesize(cof, tmp_path, scene_annotations):
    rows = [dict(r) for r in scene_annotations[:2]]
    rows[0]["bbox"] = [5000, 5000, 5100, 5100]
    data = _rows_file(tmp_path, rows)
    result = cof("data", "synthesize", "--from", data, "--out", tmp_path / "out")
    assert result.code == 1 and "row 0: box [5000.0, 5000.0, 5100.0, 5100.0] lies outside" in (
        result.out
    )
    (row,) = json.loads((tmp_path / "out" / "train.json").read_text())
    assert row["meta"]["id"] == rows[1]["id"]


def test_validate_flags_a_target_box_outside_the_original(cof, trajectories, tmp_path):
    rows = json.loads(trajectories.read_text())
    rows[0]["meta"]["bbox"] = [9000, 9000, 9100, 9100]
    for row in rows:  # keep the images reachable from the copy
        row["images"] = [str(trajectories.parent / p) for p in row["images"]]
    data = tmp_path / "train.json"
    data.write_text(json.dumps(rows))
    result = cof("data", "validate", data)
    assert result.code == 1
    assert "row 0: [error bad-box] meta.bbox: box [9000.0, 9000.0, 9100.0, 9100.0] lies" in (
        result.out
    )


@pytest.mark.parametrize(
    ("ids", "needle"),
    [
        (["a/b", "a b"], "row 1: id 'a b' and row 0's id 'a/b' both become the image folder 'a_b'"),
        (["same", "same"], "row 1: id 'same' repeats row 0's"),
        (["Cat", "cat"], "row 1: id 'cat' and row 0's id 'Cat'"),
    ],
)
def test_ids_that_collide_stop_synthesize_naming_both_rows(
    ids, needle, cof, tmp_path, scene_annotations
):
    rows = [{**r, "id": i} for r, i in zip(scene_annotations, ids, strict=False)]
    data = _rows_file(tmp_path, rows)
    result = cof("data", "synthesize", "--from", data, "--out", tmp_path / "out")
    assert result.code == 1 and needle in result.out and "nothing written" in result.out
    assert not (tmp_path / "out").exists()


def test_validate_flags_ids_that_collide(cof, trajectories, tmp_path):
    rows = json.loads(trajectories.read_text())
    rows[0]["meta"]["id"], rows[2]["meta"]["id"] = "x/1", "x 1"
    for row in rows:
        row["images"] = [str(trajectories.parent / p) for p in row["images"]]
    data = tmp_path / "train.json"
    data.write_text(json.dumps(rows))
    result = cof("data", "validate", data)
    assert result.code == 1
    assert "row 2: [error duplicate-id] meta.id 'x 1' becomes the folder 'x_1' as row 0's" in (
        result.out
    )


def test_extreme_aspect_ratio_is_named_by_zoom_and_validate(cof, tmp_path, good_row_file):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (4020, 20), "white").save(wide)
    result = cof("zoom", wide, "--bbox", "0,0,10,10", "-o", tmp_path / "z.png")
    assert result.code == 2 and str(wide) in result.err and "aspect ratio above 200" in result.err
    data = good_row_file(frame=wide)
    result = cof("data", "validate", data)
    assert result.code == 1 and "row 0: [error image-aspect]" in result.out


@pytest.fixture
def good_row_file(tmp_path, png):
    """``good_row_file(frame=PATH)``: one direct-answer canonical row over ``frame``."""
    from cof_plugins.core.protocol import load_protocol

    def make(frame=None):
        frame = frame or png("frame.png")
        row = {
            "messages": [
                *load_protocol().prompt_messages("What colour?", ["red", "blue"]),
                {"role": "assistant", "content": "<think>x</think>\n<answer>A</answer>"},
            ],
            "images": [str(frame)],
            "meta": {"id": "only"},
        }
        path = tmp_path / "one.json"
        path.write_text(json.dumps([row]))
        return path

    return make


def _broken_images(tmp_path):
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image")
    whole = tmp_path / "whole.png"
    Image.effect_noise((300, 200), 50).convert("RGB").save(whole)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(whole.read_bytes()[:2000])  # the header reads, the pixels do not
    return garbage, truncated


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_to_parquet_names_the_row_of_an_unreadable_image_and_writes_nothing(
    kind, cof, tmp_path, scene_annotations, leftovers
):
    garbage, truncated = _broken_images(tmp_path)
    rows = [dict(r) for r in scene_annotations[:3]]
    rows[1]["image"] = str(garbage if kind == "garbage" else truncated)
    del rows[1]["bbox"], rows[1]["extra_boxes"]  # only the image is wrong
    data = _rows_file(tmp_path, rows)
    out = tmp_path / "rl.parquet"
    out.write_bytes(b"previous")
    result = cof("data", "to-parquet", "--from", data, "--out", out, "--overwrite")
    assert result.code == 1 and "nothing written" in result.out
    why = "cannot identify image file" if kind == "garbage" else "image file is truncated"
    assert "row 1: " in result.out and why in result.out, result.out
    assert out.read_bytes() == b"previous" and leftovers(tmp_path) == []
    result = cof("data", "to-parquet", "--from", data, "--out", out, "--overwrite",
                 "--drop-invalid")  # fmt: skip
    assert result.code == 0 and "row 1: " in result.out and "wrote 2 rows" in result.out
