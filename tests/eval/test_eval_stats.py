"""Intervals, pass@k, option-order statistics and paired comparisons on hand-built records."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cof_plugins.eval.compare import compare
from cof_plugins.eval.stats import accuracy_ci, bootstrap_ci, pass_at_k, units
from cof_plugins.eval.summary import summarize


def rec(qid, correct, *, draw=0, order=0, resolution=None, group=None, category="c", **kw):
    key = (
        f"{qid}@{resolution or 'native'}"
        + (f"~o{order}" if order else "")
        + (f"#{draw}" if draw else "")
    )
    return {"key": key, "id": qid, "correct": correct, "draw": draw, "order": order,
            "resolution": resolution, "group": group, "category": category, **kw}  # fmt: skip


def test_cycled_rows_are_resampled_as_one_question():
    """Four identical cycled rows per question must give the interval of one row per
    question; resampling rows would give a narrower, wrong one."""
    verdicts = [i % 3 != 0 for i in range(40)]
    one = [rec(str(i), v) for i, v in enumerate(verdicts)]
    cycled = [rec(f"{i}-{c}", v, group=f"g{i}") for i, v in enumerate(verdicts) for c in range(4)]
    assert accuracy_ci(cycled, 0, "x") == accuracy_ci(one, 0, "x")
    rows = [rec(f"{i}-{c}", v) for i, v in enumerate(verdicts) for c in range(4)]
    low, high = accuracy_ci(rows, 0, "x")
    low1, high1 = accuracy_ci(one, 0, "x")
    assert high - low < 0.7 * (high1 - low1)  # the row bootstrap is too confident


def test_interval_is_seeded_and_brackets_the_estimate():
    records = [rec(str(i), i % 4 != 0) for i in range(60)]
    ci = accuracy_ci(records, 7, "overall")
    assert ci == accuracy_ci(records, 7, "overall")
    assert 60 < ci[0] < 75.0 < ci[1] < 90
    assert accuracy_ci([rec(str(i), True) for i in range(9)], 0, "x") == [100.0, 100.0]
    assert bootstrap_ci(np.array([]), np.array([]), seed=0) is None


def test_units_sum_per_unit_in_first_seen_order():
    sums, counts = units([("a", 1), ("b", 0), ("a", 0), ("a", 1)])
    assert sums.tolist() == [2.0, 0.0] and counts.tolist() == [3.0, 1.0]


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [(4, 0, 4, 0.0), (4, 1, 4, 1.0), (5, 2, 1, 0.4), (5, 2, 2, 0.7), (3, 3, 3, 1.0),
     (2, 1, 4, 1.0), (2, 0, 4, 0.0)],
)  # fmt: skip
def test_pass_at_k_unbiased_estimator(n, c, k, expected):
    assert math.isclose(pass_at_k(n, c, k), expected)


def test_summary_reports_avg_and_pass_at_k_with_intervals():
    draws = {"q1": [True, True, True], "q2": [True, False, False], "q3": [False] * 3,
             "q4": [False, False, True]}  # fmt: skip
    records = [rec(q, v, draw=d) for q, vs in draws.items() for d, v in enumerate(vs)]
    overall = summarize(records, seed=3)["overall"]
    assert overall["k"] == 3 and overall["avg_at_k"] == overall["accuracy"] == 41.67  # 5 of 12
    assert overall["pass_at_k"] == 75.0
    low, high = overall["pass_at_k_ci"]
    assert low <= 75.0 <= high and overall["accuracy_ci"][0] <= 41.67 <= overall["accuracy_ci"][1]
    greedy = summarize([rec("q", True)])["overall"]
    assert "pass_at_k" not in greedy and greedy["accuracy_ci"] == [100.0, 100.0]


def test_intervals_everywhere_and_the_efficiency_rows():
    records = []
    for res, zooms, tokens in ((224, 2, 300), (1024, 1, 900)):
        for i in range(6):
            records.append(rec(str(i), i % 2 == 0, resolution=res, zoom_calls=zooms,
                               gen_tokens=50, image_tokens=tokens, prompt_tokens=tokens + 100,
                               tokens=tokens + 150, category="ab"[i % 2]))  # fmt: skip
    summary = summarize(records)
    assert summary["overall"]["accuracy_ci"] and summary["by_category"]["a"]["accuracy_ci"]
    part = summary["by_resolution"]["224"]
    assert part["overall"]["accuracy_ci"] and part["by_category"]["b"]["accuracy_ci"]
    rows = {row["resolution"]: row for row in summary["efficiency"]}
    assert list(rows) == ["224", "1024"]
    assert rows["224"]["zoom_calls"] == 2 and rows["1024"]["image_tokens"] == 900
    assert rows["1024"]["tokens"] == 1050 and rows["224"]["accuracy"] == 50.0


def test_option_order_section():
    records = []
    for q in range(10):
        records.append(rec(str(q), True, order=0))
        # questions 0-3 lose their answer when the options move
        records += [rec(str(q), q >= 4, order=o, permutation=[1, 0]) for o in (1, 2)]
    summary = summarize(records)
    orders = summary["option_orders"]
    assert summary["overall"]["accuracy"] == 100.0  # the main numbers are the original order
    assert orders["orders"] == 3 and orders["original"]["accuracy"] == 100.0
    assert orders["shuffled"]["accuracy"] == 60.0 and orders["all_orders"]["n"] == 30
    assert orders["changed"] == 4 and orders["questions"] == 10
    assert orders["changed_share"] == 40.0 and orders["consistent"] == 60.0


def test_paired_comparison_counts_flips_on_shared_questions():
    a = [rec(str(i), i < 10) for i in range(20)] + [rec("only-a", True)]
    b = [rec(str(i), i < 10 or i >= 16) for i in range(20)] + [rec(str(3), True, draw=1)]
    b = [r for r in b if r["id"] != "0"]  # question 0 is not shared
    result = compare(a, b, seed=1)
    assert result["shared"] == 19 and result["only_a"] == 2 and result["only_b"] == 0
    assert result["b_better"] == 4 and result["a_better"] == 0
    assert result["difference"] == pytest.approx(result["b"] - result["a"], abs=0.01)
    low, high = result["difference_ci"]
    assert 0 <= low <= result["difference"] <= high
    same = compare(a, a)
    assert same["difference"] == 0 and same["difference_ci"] == [0.0, 0.0]


def test_paired_interval_is_narrower_than_unpaired():
    """Pairing removes the shared between-question variance: B = A plus two fixes."""
    a = [rec(str(i), i % 2 == 0) for i in range(80)]
    b = [rec(str(i), i % 2 == 0 or i in (1, 3)) for i in range(80)]
    low, high = compare(a, b)["difference_ci"]
    a_low, a_high = accuracy_ci(a, 0, "a")
    assert high - low < (a_high - a_low) / 2
