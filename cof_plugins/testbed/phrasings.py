"""The multiple-choice phrasing corpus, and how many of its answers the rules settle.

``mc_phrasings.jsonl`` holds answers worded the way Qwen- and GPT-style models answer
V*, HR-Bench and MME-RealWorld questions (a bare letter, "B. blue", "The answer is (B)",
"**B**", "\\boxed{B}", the option's text, Chinese and full-width forms, reasoning that ends
in a letter, hedges, refusals, a letter with a contradicting text, ...), each with the
verdict a careful grader gives: true (picks the ground truth), false (picks something else
or nothing) or null (genuinely ambiguous: no rule and no grader can tell). ``batch`` says
when an entry was written: ``first`` before the matcher was rewritten, ``second`` after it
but without changing the matcher for it, ``probe`` to test a suspected weak spot.

``bench/reward.py`` prints the coverage and ``tests/core/test_mc_phrasings.py`` holds the
floor: every wrong verdict fails the test, whatever the coverage.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cof_plugins.core.answers import rule_match

CORPUS = Path(__file__).with_name("mc_phrasings.jsonl")
_FIELDS = ("id", "batch", "shape", "question", "options", "gold", "answer", "verdict")


@dataclass(frozen=True)
class Phrasing:
    """One answer to one question, and the verdict it deserves."""

    id: str
    batch: str
    shape: str
    question: str
    options: tuple[str, ...]
    gold: str
    answer: str
    verdict: bool | None


@dataclass(frozen=True)
class Coverage:
    """How the rules did on a list of phrasings."""

    entries: int
    settleable: int
    settled: int
    wrong: list[tuple[Phrasing, bool]] = field(default_factory=list)
    unsettled: list[Phrasing] = field(default_factory=list)

    @property
    def share(self) -> float:
        """Settled entries among those a grader can settle (verdict true or false)."""
        return self.settled / self.settleable if self.settleable else 1.0


def load_phrasings(path: Path = CORPUS) -> list[Phrasing]:
    """Read the corpus; a malformed line is an error naming the file and the line."""
    out = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                out.append(_phrasing(line, f"{path}:{number}"))
    return out


def _phrasing(line: str, where: str) -> Phrasing:
    try:
        row = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"{where}: not JSON ({exc})") from None
    missing = [key for key in _FIELDS if key not in row] if isinstance(row, dict) else _FIELDS
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    if row["verdict"] not in (True, False, None) or not isinstance(row["options"], list):
        raise ValueError(f"{where}: verdict must be true/false/null and options a list")
    return Phrasing(**{**row, "options": tuple(str(o) for o in row["options"])})


def rules_coverage(phrasings: Sequence[Phrasing]) -> Coverage:
    """Score every phrasing with the rules alone (``rule_match``, as the reward does)."""
    settled, wrong, unsettled = 0, [], []
    for p in phrasings:
        got = rule_match(p.answer, p.gold, kind="multiple_choice", options=list(p.options))
        if got is not None and got != p.verdict:
            wrong.append((p, got))
        if p.verdict is not None:
            settled += got is not None
            if got is None:
                unsettled.append(p)
    settleable = sum(p.verdict is not None for p in phrasings)
    return Coverage(len(phrasings), settleable, settled, wrong, unsettled)
