"""SIFThinker evaluation and report: the scoring path end to end, and a real tiny model."""

from __future__ import annotations

import json

import pytest

from cof_plugins.eval.backends import Generation
from cof_plugins.methods.sifthinker.evaluate import evaluate
from cof_plugins.methods.sifthinker.report import build_report


class ReplayBackend:
    """A stand-in model that answers the scenes, in order, with the training reply written
    for each (so every figure of the evaluation is known in advance); nothing else is faked."""

    name = "replay"

    def __init__(self, sif_data, spoil: int = 0):
        rows = json.loads((sif_data / "train.json").read_text())
        self.replies = iter(r["messages"][-1]["content"] for r in rows)
        self.spoil = spoil

    def generate(self, requests, max_new_tokens):
        out = []
        for request in requests:
            assert len(request.images) == 2 and request.messages[1]["content"].count("<image>") == 2
            text = next(self.replies)
            if self.spoil:  # break the first box: x1 = 1.0, not below x2
                text = text.replace('"bbox_2d":[0.0,', '"bbox_2d":[1.0,', 1)
                self.spoil -= 1
            out.append(Generation(text, None))
        return out

    def describe(self):
        return {"backend": self.name}

    def close(self):
        pass


def _backend(sif_data, spoil=0):
    return ReplayBackend(sif_data, spoil)


def test_gold_replies_score_full_marks(sif_data, tmp_path):
    summary = evaluate(_backend(sif_data), sif_data, tmp_path / "gold", batch_size=4)
    assert summary["n"] == 6
    assert summary["well_formed"] == summary["areas_well_formed"] == 1.0
    assert summary["answer_accuracy"] == 1.0 and summary["depth"] == 1.0
    assert summary["last_area_iou"] == pytest.approx(1.0) and summary["iou"] > 1.0
    saved = json.loads((tmp_path / "gold" / "summary.json").read_text())
    assert saved["well_formed"] == 1.0
    lines = (tmp_path / "gold" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["problems"] == []


def test_a_broken_box_lowers_the_rates_and_the_report_draws_it(sif_data, tmp_path):
    # Two of six replies get a box with x1 = x2 = 1.0: 4/6 well formed.
    summary = evaluate(_backend(sif_data, spoil=2), sif_data, tmp_path / "spoilt", batch_size=3)
    assert summary["areas_well_formed"] == pytest.approx(4 / 6, abs=1e-4)
    assert summary["well_formed"] == pytest.approx(4 / 6, abs=1e-4)
    assert summary["answer_accuracy"] == 1.0
    evaluate(_backend(sif_data), sif_data, tmp_path / "gold", batch_size=6)
    runs = {"gold": tmp_path / "gold", "spoilt": tmp_path / "spoilt"}
    html = build_report(runs, sif_data, tmp_path / "report", samples=2)
    text = html.read_text()
    assert text.count("data:image/png;base64,") == 4 and "areas_well_formed" in text
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| spoilt | 6 | 67% | 67% | 100% |" in md


def test_cli_eval_with_a_real_tiny_model(sif_data, tiny_model, tmp_path):
    from cof_plugins.cli import main

    run = tmp_path / "run"
    argv = ["sif", "eval", "--model", str(tiny_model), "--data", str(sif_data), "--run-dir",
            str(run), "--limit", "2", "--max-new-tokens", "6", "--min-pixels", "3136",
            "--max-pixels", "50176"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n"] == 2 and summary["model"]["backend"] == "transformers"
    assert summary["well_formed"] == 0.0  # six random tokens are no SIFThinker reply
    assert main(["sif", "report", f"base={run}", "--data", str(sif_data), "-o",
                 str(tmp_path / "r")]) == 0  # fmt: skip
    assert (tmp_path / "r" / "report.html").is_file()
