"""The re-stated lmms-eval V* and VLMEvalKit HR-Bench rules on a set with known outcomes.

Each expected letter was worked out by hand from the harnesses' source as read (the module
docstring of cof_plugins/eval/crosscheck.py cites the files), including their quirks: a
reply starting with a letter A-D, "the answer is blue" read as B, an option letter too far
from the end of the reply ignored, refusal phrases.
"""

from __future__ import annotations

import pytest

from cof_plugins.eval.crosscheck import crosscheck, lmms_eval_vstar_letter, vlmevalkit_letter
from cof_plugins.eval.summary import summarize

CHOICES = {"A": "red", "B": "blue", "C": "green", "D": "white"}
TAGGED = "<think>hmm</think><answer>C</answer>"
LONG_C = "C is correct because the sign is far away and small and hard to see"
# text, lmms-eval's letter, VLMEvalKit's letter
CASES = [
    ("B", "B", "B"),
    ("(C) blue", "C", "C"),
    ("Based on the image, C", "B", "C"),
    ("The answer is blue", "B", "B"),
    ("Answer: D", "A", "D"),
    ("I think it is D.", "D", "D"),
    ("the red one", "D", "A"),
    ("none", None, None),
    (TAGGED, None, None),
    ("A is wrong because it is red, so the answer is B", "A", "B"),
    ("The answer is C, not A or B.", "C", "C"),
    (LONG_C, "C", None),
    ("Cannot determine the answer", "C", "Z"),
    ("Z", None, "Z"),
    ("  b) blue  ", "B", "B"),  # VLMEvalKit: lower-case b is no token; the text matches
]


@pytest.mark.parametrize(("text", "lmms", "vlmevalkit"), CASES)
def test_restated_rules(text, lmms, vlmevalkit):
    assert lmms_eval_vstar_letter(text) == lmms
    assert vlmevalkit_letter(text, dict(CHOICES)) == vlmevalkit


def test_linear_on_long_text():
    """Model text is untrusted: both rule sets stay cheap on a megabyte of it."""
    import time

    text = ("answer is " * 50_000) + "(" * 200_000 + " x" * 100_000
    began = time.process_time()
    lmms_eval_vstar_letter(text)
    vlmevalkit_letter(text, dict(CHOICES))
    assert time.process_time() - began < 5.0


def _record(key, pred, response, answer, ours):
    return {"key": key, "id": key, "options": list(CHOICES.values()), "answer": answer,
            "pred": pred, "correct": ours, "trajectory": [{"text": response, "calls": []}],
            "draw": 0, "order": 0, "resolution": None, "category": "c"}  # fmt: skip


def test_disagreements_are_listed_per_convention_and_input():
    records = [
        _record("agree", "B", "<answer>B</answer>", "B", True),
        _record("based", "Based on the image, C", TAGGED, "C", True),
        _record("blue", "The answer is blue", "x", "B", False),
        _record("long", LONG_C, LONG_C, "C", True),
    ]
    result = crosscheck(records)
    assert result["n"] == 4 and result["ours"] == 75.0
    lmms = result["lmms_eval_vstar"]["answer"]
    assert lmms["accuracy"] == 75.0  # agree, blue (as B) and long right; based read as B
    assert {d["key"] for d in lmms["disagreements"]} == {"based", "blue"}
    assert lmms["ours_only"] == 1 and lmms["theirs_only"] == 1
    vlm = result["vlmevalkit_hrbench"]["answer"]
    assert {d["key"] for d in vlm["disagreements"]} == {"blue", "long"}
    assert vlm["no_letter"] == 1 and vlm["accuracy"] == 75.0
    # The raw final turn: tags and all, as a harness that passes the output through sees it.
    raw = result["lmms_eval_vstar"]["response"]
    assert {d["key"] for d in raw["disagreements"]} == {"based", "agree"}


def test_summary_holds_the_crosscheck():
    records = [_record("q", "B", "<answer>B</answer>", "B", True)]
    summary = summarize(records)
    assert summary["crosscheck"]["vlmevalkit_hrbench"]["answer"]["accuracy"] == 100.0
    assert summarize([{**records[0], "options": None}])["crosscheck"] is None
