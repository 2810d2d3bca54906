"""Paired comparison of two runs on the questions both answered: ``cof report A B``.

Two accuracies with overlapping intervals can still differ reliably when both runs answered
the same questions: most of each interval's width is which questions happened to be in the
benchmark, and that is shared. The paired bootstrap resamples questions once for both runs
(``stats.paired_ci``), so the interval of the difference keeps only what differs.

An *item* is one question at one resolution in one option order; its value in a run is the
share of its draws that were right (0 or 1 without ``--samples``). Only items both runs
scored are compared. A flip is an item whose value differs between the runs: ``b_better``
where run B's value is higher, ``a_better`` where run A's is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from cof_plugins.eval.seeds import derive_seed
from cof_plugins.eval.stats import paired_ci, unit_of
from cof_plugins.eval.summary import resolution_label

Item = tuple[str, str, int]


def item_values(records: Sequence[dict[str, Any]]) -> tuple[dict[Item, float], dict[Item, str]]:
    """Per item, the share of right draws; and each item's resampling unit."""
    draws: dict[Item, list[bool]] = defaultdict(list)
    unit: dict[Item, str] = {}
    for r in records:
        if r.get("correct") is None:
            continue
        item = (str(r["id"]), resolution_label(r.get("resolution")), int(r.get("order") or 0))
        draws[item].append(bool(r["correct"]))
        unit[item] = unit_of(r)
    return {i: sum(v) / len(v) for i, v in draws.items()}, unit


def compare(
    a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], *, seed: int = 0
) -> dict[str, Any]:
    """Accuracy of each run on the shared items, B - A with its paired interval, the flips."""
    (va, units_a), (vb, _) = item_values(a), item_values(b)
    shared = sorted(set(va) & set(vb))
    out: dict[str, Any] = {"shared": len(shared), "only_a": len(set(va) - set(vb)),
                           "only_b": len(set(vb) - set(va))}  # fmt: skip
    out.update(_paired(shared, va, vb, units_a, seed, "overall"))
    by_res: dict[str, list[Item]] = defaultdict(list)
    for item in shared:
        by_res[item[1]].append(item)
    if len(by_res) > 1:
        out["by_resolution"] = {
            res: _paired(items, va, vb, units_a, seed, f"@{res}")
            for res, items in sorted(by_res.items(), key=lambda kv: _res_order(kv[0]))
        }
    return out


def _res_order(label: str) -> tuple[int, int]:
    return (label != "native", int(label) if label.isdigit() else 0)


def _paired(items, va, vb, units, seed: int, what: str) -> dict[str, Any]:
    if not items:
        return {"a": None, "b": None, "difference": None, "difference_ci": None,
                "b_better": 0, "a_better": 0}  # fmt: skip
    index: dict[str, int] = {}
    for item in items:
        index.setdefault(units[item], len(index))
    sa, sb, counts = (np.zeros(len(index)) for _ in range(3))
    for item in items:
        u = index[units[item]]
        sa[u] += va[item]
        sb[u] += vb[item]
        counts[u] += 1
    acc_a, acc_b = 100.0 * sa.sum() / counts.sum(), 100.0 * sb.sum() / counts.sum()
    return {
        "a": round(acc_a, 2), "b": round(acc_b, 2), "difference": round(acc_b - acc_a, 2),
        "difference_ci": paired_ci((sa, counts), (sb, counts),
                                   seed=derive_seed(seed, "paired", what)),
        "b_better": sum(1 for i in items if vb[i] > va[i]),
        "a_better": sum(1 for i in items if va[i] > vb[i]),
    }  # fmt: skip
