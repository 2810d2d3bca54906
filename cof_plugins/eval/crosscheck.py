"""The same predictions scored by two other harnesses' documented rules, disagreements listed.

Published V* and HR-Bench numbers come from different harnesses, and their answer matching
differs from this package's (``core.answers.rule_match``) and from each other. Rather than
guess which convention a number follows, ``summary.json`` and ``cof report`` score every
multiple-choice prediction of a run three ways and list where the verdicts differ.

The two rule sets below are re-stated in our own code from the harnesses' source as read
(not copied; behaviour, quirks included, as we understand it):

``lmms_eval_vstar`` -- lmms-eval's V* task: EvolvingLMMs-Lab/lmms-eval,
``lmms_eval/tasks/vstar_bench/utils.py`` (``extract_answer_letter``,
``vstar_process_results``, ``vstar_aggregate_results``) and ``_default_template_yaml``
(greedy, 16 new tokens), as of commit 75571cfe. The response is stripped and upper-cased,
then the first of these gives the letter, else none:

1. the first character is A-D (so "Because ..." reads as B);
2. the first ANSWER, CHOICE or OPTION (inside a word too) followed by an optional " IS", one
   or more spaces or colons, and a letter A-D (so "THE ANSWER IS BLUE" reads as B);
3. the first A-D in parentheses;
4. the first A-D followed, after optional spaces, by ".", ")" or "]";
5. the first A-D with whitespace or the text's edge on both sides;
6. the only A-D character in the whole response, if there is exactly one.

The score is 1 when that letter equals the label; accuracy is the micro average.

``vlmevalkit_hrbench`` -- VLMEvalKit's HR-Bench scoring in its default ``exact_matching``
mode (no judge model): open-compass/VLMEvalKit, ``vlmeval/utils/matching_util.py``
(``can_infer``, ``can_infer_option``, ``can_infer_text``),
``vlmeval/dataset/utils/multiple_choice.py`` (``extract_answer_from_item``,
``eval_vanilla``), ``vlmeval/dataset/image_mcq.py`` (``HRBenchDataset.evaluate``) and
``vlmeval/dataset/utils/hrbench.py`` (``report_acc_hrbench``), as of commit e8e78f05:

1. a prediction containing one of four refusal phrases ("Cannot determine the answer", ...)
   answers "Z" (wrong);
2. the characters ``.()[],:;!*#{}`` become spaces and the text is split on whitespace; if
   exactly one option letter appears as a token and its first occurrence is among the last
   four tokens, that letter;
3. if no option letter is a token but "Z" is, "Z";
4. otherwise "answer is X" / "correct answer is **X**" (any case, X in A-D and an option);
5. otherwise, if the lower-cased prediction is at most twice as long as all option texts
   together, the one option whose text it contains;
6. otherwise "Z" (with a judge model VLMEvalKit would ask it instead; such rows are counted
   as ``needs_judge``).

A row scores 1 when the letter equals the answer. VLMEvalKit averages accuracy per cycle
(``cycle_category``) and then over cycles; HR-Bench's cycles have equal sizes, so that equals
the micro average reported here.

Each rule set reads two inputs: ``answer``, the text inside ``<answer>`` that this package
scores (what a harness sees when the model's tags are stripped), and ``response``, the whole
final turn (what a harness sees when the raw output is passed through).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any

LETTERS = "ABCD"
_REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_API_FAILURE = "Failed to obtain answer via API"
_SEPARATORS = str.maketrans({c: " " for c in ".()[],:;!*#{}"})
_SHOWN = 50  # disagreements kept per convention and input in summary.json


# ---------------------------------------------------------------- lmms-eval V*


def lmms_eval_vstar_letter(response: str) -> str | None:
    """The letter lmms-eval's V* task extracts from ``response`` (rules in the module doc)."""
    text = response.strip().upper()
    if text and text[0] in LETTERS:
        return text[0]
    for rule in (_keyword_letter, _parenthesised, _before_closer, _standalone):
        letter = rule(text)
        if letter is not None:
            return letter
    found = [c for c in text if c in LETTERS]
    return found[0] if len(found) == 1 else None


def _skip(text: str, i: int, chars: Callable[[str], bool]) -> int:
    while i < len(text) and chars(text[i]):
        i += 1
    return i


def _keyword_letter(text: str) -> str | None:
    """Rule 2: the earliest keyword followed by [ IS] spaces/colons and a letter."""
    hits = sorted(
        (i, word)
        for word in ("ANSWER", "CHOICE", "OPTION")
        for i in _occurrences(text, word)
    )  # fmt: skip
    for i, word in hits:
        after = i + len(word)
        letter = _after_is(text, after) or _letter_after_run(text, after)
        if letter is not None:
            return letter
    return None


def _occurrences(text: str, word: str) -> list[int]:
    out, i = [], text.find(word)
    while i != -1:
        out.append(i)
        i = text.find(word, i + 1)
    return out


def _after_is(text: str, i: int) -> str | None:
    j = _skip(text, i, str.isspace)
    if j == i or not text.startswith("IS", j):
        return None
    return _letter_after_run(text, j + 2)


def _letter_after_run(text: str, i: int) -> str | None:
    j = _skip(text, i, lambda c: c.isspace() or c == ":")
    if j > i and j < len(text) and text[j] in LETTERS:
        return text[j]
    return None


def _parenthesised(text: str) -> str | None:
    for i in range(len(text) - 2):
        if text[i] == "(" and text[i + 1] in LETTERS and text[i + 2] == ")":
            return text[i + 1]
    return None


def _before_closer(text: str) -> str | None:
    for i, c in enumerate(text):
        if c in LETTERS:
            j = _skip(text, i + 1, str.isspace)
            if j < len(text) and text[j] in ".)]":
                return c
    return None


def _standalone(text: str) -> str | None:
    for i, c in enumerate(text):
        if c in LETTERS:
            left = i == 0 or text[i - 1].isspace()
            right = i + 1 == len(text) or text[i + 1].isspace()
            if left and right:
                return c
    return None


# ---------------------------------------------------------------- VLMEvalKit HR-Bench


def vlmevalkit_letter(prediction: str, choices: Mapping[str, str]) -> str | None:
    """VLMEvalKit's ``can_infer`` on ``prediction``; None where it would ask its judge."""
    letter = _infer_option(prediction, list(choices))
    return letter if letter else _infer_text(prediction, choices)


def _infer_option(prediction: str, letters: Sequence[str]) -> str | None:
    if _API_FAILURE in prediction:
        return None
    if any(phrase in prediction for phrase in _REFUSALS):
        return "Z"
    tokens = prediction.translate(_SEPARATORS).split()
    present = [c for c in letters if c in tokens]
    if len(present) == 1 and tokens.index(present[0]) > len(tokens) - 5:
        return present[0]
    if not present and "Z" in tokens:
        return "Z"
    return _answer_is(prediction, letters)


def _answer_is(prediction: str, letters: Sequence[str]) -> str | None:
    """ "(correct) answer is **X**" in any case, X one of A-D and an option letter."""
    low = prediction.lower()
    start = low.find("answer")
    while start != -1:
        i = _skip(low, start + len("answer"), str.isspace)
        if i > start + len("answer") and low.startswith("is", i):
            j = _skip(low, i + 2, str.isspace)
            if j > i + 2:
                j = _skip(low, j, lambda c: c == "*")
                if j < len(low) and low[j].upper() in LETTERS:
                    letter = low[j].upper()
                    return letter if letter in letters else None
        start = low.find("answer", start + 1)
    return None


def _infer_text(prediction: str, choices: Mapping[str, str]) -> str | None:
    low = prediction.lower()
    if len(low) > 2 * sum(len(str(v)) for v in choices.values()):
        return None
    found = [k for k, v in choices.items() if str(v).lower() in low]
    return found[0] if len(found) == 1 else None


# ---------------------------------------------------------------- comparing


def _inputs(record: dict[str, Any]) -> dict[str, str]:
    turns = record.get("trajectory") or []
    return {"answer": record.get("pred") or "", "response": turns[-1]["text"] if turns else ""}


def _choices(record: dict[str, Any]) -> dict[str, str]:
    return {string.ascii_uppercase[i]: o for i, o in enumerate(record.get("options") or [])}


CONVENTIONS: dict[str, Callable[[str, dict[str, str]], str | None]] = {
    "lmms_eval_vstar": lambda text, choices: lmms_eval_vstar_letter(text),
    "vlmevalkit_hrbench": vlmevalkit_letter,
}


def crosscheck(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Each convention's accuracy on the run's multiple-choice records, and where it differs.

    Only records scored by this package (``correct`` not None) take part, so the three
    accuracies share one denominator.
    """
    rows = [r for r in records if r.get("options") and r.get("correct") is not None]
    if not rows:
        return None
    ours = sum(bool(r["correct"]) for r in rows)
    out: dict[str, Any] = {"n": len(rows), "ours": round(100.0 * ours / len(rows), 2)}
    for name, rule in CONVENTIONS.items():
        out[name] = {
            source: _compare(rows, rule, source) for source in ("answer", "response")
        }  # fmt: skip
    return out


def _compare(rows, rule, source: str) -> dict[str, Any]:
    right, needs_judge, differ = 0, 0, []
    for r in rows:
        letter = rule(_inputs(r)[source], _choices(r))
        theirs = letter == r["answer"]
        right += theirs
        needs_judge += letter is None
        if theirs != bool(r["correct"]):
            differ.append({
                "key": r["key"], "answer": r["answer"], "theirs": letter,
                "ours": bool(r["correct"]), "text": _inputs(r)[source][-300:],
            })  # fmt: skip
    return {
        "accuracy": round(100.0 * right / len(rows), 2),
        "disagree": len(differ),
        "ours_only": sum(1 for d in differ if d["ours"]),
        "theirs_only": sum(1 for d in differ if not d["ours"]),
        "no_letter": needs_judge,
        "disagreements": differ[:_SHOWN],
    }
