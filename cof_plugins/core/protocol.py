"""Protocols: the text a CoF model is shown, as YAML data (presets or a team's own file).

A protocol fixes the system/tool preamble, how a question is written (options, wrapper), and
the suffix sent after the question and after every crop. SFT data, RL prompts and eval all
build their messages through ``Protocol`` so the three stages show identical text.

``load_protocol(spec)`` takes a shipped preset name (``data_templates/protocols/*.yaml``:
``unified``, ``paper-eval``, ``paper-rl``) or a path to a YAML file of the user's own (a
spec ending in .yaml/.yml or holding a path separator; relative to the working directory).
The package keeps its own wording; a team that needs the release's exact prompt strings
writes them in its own file, usually ``inherit: unified`` plus the keys it changes. Every
``--protocol`` and every recipe's ``protocol:`` key goes through here. A file path that does
not exist is an error, never a fallback to a preset of the same name.

A file is checked before anything uses it; errors name the file and the key: an unknown key
(with the closest valid one), a missing required key, a wrong type, a bad ``inherit`` (not a
preset or file, or a cycle), a template whose placeholders are malformed or unknown
(``system`` must hold ``{tools}``, ``question`` must hold ``{question}``, literal braces are
doubled) and a placeholder in a key that is shown verbatim. ``inherit`` names a preset or a
file relative to the inheriting file; keys override the inherited ones, ``wrappers`` and
``extra`` key by key; ``name`` (default: the file's stem) and ``description`` are never
inherited.

Other methods on this plugin layer (SIFThinker: ``sifthinker``; Chain-of-Spot:
``chain-of-spot``, ``chain-of-spot-native``) ship presets here too. Such a preset names its
method in ``extra.method`` (CoF when absent), keeps the method's own keys under ``extra``
(checked by that method's code, e.g. ``core.cos``), and has ``tool_schema: {}`` when the
method calls no tool; its ``system`` then need not hold ``{tools}`` (decided on the merged
keys, so a file inheriting such a preset need not repeat it).
``available_protocols(method="cof")`` lists the presets CoF code reads.

Caching, decided: a loaded protocol is kept in memory per file, and every ``load_protocol``
call compares the file's (and its inherited files') modification time, size and inode with
what was read, so an edited file is re-read on the next call: no process serves a stale
text to a new caller. What must not change mid-run is pinned by the caller: the eval loop
loads its protocol once per run and ``cof eval`` records ``Protocol.digest`` in run.json, so a
resume with an edited file is refused; SFT data and RL parquets hold the text they were built
with. ``Protocol`` objects are immutable: one already handed out never changes.

Messages use the canonical layout shared by LLaMA-Factory's sharegpt format and verl's
RLHFDataset: ``{"role": ..., "content": str}`` with ``<image>`` placeholders.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import string
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cof_plugins.assets import data_templates_dir

IMAGE_PLACEHOLDER = "<image>"
TOOL_NAME = "image_zoom_in_tool"
DEFAULT_PROTOCOL = "unified"
DEFAULT_METHOD = "cof"
_KEYS = (
    "name", "description", "inherit", "tool_schema", "system", "question", "options_header",
    "wrappers", "user_suffix", "wrapper_position", "extra",
)  # fmt: skip
_REQUIRED = ("tool_schema", "system", "question", "options_header", "wrappers", "user_suffix")
_TEXT_KEYS = (
    "name",
    "description",
    "inherit",
    "system",
    "question",
    "options_header",
    "user_suffix",
)
_NOT_INHERITED = ("name", "description")
_POSITIONS = ("after_question", "before_suffix")
_KINDS = ("multiple_choice", "open", "math")
# Templates and the one placeholder each must hold; every other key is shown verbatim.
_TEMPLATES = {"system": "tools", "question": "question"}


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
    # Method-specific keys (``extra.method`` names the method, "cof" when absent), read by
    # that method's own code, e.g. ``core.cos`` for Chain-of-Spot.
    extra: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the YAML file it was read from
    digest: str = ""  # sha256 of everything the model is shown (name and description aside)

    @property
    def system(self) -> str:
        """The system prompt with the tool schema filled in (a tool-less one has none)."""
        return self.system_template.format(tools=json.dumps(self.tool_schema, ensure_ascii=False))

    @property
    def method(self) -> str:
        """The method whose code reads this protocol: "cof" unless ``extra.method`` says."""
        return str(self.extra.get("method", DEFAULT_METHOD))

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
        suffix = "\n" + self.user_suffix if self.user_suffix else ""
        if self.wrapper_position == "before_suffix":
            return "\n".join(parts) + "\n" + wrapper + suffix
        return "\n".join([*parts, wrapper]) + suffix

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


class ProtocolError(ValueError):
    """A protocol that cannot be used; the message names the file and the key."""


def protocols_dir() -> Path:
    return data_templates_dir() / "protocols"


def available_protocols(method: str | None = None) -> list[str]:
    """Names of the shipped presets; with ``method``, only those that method reads."""
    names = sorted(p.stem for p in protocols_dir().glob("*.yaml"))
    if method is None:
        return names
    return [n for n in names if load_protocol(n).method == method]


def is_protocol_file(spec: str | os.PathLike) -> bool:
    """True when ``spec`` names a file rather than a preset (a .yaml/.yml or a path)."""
    text = os.fspath(spec)
    return isinstance(spec, os.PathLike) or text.endswith((".yaml", ".yml")) or "/" in text


def protocol_path(spec: str | os.PathLike, *, base: Path | None = None) -> Path:
    """The YAML file behind ``spec``: a user's file (relative to ``base`` or the working
    directory), or a shipped preset's."""
    if is_protocol_file(spec):
        path = Path(os.path.abspath((base or Path.cwd()) / Path(spec).expanduser()))
        if not path.is_file():
            raise ProtocolError(
                f"protocol file {os.fspath(spec)!r} not found (looked at {path}); pass an "
                f"existing YAML file or a shipped preset: {', '.join(available_protocols())}"
            )
        return path
    path = protocols_dir() / f"{spec}.yaml"
    if not spec or not path.is_file():
        raise ProtocolError(
            f"unknown protocol {spec!r}{_hint(str(spec), available_protocols())}; shipped "
            f"presets: {', '.join(available_protocols())}, or a path to a YAML file"
        )
    return path


_CACHE: dict[Path, tuple[tuple, Protocol]] = {}
_LOCK = threading.Lock()


def load_protocol(spec: str | os.PathLike = DEFAULT_PROTOCOL) -> Protocol:
    """The protocol of a preset name or a YAML file, checked; re-read when a file changed."""
    path = protocol_path(spec)
    with _LOCK:
        cached = _CACHE.get(path)
    if cached is not None and all(_stamp(f) == stamp for f, stamp in cached[0]):
        return cached[1]
    raw, stamps = _read_chain(path, ())
    protocol = _build(raw, path)
    with _LOCK:
        _CACHE[path] = (tuple(stamps), protocol)
    return protocol


def _stamp(file: Path) -> tuple[int, int, int] | None:
    """(mtime_ns, size, inode) of a file, None when it is gone; taken before each read, so a
    change during the read shows up as a new stamp on the next call (a re-read, never stale)."""
    try:
        st = os.stat(file)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def _read_chain(path: Path, seen: tuple[Path, ...]) -> tuple[dict[str, Any], list[tuple]]:
    """The file's keys over those it inherits, and (file, stamp) of each file read."""
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ProtocolError(f"{seen[0]}: inherit makes a cycle: {chain}")
    stamp = _stamp(path)
    raw = _read_yaml(path)
    if "inherit" not in raw:
        return raw, [(path, stamp)]
    parent = _inherit_path(raw["inherit"], path)
    base, stamps = _read_chain(parent, (*seen, path))
    merged = {k: v for k, v in base.items() if k not in _NOT_INHERITED}
    for key, value in raw.items():
        if key in ("wrappers", "extra") and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        elif key != "inherit":
            merged[key] = value
    return merged, [(path, stamp), *stamps]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise ProtocolError(f"{path}: not valid YAML{where}: {problem}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ProtocolError(
            f"{path}: a protocol file is a mapping of keys ({', '.join(_KEYS)}); "
            f"got a {type(raw).__name__}"
        )
    _check_keys(raw, path)
    return raw


def _inherit_path(value: Any, path: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{path}: key 'inherit' must be a preset name or a file path")
    try:
        return protocol_path(value, base=path.parent)
    except ProtocolError:
        looked = path.parent / value if is_protocol_file(value) else protocols_dir() / value
        raise ProtocolError(
            f"{path}: key 'inherit': {value!r} is neither a shipped preset "
            f"({', '.join(available_protocols())}) nor a file (looked at {looked})"
        ) from None


def _check_keys(raw: dict[str, Any], path: Path) -> None:
    """Every key present in one file: known, of the right type, templates well formed."""
    for key in raw:
        if key not in _KEYS:
            raise ProtocolError(
                f"{path}: unknown key {key!r}{_hint(str(key), _KEYS)}; valid keys: "
                f"{', '.join(_KEYS)}"
            )
    for key in _TEXT_KEYS:
        if key in raw and not isinstance(raw[key], str):
            raise ProtocolError(_wrong_type(path, key, raw[key], "text"))
    # `tool_schema: {}` declares a protocol without a tool (SIFThinker): its system prompt
    # then has no {tools} to fill, and the schema no function to check.
    toolless = isinstance(raw.get("tool_schema"), Mapping) and not raw["tool_schema"]
    for key, placeholder in _TEMPLATES.items():
        if key in raw and key != "system":  # system: once merged (see _build)
            _check_template(raw[key], key, placeholder, path)
    for key in ("options_header", "user_suffix"):
        if key in raw:
            _check_verbatim(raw[key], key, path)
    if "wrappers" in raw:
        _check_wrappers(raw["wrappers"], path)
    if "tool_schema" in raw and not toolless:
        _check_tool_schema(raw["tool_schema"], path)
    if "extra" in raw:
        _check_extra(raw["extra"], path)
    position = raw.get("wrapper_position", _POSITIONS[0])
    if position not in _POSITIONS:
        raise ProtocolError(
            f"{path}: key 'wrapper_position' is {position!r}{_hint(str(position), _POSITIONS)}; "
            f"use one of {', '.join(_POSITIONS)}"
        )


def _build(raw: dict[str, Any], path: Path) -> Protocol:
    """The ``Protocol`` of the merged keys, once every required one is there."""
    missing = [k for k in _REQUIRED if k not in raw]
    wrappers = raw.get("wrappers", {})
    missing += [f"wrappers.{k}" for k in ("multiple_choice", "open") if k not in wrappers]
    if missing:
        raise ProtocolError(
            f"{path}: missing required key {missing[0]!r}; add it, or inherit a preset that "
            "has it (inherit: unified)"
        )
    # The system prompt is checked once merged: a file inheriting a tool-less preset
    # (tool_schema: {}, another method's) may set a system prompt without {tools}.
    toolless = isinstance(raw["tool_schema"], Mapping) and not raw["tool_schema"]
    _check_template(raw["system"], "system", "tools", path, required=not toolless)
    shown = {k: raw.get(k) for k in (*_REQUIRED, "wrapper_position")}
    if raw.get("extra"):  # method keys are shown too; CoF presets (none) keep their digest
        shown["extra"] = raw["extra"]
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True).encode("utf-8")).hexdigest()
    return Protocol(
        name=raw.get("name") or path.stem, description=raw.get("description", ""),
        tool_schema=raw["tool_schema"], system_template=raw["system"], question=raw["question"],
        options_header=raw["options_header"], wrappers=dict(raw["wrappers"]),
        user_suffix=raw["user_suffix"].strip(),
        wrapper_position=raw.get("wrapper_position", _POSITIONS[0]),
        extra=dict(raw.get("extra") or {}), source=str(path), digest=digest,
    )  # fmt: skip


def check_template(text: str, key: str, placeholder: str, path: Path | str) -> None:
    """A method's own template key (e.g. ``core.cos``'s ``extra.roi_request``) checked the
    way this module checks ``question``: ``{placeholder}`` and no other field."""
    _check_template(text, key, placeholder, path)  # type: ignore[arg-type]


def _check_template(
    text: str, key: str, placeholder: str, path: Path, *, required: bool = True
) -> None:
    """``text`` must hold ``{placeholder}`` (unless not ``required``) and no other field;
    literal braces doubled."""
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text)]
    except ValueError as exc:
        raise ProtocolError(
            f"{path}: key {key!r} is a malformed template ({exc}); write a literal brace as "
            "{{ or }}"
        ) from None
    for name, spec, conv in fields:
        if name is None:
            continue
        if name != placeholder:
            raise ProtocolError(
                f"{path}: key {key!r} has the placeholder {{{name}}}"
                f"{_hint(name, [placeholder], braces=True)}; it may only hold {{{placeholder}}}"
                " (write a literal brace as {{ or }})"
            )
        if spec or conv:
            raise ProtocolError(f"{path}: key {key!r}: write {{{placeholder}}} plainly")
    if required and not any(name == placeholder for name, _, _ in fields):
        raise ProtocolError(f"{path}: key {key!r} must hold {{{placeholder}}}")


def _check_verbatim(text: Any, key: str, path: Path) -> None:
    if not isinstance(text, str):
        raise ProtocolError(_wrong_type(path, key, text, "text"))
    for placeholder in _TEMPLATES.values():
        if "{" + placeholder + "}" in text:
            raise ProtocolError(
                f"{path}: key {key!r} is shown as written, so {{{placeholder}}} would reach the "
                f"model literally; only {', '.join(_TEMPLATES)} are templates"
            )


def _check_wrappers(value: Any, path: Path) -> None:
    if not isinstance(value, Mapping):
        raise ProtocolError(_wrong_type(path, "wrappers", value, "a mapping kind -> text"))
    for kind, text in value.items():
        if kind not in _KINDS:
            raise ProtocolError(
                f"{path}: key 'wrappers.{kind}' is not a question kind"
                f"{_hint(str(kind), _KINDS)}; kinds: {', '.join(_KINDS)}"
            )
        _check_verbatim(text, f"wrappers.{kind}", path)


def _check_tool_schema(schema: Any, path: Path) -> None:
    function = schema.get("function") if isinstance(schema, Mapping) else None
    if not isinstance(function, Mapping) or schema.get("type") != "function":
        raise ProtocolError(
            f"{path}: key 'tool_schema' must be a mapping with type: function and a "
            "function: {name, description, parameters} mapping (OpenAI's tool schema)"
        )
    if function.get("name") != TOOL_NAME:
        raise ProtocolError(
            f"{path}: key 'tool_schema.function.name' is {function.get('name')!r}; the zoom "
            f"tool answers to {TOOL_NAME!r} only"
        )
    parameters = function.get("parameters")
    if not isinstance(parameters, Mapping):
        key = "tool_schema.function.parameters"
        raise ProtocolError(_wrong_type(path, key, parameters, "a JSON-schema mapping"))


def _check_extra(value: Any, path: Path) -> None:
    """``extra`` is a mapping of method-specific keys; ``extra.method`` is text when given."""
    if not isinstance(value, Mapping):
        raise ProtocolError(_wrong_type(path, "extra", value, "a mapping of method keys"))
    if "method" in value and not isinstance(value["method"], str):
        raise ProtocolError(_wrong_type(path, "extra.method", value["method"], "text"))


def _wrong_type(path: Path, key: str, value: Any, expected: str) -> str:
    return f"{path}: key {key!r} must be {expected}, got {type(value).__name__} {value!r:.60}"


def _hint(name: str, valid: Sequence[str], *, braces: bool = False) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1)
    if not close:
        return ""
    return f" (did you mean {{{close[0]}}}?)" if braces else f" (did you mean {close[0]!r}?)"
