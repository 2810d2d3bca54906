"""Profiles: one name that selects how a zoom, a turn and a score behave, in RL and in eval.

``paper`` is the Adaptive-CoF release exactly, as its code does it (README, "The paper
profile", lists every item); ``default`` is this package's behaviour. This module is
the one place that defines them: the verl tool (``profile:`` in the tool YAML), ``cof eval
--profile``, ``cof zoom --profile`` and the reward (``reward_kwargs.profile``) all read it.

Where the release contradicts itself, the profile carries a named option, and ``paper``
picks one (README, "The paper profile"):

- ``rl_crop_role``: the release's RL appends each crop with the *assistant* role (its tool
  role is commented out) while its evaluation returns crops in a user turn. ``paper`` picks
  "user" so RL trains on the turn layout evaluation (and SFT data) show; "assistant" is
  selected with the chat template's ``cof_crop_role`` (``chat_template_kwargs``).
- ``rl_frame_budget``: the release built its RL frames with qwen-vl-utils' default budget
  [3136, 12845056] pixels but evaluates in [112^2, 3840^2]. ``paper`` picks the release's RL
  budget for RL data ("release"): it is also the budget verl's stock Qwen2.5-VL processor
  applies in the rollout, so a larger frame would be shrunk behind the tool's back.
  "stages" builds RL frames with the SFT/eval budget instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cof_plugins.core.frame import PixelBudget
from cof_plugins.core.registry import Registry

# How many tool calls of one assistant turn run: every one, the first (in text order) or
# the first N.
CALL_POLICIES = ("all", "first")
FAILED_CALL_REPLIES = ("message", "whole_frame")
CROP_ROLES = ("user", "assistant")
RL_FRAME_BUDGETS = ("stages", "release")
# How evaluation builds frames: "exact" decodes the input in full and resizes it as the
# release does; "reduced" decodes JPEGs at a reduced DCT scale and resamples once from an
# Image.reduce pyramid (same frame size, >= 40 dB from the exact pixels; cof_plugins.eval.frames).
EVAL_FRAMES = ("reduced", "exact")
# qwen-vl-utils' defaults, with which the release built its RL parquet.
RELEASE_RL_BUDGET = PixelBudget(min_pixels=4 * 28 * 28, max_pixels=16384 * 28 * 28)
# The release's evaluation: input images and crops in [112^2, 3840^2] pixels.
RELEASE_EVAL_BUDGET = PixelBudget(min_pixels=112 * 112, max_pixels=3840 * 3840)


@dataclass(frozen=True)
class Profile:
    """Everything a profile decides; see the module docstring for the named options."""

    name: str
    summary: str
    # ZoomConfig fields (the factor comes from the model family, pixel caps from the stage).
    zoom: Mapping[str, Any]
    # The evaluation frame: filter and smart_resize rounding of the input's resize.
    frame_resample: str
    frame_rounding: str
    # Which calls of a turn run, in RL and in evaluation ("all", "first" or an int cap).
    rl_calls: str | int
    eval_calls: str | int
    # What evaluation returns for a call that gives no crop: the tool's message, or the
    # whole frame scaled 2x as the "crop" (the release).
    eval_failed_call: str
    # Which <answer> of the final turn evaluation scores ("last" or "first").
    eval_answer: str
    # What the judge is shown as the reference in evaluation: "option" ("B) red") or
    # "letter" ("B").
    eval_judge_reference: str
    # Judge sampling temperature in RL (None: the judge config's, greedy by default).
    rl_judge_temperature: float | None
    # Data sources (substrings, lower case) scored as math in RL; None: the row's own kind.
    rl_math_sources: tuple[str, ...] | None
    # Ask the judge when math-verify says no (the release's generative verifier).
    rl_math_judge_on_mismatch: bool
    rl_crop_role: str = "user"
    rl_frame_budget: str = "stages"
    eval_frames: str = "reduced"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("rl_calls", "eval_calls"):
            check_call_policy(getattr(self, name), f"profile {self.name!r}: {name}")
        for name, valid in (
            ("eval_failed_call", FAILED_CALL_REPLIES),
            ("eval_answer", ("last", "first")),
            ("eval_judge_reference", ("option", "letter")),
            ("rl_crop_role", CROP_ROLES),
            ("rl_frame_budget", RL_FRAME_BUDGETS),
            ("eval_frames", EVAL_FRAMES),
        ):
            if getattr(self, name) not in valid:
                raise ValueError(
                    f"profile {self.name!r}: {name}={getattr(self, name)!r}; "
                    f"use one of {', '.join(valid)}"
                )
        object.__setattr__(self, "zoom", MappingProxyType(dict(self.zoom)))

    def rl_budget(self, stages: PixelBudget) -> PixelBudget:
        """The pixel budget RL frames are built with, given the SFT/eval one."""
        return RELEASE_RL_BUDGET if self.rl_frame_budget == "release" else stages

    def chat_template_kwargs(self) -> dict[str, str]:
        """What the RL recipe's ``data.apply_chat_template_kwargs`` must hold for this profile."""
        return {"cof_crop_role": "assistant"} if self.rl_crop_role == "assistant" else {}


def check_call_policy(policy: object, where: str) -> None:
    """``policy`` is "all", "first" or a positive int; raise naming ``where`` otherwise."""
    if isinstance(policy, bool) or not (
        policy in CALL_POLICIES or (isinstance(policy, int) and policy >= 1)
    ):
        raise ValueError(f"{where} must be 'all', 'first' or a positive integer, got {policy!r}")


def call_cap(policy: str | int) -> int | None:
    """How many calls of a turn run under ``policy``; None for all of them."""
    return None if policy == "all" else 1 if policy == "first" else int(policy)


PROFILES: Registry[Profile] = Registry("profile")

DEFAULT = PROFILES.register(
    "default",
    Profile(
        name="default",
        summary="this package: full-resolution crops, min side 28, aspect guard, bicubic; "
        "one call per turn in RL and eval; tool messages for calls that fail",
        zoom={},
        frame_resample="bicubic",
        frame_rounding="processor",
        rl_calls="first",
        eval_calls="first",
        eval_failed_call="message",
        eval_answer="last",
        eval_judge_reference="option",
        rl_judge_temperature=None,
        rl_math_sources=None,
        rl_math_judge_on_mismatch=False,
    ),
)

PAPER = PROFILES.register(
    "paper",
    Profile(
        name="paper",
        summary="the Adaptive-CoF release: crops of the frame, int() edges, LANCZOS, "
        "qwen-vl-utils sizes; every call in RL, the first in eval; whole frame 2x for a "
        "failed call in eval; first <answer>; letter-only judge reference; judge at 0.3 in RL",
        zoom={
            "full_resolution": False,
            "snap": "truncate",
            "min_side": 0,
            "aspect_guard": False,
            "resample": "lanczos",
            "rounding": "qwen_vl_utils",
        },
        frame_resample="lanczos",
        frame_rounding="qwen_vl_utils",
        rl_calls="all",
        eval_calls="first",
        eval_failed_call="whole_frame",
        eval_answer="first",
        eval_judge_reference="letter",
        rl_judge_temperature=0.3,
        rl_math_sources=("thinklite", "eureka", "math"),
        rl_math_judge_on_mismatch=True,
        rl_crop_role="user",
        rl_frame_budget="release",
        eval_frames="exact",
    ),
)


def get_profile(name: str | Profile) -> Profile:
    """The profile called ``name``; a miss lists the valid names."""
    return name if isinstance(name, Profile) else PROFILES.get(name)
