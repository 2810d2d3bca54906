"""The ``config:`` block of the zoom tool's YAML, checked once when verl builds the tool.

verl hands the block over as a plain dict, so a misspelt key would otherwise be ignored and
the run would train with a default nobody chose. Unknown keys raise, listing the valid ones.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from typing import Any

from cof_plugins.core.coords import CONVENTIONS
from cof_plugins.core.frame import get_family
from cof_plugins.core.profiles import Profile, call_cap, get_profile
from cof_plugins.core.protocol import DEFAULT_PROTOCOL, load_protocol
from cof_plugins.core.zoom import DEFAULT_MAX_IMAGE_PIXELS, ZoomConfig
from cof_plugins.core.zoom_step import StepConfig

# Keys verl itself reads from the block.
_VERL_KEYS = {"type"}


@dataclass(frozen=True)
class ToolSettings:
    """Everything the zoom tool needs besides the per-trajectory ``create_kwargs``."""

    family: str = "qwen2_5_vl"
    # core.profiles name: "default" (this package) or "paper" (the release exactly). It sets
    # the zoom's geometry and filter and which calls of a turn run (the recipe's
    # max_parallel_calls must agree; `cof validate` checks it).
    profile: str = "default"
    # Box convention the model writes; None means the family's own (core.frame.FAMILIES).
    coords: str | None = None
    # Protocol whose suffix follows every crop (same text as the SFT data): a preset name or
    # a YAML file of your own (an absolute path is safest: Ray workers resolve a relative
    # one against their own working directory).
    protocol: str = DEFAULT_PROTOCOL
    # ZoomConfig fields over the profile's; ``factor`` is the family's (28 or 32).
    zoom: dict[str, Any] = field(default_factory=dict)
    # Step rewards: a small penalty for a call the model got wrong; none for a good call.
    valid_call_reward: float = 0.0
    invalid_call_reward: float = -0.05
    # Refuse to zoom when the image the model saw differs from the frame the data promised.
    strict_frame: bool = True
    # Decompression-bomb guard when reading the full-resolution original.
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    # Prefix the crop turn with the geometry note ("Zoomed into ..."); off keeps SFT's text.
    crop_note: bool = False
    # Images a rollout may hold (the question image included); calls beyond it get a message
    # instead of a crop, so vLLM's per-prompt image limit (rollout.limit_images) is never hit.
    max_images: int | None = None

    @property
    def convention(self) -> str:
        return self.coords or get_family(self.family).coords

    @property
    def profile_spec(self) -> Profile:
        return get_profile(self.profile)

    def zoom_config(self) -> ZoomConfig:
        return self.step_config("").zoom

    def step_config(self, suffix: str) -> StepConfig:
        """The RL zoom step this config describes (``suffix``: the protocol's instruction)."""
        return StepConfig.for_stage(
            self.profile, "rl", family=self.family, suffix=suffix, coords=self.coords,
            zoom=self.zoom, max_images=self.max_images, crop_note=self.crop_note,
        )  # fmt: skip


def parse_settings(config: dict[str, Any] | None) -> ToolSettings:
    """Build and check ``ToolSettings`` from the tool YAML's ``config`` block."""
    raw = {k: v for k, v in (config or {}).items() if k not in _VERL_KEYS}
    _reject_unknown(raw, {f.name for f in fields(ToolSettings)}, "the zoom tool's config")
    _reject_unknown(raw.get("zoom") or {}, {f.name for f in fields(ZoomConfig)}, "config.zoom")
    settings = ToolSettings(**{**raw, "zoom": dict(raw.get("zoom") or {})})
    get_family(settings.family)
    if settings.coords is not None and settings.coords not in CONVENTIONS:
        raise ValueError(
            f"zoom tool config: coords={settings.coords!r} is not a convention; use one of "
            f"{', '.join(CONVENTIONS)} or leave it unset for the family's own"
        )
    for name in ("valid_call_reward", "invalid_call_reward"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"zoom tool config: {name} must be a number, got {value!r}")
    try:
        get_profile(settings.profile)
    except KeyError as exc:
        raise ValueError(f"zoom tool config: {exc}") from None
    settings.zoom_config()  # raises with ZoomConfig's own message on a bad geometry
    load_protocol(settings.protocol)  # a bad protocol file fails here, naming file and key
    return settings


def _reject_unknown(raw: dict[str, Any], valid: set[str], where: str) -> None:
    unknown = sorted(set(raw) - valid)
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(valid), n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ValueError(
        f"unknown key(s) in {where}: {', '.join(hints)}; valid keys: {', '.join(sorted(valid))}"
    )


def rollout_problems(
    settings: ToolSettings,
    max_parallel_calls: int | None,
    limit_images: int | None,
    max_assistant_turns: int | None,
) -> list[str]:
    """Where the recipe's rollout keys disagree with the tool's profile, as error messages.

    verl runs the first ``max_parallel_calls`` calls of a turn, so that key is how a recipe
    realises the profile's RL call policy; vLLM refuses a prompt holding more images than
    ``limit_images``, so a rollout must not be able to collect more.
    """
    key = "actor_rollout_ref.rollout.multi_turn.max_parallel_calls"
    policy = settings.profile_spec.rl_calls
    parallel = 1 if max_parallel_calls is None else int(max_parallel_calls)
    problems = []
    cap = call_cap(policy)
    if cap is not None and parallel != cap:
        problems.append(
            f"{key}={parallel} but the zoom tool's profile {settings.profile!r} runs "
            f"{policy!r} call(s) of a turn; set it to {cap}"
        )
    if cap is None and parallel < 2:
        problems.append(
            f"{key}={parallel} but the zoom tool's profile {settings.profile!r} runs every "
            "call of a turn; set it well above the calls a turn can hold (e.g. 64)"
        )
    if limit_images is not None:
        turns = max(1, int(max_assistant_turns or 1) - 1)  # the last turn's calls never run
        most = settings.max_images or 1 + turns * (cap or parallel)
        if most > int(limit_images):
            problems.append(
                f"actor_rollout_ref.rollout.limit_images={limit_images} but a rollout can hold "
                f"{most} images; raise it, or cap them with max_images in the tool YAML"
            )
    return problems
