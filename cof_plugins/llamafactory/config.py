"""Recipe handling for ``cof sft``: load, override, resolve ``cof:`` names, record the run.

A recipe is a LLaMA-Factory training YAML with two conveniences, both resolved here before
LLaMA-Factory sees the config:

- ``deepspeed: cof:zero3`` names a DeepSpeed JSON shipped in ``cof_plugins/ds_configs``;
- ``dataset_dir: cof:PATH`` uses the dataset entries shipped in
  ``data_templates/dataset_info.json`` for data at PATH (a folder holding the entries'
  files, or one data file used for every entry). A resolved ``dataset_info.json`` is written
  into the output folder, and ``media_dir`` defaults to the data folder so relative image
  paths resolve there.

The resolved config is saved as YAML in ``output_dir`` and handed to LLaMA-Factory exactly
as its own CLI would read that file (OmegaConf -> dict), so YAML typing applies and
``run_exp`` receives proper numbers rather than strings.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from cof_plugins.assets import data_templates_dir
from cof_plugins.core.atomic import replace_file, write_json, write_text
from cof_plugins.core.yaml_file import YamlSyntaxError, check_yaml

COF_PREFIX = "cof:"
CONFIG_FILE = "cof_sft_config.yaml"
RUN_FILE = "cof_sft_run.json"
ENV_FILE = "cof_sft_requirements.txt"
DATASET_INFO_DIR = "cof_dataset_info"


class RecipeError(ValueError):
    """A recipe or override that cannot be used; the message says how to fix it."""


def ds_configs_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "ds_configs"


def available_ds_configs() -> list[str]:
    return sorted(p.stem for p in ds_configs_dir().glob("*.json"))


def smoke_overlay() -> Path:
    """The declared smoke changes for SFT recipes (``cof sft --smoke``, ``cof smoke``)."""
    from cof_plugins.assets import recipes_dir

    return recipes_dir() / "sft" / "overlays" / "smoke.yaml"


def merge_recipe(path: str | Path, overrides: Sequence[str] = (), *, smoke: bool = False):
    """The recipe, then the smoke overlay when asked, then the overrides; nothing resolved."""
    from omegaconf import OmegaConf

    recipe = Path(path)
    if not recipe.is_file():
        raise RecipeError(
            f"recipe {str(path)!r} not found; pass a YAML file such as recipes/sft/tiny_cpu.yaml"
        )
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise RecipeError(f"override {item!r} is not key=value (e.g. learning_rate=2e-5)")
    try:
        check_yaml(recipe)
    except YamlSyntaxError as exc:
        raise RecipeError(str(exc)) from None
    layers = [OmegaConf.load(recipe)]
    if smoke:
        layers.append(OmegaConf.load(smoke_overlay()))
    return OmegaConf.merge(*layers, OmegaConf.from_dotlist(list(overrides)))


def load_recipe(
    path: str | Path, overrides: Sequence[str] = (), *, smoke: bool = False
) -> dict[str, Any]:
    """Read a recipe and apply ``key=value`` overrides (llamafactory-cli's dotlist syntax).

    ``smoke`` puts ``smoke_overlay()`` between the recipe and the overrides.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationResolutionError

    recipe = Path(path)
    merged = merge_recipe(recipe, overrides, smoke=smoke)
    try:
        config = OmegaConf.to_container(merged, resolve=True)
    except InterpolationResolutionError as exc:
        raise RecipeError(
            f"{recipe}: {exc}. Set the environment variable it names, or pass the key "
            "explicitly (e.g. model_name_or_path=/path/to/model)."
        ) from None
    if not isinstance(config, dict):
        raise RecipeError(f"recipe {recipe} must be a YAML mapping of LLaMA-Factory arguments")
    return config


def resolve_deepspeed(config: dict[str, Any]) -> dict[str, Any]:
    """Replace ``deepspeed: cof:NAME`` by the path of the shipped JSON."""
    value = config.get("deepspeed")
    if isinstance(value, str) and value.startswith(COF_PREFIX):
        name = value[len(COF_PREFIX) :]
        path = ds_configs_dir() / f"{name}.json"
        if not path.is_file():
            known = ", ".join(COF_PREFIX + n for n in available_ds_configs())
            raise RecipeError(f"deepspeed={value!r}: no shipped config {name!r}; known: {known}")
        config = {**config, "deepspeed": str(path)}
    return config


def shipped_dataset_info() -> dict[str, Any]:
    return json.loads((data_templates_dir() / "dataset_info.json").read_text(encoding="utf-8"))


def resolve_dataset_dir(config: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Turn ``dataset_dir: cof:PATH`` into a real dataset_info folder under ``out_dir``."""
    value = config.get("dataset_dir")
    if not (isinstance(value, str) and value.startswith(COF_PREFIX)):
        return config
    data = Path(value[len(COF_PREFIX) :] or ".").expanduser().resolve()
    if not data.exists():
        raise RecipeError(
            f"dataset_dir={value!r}: {data} does not exist; point it at the "
            "folder (or file) holding your CoF SFT data"
        )
    info = shipped_dataset_info()
    for entry in info.values():
        entry["file_name"] = str(data if data.is_file() else data / entry["file_name"])
    folder = out_dir / DATASET_INFO_DIR
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "dataset_info.json", info)
    resolved = {**config, "dataset_dir": str(folder)}
    resolved.setdefault("media_dir", str(data.parent if data.is_file() else data))
    return resolved


def resolve_config(config: dict[str, Any]) -> dict[str, Any]:
    """Resolve every ``cof:`` name; needs ``output_dir`` (the resolved files live there)."""
    if not config.get("output_dir"):
        raise RecipeError("the recipe sets no output_dir; add one or pass output_dir=PATH")
    out_dir = Path(config["output_dir"]).expanduser().resolve()
    config = {**config, "output_dir": str(out_dir)}
    config = resolve_deepspeed(config)
    return resolve_dataset_dir(config, out_dir)


def write_config(config: dict[str, Any], path: Path) -> Path:
    """Save a resolved config as YAML (what every rank later reads back)."""
    from omegaconf import OmegaConf

    with replace_file(path) as temp:
        OmegaConf.save(OmegaConf.create(config), temp)
    return path


def read_config(path: str | Path) -> dict[str, Any]:
    """Read a config the way ``llamafactory-cli train FILE`` does (OmegaConf typing)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(Path(path).absolute()), resolve=True)


def freeze() -> list[str]:
    """``pip freeze`` without a subprocess: every installed distribution and its version."""
    seen = {
        f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata["Name"]
    }
    return sorted(seen, key=str.lower)


def write_run_record(
    config: dict[str, Any], recipe: str | Path, overrides: Sequence[str], smoke: bool = False
) -> Path:
    """Save the resolved config, the seed and the environment next to the checkpoints."""
    out_dir = Path(config["output_dir"])
    path = write_config(config, out_dir / CONFIG_FILE)
    record = {
        "recipe": str(Path(recipe).resolve()),
        "overrides": list(overrides),
        "smoke": smoke,
        "seed": config.get("seed", 42),  # TrainingArguments' default seed
        "command": sys.argv,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": platform.node(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "env": {k: v for k, v in os.environ.items() if k in _RECORDED_ENV},
    }
    write_json(out_dir / RUN_FILE, record)
    write_text(out_dir / ENV_FILE, "\n".join(freeze()) + "\n")
    return path


_RECORDED_ENV = (
    "NPROC_PER_NODE",
    "NNODES",
    "NODE_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "CUDA_VISIBLE_DEVICES",
    "COF_TINY_MODEL",
)
