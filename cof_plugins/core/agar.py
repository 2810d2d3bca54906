"""AGAR, the adaptive group-aware reward: re-score one prompt's rollouts together.

The idea: zooming is only penalised when a direct answer already succeeds in the same group,
and a failed zoom always beats a failed direct answer. Tiers (all configurable, defaults from
the released training code):

=================================  =============  ============  ==========  ======  =======
group situation                    direct right   zoom right    zoom wrong  direct wrong
                                                                            fmt ok  bad fmt
=================================  =============  ============  ==========  ======  =======
some direct rollout is correct     1.0            0.8           0.5         0.1     0.0
only zoom rollouts are correct     -              1.0           0.5         0.1     0.0
all wrong                          -              -             0.5         0.1     0.0
=================================  =============  ============  ==========  ======  =======

Decisions on the release's edge cases:

- A wrong zoom gets ``zoom_wrong`` whatever its format, as in the release. Set
  ``zoom_wrong_bad_format`` to give badly formatted wrong zooms their own tier; it defaults
  to None, meaning "same as zoom_wrong".
- ``correct`` ignores format, as in the release: it is the accuracy fact, not the score.
- The release finds the 0.1 tier by testing ``raw == 0.1``, which breaks as soon as the
  0.9/0.1 weights change. Here the caller passes ``format_ok`` as a fact, so no weight can
  move a rollout between tiers.
- "Zoom" is the agent loop's tool-call count (``used_tool``), not a search for the text
  ``<tool_call>``; whether a malformed attempt counts is the caller's decision, made where
  the count is kept.
- A group of size 1 is scored like any group.

Advantages are the host's business: verl's GRPO estimator turns these scores into them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class RolloutFacts:
    """What AGAR needs to know about one rollout; all three are plain bools."""

    correct: bool
    used_tool: bool
    format_ok: bool

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, bool):
                raise TypeError(
                    f"RolloutFacts.{f.name} must be a bool, got {value!r}; pass bool(...)"
                )


@dataclass(frozen=True)
class AgarTiers:
    """Reward per outcome; every value must be a finite number in [0, 1]."""

    direct_correct: float = 1.0
    zoom_correct_when_direct_correct: float = 0.8
    zoom_correct: float = 1.0
    zoom_wrong: float = 0.5
    direct_wrong_format_ok: float = 0.1
    direct_wrong_bad_format: float = 0.0
    # None: a wrong zoom with bad format gets ``zoom_wrong`` (the release's behaviour).
    zoom_wrong_bad_format: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name == "zoom_wrong_bad_format":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"AgarTiers.{f.name} must be a number, got {value!r}")
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"AgarTiers.{f.name} must lie in [0, 1], got {value!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> AgarTiers:
        """Build from a config mapping; unknown keys are rejected, naming the valid ones."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(
                f"unknown AGAR tier(s) {', '.join(map(str, unknown))}; "
                f"valid tiers: {', '.join(valid)}"
            )
        return cls(**values)


def agar_group(facts: Sequence[RolloutFacts], tiers: AgarTiers = AgarTiers()) -> list[float]:
    """The AGAR score of each rollout of ONE prompt (one uid group), in order."""
    direct_succeeded = any(f.correct and not f.used_tool for f in facts)
    return [_score(f, direct_succeeded, tiers) for f in facts]


def _score(fact: RolloutFacts, direct_succeeded: bool, tiers: AgarTiers) -> float:
    if not fact.used_tool:
        if fact.correct:
            return tiers.direct_correct
        return tiers.direct_wrong_format_ok if fact.format_ok else tiers.direct_wrong_bad_format
    if fact.correct:
        return tiers.zoom_correct_when_direct_correct if direct_succeeded else tiers.zoom_correct
    if not fact.format_ok and tiers.zoom_wrong_bad_format is not None:
        return tiers.zoom_wrong_bad_format
    return tiers.zoom_wrong
