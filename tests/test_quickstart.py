"""`cof quickstart`: the whole method end to end on this CPU, as the README's main job runs it.

Slow (minutes): it trains the small tiny model through LLaMA-Factory and runs two GRPO steps
through verl. Every stage's own behaviour is tested in its suite; this test checks they chain.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from PIL import Image

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
RUNS = ("base", "sft", "rl")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The README's main job, in its own process as a user runs it."""
    out = tmp_path_factory.mktemp("quickstart")
    cmd = [sys.executable, "-m", "cof_plugins.cli", "quickstart", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=2300)
    (out / "quickstart.log").write_text(done.stdout + done.stderr)
    return done.returncode, out


def _summary(out, name):
    return json.loads((out / "eval" / name / "summary.json").read_text())["overall"]


def test_every_stage_succeeds(run):
    code, out = run
    stages = json.loads((out / "summary.json").read_text())
    failed = [s for s in stages if s["exit"] != 0]
    assert code == 0 and not failed, (failed, (out / "quickstart.log").read_text()[-3000:])
    assert [s["stage"] for s in stages][:2] == ["tiny model", "synthetic data"]
    assert {"sft", "rl", "export rl", "eval rl", "report"} <= {s["stage"] for s in stages}


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


def test_sft_teaches_the_turn_format(run):
    _, out = run
    base, sft = _summary(out, "base"), _summary(out, "sft")
    assert base["n"] == sft["n"] == 16
    # The random base model never writes a CoF turn; the fine-tuned one does.
    assert base["format_ok"] == 0
    assert sft["format_ok"] > base["format_ok"]


def test_rl_trained_and_exported(run):
    _, out = run
    steps = sorted((out / "rl").glob("global_step_*"))
    assert steps, "no RL checkpoint written"
    assert (out / "model" / "rl" / "config.json").is_file()
    assert _summary(out, "rl")["n"] == 16


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
        results, summary = _results(out, name), _summary(out, name)
        scored = [r for r in results if r.get("correct") is not None]
        accuracy = round(100 * sum(bool(r["correct"]) for r in scored) / len(scored), 2)
        zoom = round(sum(r.get("zoom_calls", 0) for r in results) / len(results), 3)
        well_formed = round(100 * sum(bool(r.get("format_ok")) for r in results) / len(results), 2)
        assert len(results) == summary["n"] == 16
        assert (summary["accuracy"], summary["format_ok"]) == (accuracy, well_formed)
        assert summary["zoom_calls"] == pytest.approx(zoom, abs=1e-3)
        assert rows["samples"][k] == "16"
        assert rows["accuracy (%)"][k] == _cell(float(accuracy))
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
