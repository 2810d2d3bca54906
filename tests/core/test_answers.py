"""Answer matching: decisive where a rule can tell, None (ask the judge) where it cannot."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cof_plugins.core.answers import (
    MAX_ANSWER_CHARS,
    MAX_MATH_DEPTH,
    extract_choice,
    match_choice,
    match_math,
    match_short,
    normalize_answer,
    rule_match,
)

OPTIONS = ["red car", "blue car", "green bus", "yellow bike"]


@pytest.mark.parametrize(
    "pred",
    [
        "B",
        "b",
        "(B)",
        "B.",
        "B)",
        "B) blue car",
        "(B) blue car",
        "B. blue car",
        "The answer is B",
        "the answer is (B).",
        "Answer: B",
        "Option B",
        "The correct option is (B) because it is blue.",
        "blue car",
        "Blue Car.",
        "the blue car",
        "\\boxed{B}",
        "<answer> B </answer>",
        "The answer is: B.",
        "Answer - B",
        "The answer is **B**.",
        "B. The blue car",
        "Correct answer: B) blue car",
    ],
)
def test_forms_that_pick_b(pred):
    assert extract_choice(pred, OPTIONS) == "B"
    assert match_choice(pred, "B", OPTIONS) is True
    assert match_choice(pred, "A", OPTIONS) is False


@pytest.mark.parametrize(
    "pred",
    [
        "A or B",
        "A, B",
        "B/C",
        "The answer is B or C",
        "B) red car",  # the letter and the text disagree
        "I am not sure",
        "(A) looks right, but (B) could be too",
        "The answer is B.\nThe answer is C.",  # two conclusions, none taken back
        "I think it's B, but the answer might be C.",
    ],
)
def test_ambiguous_choices_are_undecided(pred):
    assert extract_choice(pred, OPTIONS) is None
    assert match_choice(pred, "B", OPTIONS) is None


@pytest.mark.parametrize(
    "pred",
    ["E", "(F)", "", "   ", "...", "None of the options", "N/A", "A or C", "A. green bus"],
    ids=["not-an-option", "not-an-option-bracketed", "empty", "blank", "dots", "none", "na",
         "two-wrong-letters", "letter-and-text-both-wrong"],
)  # fmt: skip
def test_answers_that_cannot_be_b_are_wrong_not_undecided(pred):
    """No option, a letter that is no option, or several options none of which is B."""
    assert extract_choice(pred, OPTIONS) is None
    assert match_choice(pred, "B", OPTIONS) is False


def test_a_refusal_is_undecided_when_an_option_refuses_too():
    options = ["red", "blue", "The image does not feature the car."]
    assert match_choice("None of the above", "C", options) is None
    assert match_choice("The image does not feature the car.", "C", options) is True


@pytest.mark.parametrize(
    ("pred", "expected"),
    [
        ("(B)", "B"), ("B. A", "B"), ("Option B", "B"),  # clearly letter B, whose text is "A"
        ("B", None), ("A", None), ("The letter is A.", None),  # letter or text? undecided
        ("K", "A"),  # only a text: option A
    ],
)  # fmt: skip
def test_options_that_are_letters(pred, expected):
    options = ["K", "A", "R", "B"]
    assert extract_choice(pred, options) == expected


@pytest.mark.parametrize(
    ("pred", "expected"),
    [
        ("The scarf is black, not white.", "B"),
        ("It is not white; it is black.", "B"),
        ("Neither white nor red, it is black.", "B"),
        ("A is wrong, so B.", "B"),
        ("It is not black.", None),
        ("The answer is not B.", None),
        ("B is incorrect.", None),
    ],
)
def test_negated_names_do_not_count(pred, expected):
    assert extract_choice(pred, ["white", "black", "red", "blue"]) == expected


def test_a_longer_option_text_covers_the_shorter_one_inside_it():
    options = ["red", "dark red", "orange"]
    assert extract_choice("It's dark red.", options) == "B"
    assert extract_choice("The awning is red.", options) == "A"


def test_options_in_one_frame_are_named_by_the_part_that_differs():
    options = ["The cup is on the left of the laptop", "The cup is on the right of the laptop"]
    assert extract_choice("The cup is on the left.", options) == "A"
    assert extract_choice("It is on the right, not the left.", options) == "B"


def test_a_firm_conclusion_overrides_reasoning_but_not_an_opening_choice():
    reasoning = "At first I thought the answer was D, but after zooming in it is black. "
    assert extract_choice(reasoning + "The answer is B.", ["white", "black", "red", "blue"]) == "B"
    assert extract_choice("D. The answer is B.", ["white", "black", "red", "blue"]) is None


@pytest.mark.parametrize(
    "pred",
    ["答案是B", "答案：（B）", "选B", "Ｂ", "【B】", "B．", "\\boxed{\\text{B}}", "**Answer:** B"],
)
def test_chinese_full_width_and_markup_forms(pred):
    assert extract_choice(pred, ["white", "black", "red", "blue"]) == "B"


def test_answers_over_the_bound_are_left_to_the_judge():
    long = "B" + " " * MAX_ANSWER_CHARS
    assert match_choice(long, "B", OPTIONS) is None
    assert match_short("red" + " " * MAX_ANSWER_CHARS, "red") is None
    assert match_choice("B" + " " * (MAX_ANSWER_CHARS - 10), "B", OPTIONS) is True


def test_text_matching_several_options_is_undecided():
    options = {"A": "The cat", "B": "cat", "C": "dog"}
    assert extract_choice("cat", options) is None
    assert extract_choice("dog", options) == "C"


def test_lowercase_letter_in_a_sentence_is_not_a_choice():
    # "a" is an article here, not option A.
    assert extract_choice("the answer is a dog", OPTIONS) is None
    assert extract_choice("the answer is a red car", OPTIONS) == "A"


def test_gt_given_as_option_text_or_with_labelled_options():
    assert match_choice("(C)", "green bus", OPTIONS) is True
    assert match_choice("(D)", "green bus", OPTIONS) is False
    labelled = ["(A) left", "(B) right"]
    assert extract_choice("right", labelled) == "B"
    assert match_choice("A", "left", labelled) is True


def test_dict_options_restrict_letters():
    options = {"A": "yes", "B": "no"}
    assert extract_choice("C", options) is None
    assert extract_choice("no", options) == "B"


def test_no_options_accepts_any_letter_and_compares_text():
    assert extract_choice("(F)", None) == "F"
    assert match_choice("F", "F", None) is True
    assert match_choice("the red car", "Red car", None) is True
    assert match_choice("the red car", "blue", None) is None


def test_rejects_string_options():
    with pytest.raises(ValueError, match="options"):
        extract_choice("A", "ABCD")


@given(st.integers(0, 3), st.sampled_from(["{}", "({})", "{}.", "Option {}", "The answer is {}"]))
@settings(max_examples=60, deadline=None)
def test_letter_forms_property(index, form):
    letter = "ABCD"[index]
    assert extract_choice(form.format(letter), OPTIONS) == letter
    assert match_choice(form.format(letter), OPTIONS[index], OPTIONS) is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Cat!", "cat"),
        ("  a   big   dog ", "big dog"),
        ("Three apples", "3 apples"),
        ("twenty", "20"),
        ("It's 3.5 m.", "its 3.5 m"),
        ("1,000 people", "1000 people"),
        ("New-York", "new york"),
        ("It is -2 degrees.", "it is -2 degrees"),  # a sign stays; a hyphen goes
        ("3-4 cups", "3 4 cups"),
    ],
)
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ("Red.", "red", True),
        ("The answer is red", "red", True),
        ("three", "3", True),
        ("3.50", "3.5", True),
        ("4", "3", False),
        ("-1", "1", False),
        ("1" * 400, "1" * 399 + "2", False),  # as floats both are inf
        ("yes, it is", "yes", True),
        ("No.", "yes", False),
        ("yes and no", "yes", None),
        ("there is a red car on the left side of the bench", "red", None),
        ("crimson", "red", None),
        ("", "red", None),
    ],
)
def test_match_short(pred, gt, expected):
    assert match_short(pred, gt) is expected


def test_match_math():
    assert match_math("\\boxed{\\frac{1}{2}}", "0.5") is True
    assert match_math("The result is $\\boxed{3}$", "4") is False
    assert match_math("no maths here", "4") is None


def test_match_math_off_the_main_thread():
    results = []
    thread = threading.Thread(target=lambda: results.append(match_math("\\boxed{2}", "2")))
    thread.start()
    thread.join()
    assert results == [True]


def test_match_math_reads_a_bounded_text():
    reasoning = "We add the numbers one by one. " * 40  # past MAX_MATH_CHARS
    assert match_math(reasoning + "So the result is \\boxed{7}.", "7") is True
    assert match_math(reasoning + "So the result is 7.", "7") is None  # no box: judge
    assert match_math("\\boxed{3}" + " \n" * 900, "3") is True  # whitespace runs collapsed


def test_match_math_leaves_deep_nesting_to_the_judge(monkeypatch):
    """Each level roughly doubles math_verify's time, so deep text never reaches it."""
    calls = []
    fake = type("MathVerify", (), {"parse": staticmethod(lambda text, **_: calls.append(text))})
    monkeypatch.setitem(__import__("sys").modules, "math_verify", fake)
    deep = "\\boxed{" + "{" * MAX_MATH_DEPTH + "7" + "}" * (MAX_MATH_DEPTH + 1)
    assert match_math(deep, "7") is None and calls == []
    assert match_math("\\boxed{\\left(\\frac{1}{\\sqrt{2}}, 0\\right)}", "7") is None
    assert calls == ["7", "\\boxed{\\left(\\frac{1}{\\sqrt{2}}, 0\\right)}"]


def test_match_math_without_math_verify(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "math_verify", None)
    assert match_math("2", "2") is None


def test_rule_match_dispatch():
    assert rule_match("B", "B", kind="multiple_choice", options=OPTIONS) is True
    assert rule_match("Red", "red", kind="open") is True
    assert rule_match("\\boxed{4}", "4", kind="math") is True
    assert rule_match(None, "red", kind="open") is False
    with pytest.raises(ValueError, match="multiple_choice, open, math"):
        rule_match("a", "a", kind="mcq")
