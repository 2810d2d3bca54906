"""Hostile text for every parser and matcher that reads model or data text.

A policy under RL finds whatever makes a reward slow or wrong, so each reader of untrusted
text must stay linear in its input and bounded in what it parses. ``CASES`` builds hostile
texts of a given size (whitespace runs, many openers, deep nesting, long digit strings, tag
soup); ``TARGETS`` runs each reader on one text. ``tests/fuzz`` times every pair at 1 MB
and checks that each result is well formed; ``bench/parsing.py`` prints the timings.

Targets that need a trainer (verl's tool-call parser) are added by the tests that import it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from cof_plugins.core.answers import match_choice, match_math, match_short, normalize_answer
from cof_plugins.core.choices import read_choice
from cof_plugins.core.options import OptionsError, split_options
from cof_plugins.core.parser import extract_bbox, last_boxed, load_lenient, parse_turn, read_call
from cof_plugins.core.scoring import final_answer, format_ok
from cof_plugins.data.layout import to_next_user
from cof_plugins.data.styles.common import ConvertError
from cof_plugins.data.styles.mini_o3 import WHOLE, rewrite_turn
from cof_plugins.judge.prompt import parse_judgement
from cof_plugins.rewards.segments import split_response

MEGABYTE = 1_000_000
LIMIT_S = 0.1  # "well under 100 ms" for any reader on any case
OPTIONS = ["white", "black", "red", "blue"]
_CALL = '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 300, 400]}}'
_SOUP = (
    "<tool_call>", "</tool_call>", "<answer>", "</answer>", "<think>", "</think>", "\\boxed{",
    "{", "}", "[", "]", "(", ")", '"', "'", ":", ",", " ", "\n", "```", "<grounding>", "A", "B",
    "(B)", "answer is ", "not ", "NaN", "1e309", "9" * 40, "\nassistant\n", "user\n", "<|",
    "|>", "<image>", "答案", "Ｂ",
)  # fmt: skip


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda size: unit * max(1, size // len(unit))


def _framed(head: str, fill: str, tail: str) -> Callable[[int], str]:
    return lambda size: head + fill * max(1, (size - len(head) - len(tail)) // len(fill)) + tail


def _soup(size: int) -> str:
    rng = random.Random(size)
    parts, length = [], 0
    while length < size:
        parts.append(rng.choice(_SOUP))
        length += len(parts[-1])
    return "".join(parts)


# name -> builder(size): a hostile text of about ``size`` characters.
CASES: dict[str, Callable[[int], str]] = {
    "spaces": _repeat(" "),
    "whitespace-mix": _repeat(" \t\n\r\u3000\xa0"),
    "call-openers": _repeat("<tool_call>"),
    "call-pairs": _repeat(f"<tool_call>{_CALL}</tool_call>"),
    "call-with-space-run": _framed("<tool_call>{", " ", "}</tool_call>"),
    "fenced-space-run": _framed("<tool_call>```json\n{", " \n", "}\n```</tool_call>"),
    "answer-openers": _repeat("<answer>"),
    "answer-space-run": _framed("<answer>The answer is", " ", "B</answer>"),
    "phrase-space-run": _framed("answer", " ", "x"),
    "think-openers": _repeat("<think>"),
    "tag-alternation": _repeat("<tool_call></tool_call><answer></answer><think></think>"),
    "parens": _repeat("("),
    "boxed-openers": _repeat("\\boxed{"),
    "boxed-deep": _framed("\\boxed{", "{", "B}"),
    "braces": _repeat("{"),
    "brackets": _repeat("["),
    "nested-call": _framed('<tool_call>{"name": "image_zoom_in_tool", "arguments": ', "[", ""),
    "nested-objects": _repeat('{"a": '),
    "digits": _repeat("1"),
    "huge-coordinate": _framed(
        '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [', "9", ", 1, 2, 3]}}"
    ),
    "non-finite": _repeat("NaN Infinity -inf 1e309 "),
    "letters": _repeat("(A) (B) (C) (D) "),
    "letter-list": _repeat("A or B or "),
    "answer-is": _repeat("the answer is "),
    "negations": _repeat("not "),
    "cjk": _repeat("答案是Ｂ，"),
    "assistant-markers": _repeat("\nassistant\n"),
    "user-lines": _repeat("xuser\n"),
    "tool-turns": _repeat("\nuser\n\nassistant\n"),
    "grounding-openers": _repeat("<grounding>"),
    "special-tokens": _repeat("<|"),
    "judgements": _repeat("Judgement: 1 "),
    "image-tags": _repeat("<image>"),
    "backticks": _repeat("`"),
    "commas": _repeat(", "),
    "option-lines": _repeat("\n(A) x"),
    "tag-soup": _soup,
}


def _mini_o3(text: str) -> object:
    try:
        return rewrite_turn(text, [WHOLE], 0)
    except ConvertError as exc:
        return exc


def _options(text: str) -> object:
    try:
        return split_options(text)
    except OptionsError as exc:
        return exc


# name -> reader(text): one parser or matcher run on untrusted text.
TARGETS: dict[str, Callable[[str], object]] = {
    "parse_turn": parse_turn,
    "read_call": read_call,
    "load_lenient": load_lenient,
    "last_boxed": last_boxed,
    "extract_bbox": lambda text: extract_bbox({"bbox_2d": text}),
    "format_ok": lambda text: format_ok([text, text]),
    "final_answer": lambda text: final_answer([text]),
    "read_choice": lambda text: read_choice(text, OPTIONS),
    "match_choice": lambda text: match_choice(text, "B", OPTIONS),
    "match_short": lambda text: match_short(text, "3"),
    "match_math": lambda text: match_math(text, "3"),
    "split_response": lambda text: split_response(
        text, user_suffix="Think first, then answer.", expected_tool_turns=2
    ),
    "parse_judgement": parse_judgement,
    "layout.to_next_user": lambda text: to_next_user(
        [{"role": "assistant", "content": text}], lambda n: "<image>" * n
    ),
    "mini_o3.calls": _mini_o3,
}


def best_of_3(reader: Callable[[str], object], text: str, enough: float = LIMIT_S / 2) -> float:
    """Seconds of the fastest of up to three runs (no more once one takes under ``enough``)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        reader(text)
        best = min(best, time.perf_counter() - start)
        if best < enough:
            break
    return best


# Readers of already bounded text: timed at the bound, not at 1 MB.
BOUNDED: dict[str, Callable[[str], object]] = {"normalize_answer": normalize_answer}
# Readers of benchmark files: linear, unbounded, not held to the 1 MB limit.
DATA_READERS: dict[str, Callable[[str], object]] = {"split_options": _options}
