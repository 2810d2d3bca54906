"""Aggregate a run's records into ``summary.json``: accuracy with intervals, and the rest.

What each number is:

- ``accuracy``: micro average over scored rows of the *original* option order, overall, per
  category and per resolution. With ``--samples k`` every draw is a row, so it is Avg@k
  (also given as ``avg_at_k``). ``accuracy_ci``: its 95% bootstrap interval, questions
  resampled (``eval.stats``; HR-Bench's cycled rows resampled as one question).
- ``pass_at_k`` (with k > 1): per question, resolution and order, 1 if any of its k draws is
  right (the unbiased estimator of Chen et al. reduces to that with exactly k draws), then
  averaged like accuracy, with its interval.
- ``option_orders`` (with ``--shuffle-options``): accuracy under the original order, under
  the shuffled orders and over all of them, the share of questions right under every order,
  and the share whose verdict changes with the order.
- ``efficiency``: per resolution, the paper's view: accuracy, zoom calls, image tokens,
  prompt tokens, generated tokens and the whole conversation's tokens per sample
  (``scoring.context_tokens``).
- ``crosscheck``: the same predictions under lmms-eval's V* and VLMEvalKit's HR-Bench rules
  (``eval.crosscheck``), with the disagreements.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from cof_plugins.eval import stats as bootstrap
from cof_plugins.eval.crosscheck import crosscheck
from cof_plugins.eval.seeds import derive_seed

_MEANS = (
    "zoom_calls", "tool_attempts", "invalid_calls", "turns", "images", "gen_tokens",
    "image_tokens", "prompt_tokens", "tokens", "latency_s",
)  # fmt: skip
EFFICIENCY = ("accuracy", "accuracy_ci", "n", "zoom_calls", "image_tokens", "prompt_tokens",
              "gen_tokens", "tokens")  # fmt: skip


def resolution_label(resolution: int | None) -> str:
    return "native" if resolution is None else str(resolution)


def summarize(records: Sequence[dict[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """Overall, per-category and per-resolution statistics, and the sections above."""
    original = [r for r in records if not r.get("order")]
    k = 1 + max((r.get("draw") or 0 for r in records), default=0)
    by_res: dict[str, list[dict]] = defaultdict(list)
    for r in original:
        by_res[resolution_label(r.get("resolution"))].append(r)
    ordered = sorted(by_res, key=lambda key: (key != "native", int(key) if key.isdigit() else 0))
    out: dict[str, Any] = {
        "overall": stats(original, seed=seed, what="overall", k=k),
        "by_category": _by_category(original, seed, "", k),
        "by_resolution": {
            key: {
                "overall": stats(by_res[key], seed=seed, what=f"@{key}", k=k),
                "by_category": _by_category(by_res[key], seed, f"@{key}", k),
            }
            for key in ordered
        },
        "bootstrap": {
            "resamples": bootstrap.RESAMPLES,
            "level": bootstrap.LEVEL,
            "seed": seed,
            "unit": "question (its draws, orders, resolutions and HR-Bench cycles together)",
        },
        "samples": k,
    }
    out["efficiency"] = [
        {"resolution": key, **{m: out["by_resolution"][key]["overall"].get(m) for m in EFFICIENCY}}
        for key in ordered
    ]
    if any(r.get("order") for r in records):
        out["option_orders"] = option_orders(records, seed)
    out["crosscheck"] = crosscheck(original)
    return out


def stats(
    records: Sequence[dict[str, Any]], *, seed: int = 0, what: str = "", k: int = 1
) -> dict[str, Any]:
    """Accuracy (percent, micro) with its interval, means per sample, how verdicts came."""
    scored = [r for r in records if r.get("correct") is not None]
    right = sum(1 for r in scored if r["correct"])
    out: dict[str, Any] = {
        "n": len(records),
        "scored": len(scored),
        "correct": right,
        "accuracy": round(100.0 * right / len(scored), 2) if scored else None,
        "accuracy_ci": bootstrap.accuracy_ci(scored, seed, what),
        "zoom_rate": _share(records, lambda r: r.get("zoom_calls", 0) > 0),
        "format_ok": _share(records, lambda r: bool(r.get("format_ok"))),
        "errors": sum(1 for r in records if r.get("error")),
        "decided_by": dict(Counter(r.get("decided_by", "none") for r in records)),
    }
    for name in _MEANS:
        values = [r[name] for r in records if isinstance(r.get(name), int | float)]
        out[name] = round(statistics.fmean(values), 3) if values else None
    out["consistent_accuracy"] = _consistency(records)
    if k > 1:
        out["avg_at_k"] = out["accuracy"]
        out.update(_pass_at_k(scored, k, seed, what))
    return out


def _pass_at_k(scored: Sequence[dict], k: int, seed: int, what: str) -> dict[str, Any]:
    draws: dict[tuple, list[bool]] = defaultdict(list)
    unit: dict[tuple, str] = {}
    for r in scored:
        item = (r["id"], r.get("resolution"), r.get("order") or 0)
        draws[item].append(bool(r["correct"]))
        unit[item] = bootstrap.unit_of(r)
    pairs = [(unit[i], bootstrap.pass_at_k(len(v), sum(v), k)) for i, v in draws.items()]
    if not pairs:
        return {"k": k, "pass_at_k": None, "pass_at_k_ci": None}
    sums, counts = bootstrap.units(pairs)
    ci = bootstrap.bootstrap_ci(sums, counts, seed=derive_seed(seed, "pass@k", what))
    value = 100.0 * sum(v for _, v in pairs) / len(pairs)
    return {"k": k, "pass_at_k": round(value, 2), "pass_at_k_ci": ci}


def _share(records: Sequence[dict], test) -> float | None:
    return round(100.0 * sum(1 for r in records if test(r)) / len(records), 2) if records else None


def _consistency(records: Iterable[dict]) -> float | None:
    """Percent of question groups (e.g. HR-Bench's cycled options) right in every row."""
    groups: dict[tuple, list[bool]] = defaultdict(list)
    for r in records:
        if r.get("group") and r.get("correct") is not None:
            key = (r["group"], r.get("resolution"), r.get("draw") or 0)
            groups[key].append(bool(r["correct"]))
    multi = [v for v in groups.values() if len(v) > 1]
    return round(100.0 * sum(all(v) for v in multi) / len(multi), 2) if multi else None


def _by_category(records: Sequence[dict], seed: int, prefix: str, k: int) -> dict[str, dict]:
    cats: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        cats[str(r.get("category", "all"))].append(r)
    return {c: stats(cats[c], seed=seed, what=f"{prefix}/{c}", k=k) for c in sorted(cats)}


def option_orders(records: Sequence[dict[str, Any]], seed: int) -> dict[str, Any]:
    """Accuracy per kind of order, and how often a question's verdict follows the order."""
    scored = [r for r in records if r.get("correct") is not None]

    def acc(rows: list[dict], what: str) -> dict[str, Any]:
        right = sum(bool(r["correct"]) for r in rows)
        value = round(100.0 * right / len(rows), 2) if rows else None
        return {"n": len(rows), "accuracy": value,
                "accuracy_ci": bootstrap.accuracy_ci(rows, seed, f"orders/{what}")}  # fmt: skip

    verdicts: dict[tuple, dict[int, bool]] = defaultdict(dict)
    unit: dict[tuple, str] = {}
    for r in scored:
        item = (r["id"], r.get("resolution"), r.get("draw") or 0)
        verdicts[item][r.get("order") or 0] = bool(r["correct"])
        unit[item] = bootstrap.unit_of(r)
    multi = {i: v for i, v in verdicts.items() if len(v) > 1}
    changed = sum(1 for v in multi.values() if len(set(v.values())) > 1)
    pairs = [(unit[i], all(v.values())) for i, v in multi.items()]
    sums, counts = bootstrap.units(pairs)
    consistent = round(100.0 * sums.sum() / len(pairs), 2) if pairs else None
    return {
        "orders": 1 + max((r.get("order") or 0 for r in records), default=0),
        "original": acc([r for r in scored if not r.get("order")], "original"),
        "shuffled": acc([r for r in scored if r.get("order")], "shuffled"),
        "all_orders": acc(scored, "all"),
        "consistent": consistent,
        "consistent_ci": bootstrap.bootstrap_ci(
            sums, counts, seed=derive_seed(seed, "bootstrap", "orders/consistent")
        ),
        "questions": len(multi),
        "changed": changed,
        "changed_share": round(100.0 * changed / len(multi), 2) if multi else None,
    }
