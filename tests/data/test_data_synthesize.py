"""Synthesized trajectories: readable by core.parser, boxes around the target, frames exact."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from cof_plugins.core.frame import frame_size
from cof_plugins.core.parser import assistant_segments, parse_turn
from cof_plugins.core.protocol import load_protocol
from cof_plugins.data.layout import detect_layout, to_in_turn, to_next_user
from cof_plugins.data.policy import PolicyConfig
from cof_plugins.data.synthesize import SynthConfig, bucket, synthesize
from cof_plugins.data.validate import errors, validate_rows


def calls(row):
    return [c for t in assistant_segments(row["messages"]) for c in parse_turn(t).tool_calls]


def to_original(box, row, convention):
    from cof_plugins.core.coords import to_frame_pixels

    fw, fh = row["meta"]["frame_size"]
    ow, oh = row["meta"]["original_size"]
    x1, y1, x2, y2 = to_frame_pixels(box, convention, (fw, fh))
    return x1 * ow / fw, y1 * oh / fh, x2 * ow / fw, y2 * oh / fh


def test_boxes_read_back_contain_the_target(synthesized):
    zoomed = 0
    for row in synthesized.rows:
        for call in calls(row):
            x1, y1, x2, y2 = to_original(call.bbox, row, "abs")
            bx1, by1, bx2, by2 = row["meta"]["bbox"]
            assert x1 <= bx1 + 1e-6 and y1 <= by1 + 1e-6 and x2 >= bx2 - 1e-6 and y2 >= by2 - 1e-6
            zoomed += 1
    assert zoomed > 0, "the 224-1024 px samples should need zooms"


def test_first_image_is_the_frame_and_crops_match_calls(synthesized):
    out = synthesized.path.parent
    for row in synthesized.rows:
        frame = Image.open(out / row["images"][0]).size
        assert list(frame) == row["meta"]["frame_size"]
        assert frame_size(tuple(row["meta"]["original_size"]), "qwen2_5_vl") == frame
        assert len(row["images"]) == 1 + len(calls(row)) == 1 + row["meta"]["zooms"]
        last = parse_turn(row["messages"][-1]["content"])
        assert last.answer == row["meta"]["answer"] and not last.attempted_tool


def test_synthesized_rows_validate_clean(synthesized):
    rows, out = synthesized.rows, synthesized.path.parent
    assert validate_rows(rows, image_dir=out, cutoff_len=100_000) == []
    assert json.loads(synthesized.path.read_text()) == rows


def test_mix_counts_every_row_and_files_are_written(synthesized):
    out = synthesized.path.parent
    mix = json.loads((out / "mix.json").read_text())
    assert sum(sum(c.values()) for c in mix.values()) == len(synthesized.rows) == 12
    assert "two zooms" in (out / "mix.txt").read_text()
    assert set(mix) <= {"224", "448", "1024"}


def test_smaller_frames_zoom_more(synth_dir, tmp_path):
    """The policy measures the FRAME: the same annotations zoom more under a smaller budget."""
    from cof_plugins.core.frame import PixelBudget

    ann, small = synth_dir / "annotations.jsonl", PixelBudget(max_pixels=160 * 160)
    big = synthesize(ann, tmp_path / "big", SynthConfig(), progress=False, limit=6).rows
    tiny = synthesize(ann, tmp_path / "s", SynthConfig(budget=small), progress=False, limit=6).rows
    zooms = [(a["meta"]["zooms"], b["meta"]["zooms"]) for a, b in zip(big, tiny, strict=True)]
    assert all(z_big <= z_small for z_big, z_small in zooms)
    assert sum(z for _, z in zooms) > sum(z for z, _ in zooms)


def test_rel1000_family_writes_normalised_boxes(synth_dir, tmp_path):
    cfg = SynthConfig(family="qwen2_vl", layout="in-turn", seed=3)
    result = synthesize(synth_dir / "annotations.jsonl", tmp_path, cfg, progress=False, limit=4)
    rows = [r for r in result.rows if r["meta"]["zooms"]]
    assert rows and all(detect_layout(r["messages"]) == "in-turn" for r in rows)
    for row in rows:
        for call in calls(row):
            assert all(0 <= v <= 1000 for v in call.bbox)
            x1, y1, x2, y2 = to_original(call.bbox, row, "rel1000")
            bx1, by1, bx2, by2 = row["meta"]["bbox"]
            assert x1 <= bx1 + 1e-6 and x2 >= bx2 - 1e-6 and y1 <= by1 + 1e-6 and y2 >= by2 - 1e-6
    assert errors(validate_rows(result.rows, image_dir=tmp_path, family="qwen2_vl")) == []


def test_layouts_convert_both_ways(synthesized):
    suffix = load_protocol().crop_user_turn
    for row in synthesized.rows:
        folded = to_in_turn(row["messages"])
        assert sum(m["role"] == "assistant" for m in folded) == 1
        assert to_next_user(folded, suffix) == row["messages"]


def test_same_seed_same_text_other_seed_other_words(synth_dir, tmp_path):
    ann = synth_dir / "annotations.jsonl"
    a = synthesize(ann, tmp_path / "a", SynthConfig(seed=1), progress=False, limit=3).rows
    b = synthesize(ann, tmp_path / "b", SynthConfig(seed=1), progress=False, limit=3).rows
    c = synthesize(ann, tmp_path / "c", SynthConfig(seed=2), progress=False, limit=3).rows
    assert [r["messages"] for r in a] == [r["messages"] for r in b]
    assert [r["messages"] for r in a] != [r["messages"] for r in c]


def test_bad_annotations_are_reported_by_row(tmp_path, synth_dir):
    lines = (synth_dir / "annotations.jsonl").read_text().splitlines()[:2]
    broken = json.loads(lines[1])
    broken.pop("bbox")
    src = tmp_path / "ann.jsonl"
    src.write_text(lines[0] + "\n" + json.dumps(broken) + "\n" + '{"question": "q"}\n')
    for name in ("images",):
        (tmp_path / name).symlink_to(synth_dir / name)
    result = synthesize(src, tmp_path / "out", progress=False)
    assert len(result.rows) == 1
    assert result.errors[0].startswith("row 1: missing 'bbox'")
    assert result.errors[1].startswith("row 2: missing 'image'")


@pytest.mark.parametrize(
    "size,name", [((224, 160), "224"), ((3840, 2160), "4K"), ((1300, 900), "1024")]
)
def test_bucket_names(size, name):
    assert bucket(size) == name


def test_cli_writes_train_mix_and_provenance(synth_dir, tmp_path):
    out = tmp_path / "cli"
    cmd = [
        sys.executable,
        "-m",
        "cof_plugins.cli",
        "data",
        "synthesize",
        "--from",
        str(synth_dir / "annotations.jsonl"),
        "--out",
        str(out),
        "--limit",
        "3",
        "--seed",
        "5",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "mean zooms" in proc.stdout
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seed"] == 5 and "--limit" in prov["command"]
    (digest,) = prov["inputs"].values()
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert len(json.loads((out / "train.json").read_text())) == 3


def test_terse_thinking_decides_in_the_first_words_and_names_no_pixel_count(synth_dir, tmp_path):
    ann = synth_dir / "annotations.jsonl"
    cfg = SynthConfig(thinking="terse", policy=PolicyConfig(legible_side=15))
    rows = synthesize(ann, tmp_path / "t", cfg, progress=False).rows
    firsts = {"direct": set(), "zoom": set()}
    for row in rows:
        turn = row["messages"][2]["content"]
        think = turn.split("<think>")[1].split("</think>")[0]
        firsts["zoom" if "<tool_call>" in turn else "direct"].add(think.split()[0])
        assert "px" not in think and "pixels" not in think
    assert firsts["direct"] and firsts["zoom"] and not firsts["direct"] & firsts["zoom"]


def test_unknown_thinking_wording_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="varied, terse"):
        SynthConfig(thinking="chatty")
