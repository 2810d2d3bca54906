"""Optional packages an SFT recipe asks for by key, and the pip command that installs each.

Read by ``cof doctor`` and ``cof sft --dry-run`` (imports no trainer); pyproject.toml's
``sft-gpu`` extra (what ``launch/setup_env.sh sft`` installs) holds the same requirements,
and a test keeps the two equal. Versions: LLaMA-Factory
0.9.5 asks for ``deepspeed>=0.10.0,<=0.16.9`` and ``liger-kernel>=0.5.5`` (its
``requirements/*.txt``); liger-kernel 0.6.4 and older break Qwen-VL models under
transformers 5, which the SFT environment uses, so the floor here is 0.8.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Package:
    key: str  # the recipe key that needs it
    wanted: Callable[[Any], bool]  # whether the key's value needs the package
    name: str  # distribution name, as pip and LLaMA-Factory's messages spell it
    module: str
    requirement: str

    @property
    def pip(self) -> str:
        # flash-attn compiles against the installed torch; DeepSpeed JIT-compiles its ops later.
        extra = " --no-build-isolation" if self.name == "flash-attn" else ""
        return f"pip install '{self.requirement}'{extra}"

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


PACKAGES = (
    Package("enable_liger_kernel", bool, "liger-kernel", "liger_kernel", "liger-kernel>=0.8,<0.9"),
    Package("deepspeed", bool, "deepspeed", "deepspeed", "deepspeed>=0.10.0,<=0.16.9"),
    Package("flash_attn", lambda v: v == "fa2", "flash-attn", "flash_attn", "flash-attn>=2.6"),
)


def needed(config: dict[str, Any]) -> list[Package]:
    """The packages ``config`` asks for."""
    return [p for p in PACKAGES if p.wanted(config.get(p.key))]


def missing(config: dict[str, Any]) -> list[Package]:
    """The packages ``config`` asks for that this environment lacks."""
    return [p for p in needed(config) if not p.installed()]


def by_name(text: str) -> Package | None:
    """The package an error message names, if it is one of ours."""
    lowered = text.lower()
    return next((p for p in PACKAGES if p.name in lowered or p.module in lowered), None)
