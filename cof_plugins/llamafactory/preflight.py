"""Checks ``cof sft`` runs before training, so bad data fails in seconds, not hours.

LLaMA-Factory drops malformed rows with a warning, raises deep inside a worker when images
and ``<image>`` placeholders disagree, and truncates over-long rows while keeping their
images, which ends in "Image features and image tokens do not match" mid-epoch. Each check
here names the row (dataset name and index) and says what to fix.

Lengths are exact for CoF templates: the text is rendered with the canonical chat template
(which the CoF templates reproduce token for token) and each image adds the token count of
its frame (``core.frame.image_tokens``), which the CoF multimodal plugin guarantees.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cof_plugins.core.frame import PixelBudget, image_tokens

log = logging.getLogger(__name__)

IMAGE = "<image>"
# LLaMA-Factory's defaults when a recipe leaves these out.
DEFAULTS = {"cutoff_len": 2048, "image_min_pixels": 32 * 32, "image_max_pixels": 768 * 768}
_SHOWN = 10


class PreflightError(ValueError):
    """The config or data would fail (or silently mistrain) in LLaMA-Factory."""


@dataclass(frozen=True)
class Problem:
    dataset: str
    row: int
    message: str

    def __str__(self) -> str:
        return f"{self.dataset} row {self.row}: {self.message}"


@dataclass(frozen=True)
class Columns:
    """Where a sharegpt entry keeps its fields (dataset_info ``columns`` and ``tags``)."""

    messages: str = "conversations"
    images: str | None = None
    role: str = "from"
    content: str = "value"
    system: str = "system"
    odd: tuple[str, ...] = ("human", "observation")
    even: tuple[str, ...] = ("gpt", "function_call")

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> Columns:
        cols, tags = entry.get("columns", {}), entry.get("tags", {})
        return cls(
            messages=cols.get("messages", "conversations"),
            images=cols.get("images"),
            role=tags.get("role_tag", "from"),
            content=tags.get("content_tag", "value"),
            system=tags.get("system_tag", "system"),
            odd=(tags.get("user_tag", "human"), tags.get("observation_tag", "observation")),
            even=(tags.get("assistant_tag", "gpt"), tags.get("function_tag", "function_call")),
        )


def check_template(config: dict[str, Any]) -> None:
    """The template must exist after ``register()``; CoF masking needs whole turns."""
    from llamafactory.data.template import TEMPLATES

    from cof_plugins.llamafactory.templates import MASKVIS_SUFFIX, template_names

    name = config.get("template")
    if not name:
        raise PreflightError(f"the recipe sets no template; use one of {template_names()}")
    if name not in TEMPLATES:
        raise PreflightError(
            f"template={name!r} does not exist in LLaMA-Factory; CoF templates: {template_names()}"
        )
    if name.endswith(MASKVIS_SUFFIX) and config.get("mask_history"):
        raise PreflightError(
            f"template={name!r} cannot be combined with mask_history=true "
            "(it splits assistant turns); drop mask_history"
        )


def dataset_entries(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, dataset_info entry) for every training dataset that is a local file."""
    names = config.get("dataset") or []
    names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    info_path = Path(config.get("dataset_dir", "data")) / "dataset_info.json"
    if not names:
        raise PreflightError("the recipe sets no dataset; add dataset: cof_sft")
    if not info_path.is_file():
        raise PreflightError(
            f"dataset_dir has no dataset_info.json ({info_path}); use "
            "dataset_dir=cof:/path/to/data for the shipped CoF entry"
        )
    info = json.loads(info_path.read_text(encoding="utf-8"))
    missing = [n for n in names if n not in info]
    if missing:
        raise PreflightError(f"dataset(s) {missing} not in {info_path}; known: {sorted(info)}")
    local = [(n, info[n]) for n in names if "file_name" in info[n]]
    for name, entry in local:
        if entry.get("formatting", "alpaca") != "sharegpt":
            log.warning("pre-flight: %s is not sharegpt; its rows are not checked", name)
    return [(n, e) for n, e in local if e.get("formatting", "alpaca") == "sharegpt"]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON list or JSON-lines file (the data engine's reader)."""
    from cof_plugins.data.rows import DataFileError
    from cof_plugins.data.rows import read_rows as read_data_rows

    try:
        return read_data_rows(path)
    except DataFileError as exc:
        raise PreflightError(str(exc)) from None


def row_problems(row: dict[str, Any], cols: Columns) -> list[str]:
    """Turn order and image count problems of one sharegpt row."""
    messages = row.get(cols.messages)
    if not isinstance(messages, list) or not messages:
        return [f"no {cols.messages!r} list"]
    problems = []
    turns = messages[1:] if messages[0].get(cols.role) == cols.system else messages
    for i, msg in enumerate(turns):
        allowed = cols.odd if i % 2 == 0 else cols.even
        if msg.get(cols.role) not in allowed:
            problems.append(f"turn {i} has role {msg.get(cols.role)!r}, expected one of {allowed}")
            break
    if not turns or len(turns) % 2:
        problems.append("must end with an assistant turn (user/assistant pairs after system)")
    placeholders = sum(str(m.get(cols.content, "")).count(IMAGE) for m in messages)
    images = _images(row, cols)
    if placeholders != len(images):
        problems.append(f"{len(images)} images but {placeholders} {IMAGE} placeholders")
    return problems


def _images(row: dict[str, Any], cols: Columns) -> list[str]:
    images = row.get(cols.images) if cols.images else None
    if images is None:
        return []
    return images if isinstance(images, list) else [images]


def resolve_image(path: str, media_dir: Path) -> Path:
    """Where LLaMA-Factory will read an image: under media_dir when it exists there."""
    candidate = media_dir / path
    return candidate if candidate.is_file() else Path(path)


def recipe_budget(config: dict[str, Any]) -> PixelBudget:
    """The recipe's pixel budget (LLaMA-Factory's defaults where it sets none)."""
    return PixelBudget(
        min_pixels=int(config.get("image_min_pixels", DEFAULTS["image_min_pixels"])),
        max_pixels=int(config.get("image_max_pixels", DEFAULTS["image_max_pixels"])),
    )


def recipe_family(config: dict[str, Any]) -> str | None:
    """Model family of the recipe's template, or None for a non-CoF template."""
    from cof_plugins.llamafactory.templates import TEMPLATE_FAMILIES, family_of_template

    template = str(config.get("template", ""))
    return (
        family_of_template(template)
        if template.removesuffix("_maskvis") in TEMPLATE_FAMILIES
        else None
    )


@dataclass
class RowChecker:
    """Checks rows of one dataset; ``tokenizer`` None means lengths are left to the validator."""

    name: str
    cols: Columns
    media_dir: Path
    cutoff: int
    family: str | None
    budget: PixelBudget
    tokenizer: Any = None

    def length(self, messages: list[dict[str, Any]], paths: Sequence[Path]) -> int:
        """Exact tokens: canonical-template text plus each image's frame tokens."""
        from cof_plugins.core.chat_template import render

        text_ids = self.tokenizer.encode(
            render(_as_chat(messages, self.cols), family=self.family), add_special_tokens=False
        )
        from cof_plugins.data.frames import image_size

        extra = sum(image_tokens(image_size(p), self.family, self.budget) - 1 for p in paths)
        return len(text_ids) + extra

    def basic(self, row: dict[str, Any]) -> list[str]:
        """Turn order, image count and image files (used when no data validator is installed)."""
        problems = row_problems(row, self.cols)
        paths = [resolve_image(p, self.media_dir) for p in _images(row, self.cols)]
        return problems + [f"image {p} not found" for p in paths if not p.is_file()]

    def too_long(self, row: dict[str, Any]) -> list[str]:
        if self.tokenizer is None or self.family is None:
            return []
        paths = [resolve_image(p, self.media_dir) for p in _images(row, self.cols)]
        n = self.length(row[self.cols.messages], paths)
        if n <= self.cutoff:
            return []
        return [
            f"{n} tokens > cutoff_len {self.cutoff} (LLaMA-Factory would truncate the text "
            "but keep every image, then fail); drop the row or raise cutoff_len"
        ]


def load_tokenizer(config: dict[str, Any]):
    """The model's tokenizer, or None (lengths then fall back to the validator's estimate)."""
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(config["model_name_or_path"])
    except Exception as exc:  # hub ids offline, gated models: training will say more
        log.warning("exact length check skipped: cannot load the tokenizer (%s)", exc)
        return None


def _as_chat(messages: list[dict[str, Any]], cols: Columns) -> list[dict[str, str]]:
    roles = {cols.system: "system", cols.odd[0]: "user", cols.odd[1]: "tool"}
    return [
        {"role": roles.get(m.get(cols.role), "assistant"), "content": str(m.get(cols.content, ""))}
        for m in messages
    ]


def check_rows(rows: list[dict[str, Any]], checker: RowChecker) -> list[Problem]:
    """Every problem of one dataset's rows, by row index."""
    found = _validator_findings(rows, checker)
    problems = [] if found is None else found
    failed = {p.row for p in problems}
    for index, row in enumerate(rows):
        messages = [] if found is not None else checker.basic(row)
        if not messages and index not in failed:
            messages = checker.too_long(row)
        problems += [Problem(checker.name, index, m) for m in messages]
    return sorted(problems, key=lambda p: p.row)


def _validator_findings(rows: list[dict[str, Any]], checker: RowChecker) -> list[Problem] | None:
    """Errors from ``cof_plugins.data.validate.validate_rows``; None when it cannot run here."""
    try:
        from cof_plugins.data.validate import errors, validate_rows
    except ImportError:
        return None
    from cof_plugins.llamafactory.config import shipped_dataset_info

    canonical = checker.cols == Columns.from_entry(shipped_dataset_info()["cof_sft"])
    if not canonical or checker.family is None:
        return None
    findings = validate_rows(
        rows,
        image_dir=checker.media_dir,
        family=checker.family,
        budget=checker.budget,
        cutoff_len=None if checker.tokenizer is not None else checker.cutoff,
    )
    warnings = len(findings) - len(errors(findings))
    if warnings:
        log.warning(
            "%s: %d data warning(s); run `cof data validate` to see them", checker.name, warnings
        )
    return [
        Problem(checker.name, -1 if f.row is None else f.row, f"[{f.code}] {f.message}")
        for f in errors(findings)
    ]


def run_preflight(config: dict[str, Any]) -> int:
    """Run every check; raise ``PreflightError`` listing the problems. Returns rows checked."""
    check_template(config)
    family, budget = recipe_family(config), recipe_budget(config)
    tokenizer = load_tokenizer(config) if family else None
    media_dir = Path(config.get("media_dir") or config.get("dataset_dir", "data"))
    cutoff = int(config.get("cutoff_len", DEFAULTS["cutoff_len"]))
    problems: list[Problem] = []
    total = 0
    for name, entry in dataset_entries(config):
        rows = read_rows(Path(config.get("dataset_dir", "data")) / entry["file_name"])
        checker = RowChecker(
            name, Columns.from_entry(entry), media_dir, cutoff, family, budget, tokenizer
        )
        problems += check_rows(rows, checker)
        total += len(rows)
    if problems:
        shown = "\n  ".join(str(p) for p in problems[:_SHOWN])
        more = f"\n  ... and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise PreflightError(f"{len(problems)} problem(s) in the training data:\n  {shown}{more}")
    return total
