"""Supported base-model families: one declaration per family, one registry for all of them.

Each module here declares one ``FamilySpec`` (``qwen2_5_vl.py``, ``glm4v.py``, ...); every
host reads it, so adding a family means adding a module, its tests and its recipes.
``FAMILIES`` maps a name to its spec and fails loudly on a miss or a conflict.
"""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path

from cof_plugins.core.families.spec import (
    MAX_ASPECT_RATIO,
    ROUNDINGS,
    ChatFormat,
    Classes,
    FamilySpec,
    LlamaFactory,
    Tiny,
    Tokens,
    Vision,
    smart_resize,
    temporal_resize,
)
from cof_plugins.core.registry import Registry, RegistryError

# The declarations shipped with cof-plugins, in the order tables list them.
BUILTIN = ("qwen2_5_vl", "qwen2_vl", "qwen3_vl", "qwen3_5", "glm4v")


class FamilyRegistry(Registry[FamilySpec]):
    """The registry of families; ``FAMILIES[name]`` also works, as it did for the old dict."""

    def __getitem__(self, name: str) -> FamilySpec:
        return self.get(name)

    def unknown_message(self, name: object) -> str:
        return super().unknown_message(name).replace("; valid:", "; known families:")

    def specs(self) -> list[FamilySpec]:
        return [self.get(name) for name in self.names()]


FAMILIES = FamilyRegistry("model family")
for _name in BUILTIN:
    FAMILIES.register(_name, import_module(f"{__name__}.{_name}").SPEC)


def get_family(name: str | FamilySpec) -> FamilySpec:
    """The spec called ``name`` (a spec passes through); a miss lists the known families."""
    return name if isinstance(name, FamilySpec) else FAMILIES.get(name)


def family_of_model_type(model_type: str | None) -> FamilySpec | None:
    """The family whose checkpoints carry ``model_type`` in config.json, if any."""
    for spec in FAMILIES.specs():
        if spec.hf_model_type == model_type:
            return spec
    return None


def family_of_model_dir(path: str | Path) -> FamilySpec | None:
    """The family of a local checkpoint folder, read from its config.json (None if unknown)."""
    config = Path(path).expanduser() / "config.json"
    if not config.is_file():
        return None
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    return family_of_model_type(model_type)


def family_of_image_processor(image_processor: object) -> FamilySpec | None:
    """The first family whose image processor is ``image_processor``'s class (or its Pil twin)."""
    name = type(image_processor).__name__.removesuffix("Pil").removesuffix("Fast")
    for spec in FAMILIES.specs():
        if spec.classes.image_processor == name:
            return spec
    return None


def box_markers() -> tuple[str, ...]:
    """Every family's box/answer markers; readers drop them, writers never emit them."""
    found: list[str] = []
    for spec in FAMILIES.specs():
        for marker in spec.chat.box_markers or ():
            if marker not in found:
                found.append(marker)
    return tuple(found)


def strip_box_markers(text: str) -> str:
    """``text`` without any family's box markers (linear in its length)."""
    for marker in box_markers():
        if marker in text:
            text = text.replace(marker, "")
    return text


__all__ = [
    "BUILTIN",
    "FAMILIES",
    "MAX_ASPECT_RATIO",
    "ROUNDINGS",
    "ChatFormat",
    "Classes",
    "FamilyRegistry",
    "FamilySpec",
    "LlamaFactory",
    "RegistryError",
    "Tiny",
    "Tokens",
    "Vision",
    "box_markers",
    "family_of_image_processor",
    "family_of_model_dir",
    "family_of_model_type",
    "get_family",
    "smart_resize",
    "strip_box_markers",
    "temporal_resize",
]
