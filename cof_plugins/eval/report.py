"""``cof report``: Markdown and a self-contained HTML page for one or more eval runs.

The report is built once as a list of blocks (headings, tables, images, paragraphs) and
written twice: Markdown referencing PNG files beside it, and HTML with every image inlined
as base64 so the page can be mailed or attached to an issue as one file. Several runs sit
side by side in every table and plot; with two or more runs, each is compared with the
first on the questions both answered (``eval.compare``). ``summary.json`` beside the report
holds every run's summary and the comparisons. Every file is written atomically.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cof_plugins.eval import plots, report_sections
from cof_plugins.eval.loop import LoopConfig
from cof_plugins.eval.report_sections import fmt as _fmt
from cof_plugins.eval.report_sections import with_ci
from cof_plugins.eval.runner import load_run
from cof_plugins.eval.store import write_atomic
from cof_plugins.eval.summary import summarize

log = logging.getLogger(__name__)

PUBLISHED = (
    "Published reference points (Adaptive-CoF, arXiv 2505.15436): on V* Bench (191 questions, "
    "micro average) Qwen2.5-VL-7B scores about 71-78 depending on the harness and "
    "Adaptive-CoF about 90; "
    "its average zoom calls fall from about 2.5 at 224 px to about 0.5 at 1920-2560 px."
)
_OVERALL = (
    ("accuracy", "accuracy (%)"), ("n", "samples"), ("zoom_calls", "zoom calls / sample"),
    ("zoom_rate", "samples with a zoom (%)"), ("invalid_calls", "invalid calls / sample"),
    ("turns", "turns / sample"), ("images", "images / sample"),
    ("gen_tokens", "generated tokens / sample"), ("latency_s", "latency / sample (s)"),
    ("format_ok", "format ok (%)"), ("consistent_accuracy", "all-cycles accuracy (%)"),
    ("errors", "errors"),
)  # fmt: skip


@dataclass
class RunView:
    label: str
    path: Path
    info: dict[str, Any]
    records: list[dict[str, Any]]
    summary: dict[str, Any]


def load_runs(run_dirs: list[str | Path]) -> list[RunView]:
    views, seen = [], {}
    for run_dir in run_dirs:
        info, records = load_run(run_dir)
        label = Path(run_dir).resolve().name
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} ({seen[label]})"
        seed = int(info.get("settings", {}).get("seed") or 0)
        views.append(RunView(label, Path(run_dir), info, records, summarize(records, seed=seed)))
    return views


def build_report(
    run_dirs: list[str | Path],
    out_dir: str | Path,
    *,
    trajectories: int = 4,
    legibility: str | Path | None = None,
) -> tuple[Path, Path]:
    """Write report.md, report.html and the PNGs they show into ``out_dir``; with
    ``legibility`` (``eval.adaptive``) also the adaptive section and ``adaptive.json``."""
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    runs = load_runs(run_dirs)
    blocks: list[tuple] = [("h", 1, "CoF evaluation report")]
    blocks += _settings(runs) + _overall(runs)
    paired, found = report_sections.comparisons(runs)
    if legibility is not None:
        blocks += _adaptive(runs, legibility, out)
    blocks += paired + _categories(runs) + _resolutions(runs)
    blocks += report_sections.efficiency(runs) + report_sections.sampling(runs)
    blocks += report_sections.option_orders(runs) + report_sections.scoring_conventions(runs)
    blocks += _plots(runs, out / "plots")
    blocks += _trajectories(runs, out / "trajectories", trajectories)
    if any(r.info.get("benchmark", {}).get("format") == "vstar" for r in runs):
        blocks.append(("p", PUBLISHED))
    summary = {"runs": {r.label: {"path": str(r.path.resolve()), **r.summary} for r in runs},
               "comparisons": found}  # fmt: skip
    write_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    md = write_atomic(out / "report.md", to_markdown(blocks, out))
    page = write_atomic(out / "report.html", to_html(blocks))
    return md, page


# ---------------------------------------------------------------- sections


def _settings(runs: list[RunView]) -> list[tuple]:
    rows = []
    for r in runs:
        s = r.info.get("settings", {})
        loop = s.get("loop", {})
        profile = loop.get("profile", "default")
        flags = [f"profile {profile}"] if profile != "default" else []
        rows.append([
            r.label, str(s.get("model")), f"{r.info.get('benchmark', {}).get('name')} "
            f"({r.info.get('benchmark', {}).get('format')})", str(s.get("backend")),
            str(loop.get("protocol")), f"[{loop.get('min_pixels')}, {loop.get('max_pixels')}]",
            ",".join(map(str, s.get("sweep") or [])) or "native", ", ".join(flags) or "-",
            str(len(r.records)),
        ])  # fmt: skip
    header = [
        "run",
        "model",
        "benchmark",
        "backend",
        "protocol",
        "pixels",
        "sweep",
        "flags",
        "stored",
    ]
    return [("h", 2, "Runs"), ("table", header, rows)]


def _overall(runs: list[RunView]) -> list[tuple]:
    rows = [[name] + [_fmt(r.summary["overall"].get(key)) for r in runs] for key, name in _OVERALL]
    rows[0] = ["accuracy (%) [95% CI]"] + [
        with_ci(r.summary["overall"]["accuracy"], r.summary["overall"].get("accuracy_ci"))
        for r in runs
    ]
    decided = [
        ", ".join(f"{k}: {v}" for k, v in r.summary["overall"]["decided_by"].items()) for r in runs
    ]
    rows.append(["decided by", *decided])
    return [("h", 2, "Overall"), ("table", ["metric", *[r.label for r in runs]], rows)]


def _adaptive(runs: list[RunView], legibility: str | Path, out: Path) -> list[tuple]:
    from cof_plugins.eval.adaptive import load_legibility, report_blocks

    questions = load_legibility(legibility)
    return report_blocks({r.label: r.records for r in runs}, questions, out)


def _categories(runs: list[RunView]) -> list[tuple]:
    cats = sorted({c for r in runs for c in r.summary["by_category"]})
    rows = []
    for cat in cats:
        cells = []
        for r in runs:
            s = r.summary["by_category"].get(cat)
            cells.append(
                f"{with_ci(s['accuracy'], s.get('accuracy_ci'))} (n={s['n']}, "
                f"zoom {_fmt(s['zoom_calls'])})"
                if s
                else "-"
            )
        rows.append([cat, *cells])
    header = ["category", *[f"{r.label}: acc [95% CI] (n, zoom calls)" for r in runs]]
    return [("h", 2, "Per category"), ("table", header, rows)]


def _resolutions(runs: list[RunView]) -> list[tuple]:
    res = sorted({k for r in runs for k in r.summary["by_resolution"] if k.isdigit()}, key=int)
    if not res:
        return []
    rows = []
    for k in res:
        cells = []
        for r in runs:
            s = r.summary["by_resolution"].get(k, {}).get("overall")
            cells.append(
                f"{with_ci(s['accuracy'], s.get('accuracy_ci'))} / {_fmt(s['zoom_calls'])} / "
                f"{_fmt(s['gen_tokens'])}"
                if s
                else "-"
            )
        rows.append([k, *cells])
    header = [
        "long side",
        *[f"{r.label}: acc [95% CI] / zoom calls / generated tokens" for r in runs],
    ]
    return [("h", 2, "Per resolution"), ("table", header, rows)]


def _plots(runs: list[RunView], folder: Path) -> list[tuple]:
    pairs = [(r.label, r.summary) for r in runs]
    wanted = (
        (
            plots.by_resolution,
            "zoom_calls",
            "zoom_by_resolution",
            "Zoom calls per sample vs input resolution",
        ),
        (
            plots.accuracy_vs_tokens,
            "accuracy",
            "accuracy_vs_tokens",
            "Accuracy vs tokens per sample (one point per resolution)",
        ),
        (plots.by_resolution, "accuracy", "accuracy_by_resolution", "Accuracy per resolution"),
        (plots.by_category, "accuracy", "accuracy_by_category", "Accuracy per category"),
        (plots.by_category, "zoom_calls", "zoom_by_category", "Zoom calls per category"),
    )
    made = [
        (plot(pairs, metric, folder / f"{name}.png"), caption)
        for plot, metric, name, caption in wanted
    ]
    blocks: list[tuple] = [("h", 2, "Plots")]
    blocks += [("img", path, caption) for path, caption in made if path is not None]
    return blocks


def pick_trajectories(records: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """Zooming samples first (right and wrong alternating), then the rest, in file order."""
    zooming = [r for r in records if r.get("zoom_calls") or r.get("tool_attempts")]
    right = [r for r in zooming if r.get("correct")]
    wrong = [r for r in zooming if not r.get("correct")]
    mixed = [r for pair in zip(right, wrong, strict=False) for r in pair]
    mixed += right[len(mixed) // 2 :] + wrong[len(mixed) // 2 :]
    rest = [r for r in records if r not in zooming]
    return (mixed + rest)[:count]


def _trajectories(runs: list[RunView], folder: Path, count: int) -> list[tuple]:
    from cof_plugins.eval.viz import record_drawing, render

    if count <= 0:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    blocks: list[tuple] = [("h", 2, "Trajectories")]
    for run in runs:
        loop = loop_config(run.info)
        for record in pick_trajectories(run.records, count):
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{run.label}_{record['key']}") + ".png"
            try:
                _save_png(render(record_drawing(record, loop)), folder / name)
            except (OSError, ValueError) as exc:
                log.warning("cannot draw %s of %s: %s", record["key"], run.label, exc)
                blocks.append(("p", f"{run.label} / {record['key']}: image unavailable ({exc})"))
                continue
            blocks.append(("img", folder / name, f"{run.label}: {record['key']}"))
    return blocks


def _save_png(image, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_atomic(path, buffer.getvalue())


def loop_config(info: dict[str, Any]) -> LoopConfig:
    """The run's loop settings; runs made before frame modes existed used exact frames."""
    settings = info.get("settings", {})
    loop = dict(settings.get("loop", {}))
    known = set(LoopConfig.__dataclass_fields__)
    exact = settings.get("frames", "exact") == "exact"
    return LoopConfig(**{k: v for k, v in loop.items() if k in known}, exact_frames=exact)


# ---------------------------------------------------------------- writers


def to_markdown(blocks: list[tuple], base: Path) -> str:
    out = []
    for block in blocks:
        if block[0] == "h":
            out.append("#" * block[1] + " " + block[2])
        elif block[0] == "p":
            out.append(block[1])
        elif block[0] == "table":
            out.append(_md_table(block[1], block[2]))
        elif block[0] == "img":
            out.append(f"![{block[2]}]({Path(block[1]).relative_to(base).as_posix()})")
    return "\n\n".join(out) + "\n"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f2f2f2}"
    "figure{margin:1.5em 0}img{max-width:100%;border:1px solid #ddd}"
    "figcaption{color:#555;font-size:13px}"
)


def to_html(blocks: list[tuple]) -> str:
    body = []
    for block in blocks:
        if block[0] == "h":
            body.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
        elif block[0] == "p":
            body.append(f"<p>{html.escape(block[1])}</p>")
        elif block[0] == "table":
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in block[1])
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                for row in block[2]
            )
            body.append(f"<table><tr>{head}</tr>{rows}</table>")
        elif block[0] == "img":
            data = base64.b64encode(Path(block[1]).read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(block[2])}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(block[2])}</figcaption></figure>"
            )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>CoF evaluation report</title>'
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
