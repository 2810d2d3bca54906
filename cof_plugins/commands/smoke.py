"""``cof smoke [RECIPE ...]``: every recipe runs one real step on this CPU, as written but for
the keys the smoke overlays declare (``recipes/sft/overlays/smoke.yaml``,
``recipes/rl/overlays/smoke.yaml`` and ``cpu.yaml``); each run prints the keys it changed.

With no RECIPE, every recipe in ``recipes/sft`` and ``recipes/rl``. Tiny models and synthetic
data are built once under ``--work`` and shared; the RL recipes share one Ray cluster, each
run its own Ray job. ``cof sft RECIPE --smoke`` and ``cof rl RECIPE --smoke`` smoke one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "smoke",
        help="one real CPU step of each recipe (tiny model, declared overrides only)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "recipes",
        nargs="*",
        metavar="RECIPE",
        help="recipe files, or shipped names as sft/NAME or rl/NAME (default: all shipped)",
    )
    p.add_argument(
        "--work",
        help="tiny models, data and run outputs, reused across runs "
        "(default: $COF_SMOKE_WORK or runs/smoke)",
    )
    p.add_argument("--report", help="write per-recipe results (seconds, overrides) as JSON")
    p.add_argument("--keep-going", action="store_true", help="go on after a failed recipe")
    p.set_defaults(func=run)


def shipped() -> list[Path]:
    """Every shipped recipe that `cof smoke` runs (those without a ``# Smoke:`` exemption)."""
    from cof_plugins.assets import recipes_dir

    root = recipes_dir()
    every = [*sorted((root / "sft").glob("*.yaml")), *sorted((root / "rl").glob("*.yaml"))]
    return [p for p in every if exemption(p) is None]


def exemption(path: Path) -> str | None:
    """Why a recipe is not smoked: its header's ``# Smoke:`` paragraph, or None.

    A recipe whose CPU run needs data the smoke does not build (SIFThinker's depth scenes)
    says so there, and names what runs it instead.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            return None
        if line.startswith("# Smoke:"):
            text = [line.removeprefix("# Smoke:").strip()]
            for more in lines[i + 1 :]:
                if not more.startswith("# ") or more.startswith("# Smoke:"):
                    break
                text.append(more.removeprefix("# ").strip())
            return " ".join(text)
    return None


def kind_of(path: Path) -> str:
    """RL recipes are Hydra deltas over verl's config (a ``defaults`` list); SFT ones are not."""
    from omegaconf import OmegaConf

    return "rl" if "defaults" in OmegaConf.load(path) else "sft"


def find(name: str) -> Path:
    """A recipe file, or a shipped one named ``sft/NAME`` or ``rl/NAME``."""
    from cof_plugins.assets import recipes_dir

    path = Path(name).expanduser()
    if path.is_file():
        return path.resolve()
    candidate = recipes_dir() / (name if name.endswith(".yaml") else f"{name}.yaml")
    if candidate.is_file():
        return candidate
    names = ", ".join(f"{p.parent.name}/{p.stem}" for p in shipped())
    raise SystemExit(f"cof smoke: no recipe {name!r}; shipped: {names}")


def run(args: argparse.Namespace) -> int:
    from cof_plugins.testbed.smoke import SmokeAssets

    paths = [find(n) for n in args.recipes] or shipped()
    for path in [p for p in paths if exemption(p)]:
        print(f"cof smoke: {path.name} is not smoked: {exemption(path)}", file=sys.stderr)
        paths.remove(path)
    if not paths:
        return 2
    assets = SmokeAssets(args.work)
    started = time.perf_counter()
    results: list[dict] = []
    sft = [p for p in paths if kind_of(p) == "sft"]
    rl = [p for p in paths if kind_of(p) == "rl"]
    ok = _smoke_all(sft, rl, assets, results, args.keep_going)
    total = time.perf_counter() - started
    _summary(results, total)
    if args.report:
        report = {"total_seconds": round(total, 1), "recipes": results}
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if ok else 1


def _smoke_all(sft, rl, assets, results: list[dict], keep_going: bool) -> bool:
    """SFT smokes in this process, then RL smokes, on one shared Ray cluster when several.

    The cluster starts first, before anything here imports Ray, so that this process joins
    it in the authentication mode it was started with.
    """
    from contextlib import nullcontext

    from cof_plugins.llamafactory.smoke import run_smoke as sft_smoke

    shared = None
    if len(rl) > 1:
        from cof_plugins.verl.smoke import SessionCluster, cluster_size

        shared = SessionCluster(*cluster_size())
    with shared or nullcontext():
        for path in sft:
            done = _one(results, "sft", path, lambda p=path: sft_smoke(p, (), assets))
            if not done and not keep_going:
                return False
        for path in rl:
            if not _rl(results, path, assets, shared) and not keep_going:
                return False
    return all(r["ok"] for r in results)


def _rl(results: list[dict], path: Path, assets, shared) -> bool:
    from cof_plugins.verl.smoke import run_smoke

    address = shared.address if shared else None
    done = _one(results, "rl", path, lambda: run_smoke(path, (), assets, address))
    if shared:
        shared.wait_until_free()
    return done


def _one(results: list[dict], kind: str, path: Path, smoke) -> bool:
    """Run one smoke; record its time and overrides, or its error (never a traceback)."""
    started = time.perf_counter()
    entry = {"recipe": f"{kind}/{path.stem}", "kind": kind, "ok": False}
    try:
        result = smoke()
        entry.update(ok=True, overrides=[str(c) for c in result.changes])
        # Evidence the step ran: the RL checkpoint it wrote, the SFT step's loss.
        for name in ("checkpoint", "train_loss"):
            if hasattr(result, name):
                value = getattr(result, name)
                entry[name] = str(value) if isinstance(value, Path) else value
    except Exception as exc:  # one recipe failing must not hide the others' results
        traceback.print_exc()
        entry["error"] = f"{type(exc).__name__}: {exc}"
    entry["seconds"] = round(time.perf_counter() - started, 1)
    results.append(entry)
    return entry["ok"]


def _summary(results: list[dict], total: float) -> None:
    print("\ncof smoke: one real step per recipe, on the CPU")
    for r in results:
        status = "ok" if r["ok"] else f"FAILED ({r['error'][:160]})"
        print(f"  {r['recipe']:<44} {r['seconds']:>7.1f} s  {status}")
    passed = sum(r["ok"] for r in results)
    print(f"  {passed}/{len(results)} passed in {total:.0f} s", file=sys.stdout)
