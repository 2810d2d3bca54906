"""`cof quickstart`: the whole method end to end on this CPU, as the README's main job runs it.

Slow (minutes): it trains the small tiny model through LLaMA-Factory and runs two GRPO steps
through verl. Every stage's own behaviour is tested in its suite; this test checks they chain,
that the summary's adaptive rates (valid zooms where the target is not legible in the frame,
direct answers where it is; the same figures the report shows) are true to the eval runs,
that ``bar_met`` tells the truth about the tiny default's bar, and that the tiny default meets
it: the fine-tuned models zoom, with a valid box, where the target is not legible and answer
directly where it is (README, "What the quickstart shows").
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from cof_plugins.commands.quickstart_cof import CofSettings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
RUNS = ("base", "sft", "rl")
EVAL_QUESTIONS = CofSettings().eval_samples
FLOOR = 50.0  # percent, the "at least half"; the README quotes the measured rates


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The README's main job, in its own process as a user runs it.

    ``COF_QUICKSTART_OUT=DIR`` checks a run that ``cof quickstart --out DIR`` already made
    (its output saved as DIR/quickstart.log) instead of running it again: the same checks on
    a run measured by hand, e.g. the one the README quotes.
    """
    done_dir = os.environ.get("COF_QUICKSTART_OUT")
    if done_dir:
        out = Path(done_dir)
        summary = json.loads((out / "summary.json").read_text())
        return (0 if summary["ok"] else 1), out
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
    # (A stage can take under 0.05 s, rounded to 0.0: validating 200 rows.)
    assert all(s["seconds"] >= 0 and s["cpu_seconds"] >= 0 for s in summary["stages"])
    assert sum(s["seconds"] for s in summary["stages"]) > 0


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


def test_the_summary_holds_the_bar_and_says_whether_it_is_met(run):
    """The bar (valid zooms on at least half of the illegible questions, direct
    answers on at least half of the legible ones, after SFT and after RL) is in the summary,
    and ``bar_met`` is the truth about the rates next to it."""
    _, out = run
    summary = _summary(out)
    rates, floors = summary["rates"], summary["thresholds"]
    assert floors == {"zoom_illegible": FLOOR, "direct_legible": FLOOR}
    met = all(rates[m][k] >= floor for m in ("sft", "rl") for k, floor in floors.items())
    assert summary["bar_met"] is met


def test_the_tiny_default_learns_when_to_zoom(run):
    """The bar itself, after SFT and after RL: valid zooms on at least half of the illegible
    questions and direct answers on at least half of the legible ones, where the random base
    model does neither; and the two groups are told apart (zooms are rarer on legible ones)."""
    _, out = run
    rates = _summary(out)["rates"]
    for name in ("sft", "rl"):
        r = rates[name]
        assert r["zoom_illegible"] >= FLOOR and r["direct_legible"] >= FLOOR, (name, r)
        assert r["zoom_legible"] < r["zoom_illegible"], (name, r)
    assert rates["base"]["zoom_illegible"] == 0.0 and rates["base"]["direct_legible"] == 0.0


def test_the_fine_tuned_models_learn_the_turns_and_try_both_branches(run):
    """Well-formed turns where the random base model has none, direct answers on some legible
    questions and zoom attempts on some."""
    _, out = run
    rates = _summary(out)["rates"]
    assert set(rates) == {"base", "sft", "rl"}
    for name in ("sft", "rl"):
        r = rates[name]
        assert r["legible"] >= 4 and r["illegible"] >= 4, r  # both groups are measured
        assert r["format_ok"] > rates["base"]["format_ok"], (name, r)
        assert r["direct_legible"] > 0, (name, r)
        assert any(x.get("tool_attempts") for x in _results(out, name)), name
    # The random base model never zooms: what there is of the behaviour is learnt.
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


def _md_tables(text: str) -> dict[str, list[list[str]]]:
    """Each Markdown table under its "## heading": header row first, separator dropped."""
    tables, heading = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
        elif line.startswith("|") and heading is not None:
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if set("".join(cells)) != {"-"}:
                tables.setdefault(heading, []).append(cells)
    return tables


class _HtmlTables(HTMLParser):
    """Cells of every <table>, and the decoded bytes of every inlined image."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[bytes] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            src = dict(attrs)["src"]
            assert src.startswith("data:image/png;base64,")
            self.images.append(base64.b64decode(src.split(",", 1)[1]))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _results(out, name):
    lines = (out / "eval" / name / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _cell(value) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def test_report_tables_agree_with_the_eval_results(run):
    """The report's numbers, read back from its Markdown and HTML tables, are the ones the
    eval runs stored: samples, accuracy, zoom calls and format rate recomputed from each
    run's results.jsonl, and the same in both files."""
    _, out = run
    md = (out / "report" / "report.md").read_text()
    overall = _md_tables(md)["Overall"]
    assert overall[0] == ["metric", *RUNS]
    rows = {r[0]: r[1:] for r in overall[1:]}
    for k, name in enumerate(RUNS):
        results, summary = _results(out, name), _eval(out, name)
        scored = [r for r in results if r.get("correct") is not None]
        accuracy = round(100 * sum(bool(r["correct"]) for r in scored) / len(scored), 2)
        zoom = round(sum(r.get("zoom_calls", 0) for r in results) / len(results), 3)
        well_formed = round(100 * sum(bool(r.get("format_ok")) for r in results) / len(results), 2)
        assert len(results) == summary["n"] == EVAL_QUESTIONS
        assert (summary["accuracy"], summary["format_ok"]) == (accuracy, well_formed)
        assert summary["zoom_calls"] == pytest.approx(zoom, abs=1e-3)
        assert rows["samples"][k] == str(EVAL_QUESTIONS)
        # "12.50 [0.0, 31.2]": the accuracy, then its 95% interval
        assert rows["accuracy (%) [95% CI]"][k].split(" [")[0] == _cell(float(accuracy))
        assert rows["format ok (%)"][k] == _cell(float(well_formed))
        assert rows["zoom calls / sample"][k] == _cell(summary["zoom_calls"])
    page = _HtmlTables()
    page.feed((out / "report" / "report.html").read_text())
    html_overall = next(t for t in page.tables if t and t[0] == ["metric", *RUNS])
    assert html_overall == overall  # the HTML shows the same table as the Markdown
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", md)
    assert len(page.images) == len(pictures) >= 4  # every plot and trajectory, inlined
    for data, rel in zip(page.images, pictures, strict=True):
        assert data == (out / "report" / rel).read_bytes()
        assert Image.open(io.BytesIO(data)).size[0] > 50
