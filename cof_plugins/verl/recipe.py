"""Compose an RL recipe over verl's own config schema, as ``main_ppo`` would, and check its keys.

A recipe is a Hydra delta file: ``defaults: [ppo_trainer, _self_]`` with
``hydra.searchpath: [pkg://verl.trainer.config]``. Hydra rejects an unknown key given on the
command line, but silently ADDS an unknown key written in the recipe file itself (a typo such
as ``mutli_turn`` would just be ignored by verl). ``unknown_recipe_keys`` closes that gap by
checking every key the recipe writes against the schema, and every error names the key and
its closest valid spellings.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from cof_plugins.core.yaml_file import YamlSyntaxError, check_yaml, explain

VERL_CONFIG_MODULE = "verl.trainer.config"
BASE_CONFIG = "ppo_trainer"
# Recipes leave the search path to the composer: Hydra refuses ``hydra.searchpath`` in any
# file but the primary one, and recipe variants build on other recipes through ``defaults``.
# The shipped recipes folder is on it too, so a recipe anywhere can build on a shipped one
# and take the shipped overlays (``+overlays=smoke``).


def _searchpath() -> str:
    from cof_plugins.assets import recipes_dir

    return f"hydra.searchpath=[pkg://{VERL_CONFIG_MODULE},file://{recipes_dir() / 'rl'}]"


# Subtrees whose keys are free-form by design (passed through to Ray, vLLM, the reward fn...).
FREE_FORM = (
    "ray_kwargs.ray_init",
    "reward.custom_reward_function.reward_kwargs",
    "actor_rollout_ref.rollout.engine_kwargs",
    "actor_rollout_ref.model.override_config",
    "data.apply_chat_template_kwargs",
    "data.mm_processor_kwargs",
    "trainer.v1.sampler.sampler_kwargs",
)
_HYDRA_KEYS = ("defaults", "hydra")
_QUOTED_KEY = re.compile(r"'([A-Za-z0-9_.+~@/-]+)'")


class RecipeError(ValueError):
    """A recipe or override that cannot be composed; the message says which key and why."""


def find_recipe(name_or_path: str | Path) -> Path:
    """A recipe file by path, or by name among the recipes shipped in ``recipes/rl``.

    Anything that looks like a path (a folder separator or a ``.yaml`` suffix) must exist:
    ``/elsewhere/tiny_cpu.yaml`` never falls back to the shipped ``tiny_cpu``. The file is
    checked as YAML first, so a syntax error names its line and column.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return _checked(path.resolve())
    from cof_plugins.assets import recipes_dir

    shipped = recipes_dir() / "rl"
    names = sorted(p.stem for p in shipped.glob("*.yaml"))
    text = str(name_or_path)
    if "/" in text or os.sep in text or path.suffix in (".yaml", ".yml"):
        same = f"; the shipped recipe of that name is `{path.stem}`" if path.stem in names else ""
        raise RecipeError(f"recipe file {text!r} does not exist{same}; check the path")
    candidate = shipped / f"{path.name}.yaml"
    if candidate.is_file():
        return _checked(candidate.resolve())
    raise RecipeError(
        f"recipe {text!r} is neither a file nor a shipped recipe; "
        f"shipped recipes: {', '.join(names)}"
    )


def _checked(path: Path) -> Path:
    try:
        check_yaml(path)
    except YamlSyntaxError as exc:
        raise RecipeError(str(exc)) from None
    return path


def compose_recipe(recipe: str | Path, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``recipe`` plus Hydra ``overrides`` over verl's config (nothing is resolved)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    path = find_recipe(recipe)
    try:
        with initialize_config_dir(config_dir=str(path.parent), version_base=None):
            return compose(config_name=path.stem, overrides=[_searchpath(), *overrides])
    except (HydraException, OmegaConfBaseException) as exc:
        raise RecipeError(_explain(exc, path)) from exc
    except yaml.YAMLError as exc:  # a file the recipe's defaults name (the recipe is checked)
        raise RecipeError(explain(exc, getattr(exc.problem_mark, "name", path))) from None


@lru_cache(maxsize=1)
def base_config() -> DictConfig:
    """verl's own ``ppo_trainer`` config, the schema every recipe key must exist in."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module=VERL_CONFIG_MODULE, version_base=None):
        return compose(config_name=BASE_CONFIG)


def unknown_recipe_keys(recipe: str | Path) -> list[str]:
    """One message per key the recipe file writes that verl's schema does not have."""
    path = find_recipe(recipe)
    raw = _tree(OmegaConf.load(path))
    base = base_tree()
    problems = []
    for key in _leaf_keys(raw):
        if key.split(".")[0] in _HYDRA_KEYS or _known(base, key):
            continue
        problems.append(f"{path.name}: unknown key {key!r}{_suggest(base, key)}")
    return problems


def wrong_types(config: DictConfig) -> list[str]:
    """One message per value whose kind differs from verl's default for that key.

    Hydra takes ``actor_rollout_ref.actor.optim.lr=abc`` as the string "abc"; verl would fail
    on it only once its workers build their optimisers. A key whose default is a number must
    hold a number, and one whose default is true/false a boolean.
    """
    base, problems = base_tree(), []
    for key, value in _leaves(_tree(config)):
        default = lookup(base, key)
        if isinstance(value, str) and value.startswith("${"):
            continue  # an interpolation, resolved later
        if isinstance(default, bool) and not isinstance(value, bool):
            problems.append(f"{key}={value!r}: verl expects true or false (default {default})")
        elif _number(default) and not _number(value) and value is not None:
            problems.append(f"{key}={value!r}: verl expects a number (default {default!r})")
    return problems


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    elif prefix:
        yield prefix.rstrip("."), node


def lookup(tree: dict[str, Any], key: str) -> Any:
    """The value at dotted ``key`` of a plain nested dict, None where a part is missing."""
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _tree(config: DictConfig) -> dict[str, Any]:
    """Plain containers as written: interpolations stay ``${...}`` text, missing values ``???``.

    Walking the schema must neither resolve interpolations (they may name resolvers or keys
    that only exist at run time) nor trip over mandatory ``???`` values.
    """
    tree = OmegaConf.to_container(config, resolve=False, throw_on_missing=False)
    assert isinstance(tree, dict)
    return tree


@lru_cache(maxsize=1)
def base_tree() -> dict[str, Any]:
    """``base_config()`` as plain containers, for key look-ups."""
    return _tree(base_config())


def _leaf_keys(node: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(node, dict) and len(node) > 0:
        for key, value in node.items():
            yield from _leaf_keys(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


def _known(base: dict[str, Any], key: str) -> bool:
    if any(key == p or key.startswith(p + ".") for p in FREE_FORM):
        return True
    parts = key.split(".")
    node: Any = base
    for i, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
            if not isinstance(node, dict | list):
                return i == len(parts) - 1  # a scalar cannot have children
            continue
        if isinstance(node, dict) and len(node) == 0:
            return True  # an empty mapping in the schema is free-form
        return i == len(parts) - 1 and _dataclass_field(node, part)
    return True


def _dataclass_field(node: Any, name: str) -> bool:
    """A key verl's dataclass accepts though its YAML omits it (e.g. rollout.limit_images)."""
    target = node.get("_target_") if isinstance(node, dict) else None
    if not target:
        return False
    module, _, cls_name = str(target).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError):
        return False
    return dataclasses.is_dataclass(cls) and name in {f.name for f in dataclasses.fields(cls)}


def _suggest(base: dict[str, Any], key: str) -> str:
    """' (did you mean ...?)' from the siblings at the deepest level that exists."""
    parts = key.split(".")
    node: Any = base
    depth = 0
    while depth < len(parts) and isinstance(node, dict) and parts[depth] in node:
        node = node[parts[depth]]
        depth += 1
    if not isinstance(node, dict) or depth >= len(parts):
        return ""
    prefix = ".".join(parts[:depth])
    close = difflib.get_close_matches(parts[depth], [str(k) for k in node], n=3)
    if not close:
        return f" (no such key under {prefix or 'the top level'!r})"
    names = ", ".join(repr(f"{prefix}.{c}" if prefix else c) for c in close)
    return f" (did you mean {names}?)"


def _explain(exc: Exception, recipe: Path) -> str:
    """Hydra's message plus the closest valid keys for the key it names."""
    message = str(exc).strip()
    match = _QUOTED_KEY.search(message)
    if match:
        key = match.group(1).lstrip("+~")
        hint = _suggest(base_tree(), key)
        if hint:
            message = f"{message}\n{key}:{hint}"
    return f"cannot compose {recipe.name}: {message}"


def resolve(config: DictConfig) -> DictConfig:
    """Resolve every interpolation in place (the CoF resolvers are registered first)."""
    from cof_plugins.verl.registration import register

    register()
    OmegaConf.resolve(config)
    return config


def select(config: DictConfig, key: str, default: Any = None) -> Any:
    """``OmegaConf.select`` that tolerates missing (``???``) values."""
    return OmegaConf.select(config, key, default=default, throw_on_missing=False)
