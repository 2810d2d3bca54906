"""The words a synthetic trajectory thinks: short, grounded in the question, varied by seed.

Each step has a few phrasings; ``random.Random`` seeded per sample picks one, so the same
seed rebuilds the same text and a model cannot learn one fixed sentence as a trigger. That is
the ``varied`` wording, the default. ``terse`` has one short sentence per step and no pixel
counts: the decision to zoom is the reply's first word and nothing else varies, so a tiny
model's few minutes of training go to *when* to zoom and *where* (the quickstart's tiny
default), not to paraphrases.
"""

from __future__ import annotations

import random

from cof_plugins.data.annotations import Annotation

WORDINGS = ("varied", "terse")

_DIRECT = (
    "{Target} is large enough to see clearly in the image. {finding}",
    "I can make out {target} without zooming in. {finding}",
    "The question asks: {question} {Target} is clearly visible at this size. {finding}",
)
_FIRST_ZOOM = (
    "The question asks: {question} {Target} is only about {px} pixels across here, too small "
    "to make out, so I will zoom in on the region around it.",
    "To answer this I need {target}, but it is tiny in the image (about {px} px). Let me zoom "
    "in on that area.",
    "{Target} is too small to read at this resolution (about {px} px). I will zoom in on it.",
)
_NEXT_ZOOM = (
    "The crop helps, but {target} is still small (about {px} px). I will zoom in more tightly.",
    "Closer, yet {target} is still only about {px} pixels across. Zooming in further.",
)
_AFTER_ZOOM = (
    "In the zoomed view {target} is clear. {finding}",
    "Now I can see {target} in detail. {finding}",
    "The crop shows {target} clearly. {finding}",
)
_TERSE = {
    "direct": ("I can see {target} clearly. {finding}",),
    "first": ("{Target} is too small here; I will zoom in.",),
    "next": ("{Target} is still too small; I will zoom in again.",),
    "after": ("Now {target} is clear. {finding}",),
}
_VARIED = {"direct": _DIRECT, "first": _FIRST_ZOOM, "next": _NEXT_ZOOM, "after": _AFTER_ZOOM}
_TARGETS = {
    "text": "the small sign",
    "relative_position": "the two objects",
    "colour": "the small object",
    "shape": "the small object",
}


def target_phrase(ann: Annotation) -> str:
    if ann.label:
        return str(ann.label)
    return _TARGETS.get(ann.task, "the detail the question is about")


def finding(ann: Annotation) -> str:
    if ann.options:
        return f"It is {ann.answer_text}, so the answer is ({ann.answer})."
    return f"The answer is {ann.answer_text}."


def rng_for(ann: Annotation, seed: int) -> random.Random:
    return random.Random(f"think:{seed}:{ann.id}")


def _fill(template: str, ann: Annotation, px: float | None = None) -> str:
    target = target_phrase(ann)
    return template.format(
        target=target,
        Target=target[:1].upper() + target[1:],
        question=ann.question.strip(),
        finding=finding(ann),
        px=max(1, round(px or 0)),
    )


def phrasings(wording: str) -> dict[str, tuple[str, ...]]:
    """The templates per step of ``wording`` (one of ``WORDINGS``); any other is an error."""
    if wording not in WORDINGS:
        raise ValueError(f"thinking wording must be one of {', '.join(WORDINGS)}, got {wording!r}")
    return _TERSE if wording == "terse" else _VARIED


def think_direct(ann: Annotation, rng: random.Random, wording: str = "varied") -> str:
    return _fill(rng.choice(phrasings(wording)["direct"]), ann)


def think_zoom(
    ann: Annotation, rng: random.Random, step: int, px: float, wording: str = "varied"
) -> str:
    """Thinking before zoom call ``step`` (0-based); ``px`` is the target's current size."""
    return _fill(rng.choice(phrasings(wording)["first" if step == 0 else "next"]), ann, px)


def think_answer(ann: Annotation, rng: random.Random, wording: str = "varied") -> str:
    return _fill(rng.choice(phrasings(wording)["after"]), ann)


def answer_turn(ann: Annotation, think: str) -> str:
    return f"<think>{think}</think>\n<answer>{ann.answer}</answer>"
