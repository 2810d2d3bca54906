"""Words of a multiple-choice answer and of its options, as ``core.choices`` reads them.

An answer is cleaned (full-width forms folded by NFKC, Chinese punctuation mapped, answer
tags, LaTeX box commands and markdown marks dropped), then cut into tokens: numbers ("10:50",
"3.5", "1,000"), runs of letters, single CJK characters, newlines and single punctuation
marks. Option texts go through the same steps, so "A handbag." and "a handbag" or "Horses"
and "horse" compare equal: lower case, no articles, number words as digits, a plural "s"
dropped.

Model text is untrusted: everything here is one pass of ``str`` methods or of a regex
without nested unbounded quantifiers, and ``core.choices`` refuses answers longer than
``MAX_ANSWER_CHARS`` before any of it runs.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from cof_plugins.core.options import strip_option_label

Options = Sequence[str] | Mapping[str, str] | None

_CJK = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]"
# Numbers first (a thousands comma, a decimal point or a time colon stay inside), then one
# CJK character, a run of other letters, a newline, or any other visible character alone.
# Each alternative consumes at least one character, repetitions are separated by required
# marks, and the lookahead reads one character: linear.
_TOKEN = re.compile(rf"\d+(?:,\d{{3}})*(?:[.:]\d+)*|{_CJK}|(?:(?!{_CJK})[^\W\d_])+|\n|\S")
_COMMANDS = (
    "\\boxed", "\\textbf", "\\text", "\\mathrm", "\\mathbf", "\\mbox", "\\fbox",
    "\\(", "\\)", "\\[", "\\]", "<answer>", "</answer>",
)  # fmt: skip
_SPACED = str.maketrans(
    {c: " " for c in "*`$#{}_\\~|"}
    | {"。": ".", "、": ",", "【": "[", "】": "]", "「": '"'}
    | {"」": '"', "‘": None, "’": None, "'": None}
)
# fmt: off
_NUMBER_WORDS = {w: str(i) for i, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
))}
# fmt: on
ARTICLES = frozenset({"a", "an", "the"})
CLAUSE_BREAKS = frozenset(",.;:!?\n()[]") | {"-", "–", "—"}


class Token(NamedTuple):
    """One token of an answer: its text as written, lower-cased, and what surrounds it.

    A named tuple, not a frozen dataclass: thousands are made per answer, and a tuple is
    several times cheaper to build."""

    raw: str
    low: str
    spaced: bool  # whitespace right before it
    word: bool  # letters, digits or a CJK character (not punctuation)


def clean(text: str) -> str:
    """Fold full-width forms, drop answer tags, LaTeX box commands and markdown marks."""
    text = unicodedata.normalize("NFKC", text)
    for command in _COMMANDS:
        if command in text:
            text = text.replace(command, " ")
    return text.translate(_SPACED)


def tokens(text: str) -> list[Token]:
    """Tokens of already ``clean``-ed text."""
    out = []
    end = 0
    for match in _TOKEN.finditer(text):
        raw = match.group()
        out.append(Token(raw, raw.lower(), match.start() > end, raw[0].isalnum()))
        end = match.end()
    return out


def normal(low: str) -> str:
    """The comparison form of one lower-cased word token."""
    low = _NUMBER_WORDS.get(low, low)
    if low[0].isdigit():
        low = low.replace(",", "")
        if "." in low and ":" not in low:
            low = low.rstrip("0").rstrip(".")
        return low
    if len(low) > 3 and low.endswith("s") and not low.endswith("ss"):
        es = low.endswith(("sses", "xes", "zes", "ches", "shes"))
        return low[:-2] if es else low[:-1]
    return low


def phrase(text: str) -> tuple[str, ...]:
    """Comparison form of an option text: its words, normalised, without articles."""
    words = [normal(t.low) for t in tokens(clean(text)) if t.word]
    kept = tuple(w for w in words if w not in ARTICLES)
    return kept or tuple(words)


def option_map(options: Options) -> dict[str, str]:
    """Letter -> option text; list options are lettered A, B, ... and may carry a label."""
    if options is None:
        return {}
    if isinstance(options, str):
        raise ValueError("options must be a list of option texts or a letter->text mapping")
    if isinstance(options, Mapping):
        return {str(k).strip("() .").upper(): str(v) for k, v in options.items()}
    letters = string.ascii_uppercase
    if len(options) > len(letters):
        raise ValueError(f"at most {len(letters)} options are supported, got {len(options)}")
    return {letters[i]: strip_option_label(str(o), letters[i]) for i, o in enumerate(options)}


@dataclass(frozen=True)
class OptionTexts:
    """The phrases that name each option: its whole text and, when all options share a
    frame ("The cup is on the left/right of the laptop"), the part that differs."""

    letters: frozenset[str]
    by_first: dict[str, list[tuple[tuple[str, ...], str]]]  # first word -> (phrase, letter)
    shared: dict[tuple[str, ...], frozenset[str]]  # a phrase naming several options
    refusal_option: bool  # some option says "none"/"not": a refusal may mean that option


def option_texts(options: Options) -> OptionTexts:
    """The phrases of ``options``; cached, as every rollout of a group shares its options."""
    if isinstance(options, Mapping):
        return _option_texts(("mapping", *((str(k), str(v)) for k, v in options.items())))
    if options is None or isinstance(options, str):
        return _option_texts(options)
    return _option_texts(tuple(str(o) for o in options))


@functools.lru_cache(maxsize=4096)
def _option_texts(key: tuple | str | None) -> OptionTexts:
    if isinstance(key, tuple) and key[:1] == ("mapping",):
        mapping = option_map(dict(key[1:]))
    else:
        mapping = option_map(key)  # type: ignore[arg-type]
    full = {letter: phrase(text) for letter, text in mapping.items()}
    names: dict[tuple[str, ...], set[str]] = {}
    middles = _differing_parts(full)
    for letter, words in full.items():
        for alias in {words, middles.get(letter, ())}:
            if alias:
                names.setdefault(alias, set()).add(letter)
    by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for alias, owners in names.items():
        if len(owners) == 1:
            by_first.setdefault(alias[0], []).append((alias, next(iter(owners))))
    for entries in by_first.values():
        entries.sort(key=lambda entry: -len(entry[0]))
    shared = {alias: frozenset(o) for alias, o in names.items() if len(o) > 1}
    refusal = any(set(words) & REFUSAL_WORDS for words in full.values())
    letters = frozenset(mapping) if mapping else frozenset(string.ascii_uppercase)
    return OptionTexts(letters, by_first, shared, refusal)


def _differing_parts(full: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Each option's words left after the prefix and suffix all options share."""
    phrases = list(full.values())
    if len(phrases) < 2 or not all(phrases):
        return {}
    shortest = min(len(p) for p in phrases)
    head = 0
    while head < shortest and len({p[head] for p in phrases}) == 1:
        head += 1
    tail = 0
    while tail < shortest - head and len({p[len(p) - 1 - tail] for p in phrases}) == 1:
        tail += 1
    if head == 0 and tail == 0:
        return {}
    return {letter: words[head : len(words) - tail] for letter, words in full.items()}


# --- the vocabulary ``core.choices`` reads answers with (lower case, apostrophes dropped) ----
OPENERS = {"(": ")", "[": "]", "<": ">", '"': '"'}
LETTER_VERBS = frozenset({"is", "was", "seems", "looks", "appears", "fits", "matches"})
LETTER_VERBS |= {"or", "and"}
TEXT_ENDS = frozenset({"is", "are", "was", "were", "seems", "looks", "appears"})
FIRM = frozenset({"answer", "option", "choice", "letter", "choose", "chose", "select"})
FIRM |= {"selected", "pick", "picked", "therefore", "thus", "hence", "案", "选"}
WEAK = frozenset({"its", "is", "be", "think", "believe", "guess", "say", "so", "probably"})
WEAK |= {"likely", "maybe", "perhaps"}
FILLERS = frozenset({":", "-", "–", "—", "=", ",", "\n", "is", "was", "be", "would", "should"})
FILLERS |= {"will", "must", "shall", "then", "the", "option", "choice", "letter", "answer"}
FILLERS |= {"correct", "final", "best", "right", "its", "it", "that", "my", "this", "i"}
FILLERS |= {"definitely", "clearly", "certainly", "是", "为", "择", "应", "该"}
HEDGES = frozenset({"could", "might", "may", "probably", "likely", "maybe", "perhaps"})
HEDGES |= {"possibly", "also", "think", "guess", "believe"}
FILLERS |= HEDGES
NEGATORS = frozenset({"not", "no", "never", "neither", "nor", "without", "isnt", "arent"})
NEGATORS |= {"wasnt", "werent", "doesnt", "dont", "didnt", "cannot", "cant", "wont"}
NEGATORS |= {"rather", "instead", "except", "unlike", "不", "没", "非", "无", "别"}
VERDICT_VERBS = frozenset({"is", "was", "seems", "looks", "appears", "does", "can"})
WRONG = frozenset({"not", "wrong", "incorrect", "false", "ruled", "eliminated"})
WRONG_VERBS = frozenset({"isnt", "doesnt", "wasnt", "cannot", "cant"})
CONNECTORS = frozenset({",", "/", "&", "or", "and", "either", "both", "maybe", "possibly", "?"})
ORDINALS = {"first": "A", "second": "B", "third": "C", "fourth": "D", "fifth": "E"}
NEGATION_WINDOW = 3
REVISIONS = frozenset({"but", "however", "actually", "wait", "instead", "correction", "after"})
REVISIONS |= {"closer", "again", "initially", "first", "reconsider", "rechecking", "though"}
# "right next to", "right behind": an intensifier, not the option "right".
RIGHT_AS_ADVERB = frozenset({"next", "behind", "in", "at", "there", "here", "above", "below"})
RIGHT_AS_ADVERB |= {"beside", "by", "on", "under", "over", "now", "away", "after", "before"}
REFUSAL_WORDS = frozenset(
    {"none", "neither", "cannot", "cant", "unable", "impossible", "unknown", "unclear", "not"}
    | {"undetermined", "indeterminate", "unanswerable", "no"}
)
