"""The judge prompt and the parser for its one-line reply.

The few-shot examples are chat turns (a user case, the assistant's ``Judgement: x``) rather
than one long text block, so an instruction-tuned judge copies the reply format instead of
continuing a document. ``PROMPT_VERSION`` is part of every cache key: change it whenever the
wording or the examples change, or old cached verdicts would be served for a new prompt.
"""

from __future__ import annotations

import re

PROMPT_VERSION = "cof-judge-v1"

SYSTEM_PROMPT = (
    "You grade answers to questions about images. You are given a question, the reference "
    "(ground-truth) answer and a candidate answer. Decide whether the candidate's final "
    "answer means the same as the reference. Differences in wording, letter case, articles, "
    "number words versus digits, or extra explanation do not matter. The candidate is wrong "
    "if it names something else, if it hedges between several options, or if it states the "
    "reference together with a contradicting claim. For multiple-choice questions the option "
    "letter alone is enough when it matches. Reply with exactly one line: `Judgement: 1` if "
    "the candidate is correct, `Judgement: 0` if it is not."
)

# (question, reference, candidate, verdict): short cases covering the usual judge mistakes.
FEW_SHOT: tuple[tuple[str, str, str, int], ...] = (
    ("What colour is the umbrella held by the man?", "red", "The umbrella is dark red.", 1),
    (
        "Is the bicycle to the left or to the right of the bench?",
        "left",
        "It is on the right side of the bench.",
        0,
    ),
    (
        "Which colour is the woman's bag? (A) black (B) white (C) brown (D) green",
        "(C) brown",
        "C",
        1,
    ),
    ("How many birds sit on the wire?", "3", "three", 1),
    ("What word is printed on the sign?", "STOP", 'The sign says "SHOP".', 0),
    ("What is the bench made of?", "wood", "It could be wood or metal.", 0),
    ("What time does the clock show?", "10:15", "a quarter past ten", 1),
)

_JUDGEMENT = re.compile(r"judge?ment\W{0,4}([01])\b", re.IGNORECASE)
_THINK_END = "</think>"
MAX_REPLY_CHARS = 4096  # after the thinking; a longer reply is no one-line verdict
# A policy under RL can write an answer of any length; the judge sees its head and its tail
# (where a final answer usually sits), so one rollout cannot send megabytes to the server.
MAX_CANDIDATE_CHARS = 2000


def cap_candidate(text: str, limit: int = MAX_CANDIDATE_CHARS) -> str:
    """``text`` itself when short; else its first and last ``limit // 2`` characters."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


def _case(question: str, reference: str, candidate: str) -> str:
    candidate = cap_candidate(candidate)
    return f"Question: {question}\nReference answer: {reference}\nCandidate answer: {candidate}"


def build_messages(question: str, answer: str, ground_truth: str) -> list[dict[str, str]]:
    """Chat messages asking the judge whether ``answer`` matches ``ground_truth``."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for q, ref, cand, verdict in FEW_SHOT:
        messages.append({"role": "user", "content": _case(q, ref, cand)})
        messages.append({"role": "assistant", "content": f"Judgement: {verdict}"})
    messages.append({"role": "user", "content": _case(question, ground_truth, answer)})
    return messages


def parse_judgement(text: str | None) -> bool | None:
    """Return True/False for a reply carrying ``Judgement: 1``/``0``; None when unusable.

    None (not False) for an empty reply, text without a judgement, or conflicting judgements:
    the client retries those instead of scoring the rollout wrong. Reasoning judges may think
    aloud first, so only the text after the last ``</think>`` counts. A reply that is just
    ``0`` or ``1`` is accepted too; a reply longer than ``MAX_REPLY_CHARS`` is not read.
    """
    if not text:
        return None
    text = text.rsplit(_THINK_END, 1)[-1].strip()
    if len(text) > MAX_REPLY_CHARS:
        return None
    if text in ("0", "1"):
        return text == "1"
    found = {m.group(1) for m in _JUDGEMENT.finditer(text)}
    if len(found) != 1:
        return None
    return found.pop() == "1"
