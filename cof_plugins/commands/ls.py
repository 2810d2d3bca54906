"""``cof ls``: the recipes and protocol presets that ship with the package, one line each."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ls", help="list recipes and protocol presets with one-line descriptions")
    p.add_argument("kind", nargs="?", choices=("sft", "rl", "protocols", "all"), default="all")
    p.set_defaults(func=run)


def describe(path: Path) -> str:
    """First sentence of the recipe's header comment (recipes start with one)."""
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not text.startswith("#"):
            break
        text = text.lstrip("#").strip()
        if not text:
            if words:
                break
            continue
        words.append(text)
    summary = " ".join(words)
    if not summary:
        return "(no description: add a header comment)"
    end = summary.find(". ")
    return summary[: end + 1] if end >= 0 else summary


def list_recipes(kind: str = "all") -> list[tuple[str, str]]:
    """(relative path, description) for every recipe YAML of ``kind``."""
    from cof_plugins.assets import recipes_dir

    root = recipes_dir()
    kinds = ("sft", "rl") if kind == "all" else (kind,)
    rows = []
    for k in kinds:
        for path in sorted((root / k).glob("*.yaml")):
            rows.append((f"recipes/{k}/{path.name}", describe(path)))
    return rows


def list_protocols() -> list[tuple[str, str]]:
    """(preset name, description); ``--protocol`` also takes a YAML file of your own."""
    from cof_plugins.core.protocol import available_protocols, load_protocol

    return [(f"protocol {n}", load_protocol(n).description) for n in available_protocols()]


def run(args: argparse.Namespace) -> int:
    rows = [] if args.kind == "protocols" else list_recipes(args.kind)
    if args.kind in ("protocols", "all"):
        rows += list_protocols()
    if not rows:
        print("no recipes found")
        return 1
    width = max(len(name) for name, _ in rows)
    for name, desc in rows:
        print(f"{name:<{width}}  {desc}")
    return 0
