"""Check recipe values against the types LLaMA-Factory's argument dataclasses declare.

LLaMA-Factory hands a YAML config to ``HfArgumentParser.parse_dict``, which builds the
dataclasses without converting or checking types: ``learning_rate=abc`` becomes the string
"abc" and fails deep inside the optimiser, after the model has loaded. Numbers, booleans and
fixed choices are checked here first, naming the key, the value and the expected type.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

_KINDS = {bool: "true or false", int: "an integer such as 8", float: "a number such as 2e-5"}


@lru_cache(maxsize=1)
def _fields() -> dict[str, Any]:
    """Field name -> declared type over the five argument classes ``get_train_args`` parses."""
    from llamafactory.hparams import (
        DataArguments,
        FinetuningArguments,
        GeneratingArguments,
        ModelArguments,
        TrainingArguments,
    )

    out: dict[str, Any] = {}
    for cls in (ModelArguments, DataArguments, TrainingArguments, FinetuningArguments,
                GeneratingArguments):  # fmt: skip
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            out.setdefault(f.name, hints.get(f.name, f.type))
    return out


def _options(tp: Any) -> tuple[set[type], tuple | None, bool]:
    """(scalar types accepted, Literal choices or None, whether None is allowed)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        scalars, choices, nullable = set(), None, type(None) in args
        for arg in args:
            s, c, _ = _options(arg)
            scalars |= s
            choices = c if choices is None else (choices + (c or ()))
        return scalars, choices, nullable
    if origin is typing.Literal:
        return set(), args, False
    if tp in _KINDS:
        return {tp}, None, False
    return {object}, None, False  # anything else: not checked here


def _fits(value: Any, scalars: set[type], choices: tuple | None) -> bool:
    if object in scalars:
        return True
    if choices is not None and value in choices:
        return True
    if bool in scalars and isinstance(value, bool):
        return True
    if int in scalars and isinstance(value, int) and not isinstance(value, bool):
        return True
    return float in scalars and isinstance(value, int | float) and not isinstance(value, bool)


def type_problems(config: Mapping[str, Any]) -> list[str]:
    """One message per key whose value LLaMA-Factory would take with the wrong type."""
    fields, problems = _fields(), []
    for key, value in config.items():
        if key not in fields:
            continue  # unknown keys are LLaMA-Factory's parser's to report
        scalars, choices, nullable = _options(fields[key])
        if (value is None and nullable) or _fits(value, scalars, choices):
            continue
        if scalars and object not in scalars:
            want = _KINDS[max(scalars, key=lambda t: t is float)]
        else:
            want = "one of " + ", ".join(repr(c) for c in choices or ())
        problems.append(f"{key}={value!r}: LLaMA-Factory expects {want}")
    return problems
