"""`cof quickstart`: the whole method end to end on this CPU, as the README's main job runs it.

Slow (minutes): it trains the small tiny model through LLaMA-Factory and runs two GRPO steps
through verl. Every stage's own behaviour is tested in its suite; this test checks they chain
and that the tiny default *learns* the adaptive behaviour: valid zooms where the target is
not legible in the frame, direct answers where it is, read as numbers from the summary the
quickstart writes (the same figures its report shows). The run is deterministic (fixed
seeds, greedy evaluation); the floors sit well below the README's measured figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
FLOOR = 50.0  # percent, the "at least half"; the README quotes the measured rates


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The README's main job, in its own process as a user runs it."""
    out = tmp_path_factory.mktemp("quickstart")
    cmd = [sys.executable, "-m", "cof_plugins.cli", "quickstart", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=2300)
    (out / "quickstart.log").write_text(done.stdout + done.stderr)
    return done.returncode, out


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _eval(out, name):
    return json.loads((out / "eval" / name / "summary.json").read_text())["overall"]


def test_every_stage_succeeds_and_leaves_its_artefact(run):
    code, out = run
    summary = _summary(out)
    failed = [s for s in summary["stages"] if s["exit"] != 0]
    assert code == 0 and summary["ok"] and not failed, (
        failed,
        (out / "quickstart.log").read_text()[-3000:],
    )
    names = [s["stage"] for s in summary["stages"]]
    assert names[:2] == ["tiny model", "synthetic data"]
    assert {"sft", "rl", "export rl", "eval rl", "report", "eval legibility"} <= set(names)
    missing = [s["artefact"] for s in summary["stages"] if not Path(s["artefact"]).exists()]
    assert not missing
    assert all(s["seconds"] > 0 and s["cpu_seconds"] >= 0 for s in summary["stages"])


def test_trajectories_mix_direct_answers_and_zooms(run):
    _, out = run
    # mix.json: {resolution bucket: {number of zooms: trajectories}}
    mix = json.loads((out / "data" / "sft" / "mix.json").read_text())
    by_zooms: dict[str, int] = {}
    for counts in mix.values():
        for zooms, n in counts.items():
            by_zooms[zooms] = by_zooms.get(zooms, 0) + n
    assert by_zooms.get("0", 0) > 0 and by_zooms.get("1", 0) + by_zooms.get("2", 0) > 0
    rows = json.loads((out / "data" / "sft" / "train.json").read_text())
    turns = [sum(m["role"] == "assistant" for m in r["messages"]) for r in rows]
    assert 1 in turns and max(turns) >= 2  # some answer directly, some zoom first


def test_the_fine_tuned_models_zoom_where_needed_and_answer_where_not(run):
    """The issue's bar, on numbers: valid zooms on at least half of the illegible questions
    and direct answers on at least half of the legible ones, after SFT and after RL."""
    _, out = run
    rates = _summary(out)["rates"]
    assert set(rates) == {"base", "sft", "rl"}
    for name in ("sft", "rl"):
        r = rates[name]
        assert r["legible"] >= 4 and r["illegible"] >= 4, r  # both groups are measured
        assert r["zoom_illegible"] >= FLOOR, (name, r)
        assert r["direct_legible"] >= FLOOR, (name, r)
        assert r["format_ok"] > rates["base"]["format_ok"], (name, r)
    # The random base model never zooms: the behaviour is learnt, not built in.
    assert rates["base"]["zoom_illegible"] == 0.0


def test_rates_agree_with_the_eval_runs_and_the_report(run):
    _, out = run
    rates = _summary(out)["rates"]
    stored = json.loads((out / "report" / "adaptive.json").read_text())
    assert stored["runs"] == rates
    for name in ("base", "sft", "rl"):
        overall = _eval(out, name)
        assert rates[name]["questions"] == overall["n"]
        assert rates[name]["accuracy"] == overall["accuracy"]
        assert rates[name]["invalid_calls"] == pytest.approx(overall["invalid_calls"], abs=1e-3)
    md = (out / "report" / "report.md").read_text()
    assert "## Adaptive behaviour by legibility" in md
    row = next(line for line in md.splitlines() if line.startswith("| valid zoom, illegible"))
    assert f"{rates['sft']['zoom_illegible']:.2f}" in row


def test_rl_samples_tool_calls_itself(run):
    """GRPO from the SFT checkpoint: the model's own sampled rollouts call the tool."""
    _, out = run
    steps = _summary(out)["extra"]["rl_metrics"]
    assert [s["step"] for s in steps] == [1, 2]
    assert all(s["cof/tool_use/rate"] > 0 for s in steps), steps
    assert sorted((out / "rl").glob("global_step_*")), "no RL checkpoint written"
    assert (out / "model" / "rl" / "config.json").is_file()


def test_report_shows_three_runs_with_pictures(run):
    _, out = run
    html = (out / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 4
    for name in ("base", "sft", "rl"):
        assert str(out / "eval" / name) in html or f"eval/{name}" in html or name in html
