"""Uncertainty of an accuracy: cluster bootstrap intervals, paired differences, pass@k.

Benchmarks of a few hundred questions move by several points between runs and harnesses; a
number without its interval invites reading noise as progress. Every accuracy in
``summary.json`` carries a 95% percentile bootstrap interval computed here.

The unit of resampling is the *question*, never the row: all of a question's rows (its k
draws, its option orders, its sweep resolutions, and for HR-Bench its cycled option rows,
which share ``group``) are drawn together, because they are not independent evidence. A
row bootstrap would pretend an HR-Bench question cycled four times is four questions and
report an interval about half as wide as the truth.

Resampling is seeded (``derive_seed(run seed, "bootstrap", what)``), so a report is
reproducible to the digit.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from cof_plugins.eval.seeds import derive_seed

RESAMPLES = 2000
LEVEL = 0.95
_CHUNK = 250  # resamples drawn at a time, so memory stays at _CHUNK x questions


def unit_of(record: dict[str, Any]) -> str:
    """The resampling unit of a record: its question group (HR-Bench cycles) or its id."""
    return str(record.get("group") or record.get("id"))


def units(pairs: Iterable[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit (sum of values, count) from (unit, value) pairs, in first-seen order."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for unit, value in pairs:
        sums[unit] += float(value)
        counts[unit] += 1
    keys = list(sums)
    return np.array([sums[k] for k in keys]), np.array([counts[k] for k in keys], dtype=float)


def bootstrap_ci(
    sums: np.ndarray,
    counts: np.ndarray,
    *,
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> list[float] | None:
    """Percentile interval (in percent) of sum(values)/count over units drawn with replacement."""
    n = len(sums)
    if n == 0 or counts.sum() == 0:
        return None
    rng = np.random.default_rng(seed)
    stats = []
    for start in range(0, resamples, _CHUNK):
        idx = rng.integers(0, n, size=(min(_CHUNK, resamples - start), n))
        num, den = sums[idx].sum(axis=1), counts[idx].sum(axis=1)
        stats.append(np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0))
    return _percentiles(np.concatenate(stats), level)


def paired_ci(
    a: tuple[np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray],
    *,
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> list[float] | None:
    """Interval (in points) of acc(b) - acc(a), drawing the same units for both runs.

    ``a`` and ``b`` are per-unit (sums, counts) over the *same* units in the same order;
    pairing removes the between-question variance both runs share, which is most of it.
    """
    (sa, ca), (sb, cb) = a, b
    n = len(sa)
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, resamples, _CHUNK):
        idx = rng.integers(0, n, size=(min(_CHUNK, resamples - start), n))
        acc_a = sa[idx].sum(axis=1) / np.maximum(ca[idx].sum(axis=1), 1e-12)
        acc_b = sb[idx].sum(axis=1) / np.maximum(cb[idx].sum(axis=1), 1e-12)
        diffs.append(acc_b - acc_a)
    return _percentiles(np.concatenate(diffs), level)


def _percentiles(values: np.ndarray, level: float) -> list[float] | None:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [round(100.0 * float(low), 2), round(100.0 * float(high), 2)]


def accuracy_ci(records: Sequence[dict[str, Any]], seed: int, what: str) -> list[float] | None:
    """The interval of the micro accuracy of scored ``records``, questions resampled."""
    scored = [(unit_of(r), bool(r["correct"])) for r in records if r.get("correct") is not None]
    sums, counts = units(scored)
    return bootstrap_ci(sums, counts, seed=derive_seed(seed, "bootstrap", what))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n draws with c correct (Chen et al., 2021): 1 - C(n-c,k)/C(n,k).

    With exactly k draws (what ``cof eval --samples k`` stores) it is 1 if any draw is right,
    else 0. With fewer than k draws (an unfinished run) it is computed for k = n.
    """
    k = min(k, n)
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)
