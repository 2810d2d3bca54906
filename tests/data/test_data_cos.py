"""``cof data chain-of-spot``: two-turn rows, pre-cut crops, grouping, atomic output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from cof_plugins.cli import main
from cof_plugins.core.atomic import OutputError
from cof_plugins.core.cos import RoiFrame, load_cos_protocol, overlaps, parse_roi
from cof_plugins.core.frame import PixelBudget
from cof_plugins.data.cos import CosDataConfig, convert, write
from cof_plugins.data.rows import read_rows

TINY = PixelBudget(3136, 50176)


def _rows(folder: Path) -> list[dict]:
    return json.loads((folder / "train.json").read_text())


@pytest.mark.parametrize("protocol", ["chain-of-spot", "chain-of-spot-native"])
def test_rows_hold_both_turns_and_the_crop_evaluation_would_cut(synth_dir, tmp_path, protocol):
    out = tmp_path / "rows"
    cfg = CosDataConfig(protocol=protocol, budget=TINY)
    data = write(synth_dir / "annotations.jsonl", out, cfg)
    annotations = {a["id"]: a for a in read_rows(synth_dir / "annotations.jsonl")}
    assert len(data.rows) == len(annotations) == 12 and not data.problems
    cos = load_cos_protocol(protocol)
    for row, info in zip(_rows(out), read_rows(out / "rois.jsonl"), strict=True):
        ann = annotations[info["id"]]
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["user", "assistant", "user", "assistant"]
        u1, a1, u2, a2 = (m["content"] for m in row["messages"])
        assert u1 == cos.roi_turn(ann["question"]) and u2.startswith("<image>\nHere is your")
        assert a2 == ann["answer"]  # the option letter
        original, crop = (out / p for p in row["images"])
        assert original.resolve() == (synth_dir / ann["image"]).resolve()
        with Image.open(original) as image:
            frame = RoiFrame.of(cos, image.size, "qwen2_5_vl", TINY)
            roi, problem = frame.read(parse_roi(a1).values)
            assert problem is None and overlaps(roi, tuple(ann["bbox"]))
            expected = frame.crop(image.convert("RGB"), roi)
        with Image.open(crop) as saved:
            assert saved.tobytes() == expected.tobytes()  # the cut evaluation makes
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == 12 and summary["annotation"] == 12 and summary["covers_target"] == 1


def test_an_images_questions_become_one_conversation_with_a_fixed_pick(tmp_path):
    Image.new("RGB", (300, 200), "gray").save(tmp_path / "a.png")
    Image.new("RGB", (200, 200), "gray").save(tmp_path / "b.png")
    base = {"image": "a.png", "options": ["red", "blue"], "answer": "A"}
    anns = [
        {**base, "id": "q0", "question": "First?", "bbox": [10, 10, 30, 30]},
        {**base, "id": "q1", "question": "Second?"},  # no box: never the drawn question
        {**base, "id": "q2", "question": "Third?", "bbox": [200, 100, 220, 120], "answer": "B"},
        {"id": "q3", "image": "b.png", "question": "Open?", "answer": "a cat"},
    ]
    picks = set()
    for seed in range(12):
        data = convert(anns, tmp_path, tmp_path / f"out{seed}", CosDataConfig(seed=seed))
        again = convert(anns, tmp_path, tmp_path / f"again{seed}", CosDataConfig(seed=seed))
        assert data.rows == again.rows  # fixed per (seed, image), not re-drawn per read
        first, second = data.rows
        picks.add(data.rois[0]["id"])
        texts = [m["content"] for m in first["messages"]]
        assert len(texts) == 8 and texts[4].startswith("Answer the next question from the whole")
        assert not texts[6].startswith("Answer the next")  # only the first is prefixed
        assert data.rois[1]["source"] == "whole" and second["messages"][1]["content"] == (
            "[0.0, 0.0, 1.0, 1.0]"  # no box: the whole image, as the release
        )
        assert second["messages"][3]["content"] == "a cat"
    assert picks == {"q0", "q2"}
    with pytest.raises(OutputError, match="--overwrite"):
        write(tmp_path / "none.jsonl", tmp_path / "out0", CosDataConfig())


def test_missing_box_error_and_bad_rows_are_reported_not_dropped(tmp_path):
    Image.new("RGB", (100, 100), "gray").save(tmp_path / "a.png")
    anns = [
        {"id": "ok", "image": "a.png", "question": "Q?", "answer": "x", "bbox": [1, 1, 9, 9]},
        {"id": "nobox", "image": "b.png", "question": "Q?", "answer": "x"},
        {"id": "bad", "image": "a.png", "answer": "x"},
    ]
    Image.new("RGB", (100, 100), "gray").save(tmp_path / "b.png")
    data = convert(anns, tmp_path, tmp_path / "out", CosDataConfig(missing_box="error"))
    assert len(data.rows) == 1
    assert any("row 2: missing 'question'" in p for p in data.problems)
    assert any("nobox" in p and "missing_box=error" in p for p in data.problems)


def test_cli_writes_atomically_and_never_overwrites_without_the_flag(synth_dir, tmp_path, capsys):
    out = tmp_path / "rows"
    argv = ["data", "chain-of-spot", "--from", str(synth_dir / "annotations.jsonl"), "--out",
            str(out), "--min-pixels", "3136", "--max-pixels", "50176", "--limit", "3"]  # fmt: skip
    assert main(argv) == 0
    assert "wrote 3 rows" in capsys.readouterr().out
    before = (out / "train.json").read_text()
    with pytest.raises(SystemExit, match="exists; pass --overwrite"):
        main(argv)
    assert (out / "train.json").read_text() == before
    assert main([*argv[:-1], "5", "--overwrite"]) == 0
    assert len(_rows(out)) == 5 and (out / "provenance.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows"]  # no staging left behind
    with pytest.raises(SystemExit, match="unknown protocol"):
        main([*argv, "--overwrite", "--protocol", "chain-of-sport"])
    with pytest.raises(SystemExit, match="for method 'cof'"):
        main([*argv, "--overwrite", "--protocol", "unified"])
    assert len(_rows(out)) == 5  # a failed run leaves the previous output alone


def test_a_failure_midway_leaves_no_half_written_output(synth_dir, tmp_path, monkeypatch):
    import cof_plugins.data.cos as cos_data

    out = tmp_path / "rows"

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cos_data, "write_rows", explode)
    with pytest.raises(OSError, match="disk full"):
        write(synth_dir / "annotations.jsonl", out, CosDataConfig(budget=TINY))
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_output_holding_the_images_is_refused(tmp_path):
    images = tmp_path / "out" / "images"
    images.mkdir(parents=True)
    Image.new("RGB", (64, 64), "gray").save(images / "a.png")
    ann = tmp_path / "ann.jsonl"
    ann.write_text(json.dumps({"id": "a", "image": "a.png", "question": "Q?", "answer": "x"}))
    with pytest.raises(OutputError, match="holds the image folder"):
        write(ann, tmp_path / "out", CosDataConfig(), image_dir=images, overwrite=True)
    assert (images / "a.png").is_file()
