"""Register CoF with verl in every process, through routes verl 0.9.1 itself provides.

Routes into a process (checked against verl 0.9.1's ``verl/__init__.py``):

- Entry point (default). ``import verl`` loads every ``verl.plugins`` entry point; ours names
  ``cof_plugins.verl.autoload``, whose import calls ``register()``. This covers the driver,
  the TaskRunner, agent-loop, reward-loop and FSDP workers, as long as cof-plugins is
  pip-installed on every node. ``VERL_USE_EXTERNAL_PLUGINS`` selects entry points:
  ``auto`` (default, all), ``none``, or a comma list of entry-point names (ours is ``cof``).
  verl swallows load errors at DEBUG level, so ``autoload`` logs them itself.
- Ray runtime env. When the code ships with Ray (``py_modules`` / ``working_dir``) instead of
  being installed, there is no entry point; set ``VERL_USE_EXTERNAL_MODULES`` (a comma list
  of modules verl imports before the entry points) on every worker:
  ``+ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES=cof_plugins.verl.autoload``.

Tools need nothing here: the tool YAML's ``class_name: cof_plugins.verl.ZoomInTool`` is
imported lazily by verl. ``COF_ALLOW_UNTESTED_VERL=1`` lets an untested verl version through.
"""

from __future__ import annotations

import logging
import os
import threading

from cof_plugins.verl import compat

TESTED_VERL_VERSIONS = ("0.9.1",)
ALLOW_UNTESTED_ENV = "COF_ALLOW_UNTESTED_VERL"
PARSER_NAME = "cof"
ENTRY_POINT_GROUP = "verl.plugins"
EXTERNAL_MODULES_ENV = "VERL_USE_EXTERNAL_MODULES"
EXTERNAL_PLUGINS_ENV = "VERL_USE_EXTERNAL_PLUGINS"
AUTOLOAD_MODULE = "cof_plugins.verl.autoload"
# OmegaConf resolvers the recipes use, so that no recipe holds a file path or a copy of text.
CHAT_TEMPLATE_RESOLVER = "cof_chat_template"
ASSET_RESOLVER = "cof_asset"

log = logging.getLogger(__name__)
# Re-entrant: the first register() imports verl, whose entry point calls register() again.
_lock = threading.RLock()
_registered = False


def register() -> None:
    """Check the verl version, register the ``cof`` parser and the config resolvers.

    Idempotent and thread-safe; a name already taken by someone else's parser raises.
    """
    global _registered
    with _lock:
        if _registered:
            return
        check_verl_version()
        register_tool_parser()
        register_resolvers()
        compat.install()  # verl's GLM-4.1V forward under transformers 5 (see compat.py)
        _registered = True
        log.debug("cof-plugins registered with verl (parser %r)", PARSER_NAME)


def installed_verl_version() -> str:
    """verl's version, read without importing verl when possible (works mid-``import verl``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("verl")
    except PackageNotFoundError:
        import verl

        return str(verl.__version__)


def check_verl_version(found: str | None = None) -> str:
    """Refuse a verl this package was not tested with, unless the user opts in."""
    found = found or installed_verl_version()
    if found in TESTED_VERL_VERSIONS:
        return found
    tested = ", ".join(TESTED_VERL_VERSIONS)
    if os.environ.get(ALLOW_UNTESTED_ENV) == "1":
        log.warning("verl %s is untested with cof-plugins (tested: %s); going on", found, tested)
        return found
    raise RuntimeError(
        f"cof-plugins was tested with verl {tested}, but verl {found} is installed. Its plug "
        f"points (tool parser registry, agent loop, config keys) change between releases. "
        f"Install verl=={TESTED_VERL_VERSIONS[-1]}, or set {ALLOW_UNTESTED_ENV}=1 to try anyway."
    )


def register_tool_parser() -> None:
    """Put ``CofToolParser`` in verl's ToolParser registry under ``cof``."""
    from verl.experimental.agent_loop.tool_parser import ToolParser

    from cof_plugins.verl.tool_parser import CofToolParser

    existing = ToolParser._registry.get(PARSER_NAME)
    if existing is not None and _qualname(existing) != _qualname(CofToolParser):
        raise RuntimeError(
            f"tool parser name {PARSER_NAME!r} is already registered by {_qualname(existing)}; "
            f"cof-plugins needs it for {_qualname(CofToolParser)}"
        )
    ToolParser.register(PARSER_NAME)(CofToolParser)


def registered_parsers() -> list[str]:
    """Names in verl's tool-parser registry (for error messages and ``cof validate``)."""
    from verl.experimental.agent_loop.tool_parser import ToolParser

    return sorted(ToolParser._registry)


def register_resolvers() -> None:
    """``${cof_chat_template:NAME}`` -> template text; ``${cof_asset:REL}`` -> absolute path."""
    from omegaconf import OmegaConf

    for name, fn in ((CHAT_TEMPLATE_RESOLVER, chat_template_text), (ASSET_RESOLVER, asset_path)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def chat_template_text(name: str = "cof_qwen.jinja") -> str:
    """Text of a canonical chat template: recipes name it, this one place reads it."""
    from cof_plugins.core.chat_template import chat_template

    return chat_template(name)


def asset_path(relative: str) -> str:
    """Absolute path of a file shipped with cof-plugins (``recipes/...``, ``data_templates/...``).

    verl reads the tool YAML by file path; resolving it here keeps recipes free of paths
    that only hold on one machine.
    """
    from cof_plugins.assets import data_templates_dir, recipes_dir

    top, _, rest = str(relative).partition("/")
    roots = {"recipes": recipes_dir, "data_templates": data_templates_dir}
    if top not in roots or not rest:
        raise ValueError(
            f"${{{ASSET_RESOLVER}:{relative}}}: the path must start with one of "
            f"{sorted(roots)}, e.g. recipes/rl/tools/zoom_qwen2_5_vl.yaml"
        )
    path = (roots[top]() / rest).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"${{{ASSET_RESOLVER}:{relative}}}: no such file {path}")
    return str(path)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
