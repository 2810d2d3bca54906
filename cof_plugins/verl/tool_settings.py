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
from cof_plugins.core.protocol import DEFAULT_PROTOCOL, load_protocol
from cof_plugins.core.zoom import DEFAULT_MAX_IMAGE_PIXELS, ZoomConfig

# Keys verl itself reads from the block.
_VERL_KEYS = {"type"}


@dataclass(frozen=True)
class ToolSettings:
    """Everything the zoom tool needs besides the per-trajectory ``create_kwargs``."""

    family: str = "qwen2_5_vl"
    # Box convention the model writes; None means the family's own (core.frame.FAMILIES).
    coords: str | None = None
    # Protocol whose suffix follows every crop (same text as the SFT data): a preset name or
    # a YAML file of your own (an absolute path is safest: Ray workers resolve a relative
    # one against their own working directory).
    protocol: str = DEFAULT_PROTOCOL
    # ZoomConfig fields; ``factor`` defaults to the family's (28 Qwen2.5-VL, 32 Qwen3-VL).
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

    @property
    def convention(self) -> str:
        return self.coords or get_family(self.family).coords

    def zoom_config(self) -> ZoomConfig:
        return ZoomConfig.for_family(self.family, **self.zoom)


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
