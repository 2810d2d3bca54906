"""YAML syntax errors as one line a user can act on: the file, the line, the column, the fix.

OmegaConf and Hydra let PyYAML's parser errors through as multi-line tracebacks ("while
parsing a flow sequence ... expected ',' or ']'"). Recipes (SFT and RL) are checked here
first, so a typo in a recipe reads ``recipe.yaml:51:6: expected ',' or ']', but got ':'``.
"""

from __future__ import annotations

from pathlib import Path

import yaml


class YamlSyntaxError(ValueError):
    """A file that is not valid YAML; the message starts with ``FILE:LINE:COLUMN``."""


def explain(exc: yaml.YAMLError, path: str | Path) -> str:
    """``FILE:LINE:COLUMN: problem (context)`` from a PyYAML error (1-based line and column)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        problem += f" ({context} started at line {context_mark.line + 1})"
    return (
        f"{where}: not valid YAML: {problem}; fix the file there (an unclosed [ or {{, a "
        "missing space after ':', or a tab used for indentation are the usual causes)"
    )


def check_yaml(path: str | Path) -> None:
    """Raise ``YamlSyntaxError`` when ``path`` does not parse (structure only, no values)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlSyntaxError(
            f"{path}: not UTF-8 text (byte offset {exc.start}); save the file as UTF-8"
        ) from None
    try:
        yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(explain(exc, path)) from None
