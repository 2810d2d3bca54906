"""``cof doctor``: what this environment has, which recipes it can run, and the fix for each gap.

Reads installed distribution metadata and probes devices; imports no trainer.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import Version

# (distribution, supported range, which side needs it, fix)
REQUIREMENTS = (
    ("torch", ">=2.10,!=2.9.*", "all", "pip install torch==2.14.1 (CPU) or your cluster's build"),
    (
        "transformers",
        ">=5.5.3,<5.11",
        "all",
        "pip install 'transformers>=5.5.3,<5.6' (SFT), 5.9 (RL)",
    ),
    ("llamafactory", "==0.9.5", "sft", "pip install 'cof-plugins[sft]'"),
    ("verl", "==0.9.1", "rl", "pip install 'cof-plugins[rl]'"),
    ("TransferQueue", ">=0.1.10", "rl", "pip install 'verl[verl-core]==0.9.1'"),
    ("ray", ">=2.40", "rl", "pip install 'ray[default]'"),
    ("vllm", ">=0.11", "rl-gpu", "bash launch/setup_env.sh rl (GPU nodes only)"),
)
# LLaMA-Factory 0.9.5 caps transformers below verl's GPU pin: one env cannot hold both on GPUs.
SFT_TRANSFORMERS = SpecifierSet(">=4.55,<5.6")


@dataclass
class Check:
    name: str
    installed: str | None
    wanted: str
    side: str
    fix: str

    @property
    def ok(self) -> bool:
        if self.installed is None:
            return False
        return Version(self.installed.split("+")[0]) in SpecifierSet(self.wanted)

    @property
    def status(self) -> str:
        if self.installed is None:
            return "missing"
        return "ok" if self.ok else "MISMATCH"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def checks() -> list[Check]:
    """The core requirements, then the optional packages SFT recipes ask for by key."""
    from cof_plugins.llamafactory.packages import PACKAGES

    found = [Check(n, _version(n), w, s, f) for n, w, s, f in REQUIREMENTS]
    for p in PACKAGES:
        wanted = p.requirement.removeprefix(p.name)
        found.append(Check(p.name, _version(p.name), wanted, "sft-gpu", f"{p.pip} ({p.key})"))
    return found


def recipe_needs() -> list[tuple[str, list]]:
    """(shipped SFT recipe, the optional packages it asks for that are missing here)."""
    from omegaconf import OmegaConf

    from cof_plugins.assets import recipes_dir
    from cof_plugins.llamafactory.packages import missing

    out = []
    for path in sorted((recipes_dir() / "sft").glob("*.yaml")):
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        out.append((f"recipes/sft/{path.name}", missing(raw)))
    return out


def devices() -> list[str]:
    """Names of the CUDA devices torch sees (empty on CPU machines)."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def runnable(found: dict[str, Check], gpus: list[str]) -> dict[str, bool]:
    """Which recipe groups this environment can run."""

    def ok(*names: str) -> bool:
        return all(found[n].ok for n in names)

    transformers = found["transformers"].installed
    sft_tf = transformers is not None and Version(transformers.split("+")[0]) in SFT_TRANSFORMERS
    return {
        "recipes/sft/tiny_cpu.yaml": ok("torch", "llamafactory") and sft_tf,
        "recipes/rl/tiny_cpu.yaml": ok("torch", "verl", "TransferQueue", "ray"),
        "recipes/sft/* (GPU)": bool(gpus)
        and ok("torch", "llamafactory", "deepspeed", "liger-kernel")
        and sft_tf,
        "recipes/rl/* (GPU)": bool(gpus) and ok("torch", "verl", "TransferQueue", "ray", "vllm"),
    }


def family_lines() -> list[str]:
    """One line per supported family, then what a trainer cannot do with it, plainly."""
    from cof_plugins.core.families import FAMILIES

    lines = []
    for spec in FAMILIES.specs():
        lines.append(
            f"  {spec.name:<11} {spec.title:<11} frames x{spec.factor:<3} boxes {spec.coords:<8}"
            f"template {spec.cof_template:<15} {spec.checkpoint}"
        )
        lines.extend(f"      note: {limit}" for limit in spec.limits)
    return lines


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check versions and devices; say which recipes can run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    found = {c.name: c for c in checks()}
    print(f"{'package':<22} {'installed':<16} {'wanted':<18} status")
    for c in found.values():
        print(f"{c.name:<22} {c.installed or '-':<16} {c.wanted:<18} {c.status}")
    gpus = devices()
    print(f"\nGPUs: {', '.join(gpus) if gpus else 'none (CPU recipes only)'}")
    print("\nrecipes this environment can run:")
    for recipe, can in runnable(found, gpus).items():
        print(f"  {'yes' if can else 'no ':<4} {recipe}")
    lacking = [(recipe, pkgs) for recipe, pkgs in recipe_needs() if pkgs]
    if lacking:
        print("\nSFT recipes that ask for packages missing here (--smoke runs them without):")
        for recipe, pkgs in lacking:
            print(f"  {recipe}: " + "; ".join(f"{p.key} -> {p.pip}" for p in pkgs))
    print("\nmodel families (every one also runs the tiny CPU recipes):")
    print("\n".join(family_lines()))
    fixes = [c for c in found.values() if not c.ok and (c.side in ("all", "sft", "rl") or gpus)]
    if fixes:
        print("\nto fix:")
        for c in fixes:
            print(f"  {c.name} ({c.status}): {c.fix}")
    return 0 if all(c.ok for c in found.values() if c.side == "all") else 1
