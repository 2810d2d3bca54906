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
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

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
    """A recipe file by path, or by name among the recipes shipped in ``recipes/rl``."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path.resolve()
    from cof_plugins.assets import recipes_dir

    shipped = recipes_dir() / "rl"
    for candidate in (shipped / path.name, shipped / f"{path.name}.yaml"):
        if candidate.is_file():
            return candidate.resolve()
    names = sorted(p.stem for p in shipped.glob("*.yaml"))
    raise RecipeError(
        f"recipe {str(name_or_path)!r} is neither a file nor a shipped recipe; "
        f"shipped recipes: {', '.join(names)}"
    )


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
