"""Entry point of every training process: ``python -m cof_plugins.llamafactory.launch CONFIG``.

``llamafactory-cli`` re-executes its own launcher under torchrun, so ranks it starts never
import this package and cannot see the CoF templates. ``cof sft`` runs torchrun on this
module instead: each rank calls ``register()``, records which CoF templates it sees, then
hands the resolved config to LLaMA-Factory's ``run_exp``. With ``--check`` it only asks
LLaMA-Factory's argument parser, in the same launch environment (``cof sft --dry-run``).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cof_plugins.core.atomic import write_json
from cof_plugins.llamafactory.config import read_config

RANKS_DIR = "cof_ranks"


def record_rank(config: dict[str, Any]) -> Path:
    """Write ``output_dir/cof_ranks/rank-N.json``: who ran, and with which registrations."""
    from cof_plugins.llamafactory.templates import registered_cof_templates

    rank = int(os.environ.get("RANK", "0"))
    record = {
        "rank": rank,
        "local_rank": int(os.environ.get("LOCAL_RANK", "0")),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "host": platform.node(),
        "pid": os.getpid(),
        "cof_templates": registered_cof_templates(),
        "template": config.get("template"),
    }
    path = Path(config["output_dir"]) / RANKS_DIR / f"rank-{rank}.json"
    return write_json(path, record)


def train(config_path: str | Path) -> None:
    """Register the CoF plugins in this process, then train with LLaMA-Factory."""
    from llamafactory.train.tuner import run_exp

    from cof_plugins.llamafactory import register

    register()
    config = read_config(config_path)
    record_rank(config)
    run_exp(config)


def main(argv: Sequence[str] | None = None) -> int:
    from cof_plugins.llamafactory.dry_run import CHECK_FLAG, check_main

    args = list(sys.argv[1:] if argv is None else argv)
    check = bool(args) and args[0] == CHECK_FLAG
    args = args[1:] if check else args
    if len(args) != 1 or not args[0].endswith((".yaml", ".yml")):
        print(
            f"usage: python -m cof_plugins.llamafactory.launch [{CHECK_FLAG}] "
            "RESOLVED_CONFIG.yaml\n(written by `cof sft`; run `cof sft RECIPE` instead)",
            file=sys.stderr,
        )
        return 2
    if check:
        return check_main(args[0])
    train(args[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
