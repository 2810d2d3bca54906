"""Report plots (matplotlib, Agg backend): metrics per resolution and per category, and
the paper's two efficiency figures (zoom calls vs input resolution, accuracy vs tokens).

Each function takes ``runs`` as (label, summary) pairs, where a summary is what
``summary.summarize`` returns, draws every run on the same axes, writes one PNG (atomically)
and returns its path, or None when no run has anything to plot.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

Runs = Sequence[tuple[str, dict[str, Any]]]
LABELS = {
    "accuracy": "accuracy (%)",
    "zoom_calls": "zoom calls per sample",
    "gen_tokens": "generated tokens per sample",
    "images": "images per sample",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def by_resolution(runs: Runs, metric: str, path: str | Path) -> Path | None:
    """One line per run: ``metric`` against the swept long side (log scale)."""
    series = []
    for label, summary in runs:
        points = [
            (int(res), part["overall"].get(metric))
            for res, part in summary["by_resolution"].items()
            if res.isdigit() and part["overall"].get(metric) is not None
        ]
        if points:
            series.append((label, sorted(points)))
    if not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    for label, points in series:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xscale("log")
    ticks = sorted({x for _, points in series for x, _ in points})
    ax.set_xticks(ticks, [str(t) for t in ticks], rotation=30)
    ax.minorticks_off()
    ax.set_xlabel("input long side (px)")
    _y_axis(ax, metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, plt, path)


def by_category(runs: Runs, metric: str, path: str | Path) -> Path | None:
    """Grouped bars: ``metric`` per category, one bar per run."""
    cats = sorted({c for _, s in runs for c in s["by_category"]})
    if not cats:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(cats) + 2), 3.6), dpi=110)
    width = 0.8 / max(1, len(runs))
    for i, (label, summary) in enumerate(runs):
        values = [(summary["by_category"].get(c) or {}).get(metric) or 0 for c in cats]
        xs = [j + (i - (len(runs) - 1) / 2) * width for j in range(len(cats))]
        ax.bar(xs, values, width=width, label=label)
    ax.set_xticks(range(len(cats)), cats, rotation=20, ha="right", fontsize=8)
    _y_axis(ax, metric)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, plt, path)


def accuracy_vs_tokens(runs: Runs, metric: str, path: str | Path) -> Path | None:
    """One line per run through its resolutions: accuracy against tokens per sample, with
    the 95% interval as error bars; each point is labelled with its resolution."""
    from cof_plugins.eval.report_sections import tokens_of

    series, kinds = [], set()
    for label, summary in runs:
        points = []
        for res, part in summary["by_resolution"].items():
            stats = part["overall"]
            tokens, kind = tokens_of(stats)
            if tokens is not None and stats.get(metric) is not None:
                points.append((tokens, stats[metric], stats.get("accuracy_ci"), res))
                kinds.add(kind)
        if points:
            series.append((label, sorted(points, key=lambda p: p[0])))
    if not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    for label, points in series:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        low = [p[1] - p[2][0] if p[2] else 0 for p in points]
        high = [p[2][1] - p[1] if p[2] else 0 for p in points]
        ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, label=label)
        for x, y, _, res in points:
            ax.annotate(res, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel(f"tokens per sample ({' / '.join(sorted(kinds))})")
    _y_axis(ax, metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, plt, path)


def _y_axis(ax, metric: str) -> None:
    """Axes start at zero (and accuracy ends at 100) so runs compare at a glance."""
    ax.set_ylabel(LABELS.get(metric, metric))
    if metric == "accuracy":
        ax.set_ylim(0, 100)
    else:
        ax.set_ylim(bottom=0, top=max(1.0, ax.get_ylim()[1] * 1.1))


def _save(fig, plt, path: str | Path) -> Path:
    import io

    from cof_plugins.eval.store import write_atomic

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return write_atomic(path, buffer.getvalue())
