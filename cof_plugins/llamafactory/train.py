"""``cof sft``: resolve a recipe, check the data, record the run, train in-process or torchrun.

One process trains in-process after ``register()``. More than one (``--nproc-per-node`` or
``--nnodes`` above 1, or NPROC_PER_NODE / NNODES in the environment, as llamafactory-cli
reads them), or a DeepSpeed config (LLaMA-Factory refuses DeepSpeed outside torchrun, even
for one process), runs ``python -m torch.distributed.run`` on
``cof_plugins.llamafactory.launch`` so every rank registers the CoF templates itself.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cof_plugins.llamafactory.config import (
    CONFIG_FILE,
    RecipeError,
    load_recipe,
    resolve_config,
    write_run_record,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topology:
    """How many processes train, and where rank 0 listens (torchrun's rendezvous)."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int | None = None

    def __post_init__(self) -> None:
        if self.nproc_per_node < 1 or self.nnodes < 1:
            raise ValueError(
                f"nproc_per_node and nnodes must be >= 1, got "
                f"{self.nproc_per_node} and {self.nnodes}"
            )
        if not 0 <= self.node_rank < self.nnodes:
            raise ValueError(f"node_rank must be in [0, {self.nnodes}), got {self.node_rank}")

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node * self.nnodes > 1

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **given: int | str | None) -> Topology:
        """Flags win over NPROC_PER_NODE, NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT."""
        env = dict(os.environ if env is None else env)
        values = {}
        for key, cast in (
            ("nproc_per_node", int),
            ("nnodes", int),
            ("node_rank", int),
            ("master_addr", str),
            ("master_port", int),
        ):
            value = given.get(key)
            raw = env.get(key.upper()) if value is None else value
            if raw not in (None, ""):
                try:
                    values[key] = cast(raw)
                except ValueError:
                    raise ValueError(
                        f"{key.upper()}={raw!r} is not a valid {cast.__name__}"
                    ) from None
        return cls(**values)


def prepare(
    recipe: str | Path, overrides: Sequence[str] = (), *, check: bool = True, smoke: bool = False
) -> Path:
    """Resolve the recipe, run the pre-flight checks, write the run record; return the config.

    ``smoke`` applies the declared smoke overlay (``config.smoke_overlay``) first.
    """
    from cof_plugins.llamafactory import register
    from cof_plugins.llamafactory.arg_types import type_problems
    from cof_plugins.llamafactory.preflight import check_template, run_preflight

    config = load_recipe(recipe, overrides, smoke=smoke)
    refuse_release_config(config, recipe)
    problems = type_problems(config)  # before anything is written
    if problems:
        raise RecipeError("; ".join(problems) + "; fix the recipe or the override")
    config = resolve_config(config)
    register()
    if check:
        rows = run_preflight(config)
        log.info("pre-flight: %d rows checked, no problems", rows)
    else:
        check_template(config)
    path = write_run_record(config, recipe, overrides, smoke)
    log.info("resolved config written to %s", path)
    return path


def refuse_release_config(config: dict, recipe: str | Path) -> None:
    """A Chain-of-Focus release config would silently train something else here: refuse it
    with what each of its keys maps to (``llamafactory.release``)."""
    from cof_plugins.llamafactory.release import refusal, release_changes

    blocking = [c for c in release_changes(config) if c.blocking]
    if blocking:
        raise RecipeError(refusal(recipe, blocking))


def needs_torchrun(config: dict[str, Any], topology: Topology) -> bool:
    """More than one process, or DeepSpeed (LLaMA-Factory refuses it outside torchrun)."""
    return topology.distributed or bool(config.get("deepspeed"))


def torchrun_command(config_path: Path, topology: Topology, *args: str) -> list[str]:
    """torchrun on our own entry module; ``args`` go before the config (e.g. ``--check``)."""
    port = topology.master_port or _free_port()
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={topology.nproc_per_node}",
        f"--nnodes={topology.nnodes}",
        f"--node_rank={topology.node_rank}",
        f"--master_addr={topology.master_addr}",
        f"--master_port={port}",
        "-m",
        "cof_plugins.llamafactory.launch",
        *args,
        str(config_path),
    ]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_sft(
    recipe: str | Path,
    overrides: Sequence[str] = (),
    topology: Topology | None = None,
    *,
    check: bool = True,
    dry_run: bool = False,
    smoke: bool = False,
) -> Path:
    """Train with a recipe; return the output folder (holding ``cof_sft_config.yaml``)."""
    from cof_plugins.llamafactory.config import read_config

    topology = topology or Topology.from_env()
    config_path = prepare(recipe, overrides, check=check, smoke=smoke)
    if dry_run:
        return config_path.parent
    if needs_torchrun(read_config(config_path), topology):
        command = torchrun_command(config_path, topology)
        log.info("launching: %s", " ".join(command))
        code = subprocess.run(command, check=False).returncode
        if code:
            raise RuntimeError(f"torchrun exited with status {code}; see the rank logs above")
    else:
        from cof_plugins.llamafactory.launch import train

        train(config_path)
    return config_path.parent


__all__ = ["CONFIG_FILE", "Topology", "needs_torchrun", "prepare", "run_sft", "torchrun_command"]
