"""Protocol presets: the text a CoF model is shown, as data in ``data_templates/protocols``.

A preset fixes the system/tool preamble, how a question is written (options, wrapper), and
the suffix sent after the question and after every crop. SFT data, RL prompts and eval all
build their messages through ``Protocol`` so the three stages show identical text.

Messages use the canonical layout shared by LLaMA-Factory's sharegpt format and verl's
RLHFDataset: ``{"role": ..., "content": str}`` with ``<image>`` placeholders.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from cof_plugins.assets import data_templates_dir

IMAGE_PLACEHOLDER = "<image>"
TOOL_NAME = "image_zoom_in_tool"
DEFAULT_PROTOCOL = "unified"
_KEYS = {
    "name", "description", "inherit", "tool_schema", "system", "question", "options_header",
    "wrappers", "user_suffix", "wrapper_position", "extra",
}  # fmt: skip


@dataclass(frozen=True)
class Protocol:
    """One named protocol variant (see ``data_templates/protocols/*.yaml``)."""

    name: str
    description: str
    tool_schema: dict[str, Any]
    system_template: str
    question: str
    options_header: str
    wrappers: dict[str, str]
    user_suffix: str
    wrapper_position: str = "after_question"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def system(self) -> str:
        """The system prompt with the tool schema filled in."""
        return self.system_template.format(tools=json.dumps(self.tool_schema, ensure_ascii=False))

    def question_text(
        self, question: str, options: Sequence[str] | None = None, kind: str | None = None
    ) -> str:
        """The user's text for a question: question, lettered options, wrapper, suffix."""
        kind = kind or ("multiple_choice" if options else "open")
        if kind not in self.wrappers:
            raise ValueError(
                f"protocol {self.name!r} has no wrapper for question kind {kind!r}; "
                f"known kinds: {', '.join(sorted(self.wrappers))}"
            )
        parts = [self.question.format(question=question.strip())]
        if options:
            parts.append(self.options_header)
            labels = letters(len(options))
            parts.extend(f"({letter}) {opt}" for letter, opt in zip(labels, options, strict=True))
        wrapper = self.wrappers[kind]
        if self.wrapper_position == "before_suffix":
            return "\n".join(parts) + "\n" + wrapper + "\n" + self.user_suffix
        return "\n".join([*parts, wrapper]) + "\n" + self.user_suffix

    def first_user_turn(
        self, question: str, options: Sequence[str] | None = None, kind: str | None = None
    ) -> str:
        return IMAGE_PLACEHOLDER + "\n" + self.question_text(question, options, kind)

    def crop_user_turn(self, n_images: int = 1) -> str:
        """The user turn that returns crops: the image(s), then the suffix again."""
        return IMAGE_PLACEHOLDER * n_images + "\n" + self.user_suffix

    def prompt_messages(
        self, question: str, options: Sequence[str] | None = None, kind: str | None = None
    ) -> list[dict[str, str]]:
        """System and first user message of a conversation."""
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.first_user_turn(question, options, kind)},
        ]


def letters(n: int) -> list[str]:
    """Option letters A, B, C, ... for ``n`` options."""
    if n > len(string.ascii_uppercase):
        raise ValueError(f"at most 26 options are supported, got {n}")
    return list(string.ascii_uppercase[:n])


def protocols_dir() -> Path:
    return data_templates_dir() / "protocols"


def available_protocols() -> list[str]:
    return sorted(p.stem for p in protocols_dir().glob("*.yaml"))


def _read_preset(name: str) -> dict[str, Any]:
    path = protocols_dir() / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(f"unknown protocol {name!r}; available: {', '.join(available_protocols())}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(raw) - _KEYS
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; valid keys: {sorted(_KEYS)}")
    if "inherit" in raw:
        base = _read_preset(raw["inherit"])
        base.update({k: v for k, v in raw.items() if k != "inherit"})
        return base
    return raw


@lru_cache(maxsize=16)
def load_protocol(name: str = DEFAULT_PROTOCOL) -> Protocol:
    """Load a named preset (``unified``, ``paper-eval``, ``paper-rl``, ...)."""
    raw = _read_preset(name)
    return Protocol(
        name=raw["name"],
        description=raw.get("description", ""),
        tool_schema=raw["tool_schema"],
        system_template=raw["system"],
        question=raw["question"],
        options_header=raw["options_header"],
        wrappers=dict(raw["wrappers"]),
        user_suffix=raw["user_suffix"].strip(),
        wrapper_position=raw.get("wrapper_position", "after_question"),
        # Method-specific strings (e.g. SIFThinker's image labels), read by that method's code.
        extra=dict(raw.get("extra") or {}),
    )
