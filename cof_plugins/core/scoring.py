"""The per-rollout CoF score: ``acc_weight * correct + format_weight * format_ok``.

The release checks format on the whole response (``<think>``/``<answer>`` tags balanced and
present, answer at most 1000 words). Here the check is per assistant turn, because the agent
loop gives us the turns and the protocol is per turn: every turn thinks first; earlier turns
call the tool and do not answer; the last turn answers and does not call the tool. A
trajectory cut off on a tool call has no final answer, so it scores zero accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cof_plugins.core.parser import parse_turn

_THINK = ("<think>", "</think>")
_ANSWER = ("<answer>", "</answer>")
_CALL = ("<tool_call>", "</tool_call>")


def format_ok(assistant_texts: Sequence[str], *, max_answer_words: int = 1000) -> bool:
    """True when every turn follows the protocol's tag layout (see the module docstring)."""
    if not assistant_texts:
        return False
    *earlier, last = assistant_texts
    return all(_tool_turn_ok(t) for t in earlier) and _answer_turn_ok(last, max_answer_words)


def _tool_turn_ok(text: str) -> bool:
    """One think block, closed before the first tool call; balanced calls; no answer tags."""
    if not _single_pair(text, _THINK) or _count(text, _ANSWER) != (0, 0):
        return False
    opens, closes = _count(text, _CALL)
    return opens >= 1 and opens == closes and text.find(_THINK[1]) < text.find(_CALL[0])


def _answer_turn_ok(text: str, max_answer_words: int) -> bool:
    """One think block, then one answer block, no tool call, answer within the word cap."""
    if not (_single_pair(text, _THINK) and _single_pair(text, _ANSWER)):
        return False
    if _count(text, _CALL) != (0, 0) or text.find(_THINK[1]) > text.find(_ANSWER[0]):
        return False
    answer = text[text.find(_ANSWER[0]) + len(_ANSWER[0]) : text.find(_ANSWER[1])]
    return len(answer.split()) <= max_answer_words


def _count(text: str, tags: tuple[str, str]) -> tuple[int, int]:
    return text.count(tags[0]), text.count(tags[1])


def _single_pair(text: str, tags: tuple[str, str]) -> bool:
    """Exactly one opening and one closing tag, in that order (so nothing nests in it)."""
    return _count(text, tags) == (1, 1) and text.find(tags[0]) < text.find(tags[1])


def final_answer(assistant_texts: Sequence[str], *, first: bool = False) -> str | None:
    """The last turn's ``<answer>``, else its ``\\boxed{}``; None when it ends on a tool call.

    ``first`` takes the turn's first ``<answer>`` instead of its last (the release's
    evaluation, ``paper`` profile). A last turn that both answers and calls the tool still
    yields its answer (accuracy is judged on what it said); ``format_ok`` rejects that layout.
    """
    if not assistant_texts:
        return None
    turn = parse_turn(assistant_texts[-1])
    answer = turn.first_answer if first else turn.answer
    if answer is not None:
        return answer
    if turn.attempted_tool:
        return None
    return turn.boxed


def cof_score(
    correct: bool, fmt_ok: bool, *, acc_weight: float = 0.9, format_weight: float = 0.1
) -> float:
    """``acc_weight * correct + format_weight * fmt_ok``, the release's 0.9 / 0.1 split."""
    for name, value in (("acc_weight", acc_weight), ("format_weight", format_weight)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return acc_weight * float(bool(correct)) + format_weight * float(bool(fmt_ok))
