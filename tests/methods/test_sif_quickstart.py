"""The SIFThinker quickstart end to end on the CPU: data, SFT, 2 GRPO steps, eval, report."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_sifthinker_quickstart_runs_and_learns_the_format(tmp_path):
    from cof_plugins.cli import main

    out = tmp_path / "sif"
    code = main(["quickstart", "--method", "sifthinker", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    failed = [s for s in summary["stages"] if s["exit"] != 0]
    assert code == 0 and summary["ok"] and not failed, failed
    # The registry's shape: rates in percent, the bar on well-formed areas after SFT and RL.
    assert summary["thresholds"] == {"areas_well_formed": 50.0}
    # Stage rows in the registry's shape (commands.quickstart.stage_rows), each one timed.
    keys = {"stage", "command", "artefact", "seconds", "cpu_seconds", "exit"}
    assert all(set(r) == keys for r in summary["stages"]), summary["stages"][0]
    rl = next(r for r in summary["stages"] if r["stage"] == "rl")
    assert rl["cpu_seconds"] > 0 and rl["command"].startswith("cof rl sifthinker_tiny_cpu ")
    tuned = [summary["rates"][m]["areas_well_formed"] for m in ("sft", "rl")]
    assert summary["bar_met"] == all(r >= 50.0 for r in tuned)
    base, sft, rl = (summary["eval"][name] for name in ("base", "sft", "rl"))
    assert base["n"] == sft["n"] == rl["n"] == summary["settings"]["eval_samples"]
    # A random tiny model writes no SIFThinker reply. The fine-tuned ones meet the bar:
    # every area of the reply well formed on at least half of the held-out questions, and
    # replies that open with a parseable area and end with an answer.
    assert base["areas_well_formed"] == 0.0 and opens_with_an_area(out, "base") == 0.0
    assert summary["bar_met"] and min(tuned) >= 50.0, summary["rates"]
    assert opens_with_an_area(out, "sft") >= 0.75 and opens_with_an_area(out, "rl") >= 0.75
    # The RL stage really trained through verl: its merged checkpoint was evaluated.
    assert (out / "model" / "rl" / "config.json").is_file()
    report = (out / "report" / "report.html").read_text()
    assert "SIFThinker quickstart" in report and report.count("data:image/png;base64,") >= 3


def opens_with_an_area(out, model: str) -> float:
    """Share of a model's replies whose first block is an area of valid boxes, and which
    end with an answer."""
    from cof_plugins.core.sif import parse_sif

    rows = [json.loads(line) for line in (out / "eval" / model / "predictions.jsonl").open()]
    good = 0
    for row in rows:
        areas = parse_sif(row["reply"]).areas
        first = areas[0].valid_boxes if areas else []
        good += bool(first) and "<answer>" in row["reply"] and row["reply"].startswith("<think>")
    return good / len(rows)
