"""What every smoke run shares, trainer-free: offline assets and the report of what changed.

A smoke run trains one real step of a recipe on the CPU with the recipe's own keys, except
the ones an overlay file declares (``recipes/sft/overlays/smoke.yaml``,
``recipes/rl/overlays/smoke.yaml`` with ``cpu.yaml``). Values only known at run time reach
those files through three environment variables, so the files stay the whole declaration:
``COF_SMOKE_MODEL`` (a tiny model of the recipe's family), ``COF_SMOKE_DATA`` (synthetic data
when the recipe's own is absent) and ``COF_SMOKE_OUT`` (where the run writes).

``SmokeAssets`` builds each tiny model and each synthetic dataset once per work folder, so a
session smoking many recipes pays for them once.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cof_plugins.core.frame import PixelBudget
from cof_plugins.testbed.tiny_model import TINY_BUDGET

log = logging.getLogger(__name__)

# Where `cof sft/rl --smoke` keep tiny models, data and outputs (`cof smoke --work` too).
WORK_ENV = "COF_SMOKE_WORK"
MODEL_ENV = "COF_SMOKE_MODEL"
DATA_ENV = "COF_SMOKE_DATA"
OUT_ENV = "COF_SMOKE_OUT"
# Scripted turns for the transformers rollout (a random tiny model never calls the tool).
SCRIPT_ENV = "COF_SMOKE_SCRIPT"
UNSET = "<unset>"
SAMPLES = 4
SIZES = (224, 448)
# A call the policy "makes" in RL smokes, then answers after the crop; the box is valid in
# every convention (absolute pixels of a >= 224 px frame, or 0-1000).
ZOOM_TURN = (
    '<think>The target is small; zoom in.</think>\n<tool_call>\n{"name": '
    '"image_zoom_in_tool", "arguments": {"bbox_2d": [8, 8, 72, 72]}}\n</tool_call>'
)
SCRIPT = {
    "first_turn": [ZOOM_TURN, "<think>It is visible.</think>\n<answer>A</answer>"],
    "after_zoom": ["<think>The crop shows it.</think>\n<answer>B</answer>"],
}


@dataclass(frozen=True)
class Override:
    """One key the smoke changed: as the recipe wrote it, and as the smoke runs it."""

    key: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.key}: {_show(self.old)} -> {_show(self.new)}"


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def leaf_items(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf; an empty mapping counts as a leaf."""
    if isinstance(tree, Mapping) and tree:
        for key, value in tree.items():
            yield from leaf_items(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), tree


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose leaf value differs (added, removed or changed).

    Unset and null count as the same (both mean "the trainer's default"); an empty mapping
    that gained keys is reported through those keys only.
    """
    old, new = dict(leaf_items(before)), dict(leaf_items(after))
    keys = set(old) | set(new)
    changed = {k for k in keys if _norm(old.get(k, UNSET)) != _norm(new.get(k, UNSET))}
    return sorted(k for k in changed if not any(c.startswith(k + ".") for c in changed))


def _norm(value: Any) -> Any:
    return UNSET if value is None else value


def lookup(tree: Mapping[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return UNSET
        node = node[part]
    return node


def overrides(
    before: Mapping[str, Any], after: Mapping[str, Any], shown: Mapping[str, Any]
) -> list[Override]:
    """The changed keys, old as written in ``before``, new as ``shown`` (resolved) has it."""
    return [Override(k, lookup(before, k), lookup(shown, k)) for k in diff(before, after)]


def declared_keys(*overlays: Path) -> set[str]:
    """Every key an overlay file sets (Hydra's ``defaults`` list is not a key)."""
    from omegaconf import OmegaConf

    keys: set[str] = set()
    for path in overlays:
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        keys |= {k for k, _ in leaf_items(raw) if k.split(".")[0] != "defaults"}
    return keys


def undeclared(changed: list[str], declared: set[str]) -> list[str]:
    """Changed keys no overlay declares (a key under a declared mapping counts as declared)."""
    return [k for k in changed if not any(k == d or k.startswith(d + ".") for d in declared)]


def default_work() -> Path:
    return Path(os.environ.get(WORK_ENV) or Path("runs") / "smoke")


class SmokeAssets:
    """Tiny models and synthetic data under one work folder, each built once."""

    def __init__(self, work: str | Path | None = None):
        self.work = Path(work or default_work()).expanduser().resolve()

    def model(self, family: str) -> Path:
        from cof_plugins.testbed.tiny_model import build_tiny_model

        out = self.work / "models" / family
        if not (out / "cof_tiny.json").is_file():
            log.info("smoke: building a tiny %s model in %s", family, out)
            build_tiny_model(out, family)
        return out

    def annotations(self) -> Path:
        from cof_plugins.testbed.synth import write_dataset

        out = self.work / "data" / "scenes"
        if not (out / "annotations.jsonl").is_file():
            write_dataset(out, SAMPLES, SIZES, seed=0, progress=False, overwrite=True)
        return out / "annotations.jsonl"

    def sft_data(self, family: str, budget: PixelBudget) -> Path:
        """A folder with train.json and images: CoF trajectories at the recipe's budget."""
        from cof_plugins.data.synthesize import SynthConfig, synthesize

        out = self.work / "data" / f"sft_{family}_{budget.min_pixels}_{budget.max_pixels}"
        if not (out / "train.json").is_file():
            cfg = SynthConfig(family=family, budget=budget)
            synthesize(self.annotations(), out, cfg, progress=False, overwrite=True)
        return out

    def rl_data(self, family: str) -> Path:
        """A COF_DATA_DIR-style folder (rl/train.parquet, rl/val.parquet) at the tiny budget."""
        from cof_plugins.data.parquet import ParquetConfig, write_parquet
        from cof_plugins.data.rows import read_rows

        out = self.work / "data" / f"rl_{family}"
        train, val = out / "rl" / "train.parquet", out / "rl" / "val.parquet"
        if not val.is_file():
            ann = self.annotations()
            rows = read_rows(ann)
            cfg = ParquetConfig(family=family, budget=TINY_BUDGET)
            # overwrite: an interrupted earlier build may have left train without val
            write_parquet(rows, train, ann.parent, cfg, overwrite=True)
            write_parquet(rows[:2], val, ann.parent, cfg, overwrite=True)
        return out

    def script(self) -> Path:
        path = self.work / "rl_script.json"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(SCRIPT, indent=1) + "\n", encoding="utf-8")
        return path

    def out(self, recipe: Path) -> Path:
        """A fresh output folder for one smoke of ``recipe``.

        A previous smoke's outputs there are removed: verl would resume from their checkpoint
        (``trainer.resume_mode: auto``) and train nothing. The folder is the smoke's own, under
        the work folder, never the recipe's ``output_dir``.
        """
        import shutil

        out = self.work / "runs" / f"{recipe.parent.name}_{recipe.stem}"
        if out.exists():
            shutil.rmtree(out)
        return out


def set_env(values: Mapping[str, str | Path]) -> None:
    """Publish the run-time values the overlay files read (``${oc.env:COF_SMOKE_*}``)."""
    for name, value in values.items():
        os.environ[name] = str(value)
