"""The one options parser: each splitting rule, the answer rules, and linear time at 1 MB."""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cof_plugins.core.options import (
    OptionsError,
    answer_letter,
    split_options,
    strip_labels,
    strip_option_label,
)

VSTAR_TEXT = (
    "What is the color of the woman's shirt?\n(A) black\n(B) white\n(C) red\n(D) blue\n"
    "Answer with the option's letter from the given choices directly."
)


def test_release_layout_lines_and_instruction():
    assert split_options(VSTAR_TEXT) == (
        "What is the color of the woman's shirt?",
        ("black", "white", "red", "blue"),
    )


def test_inline_options_on_one_line():
    q, opts = split_options("Which colour is the cup? (A) red (B) dark blue (C) green")
    assert q == "Which colour is the cup?" and opts == ("red", "dark blue", "green")


def test_line_labels_win_over_labels_inside_the_question():
    text = "Is region (A) larger than region (B)?\n(A) yes\n(B) no"
    assert split_options(text) == ("Is region (A) larger than region (B)?", ("yes", "no"))


def test_bare_letter_styles_and_the_a_line_fixes_the_style():
    assert split_options("Q\nA. one\nB. two\nC) three") == ("Q\nC) three", ("one", "two"))
    assert split_options("Q\nA: x\nB: y") == ("Q", ("x", "y"))
    assert split_options("Q\nA) x\nB) y")[1] == ("x", "y")
    # "A." needs a space after it: "A.5 m" is not a label.
    assert split_options("A.5 m or B.2 m?") == ("A.5 m or B.2 m?", ())


def test_out_of_order_or_repeated_option_lines_are_errors():
    with pytest.raises(OptionsError, match="option C follows option A"):
        split_options("Q?\n(A) x\n(C) y")
    with pytest.raises(OptionsError, match="option B follows option B"):
        split_options("Q?\n(A) x\n(B) y\n(B) z")


def test_a_wrapped_option_keeps_its_words_and_whitespace_collapses():
    text = "Q?\n(A) a long\n   option text\n(B)   two\tspaced   words  \nthen more"
    assert split_options(text) == ("Q?\nthen more", ("a long option text", "two spaced words"))


def test_text_after_the_options_is_kept_and_instructions_are_dropped():
    text = "Count them.\n(A) 1\n(B) 2\nPlease answer directly.\nNote: small ones count."
    assert split_options(text) == ("Count them.\nNote: small ones count.", ("1", "2"))
    q, opts = split_options("How many?\nAnswer the question using a single word or phrase.")
    assert (q, opts) == ("How many?", ())


def test_fewer_than_two_options_is_an_open_question():
    assert split_options("What does (A) mean?") == ("What does (A) mean?", ())
    assert split_options("Q\n(A) only one") == ("Q\n(A) only one", ())
    assert split_options("") == ("", ())


def test_an_empty_option_is_an_error():
    with pytest.raises(OptionsError, match=r"option\(s\) B have no text"):
        split_options("Q?\n(A) x\n(B)   \n(C) z")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.text(alphabet="abcdefgh xyz-0123\t", min_size=1, max_size=12).filter(str.strip),
        min_size=2,
        max_size=6,
    ),
    st.booleans(),
)
def test_round_trip_in_either_mode(options, inline):
    sep = " " if inline else "\n"
    text = "What is it?" + "".join(f"{sep}({'ABCDEF'[i]}) {o}" for i, o in enumerate(options))
    text += "\nAnswer with the option's letter from the given choices directly."
    assert split_options(text) == ("What is it?", tuple(" ".join(o.split()) for o in options))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("(AB)C.: \n\tx")) | st.characters(), max_size=80))
def test_any_text_splits_or_raises_options_error(text):
    try:
        question, options = split_options(text)
    except OptionsError:
        return
    assert isinstance(question, str) and all(o and o == " ".join(o.split()) for o in options)


ADVERSARIAL = {
    "spaces": " " * 1_000_000,
    "newlines": "\n" * 1_000_000,
    "(A) repeats": "(A)" * 333_334,
    "(A) lines": "(A) x\n" * 166_667,
    "openers": "(" * 1_000_000,
    "bare labels": "A. " * 333_334,
    "spaces inside an option": "Q\n(A) " + " " * 1_000_000 + "\n(B) y",
    "spaces between words": "Q " + " " * 500_000 + "?\n(A) x" + " " * 500_000 + "y\n(B) z",
    "blank lines after the options": "Q\n(A) x\n(B) y" + " \n" * 500_000,
    "instructions": "please answer\n" * 70_000,
    "(B) repeats": "(A)" + "(B)" * 333_333,
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_linear_time_on_one_megabyte(name):
    """The old splitter was a regex blow-up. Best of three runs, well under 100 ms."""
    text = ADVERSARIAL[name]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        with contextlib.suppress(OptionsError):
            split_options(text)
        best = min(best, time.perf_counter() - start)
    assert best < 0.1, f"{name}: {best * 1000:.0f} ms for {len(text)} characters"


def test_strip_option_label_needs_the_options_own_letter_and_punctuation():
    assert strip_option_label("(B) cat", "B") == "cat"
    assert strip_option_label("B. cat", "B") == strip_option_label("B: cat", "B") == "cat"
    assert strip_option_label("(B) cat", "A") == "(B) cat"
    assert strip_option_label("A cat", "A") == "A cat"  # a word, not a label
    assert strip_labels(["(A) x", "B) y", "C. z"]) == ("x", "y", "z")
    with pytest.raises(OptionsError, match="at most 26"):
        strip_labels(["x"] * 27)


def test_answer_letter_rules():
    assert answer_letter("B", ["x", "y"]) == answer_letter("(B)", ["x", "y"]) == "B"
    assert answer_letter(" B. ", ["x", "y"]) == "B"
    assert answer_letter("Y", ["x", "y"]) == "B"  # the option's text, any case
    assert answer_letter("b", ["x", "y"]) == "B"  # a lower-case letter, last
    assert answer_letter("a", ["b", "a"]) == "B"  # the text "a" wins over the letter a
    with pytest.raises(OptionsError, match=r"neither an option letter \(A, B\)"):
        answer_letter("E", ["x", "y"])
    with pytest.raises(OptionsError, match="matches options A, B"):
        answer_letter("same", ["same", "Same"])
