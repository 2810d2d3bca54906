"""Every recipe in recipes/ runs one real step on the CPU: `cof smoke`, once per session.

One ``cof smoke`` process smokes them all (SFT through LLaMA-Factory's ``run_exp``, RL through
verl's trainer on one shared Ray cluster), reusing the session's tiny models; each recipe is
then its own test. Adding a recipe file adds its smoke. The report's seconds per recipe are
printed with ``pytest -s`` (see the README for measured figures).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import shipped

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]
RECIPES = [*shipped("sft"), *shipped("rl")]


@pytest.fixture(scope="module")
def report(smoke_work) -> dict:
    out = smoke_work / "report.json"
    command = [sys.executable, "-m", "cof_plugins.cli", "smoke", "--keep-going",
               "--work", str(smoke_work), "--report", str(out)]  # fmt: skip
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=3500, env=env)
    assert out.is_file(), done.stdout[-4000:] + done.stderr[-4000:]
    data = json.loads(out.read_text())
    for entry in data["recipes"]:
        print(f"{entry['recipe']:<44} {entry['seconds']:>7.1f} s  ok={entry['ok']}")
    print(f"all smokes: {data['total_seconds']} s")
    return {e["recipe"]: e for e in data["recipes"]}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recipe_runs_one_real_step(recipe: Path, report):
    entry = report[f"{recipe.parent.name}/{recipe.stem}"]
    assert entry["ok"], entry.get("error")
    assert entry["overrides"], "a smoke always swaps at least the model"
    if entry["kind"] == "rl":
        # verl's trainer wrote step 1's checkpoint: rollout, reward, update and save all ran.
        assert entry["checkpoint"].endswith("global_step_1")
        assert (Path(entry["checkpoint"]) / "actor" / "huggingface").is_dir()
    else:
        assert math.isfinite(entry["train_loss"])
