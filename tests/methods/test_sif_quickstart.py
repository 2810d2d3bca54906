"""The SIFThinker quickstart end to end on the CPU: data, SFT, 2 GRPO steps, eval, report."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_sifthinker_quickstart_learns_well_formed_areas(tmp_path):
    from cof_plugins.cli import main

    out = tmp_path / "sif"
    code = main(["quickstart", "--method", "sifthinker", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    failed = [s for s in summary["stages"] if s["exit"] != 0]
    assert code == 0 and summary["ok"] and not failed, failed
    # The registry's shape: rates in percent, the bar on well-formed areas after SFT and RL.
    assert summary["thresholds"] == {"areas_well_formed": 50.0}
    tuned = [summary["rates"][m]["areas_well_formed"] for m in ("sft", "rl")]
    assert summary["bar_met"] == all(r >= 50.0 for r in tuned)
    base, sft, rl = (summary["eval"][name] for name in ("base", "sft", "rl"))
    assert base["n"] == sft["n"] == rl["n"] == summary["settings"]["eval_samples"]
    # A random tiny model writes no SIFThinker reply; the SFT'd one writes well-formed
    # areas on at least half of the held-out questions, and two GRPO steps keep that.
    assert base["areas_well_formed"] == 0.0
    assert sft["areas_well_formed"] >= summary["target_areas_well_formed"] == 0.5
    assert rl["areas_well_formed"] >= 0.5
    # The RL stage really trained through verl: its merged checkpoint was evaluated.
    assert (out / "model" / "rl" / "config.json").is_file()
    report = (out / "report" / "report.html").read_text()
    assert "SIFThinker quickstart" in report and report.count("data:image/png;base64,") >= 3
