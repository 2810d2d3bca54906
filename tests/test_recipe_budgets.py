"""recipes/README.md's pixel-budget table is true of the shipped recipes.

Each model's SFT recipe budget (its YAML keys), RL data budget (the `cof data to-parquet`
command in the RL recipe's header, or its parent's) and evaluation budget agree, unless the
table's exception column names and explains why not; every shipped recipe is in the table.
"""

from __future__ import annotations

import re

import yaml

from cof_plugins.assets import recipes_dir
from cof_plugins.core.frame import PixelBudget

ROOT = recipes_dir()
_RANGE = re.compile(r"^(\d+)–(\d+)$")
# How an RL recipe's data gets its budget: `cof data to-parquet` (CoF) or `cof data sif`.
_TO_PARQUET = re.compile(r"(?:to-parquet|cof data sif).*?--min-pixels (\d+) --max-pixels (\d+)")
_EVAL = re.compile(r"cof (?:sif )?eval.*?--max-pixels (\d+)")


def table() -> list[dict[str, str]]:
    lines = [ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True))
            for ln in lines[1:]]  # fmt: skip


def names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def budget(cell: str) -> tuple[int, int] | None:
    match = _RANGE.match(cell)
    return (int(match[1]), int(match[2])) if match else None


def header(path) -> str:
    """The recipe's leading comment, one line of text."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines)


def rl_budget(name: str) -> tuple[int, int]:
    """From the RL recipe's own header, else its parent's (Hydra defaults), else the default."""
    path = ROOT / "rl" / f"{name}.yaml"
    found = _TO_PARQUET.search(header(path))
    if found:
        return int(found[1]), int(found[2])
    parents = [
        d
        for d in yaml.safe_load(path.read_text())["defaults"]
        if d not in ("ppo_trainer", "_self_")
    ]
    if parents:
        return rl_budget(parents[0])
    return PixelBudget().min_pixels, PixelBudget().max_pixels


def test_every_shipped_recipe_is_in_the_table():
    rows = table()
    sft = sorted(n for r in rows for n in names(r["SFT recipes"]))
    rl = sorted(n for r in rows for n in names(r["RL recipes"]))
    assert sft == sorted(p.stem for p in (ROOT / "sft").glob("*.yaml"))
    assert rl == sorted(p.stem for p in (ROOT / "rl").glob("*.yaml"))


def test_budgets_agree_across_stages_or_the_exception_is_named():
    default_eval = (PixelBudget().min_pixels, PixelBudget().max_pixels)
    for row in table():
        sft, rl, ev = budget(row["SFT"]), budget(row["RL data"]), budget(row["eval"])
        for name in names(row["SFT recipes"]):
            config = yaml.safe_load((ROOT / "sft" / f"{name}.yaml").read_text())
            assert (config["image_min_pixels"], config["image_max_pixels"]) == sft, name
        for name in names(row["RL recipes"]):
            assert rl_budget(name) == rl, name
        stages = {b for b in (sft, rl, ev) if b is not None}
        assert len(stages) == 1 or len(row["exception"]) > 20, row["model"]  # named + why
        if ev != default_eval:  # a recipe header must tell the user which eval flags to pass
            headers = " ".join(header(p) for p in ROOT.glob("*/*.yaml"))
            assert any(int(m) == ev[1] for m in _EVAL.findall(headers)), row["model"]
