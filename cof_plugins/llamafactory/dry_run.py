"""``cof sft --dry-run``: ask LLaMA-Factory itself whether it would accept the run, here.

``CONFIG_CHECKS`` is the list of checks a dry run makes on the resolved config (append to it
to add one); each returns findings, each finding says what to change. The main one runs
LLaMA-Factory's own argument parser (``get_train_args``, what ``run_exp`` calls first) in a
child process started exactly as training would start, i.e. through our entry module
``cof_plugins.llamafactory.launch --check``, under torchrun when the run would use torchrun
(one local rank: the parse does not depend on the world size, and a dry run must not wait
for other nodes). When the parser stops at something this machine lacks (a package, a CUDA
GPU for bf16), that setting is set aside and the parse runs again, so one dry run reports
every problem, each with its fix, and the recipe's own mistakes (a misspelt key) too.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cof_plugins.llamafactory import packages

CHECK_FLAG = "--check"
CHECK_PREFIX = "COF_CHECK "
MAX_ROUNDS = 8
DROP = object()
_UNKNOWN_KEYS = re.compile(r"not used by the HfArgumentParser: (\[.*?\])")


@dataclass(frozen=True)
class Finding:
    message: str
    fix: str = ""

    def __str__(self) -> str:
        return self.message + (f"\n    fix: {self.fix}" if self.fix else "")


def explain(error: BaseException) -> tuple[Finding, dict[str, Any] | None]:
    """What a parser error means and how to fix it; the setting to set aside to go on."""
    text = f"{type(error).__name__}: {error}"
    unknown = _UNKNOWN_KEYS.search(str(error))
    if unknown:
        keys = ast.literal_eval(unknown.group(1))
        return Finding(
            f"LLaMA-Factory does not know the key(s) {', '.join(map(repr, keys))}",
            "; ".join(_spelling(k) for k in keys),
        ), dict.fromkeys(keys, DROP)
    if "bf16/gpu" in str(error):
        return Finding(
            f"bf16: true needs a CUDA GPU and this machine has none (LLaMA-Factory: {error})",
            "launch on the GPU nodes; to try the recipe on this CPU: cof sft RECIPE --smoke",
        ), {"use_cpu": True}
    if "FORCE_TORCHRUN" in str(error):
        return Finding(
            "DeepSpeed runs only under torchrun", "launch with cof sft (it uses torchrun)"
        ), {"deepspeed": DROP}
    package = packages.by_name(text)
    if package is not None and isinstance(error, ImportError | LookupError):
        return Finding(
            f"{package.key} needs the {package.name} package, which is not installed here",
            package.pip,
        ), {package.key: DROP}
    return Finding(f"LLaMA-Factory rejects the config: {text}"), None


def _spelling(key: str) -> str:
    from llamafactory.hparams import (
        DataArguments,
        FinetuningArguments,
        GeneratingArguments,
        ModelArguments,
        TrainingArguments,
    )

    fields: set[str] = set()
    for cls in (ModelArguments, DataArguments, TrainingArguments, FinetuningArguments):
        fields |= set(cls.__dataclass_fields__)
    fields |= set(GeneratingArguments.__dataclass_fields__)
    close = difflib.get_close_matches(key, sorted(fields), n=2)
    return f"{key}: did you mean {' or '.join(close)}?" if close else f"{key}: remove it"


def parse_findings(config: dict[str, Any]) -> list[Finding]:
    """Run ``get_train_args`` until it passes or stops on a problem it cannot set aside."""
    from llamafactory.hparams import get_train_args

    from cof_plugins.llamafactory import register

    register()
    found: list[Finding] = []
    aside: dict[str, Any] = {}
    for _ in range(MAX_ROUNDS):
        trial = {k: v for k, v in {**config, **aside}.items() if v is not DROP}
        try:
            get_train_args(trial)
            return found
        except Exception as exc:  # every parser error becomes a finding, not a traceback
            finding, more = explain(exc)
            found.append(finding)
            if not more or set(more) <= set(aside):
                return found
            aside.update(more)
    return found


def check_main(config_path: str | Path) -> int:
    """``launch --check CONFIG``: print the parser's findings as one JSON line (rank 0)."""
    import os

    from cof_plugins.llamafactory.config import read_config

    findings = parse_findings(read_config(config_path))
    if int(os.environ.get("RANK", "0")) == 0:
        print(CHECK_PREFIX + json.dumps([asdict(f) for f in findings]), flush=True)
    return 0


def ask_llamafactory(config: dict[str, Any], config_path: Path) -> list[Finding]:
    """``parse_findings`` in a child process launched the way training would be."""
    from cof_plugins.llamafactory.train import Topology, needs_torchrun, torchrun_command

    if needs_torchrun(config, Topology()):
        command = torchrun_command(config_path, Topology(), CHECK_FLAG)
    else:
        command = [sys.executable, "-m", "cof_plugins.llamafactory.launch", CHECK_FLAG]
        command.append(str(config_path))
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(CHECK_PREFIX):
            return [Finding(**f) for f in json.loads(line[len(CHECK_PREFIX) :])]
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
    return [Finding(f"the check process exited with status {done.returncode}:\n{tail}")]


def missing_packages(config: dict[str, Any], config_path: Path) -> list[Finding]:
    """Packages the recipe asks for that are not installed here (LLaMA-Factory checks some
    only when the model loads, e.g. flash-attn)."""
    return [
        Finding(f"{p.key} needs the {p.name} package, which is not installed here", p.pip)
        for p in packages.missing(config)
    ]


CONFIG_CHECKS: list[Callable[[dict[str, Any], Path], list[Finding]]] = [
    missing_packages,
    ask_llamafactory,
]


def run_checks(config_path: Path) -> list[Finding]:
    """Every check in ``CONFIG_CHECKS`` on a resolved config, duplicates dropped."""
    from cof_plugins.llamafactory.config import read_config

    config = read_config(config_path)
    out: list[Finding] = []
    for check in CONFIG_CHECKS:
        out += [f for f in check(config, config_path) if f not in out]
    return out
