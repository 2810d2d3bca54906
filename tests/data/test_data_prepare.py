"""Released-dataset snapshots (tiny, hand-made in each format) -> this project's layout."""

from __future__ import annotations

import base64
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cof_plugins.core.protocol import load_protocol
from cof_plugins.data.annotations import normalize_all
from cof_plugins.data.prepare import prepare
from cof_plugins.data.rows import read_rows
from cof_plugins.data.snapshot import SnapshotError
from cof_plugins.data.validate import errors, validate_rows
from cof_plugins.eval.benchmarks import BenchmarkError, load_benchmark

P = load_protocol()
CALL = (
    '<think>a</think>\n<tool_call>\n{"name": "image_zoom_in_tool", '
    '"arguments": {"bbox_2d": [1, 1, 50, 50]}}\n</tool_call>'
)
ANSWER = "<think>b</think>\n<answer>{}</answer>"


def jpeg_bytes(size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def sft_snapshot(root, make_png):
    make_png(root / "images" / "q1" / "0.png", (224, 224))
    make_png(root / "images" / "q1" / "1.png", (112, 112))
    make_png(root / "images" / "q2" / "0.png", (224, 224))
    head = P.prompt_messages("What is it?", ["a", "b"])
    next_user = {"messages": [*head, {"role": "assistant", "content": CALL},
                              {"role": "user", "content": P.crop_user_turn()},
                              {"role": "assistant", "content": ANSWER.format("B")}],
                 "images": ["q1/0.png", "q1/1.png"]}  # fmt: skip
    in_turn = {"messages": [*head, {"role": "assistant",
                                    "content": CALL + "\n<image>\n" + ANSWER.format("A")}],
               "images": ["q1/0.png", "q1/1.png"]}  # fmt: skip
    direct = {"messages": [*head, {"role": "assistant", "content": ANSWER.format("A")}],
              "images": ["q2/0.png"]}  # fmt: skip
    (root / "cof_sft_data.json").write_text(json.dumps([next_user, in_turn, direct, {"text": 1}]))


def test_cof_sft_keeps_layouts_and_reports_bad_rows(tmp_path, make_png):
    sft_snapshot(tmp_path / "snap", make_png)
    result = prepare("cof-sft", tmp_path / "snap", tmp_path / "out")
    rows = read_rows(result.output)
    assert result.n_rows == 3 and result.problems == [
        "row 3: needs a 'messages' list and an 'images' list"
    ]
    assert [r["meta"]["layout"] for r in rows] == ["next-user", "in-turn", "next-user"]
    assert [r["meta"]["answer"] for r in rows] == ["B", "A", "A"]
    assert (tmp_path / "out" / "images").is_symlink()
    assert errors(validate_rows(rows, image_dir=tmp_path / "out")) == []


def test_cof_sft_layout_normalisation(tmp_path, make_png):
    sft_snapshot(tmp_path / "snap", make_png)
    rows = read_rows(
        prepare("cof-sft", tmp_path / "snap", tmp_path / "o", layout="next-user").output
    )
    assert rows[1]["messages"][-2]["content"] == P.crop_user_turn(1)
    assert [m["role"] for m in rows[1]["messages"]] == [m["role"] for m in rows[0]["messages"]]
    assert validate_rows(rows, image_dir=tmp_path / "o") == []


def test_cof_rl_parquet_with_embedded_images(tmp_path):
    import pandas as pd

    snap = tmp_path / "rl"
    snap.mkdir()
    df = pd.DataFrame([
        {"prompt": [{"role": "user", "content": "<image>What colour?\n(A) red\n(B) green"}],
         "reward_model": {"style": "rule", "ground_truth": "B"},
         "images": [{"bytes": jpeg_bytes(), "path": None}], "data_source": "cof_rl"},
        {"prompt": [{"role": "user", "content": "<image>No answer here"}],
         "reward_model": {"style": "rule", "ground_truth": None},
         "images": [{"bytes": jpeg_bytes(), "path": None}], "data_source": "cof_rl"},
    ])  # fmt: skip
    df.to_parquet(snap / "train.parquet")
    result = prepare("cof-rl", snap, tmp_path / "out")
    (rec,) = read_rows(result.output)
    assert result.problems == ["row 1: missing or unreadable answer"]
    assert rec["question"] == "What colour?" and rec["options"] == ["red", "green"]
    assert rec["answer"] == "B" and rec["data_source"] == "cof_rl"
    assert (tmp_path / "out" / rec["image"]).read_bytes()[:2] == b"\xff\xd8"
    (ann,), bad = normalize_all([rec])
    assert bad == [] and ann.kind == "multiple_choice"


def test_cof_rl_jsonl_with_image_names(tmp_path, make_png):
    snap = tmp_path / "rl"
    make_png(snap / "images" / "x.png", (50, 40))
    rows = [{"question": "How many?", "answer": "3", "image": "x.png", "data_source": "d"},
            {"question": "Where?", "answer": "left", "image": "missing.png"}]  # fmt: skip
    (snap / "rl.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    result = prepare("cof-rl", snap, tmp_path / "out")
    assert result.n_rows == 1 and result.problems == ["row 1: missing or unreadable image"]
    assert read_rows(result.output)[0]["image"].endswith("images/x.png")


def _vstar_snapshot(snap, make_png, bad_rows=True):
    make_png(snap / "direct_attributes" / "sa_1.jpg", (300, 200))
    text = (
        "What is the colour of the cup?\n(A) red\n(B) blue\n"
        "Answer with the option's letter from the given choices directly."
    )
    rows = [{"image": "direct_attributes/sa_1.jpg", "text": text, "label": "B",
             "category": "direct_attributes", "question_id": 7}]  # fmt: skip
    if bad_rows:
        rows += [{"image": "relative_position/gone.jpg", "text": text, "label": "A",
                  "category": "relative_position", "question_id": 8},
                 {"image": "x.jpg", "label": "A"}]  # fmt: skip
    (snap / "test_questions.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return snap


def test_vstar_matches_the_eval_reader(tmp_path, make_png):
    snap = _vstar_snapshot(tmp_path / "vstar", make_png, bad_rows=False)
    result = prepare("vstar", snap, tmp_path / "out")
    (rec,) = read_rows(result.output)
    (sample,) = load_benchmark(snap).samples
    assert rec["question"] == sample.question == "What is the colour of the cup?"
    assert rec["options"] == list(sample.options) == ["red", "blue"]
    assert rec["id"] == sample.id == "7"  # the release's question_id, never prefixed
    assert rec["answer"] == "B" and rec["category"] == "direct_attributes"
    assert rec["image"] == "images/direct_attributes/sa_1.jpg" and rec["data_source"] == "vstar"
    assert (tmp_path / "out" / rec["image"]).read_bytes() == Path(sample.image.path).read_bytes()
    (ann,), bad = normalize_all([rec])
    assert bad == [] and ann.answer_text == "blue"


def test_a_bad_benchmark_row_writes_nothing_unless_skipped(tmp_path, make_png):
    """Decided: strict by default in prepare as in eval; --skip-bad-rows lists what it left."""
    snap = _vstar_snapshot(tmp_path / "vstar", make_png)
    with pytest.raises(BenchmarkError) as err:
        prepare("vstar", snap, tmp_path / "out")
    message = str(err.value)
    assert "2 bad row(s)" in message and "--skip-bad-rows" in message
    assert "row 1: image not found" in message and "row 2: missing field 'text'" in message
    assert not (tmp_path / "out" / "annotations.jsonl").exists()
    assert not (tmp_path / "out" / "images").exists()
    result = prepare("vstar", snap, tmp_path / "out", skip_bad_rows=True)
    assert result.n_rows == 1 and [p.split(":")[0] for p in result.problems] == ["row 1", "row 2"]


def _hrbench_tsv(path, rows):
    with path.open("w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["index", "question", "answer", "category", "A", "B", "C", "D", "E", "image"])
        for row in rows:
            w.writerow(row)
    return path


def test_hrbench_writes_each_image_once_with_the_release_ids(tmp_path):
    snap = tmp_path / "hr"
    snap.mkdir()
    image = base64.b64encode(jpeg_bytes()).decode()
    _hrbench_tsv(snap / "hr_bench_4k.tsv", [
        [5, "Which sign?", "C", "single", "w", "x", "y", "z", "", image],
        [6, "Which sign?", "(B)", "single", "z", "w", "x", "y", "", "5"],  # points at row 5
        [9, "How many?", "E", "cross", "1", "2", "3", "4", "5", image],  # a fifth option
    ])  # fmt: skip
    result = prepare("hrbench", snap, tmp_path / "out")
    recs = read_rows(result.output)
    assert [r["id"] for r in recs] == ["5", "6", "9"] and result.problems == []
    assert recs[0]["image"] == recs[1]["image"] == "images/hr_bench_4k/5.jpg"
    assert recs[1]["answer"] == "B" and recs[2]["options"] == ["1", "2", "3", "4", "5"]
    assert recs[2]["answer"] == "E" and recs[0]["data_source"] == "hrbench_4k"
    assert sorted(p.name for p in (tmp_path / "out" / "images" / "hr_bench_4k").iterdir()) == [
        "5.jpg", "9.jpg"
    ]  # fmt: skip
    assert Image.open(tmp_path / "out" / recs[0]["image"]).size == (64, 48)
    assert [s.id for s in load_benchmark(snap / "hr_bench_4k.tsv").samples] == ["5", "6", "9"]


def test_hrbench_undecodable_image_is_a_bad_row_and_leaves_no_images(tmp_path):
    snap = tmp_path / "hr"
    snap.mkdir()
    image = base64.b64encode(jpeg_bytes()).decode()
    _hrbench_tsv(snap / "hr_bench_4k.tsv", [
        [5, "Which sign?", "C", "single", "w", "x", "y", "z", "", image],
        [6, "Broken?", "A", "single", "w", "x", "y", "z", "", "bm90IGFuIGltYWdlIGF0IGFsbA=="],
    ])  # fmt: skip
    with pytest.raises(BenchmarkError, match=r"row 1: image: .*not an image"):
        prepare("hrbench", snap, tmp_path / "out")
    # Nothing written: no output folder, no images, no temporary folder beside it.
    assert [p.name for p in tmp_path.iterdir()] == ["hr"]
    result = prepare("hrbench", snap, tmp_path / "out", skip_bad_rows=True)
    assert result.n_rows == 1 and result.problems[0].startswith("row 1: image:")
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []


def test_hrbench_folder_with_4k_and_8k_asks_for_one_file(tmp_path):
    """Decided: the two files reuse indices, so each is prepared on its own (ids unprefixed)."""
    snap = tmp_path / "hr"
    snap.mkdir()
    image = base64.b64encode(jpeg_bytes()).decode()
    for name in ("hr_bench_4k.tsv", "hr_bench_8k.tsv"):
        _hrbench_tsv(snap / name, [[0, "Q?", "A", "single", "w", "x", "", "", "", image]])
    with pytest.raises(BenchmarkError, match=r"several hrbench files .*hr_bench_4k\.tsv"):
        prepare("hrbench", snap, tmp_path / "out")
    result = prepare("hrbench", snap / "hr_bench_8k.tsv", tmp_path / "out8k")
    assert read_rows(result.output)[0]["data_source"] == "hrbench_8k"


def test_mme_realworld(tmp_path, make_png):
    snap = tmp_path / "mme"
    make_png(snap / "remote_sensing" / "1.png", (80, 60))
    rows = [{"Question_id": "rs/1", "Image": "remote_sensing/1.png", "Text": "How many cars?",
             "Answer choices": ["(A) 1", "(B) 2", "(C) 3"], "Ground truth": "C",
             "Category": "counting", "Subtask": "Remote sensing"},
            {"Question_id": "rs/2", "Image": "remote_sensing/1.png", "Text": "Q",
             "Answer choices": "oops", "Ground truth": "A"}]  # fmt: skip
    (snap / "MME_RealWorld.json").write_text(json.dumps(rows))
    with pytest.raises(BenchmarkError, match="row 1: Answer choices must be a list"):
        prepare("mme-realworld", snap, tmp_path / "out")
    result = prepare("mme-realworld", snap, tmp_path / "out", skip_bad_rows=True)
    (rec,) = read_rows(result.output)
    assert rec["options"] == ["1", "2", "3"] and rec["answer"] == "C" and rec["id"] == "rs/1"
    # Decided: "Subtask/Category", as cof eval reports it.
    assert rec["category"] == "Remote sensing/counting"
    assert (tmp_path / "out" / rec["image"]).is_file()


def test_mme_realworld_variant_spellings(tmp_path, make_png):
    """Decided: the variants' field names are read too ("image", "Answer Choices", ...)."""
    snap = tmp_path / "mme"
    make_png(snap / "a.png", (80, 60))
    rows = [{"question_id": 3, "image": "a.png", "question": "Colour?",
             "Answer Choices": ["(A) red", "(B) blue"], "answer": "(B)"}]  # fmt: skip
    (snap / "MME_RealWorld_lite.json").write_text(json.dumps(rows))
    (rec,) = read_rows(prepare("mme-realworld", snap, tmp_path / "out").output)
    assert (rec["id"], rec["answer"], rec["options"]) == ("3", "B", ["red", "blue"])
    assert rec["category"] == "all"


def test_missing_files_say_what_was_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchmarkError, match=r"no hrbench data file \(looked for \*\.tsv"):
        prepare("hrbench", tmp_path / "empty", tmp_path / "out")
    with pytest.raises(SnapshotError, match="CoF-SFT JSON"):
        prepare("cof-sft", tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ValueError, match=r"unknown dataset 'imagenet'.*vstar, hrbench"):
        prepare("imagenet", tmp_path / "empty", tmp_path / "out")


def test_prepare_takes_its_benchmark_choices_from_the_format_registry():
    from cof_plugins.cli import build_parser
    from cof_plugins.core.registry import Registry
    from cof_plugins.eval.benchmarks import BENCHMARK_FORMATS

    assert isinstance(BENCHMARK_FORMATS, Registry)
    data = build_parser()._subparsers._group_actions[0].choices["data"]
    prep = data._subparsers._group_actions[0].choices["prepare"]
    dataset = next(a for a in prep._actions if a.dest == "dataset")
    assert dataset.choices == ["cof-sft", "cof-rl", *BENCHMARK_FORMATS.names()]
    assert {"vstar", "hrbench", "mme-realworld", "jsonl"} <= set(dataset.choices)


def test_cli_prepare_writes_provenance_and_fails_on_problems(tmp_path, make_png):
    sft_snapshot(tmp_path / "snap", make_png)
    cmd = [sys.executable, "-m", "cof_plugins.cli", "data", "prepare", "cof-sft", "--from",
           str(tmp_path / "snap"), "--out", str(tmp_path / "out")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "row 3: needs a 'messages' list" in proc.stdout
    prov = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert prov["dataset"] == "cof-sft" and len(prov["inputs"]) == 1
