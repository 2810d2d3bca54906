"""Rule-based answer matching, tried before any LLM judge.

Every matcher returns True, False, or None = undecided. None is the honest answer when a
rule cannot tell (two letters, text matching several options, long free text that merely
contains the ground truth): the caller then asks the judge instead of guessing, so a rule
never marks a right answer wrong through a formatting quirk.

Multiple-choice answers are read by ``core.choices`` (see there for the rules). Every
matcher reads at most ``MAX_ANSWER_CHARS`` of model text, and only with linear-time code:
a longer answer is undecided and goes to the judge.
"""

from __future__ import annotations

import re
import string
import threading
from decimal import Decimal, InvalidOperation

from cof_plugins.core.choice_text import Options, option_map, option_texts
from cof_plugins.core.choices import MAX_ANSWER_CHARS, read_choice
from cof_plugins.core.parser import last_boxed

KINDS = ("multiple_choice", "open", "math")
MAX_MATH_CHARS = 512
MAX_MATH_DEPTH = 5  # "\\boxed{\\left(\\frac{1}{\\sqrt{2}}, 0\\right)}" is 4 deep

# fmt: off
_WORDS_0_20 = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)
# fmt: on
_NUMBER_WORDS = {word: str(i) for i, word in enumerate(_WORDS_0_20)}
_ARTICLES = {"a", "an", "the"}
_PUNCT = re.compile(f"[{re.escape(string.punctuation.replace('.', ''))}]")
_NON_DECIMAL_DOT = re.compile(r"(?<!\d)\.|\.(?!\d)")
_BOXED = re.compile(r"^\\boxed\{(.*)\}$", re.S)
_TAGS = re.compile(r"</?answer>")
_BARE = re.compile(r"^\(?([A-Za-z])\)?[.:)]?$")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_MINUS = re.compile(r"(?<![\w.])-(?=\d)")  # a sign, not a hyphen: "-1", not "3-4" or "New-York"
_SIGN = "\u2212"  # stands for the sign while ASCII punctuation is dropped
_ANSWER_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is\s*:?|:)\s*", re.I)
_YES_NO = {"yes", "no"}


def normalize_answer(s: str) -> str:
    """Lowercase, drop punctuation (keeping decimal points and a number's minus sign),
    articles and extra spaces; number words zero..twenty become digits."""
    text = s.lower().replace("'", "").replace("’", "").replace(_SIGN, "-")
    text = _NON_DECIMAL_DOT.sub(" ", _THOUSANDS.sub("", text))
    words = _PUNCT.sub(" ", _MINUS.sub(_SIGN, text)).split()
    kept = (_NUMBER_WORDS.get(w, w) for w in words if w not in _ARTICLES)
    return " ".join(kept).replace(_SIGN, "-")


def _clean(pred: str) -> str:
    """Strip answer tags, markdown emphasis, one outer ``\\boxed{}`` and outer whitespace."""
    text = _TAGS.sub("", pred).replace("**", "").replace("__", "").strip()
    boxed = _BOXED.match(text)
    return boxed.group(1).strip() if boxed else text


def extract_choice(pred: str, options: Options = None) -> str | None:
    """The option letter ``pred`` picks, or None when there is none or it is ambiguous."""
    reading = read_choice(pred, options)
    if isinstance(reading, str) and reading in option_texts(options).letters:
        return reading
    return None


def match_choice(pred: str, gt: str, options: Options = None) -> bool | None:
    """Does ``pred`` pick the ground-truth option? ``gt`` is a letter or the option text.

    False also when the answer picks no option, a letter that is not an option, or one of
    several options none of which is the ground truth ("A or C" for B).
    """
    gt_letter = _gt_letter(gt, options)
    if gt_letter is None:
        if len(pred) > MAX_ANSWER_CHARS:
            return None
        same_text = normalize_answer(_clean(pred)) == normalize_answer(gt) != ""
        return True if same_text else None
    reading = read_choice(pred, options)
    if reading is None:
        return None
    if isinstance(reading, frozenset):
        return None if gt_letter in reading else False
    return reading == gt_letter


def _gt_letter(gt: str, options: Options) -> str | None:
    valid = option_texts(options).letters
    bare = _BARE.match(gt.strip())
    if bare and bare.group(1).upper() in valid:
        return bare.group(1).upper()
    target = normalize_answer(gt)
    hits = [k for k, v in option_map(options).items() if target and normalize_answer(v) == target]
    return hits[0] if len(hits) == 1 else None


def match_short(pred: str, gt: str) -> bool | None:
    """Short-answer match: decides equal texts, numbers and yes/no; else None (ask a judge)."""
    if len(pred) > MAX_ANSWER_CHARS:
        return None  # left to the judge; rules read a bounded text only
    p = normalize_answer(_ANSWER_PREFIX.sub("", _clean(pred)))
    g = normalize_answer(gt)
    if not p or not g:
        return None
    if p == g:
        return True
    p_num, g_num = _as_number(p), _as_number(g)
    if p_num is not None and g_num is not None:
        return p_num == g_num
    if g in _YES_NO:
        first = p.split()[0]
        if first in _YES_NO and not (_YES_NO - {first}) & set(p.split()):
            return first == g
    return None


def _as_number(text: str) -> Decimal | None:
    """The exact number ``text`` writes: as floats, two different 400-digit integers (both
    ``inf``) would compare equal. NaN equals nothing, not even itself."""
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def match_math(pred: str, gt: str) -> bool | None:
    """Equivalence by ``math_verify``; None when it is missing or cannot parse either side.

    ``math_verify`` is not linear in its input (8,000 spaces took 2 s; each redundant level
    of brackets, "\\boxed{{{7}}}", roughly doubles its time, and its timeout works on the
    main thread only), so it only sees text of at most ``MAX_MATH_CHARS`` with whitespace
    runs collapsed, nested at most ``MAX_MATH_DEPTH`` brackets deep: the answer itself, else
    the last ``\\boxed{}`` in it; anything else is left to the judge. Within those bounds
    its cost is its own: milliseconds to a few hundred milliseconds per answer.
    """
    pred, gt = _math_text(pred), _math_text(gt)
    if pred is None or gt is None:
        return None
    try:
        import math_verify
    except ImportError:
        return None
    # math_verify's timeouts use SIGALRM, which only the main thread may set.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    try:
        gold = math_verify.parse(gt, parsing_timeout=timeout)
        answer = math_verify.parse(pred, parsing_timeout=timeout)
        if not gold or not answer:
            return None
        return bool(math_verify.verify(gold, answer, timeout_seconds=timeout))
    except Exception:  # math_verify raises on pathological input; undecided, not a crash
        return None


def _math_text(text: str) -> str | None:
    if len(text) > MAX_ANSWER_CHARS:
        return None
    short = " ".join(text.split())
    if len(short) > MAX_MATH_CHARS:
        boxed = last_boxed(short)
        short = f"\\boxed{{{boxed}}}" if boxed is not None else ""
    if not 0 < len(short) <= MAX_MATH_CHARS or _depth(short) > MAX_MATH_DEPTH:
        return None
    return short


def _depth(text: str) -> int:
    """Deepest nesting of (), [] and {} together (one pass over a short text)."""
    depth = deepest = 0
    for char in text:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth = max(depth - 1, 0)
    return deepest


def rule_match(pred: str | None, gt: str, *, kind: str, options: Options = None) -> bool | None:
    """Dispatch on the question kind; no final answer (``pred`` None) is wrong, not undecided."""
    if kind not in KINDS:
        raise ValueError(f"unknown answer kind {kind!r}; use one of {', '.join(KINDS)}")
    if pred is None:
        return False
    if kind == "multiple_choice":
        return match_choice(pred, gt, options)
    if kind == "math":
        return match_math(pred, gt)
    return match_short(pred, gt)
