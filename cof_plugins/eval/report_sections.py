"""Report sections beyond the basic tables: efficiency, draws, option orders, scoring
conventions and paired comparisons. Each returns blocks for ``report.to_markdown``/``to_html``
(("h", level, text), ("p", text), ("table", header, rows)).
"""

from __future__ import annotations

from typing import Any

from cof_plugins.eval.compare import compare


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def with_ci(value: Any, ci: list[float] | None) -> str:
    """ "71.20 [64.9, 77.5]": a number with its 95% interval."""
    if value is None:
        return "-"
    return f"{fmt(value)} [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else fmt(value)


def tokens_of(stats: dict[str, Any]) -> tuple[float | None, str]:
    """The tokens per sample to plot and tabulate, and what they count.

    The whole conversation when the engine reported prompt lengths; otherwise image plus
    generated tokens (the text of the prompt left out), labelled as such.
    """
    if stats.get("tokens") is not None:
        return stats["tokens"], "conversation"
    if stats.get("image_tokens") is not None and stats.get("gen_tokens") is not None:
        return stats["image_tokens"] + stats["gen_tokens"], "image + generated"
    return None, "-"


def efficiency(runs: list) -> list[tuple]:
    """The paper's view per resolution: accuracy, zoom calls and tokens; then per run."""
    blocks: list[tuple] = [
        ("h", 2, "Efficiency per resolution"),
        ("p", "Per sample, at each input resolution of the sweep: zoom calls, tokens and "
              "accuracy (95% interval). Tokens: the whole final conversation (prompt text, "
              "every image by the family's processor arithmetic, and everything generated) "
              "when the engine reports prompt lengths, else image + generated tokens."),
    ]  # fmt: skip
    labels = sorted(
        {row["resolution"] for r in runs for row in r.summary["efficiency"]},
        key=lambda k: (k != "native", int(k) if k.isdigit() else 0),
    )
    header = ["long side"]
    for r in runs:
        header += [f"{r.label}: acc", f"{r.label}: zoom calls", f"{r.label}: tokens"]
    rows = []
    for label in labels:
        cells = [label]
        for r in runs:
            stats = r.summary["by_resolution"].get(label, {}).get("overall") or {}
            tokens, _ = tokens_of(stats)
            cells += [fmt(stats.get("accuracy")), fmt(stats.get("zoom_calls")), fmt(tokens)]
        rows.append(cells)
    blocks.append(("table", header, rows))
    for r in runs:
        blocks += [("h", 3, r.label), ("table", [
            "long side", "n", "accuracy [95% CI]", "zoom calls", "image tokens",
            "prompt tokens", "generated tokens", "conversation tokens",
        ], [[row["resolution"], fmt(row["n"]), with_ci(row["accuracy"], row["accuracy_ci"]),
             fmt(row["zoom_calls"]), fmt(row["image_tokens"]), fmt(row["prompt_tokens"]),
             fmt(row["gen_tokens"]), fmt(row["tokens"])]
            for row in r.summary["efficiency"]])]  # fmt: skip
    return blocks


def sampling(runs: list) -> list[tuple]:
    sampled = [r for r in runs if r.summary.get("samples", 1) > 1]
    if not sampled:
        return []
    rows = []
    for r in sampled:
        o = r.summary["overall"]
        rows.append([r.label, str(o.get("k")), with_ci(o.get("avg_at_k"), o.get("accuracy_ci")),
                     with_ci(o.get("pass_at_k"), o.get("pass_at_k_ci"))])  # fmt: skip
    note = (
        "Avg@k: accuracy over all k draws of every question; pass@k: share of questions with "
        "at least one right draw (with exactly k draws the unbiased estimator is exactly that)."
    )
    return [("h", 2, "Draws"), ("p", note),
            ("table", ["run", "k", "Avg@k [95% CI]", "pass@k [95% CI]"], rows)]  # fmt: skip


def option_orders(runs: list) -> list[tuple]:
    shuffled = [r for r in runs if r.summary.get("option_orders")]
    if not shuffled:
        return []
    rows = []
    for r in shuffled:
        o = r.summary["option_orders"]
        rows.append([
            r.label, str(o["orders"]),
            with_ci(o["original"]["accuracy"], o["original"]["accuracy_ci"]),
            with_ci(o["shuffled"]["accuracy"], o["shuffled"]["accuracy_ci"]),
            with_ci(o["all_orders"]["accuracy"], o["all_orders"]["accuracy_ci"]),
            with_ci(o["consistent"], o["consistent_ci"]),
            f"{o['changed']}/{o['questions']} ({fmt(o['changed_share'])}%)",
        ])  # fmt: skip
    header = ["run", "orders", "original order", "shuffled orders", "all orders",
              "right in every order", "verdict changes with the order"]  # fmt: skip
    return [("h", 2, "Option order"), ("table", header, rows)]


def scoring_conventions(runs: list, shown: int = 10) -> list[tuple]:
    """This package's accuracy next to lmms-eval's V* and VLMEvalKit's HR-Bench rules."""
    checked = [r for r in runs if r.summary.get("crosscheck")]
    if not checked:
        return []
    blocks: list[tuple] = [
        ("h", 2, "Scoring conventions"),
        ("p", "The same predictions scored by this package's rules, lmms-eval's V* rules and "
              "VLMEvalKit's HR-Bench rules (exact matching, no judge), re-stated in "
              "cof_plugins/eval/crosscheck.py. 'answer': the text inside <answer>; "
              "'response': the whole final turn."),
    ]  # fmt: skip
    rows, listed = [], []
    for r in checked:
        c = r.summary["crosscheck"]
        for name in ("lmms_eval_vstar", "vlmevalkit_hrbench"):
            for source in ("answer", "response"):
                d = c[name][source]
                rows.append([r.label, name, source, fmt(c["ours"]), fmt(d["accuracy"]),
                             str(d["disagree"]), str(d["ours_only"]), str(d["theirs_only"]),
                             str(d["no_letter"])])  # fmt: skip
                listed += [[r.label, name, source, x["key"], x["answer"], str(x["theirs"]),
                            "right" if x["ours"] else "wrong", x["text"][-80:]]
                           for x in d["disagreements"][:shown]]  # fmt: skip
    header = ["run", "convention", "input", "ours (%)", "theirs (%)", "disagree",
              "only ours right", "only theirs right", "no letter"]  # fmt: skip
    blocks.append(("table", header, rows))
    if listed:
        blocks += [("h", 3, f"Disagreements (first {shown} per row above)"),
                   ("table", ["run", "convention", "input", "key", "answer", "their letter",
                              "ours", "text (end)"], listed)]  # fmt: skip
    return blocks


def comparisons(runs: list) -> tuple[list[tuple], list[dict[str, Any]]]:
    """Each run against the first, paired on shared questions; blocks and the JSON."""
    if len(runs) < 2:
        return [], []
    base, found, rows = runs[0], [], []
    seed = int(base.info.get("settings", {}).get("seed") or 0)
    for other in runs[1:]:
        result = compare(base.records, other.records, seed=seed)
        found.append({"run_a": base.label, "run_b": other.label, **result})
        rows.append([f"{other.label} - {base.label}", str(result["shared"]),
                     fmt(result["a"]), fmt(result["b"]),
                     with_ci(result["difference"], result["difference_ci"]),
                     str(result["b_better"]), str(result["a_better"])])  # fmt: skip
    header = ["comparison", "shared items", "A (%)", "B (%)", "B - A [95% CI]",
              "B right, A wrong", "A right, B wrong"]  # fmt: skip
    note = (
        "Paired on the items (question, resolution, option order) both runs scored; the "
        "interval comes from one bootstrap over questions applied to both runs. With draws, "
        "an item counts as a flip when its share of right draws differs."
    )
    return [("h", 2, "Paired comparison"), ("p", note), ("table", header, rows)], found
