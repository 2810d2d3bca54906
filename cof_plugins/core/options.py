"""Multiple-choice options: split them out of a question text, strip labels, find the answer.

The one options parser of the package: the benchmark loaders (V* writes its options into the
question text), ``cof data prepare`` (CoF-RL questions carry "(A) ..." lines too) and the
annotation reader all use it, so a question reads the same everywhere.

How a text is split (decided once; ``tests/core/test_options.py`` pins each rule):

- Line mode first. A label at the very start of a line is "(A)", "A. ", "A) " or "A: ";
  the first line labelled A fixes the style, and the options are the lines labelled B, C,
  ... in that style, in order. Text between two labels belongs to the earlier option (a
  wrapped option keeps its words); the last option ends with its line. A labelled line right
  after the last option (a repeat, or "(C)" after "(A)") is an error naming both letters.
- Inline mode when fewer than two lines are labelled: from the first "(A)" anywhere, the
  next "(B)", "(C)", ... split the text ("Which cup? (A) red (B) blue"); a "(C)" before any
  "(B)" is option text, not a label.
- Fewer than two options found: the text is a question without options (an open question).
- The question is the text before the first option plus any text after the last option's
  line, each stripped, line breaks kept. Answer instructions ("Answer with the option's
  letter ...", up to four lines) that end the part before or start the part after are
  dropped, because every protocol writes its own; any other text is kept.
- Option texts are stripped and their whitespace runs collapsed to one space; an empty
  option is an error.
- The answer is matched by ``answer_letter`` (see there).

Model and dataset text is untrusted, and a backtracking regex on it is a denial of service
(the old splitter's lazy ``(.+?)`` before trailing spaces was quadratic). Everything here
uses ``str.find`` on literal strings, about 60 searches of one C pass each at most, so a
1 MB text of spaces or of "(A)" repeats splits in milliseconds.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

LETTERS = string.ascii_uppercase
# Answer instructions a released question may carry; the protocol writes its own.
INSTRUCTIONS = (
    "answer with the option's letter",
    "answer with the option letter",
    "answer the question using a single word or phrase",
    "please answer",
)
_SHOWN_LETTERS = 8


class OptionsError(ValueError):
    """Options that cannot be read; the message says what was found and what was expected."""


def split_options(text: str) -> tuple[str, tuple[str, ...]]:
    """(question, option texts) of a question with its options written inline."""
    marks = _line_marks(text)
    if len(marks) >= 2:
        return _split_at(text, [a for a, _ in marks], [b for _, b in marks])
    start = text.find("(A)")
    starts = [] if start < 0 else [start]
    for letter in LETTERS[1:] if starts else ():  # at most 25 searches, each one C pass
        found = text.find(f"({letter})", starts[-1] + 3)
        if found < 0:
            break
        starts.append(found)
    if len(starts) < 2:
        return _question(text, ""), ()
    return _split_at(text, starts, [s + 3 for s in starts])


# Label styles at the start of a line; "{}" is the letter. Bare letters need a space after.
_LINE_STYLES = ("({})", "{}. ", "{}) ", "{}: ")
_MAX_INSTRUCTION_LINES = 4


def _line_marks(text: str) -> list[tuple[int, int]]:
    """(start, end) of each option label at a line start, from the first "A" line on.

    Only ``str.find`` on literal strings ("\n(B)", "\nB. ", ...): four searches for the A
    line, one per further letter, one for the line after the last option.
    """
    work = "\n" + text  # a line start before the first line too; offsets shift by one
    found = [(work.find("\n" + style.format("A")), style) for style in _LINE_STYLES]
    found = [(at, style) for at, style in found if at >= 0]
    if not found:
        return []
    at, style = min(found)
    marks = [(at, at + 1 + len(style.format("A")))]
    for letter in LETTERS[1:]:
        at = work.find("\n" + style.format(letter), marks[-1][1])
        if at < 0:
            break
        marks.append((at, at + 1 + len(style.format(letter))))
    after = marks[-1][1]
    end_of_line = work.find("\n", after)
    next_line = work[end_of_line : end_of_line + 8] if end_of_line >= 0 else ""
    stray = [L for L in LETTERS if next_line.startswith("\n" + style.format(L))]
    if stray:
        raise OptionsError(
            f"option {stray[0]} follows option {LETTERS[len(marks) - 1]}; option lines must "
            "be labelled A, B, C, ... in order, one label each"
        )
    # -1: offsets in ``work`` are one past those in ``text``; the label starts after "\n".
    return [(a, b - 1) for a, b in marks] if len(marks) >= 2 else []


def _split_at(text: str, starts: list[int], ends: list[int]) -> tuple[str, tuple[str, ...]]:
    """Options between consecutive labels; the last one ends with its line."""
    end_of_line = text.find("\n", ends[-1])
    stop = len(text) if end_of_line < 0 else end_of_line
    bodies = [text[a:b] for a, b in zip(ends, [*starts[1:], stop], strict=True)]
    return _question(text[: starts[0]], text[stop:]), _clean_options(bodies)


def _question(before: str, after: str) -> str:
    """The text around the options, without the answer instructions that end it."""
    head = _drop_instructions(before, last=True)
    tail = _drop_instructions(after, last=False)
    return head + "\n" + tail if head and tail else head or tail


def _drop_instructions(text: str, *, last: bool) -> str:
    """``text`` stripped, less up to four instruction lines at its end (or its start)."""
    for _ in range(_MAX_INSTRUCTION_LINES):
        text = text.strip()
        cut = text.rfind("\n") if last else text.find("\n")
        cut = (-1 if last else len(text)) if cut < 0 else cut
        line = text[cut + 1 :] if last else text[:cut]
        if not is_instruction(line):
            break
        text = text[: max(cut, 0)] if last else text[cut:]
    return text.strip()


def is_instruction(line: str) -> bool:
    """True for an answer instruction such as "Answer with the option's letter ..."."""
    return line.lstrip()[:64].lower().startswith(INSTRUCTIONS)


def _clean_options(bodies: list[str]) -> tuple[str, ...]:
    options = tuple(" ".join(body.split()) for body in bodies)
    empty = [LETTERS[k] for k, option in enumerate(options) if not option]
    if empty:
        raise OptionsError(f"option(s) {', '.join(empty[:_SHOWN_LETTERS])} have no text")
    return options


def strip_option_label(option: str, letter: str) -> str:
    """'(B) cat' / 'B. cat' / 'B) cat' / 'B: cat' -> 'cat' when B is the option's own letter.

    A bare letter followed by a space ("A cat") is option text, not a label.
    """
    body = option.lstrip()
    for style in _LINE_STYLES:
        label = style.format(letter)
        if body.startswith(label) or body == label.rstrip():
            return " ".join(body[len(label) :].split())
    return " ".join(option.split())


def strip_labels(options: Sequence[object]) -> tuple[str, ...]:
    """Option texts without their own "(A)" / "A." labels, for A, B, C, ... in order."""
    if len(options) > len(LETTERS):
        raise OptionsError(f"at most {len(LETTERS)} options are supported, got {len(options)}")
    return tuple(strip_option_label(str(o), LETTERS[k]) for k, o in enumerate(options))


def answer_letter(answer: object, options: Sequence[str]) -> str:
    """The option letter a ground truth names.

    In order: an upper-case letter ("B", "(B)", "B.", "B)"); else the one option whose text
    equals the answer ignoring case; else a lower-case letter ("b"). Anything else raises,
    listing the valid letters: a wrong ground truth must not be scored silently.
    """
    valid = LETTERS[: len(options)]
    text = str(answer).strip()
    bare = text.strip("().: ")
    if len(bare) == 1 and bare in valid:
        return bare
    lowered = text.lower()
    matches = [valid[k] for k, option in enumerate(options) if option.strip().lower() == lowered]
    if len(matches) == 1:
        return matches[0]
    if len(bare) == 1 and bare.upper() in valid:
        return bare.upper()
    shown = text if len(text) <= 80 else text[:77] + "..."
    if matches:
        raise OptionsError(
            f"answer {shown!r} matches options {', '.join(matches)}; write the letter instead"
        )
    raise OptionsError(
        f"answer {shown!r} is neither an option letter ({', '.join(valid)}) nor one option's text"
    )
