"""bench/cos_roi_readout.py's oracles and its fading-hint curriculum (the README quotes its
figures; the slow quickstart test runs it end to end)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cos_roi_readout.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("cos_roi_readout", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hint_fades_from_its_start_to_nothing_at_the_set_share_of_steps(bench):
    assert bench.hint_weight(0, 600) == pytest.approx(0.8)
    assert bench.hint_weight(180, 600) == pytest.approx(0.4)
    assert bench.hint_weight(360, 600) == 0.0 and bench.hint_weight(599, 600) == 0.0


def test_training_frame_blends_the_hint_only_while_it_has_weight(bench):
    frame = Image.new("RGB", (8, 8), (100, 100, 100))
    hint = Image.new("RGB", (8, 8), (200, 200, 200))
    row = {"frame": frame, "hint": hint}
    assert bench.training_frame(row, 0.5).getpixel((0, 0)) == (150, 150, 150)
    assert bench.training_frame(row, 0.0) is frame
    assert bench.training_frame({"frame": frame, "hint": None}, 0.8) is frame


def test_oracles_draw_where_the_box_is(bench):
    scene = Image.new("RGB", (90, 60), (180, 180, 180))
    square = bench.draw_oracle(scene, [30.0, 0.0, 59.0, 29.0], "square")
    assert square.getpixel((40, 10)) == (255, 255, 255) and square.getpixel((5, 50)) == (0, 0, 0)
    column = bench.draw_oracle(scene, [70.0, 10.0, 80.0, 20.0], "column")
    assert column.getpixel((0, 0)) == (255, 255, 255)  # right third: white
    tinted = bench.draw_oracle(scene, None, "tint")  # no box needed: position is the ramp
    assert tinted.getpixel((89, 0))[0] > tinted.getpixel((0, 0))[0]  # red grows rightwards
    assert tinted.getpixel((0, 59))[2] > tinted.getpixel((0, 0))[2]  # blue grows downwards


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--steps", "0"], "less than 1"),
        (["--batch-size", "-3"], "less than 1"),
        (["--eval-every", "x"], "not a whole number"),
        (["--batch-size", "99"], "more than the 2 training rows"),
    ],
)
def test_bad_counts_are_argparse_errors_not_a_hang(bench, tmp_path, capsys, argv, says):
    rows = tmp_path / "rows"
    rows.mkdir()
    Image.new("RGB", (32, 24), (180, 180, 180)).save(rows / "a.png")
    reply = "[0.0, 0.0, 0.5, 0.5]"
    row = {"messages": [{"role": "user", "content": "<image>where?"},
                        {"role": "assistant", "content": reply}], "images": ["a.png"]}  # fmt: skip
    (rows / "train.json").write_text(json.dumps([row, row]))
    info = {"image": "a.png", "target": [1, 1, 9, 9], "roi": [0, 0, 16, 16]}
    (rows / "rois.jsonl").write_text(json.dumps(info) + "\n")
    model = tmp_path / "no-model"  # never reached: the arguments are checked first
    with pytest.raises(SystemExit) as exc:
        bench.main(["--model", str(model), "--rows", str(rows), "--heldout", str(rows), *argv])
    assert exc.value.code == 2 and says in capsys.readouterr().err


def test_a_folder_without_rows_is_named(bench, tmp_path):
    with pytest.raises(SystemExit, match=r"no rois\.jsonl; give a `cof data chain-of-spot`"):
        bench.load_rows(tmp_path, "none")
