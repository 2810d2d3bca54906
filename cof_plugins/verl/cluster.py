"""Ask a Ray cluster, node by node, whether a multi-node run can start (``cof cluster``).

A multi-node GRPO run fails late and expensively when one node lacks cof-plugins (verl then
stops at "Unknown tool parser: cof" after the models are loaded), sees fewer GPUs than the
recipe wants, or cannot reach the judge. ``check_cluster`` finds these in seconds: it goes
through verl's own ``run_ppo`` with a check runner in place of the TaskRunner, so the
``ray.init`` it exercises (runtime-env merge with the Ray job included) is the one training
will do, then runs one task on every alive node that imports verl (which loads the
``verl.plugins`` entry points and ``VERL_USE_EXTERNAL_MODULES`` there) and reports back.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

JUDGE_URL_ENV = "COF_JUDGE_URL"
JUDGE_KEY_ENV = "COF_JUDGE_API_KEY"
TIMEOUT_ENV = "COF_CLUSTER_CHECK_TIMEOUT"


class ClusterCheckError(RuntimeError):
    """The cluster cannot run the recipe; the message lists every problem and its fix."""


@dataclass(frozen=True)
class NodeReport:
    """What one Ray node says about itself, from inside a Ray worker on that node."""

    node_id: str
    host: str
    gpus: float
    registered: bool
    cof_version: str
    verl_version: str
    external_modules: str
    judge: str | None  # None when no judge URL reached the worker; "ok" or the error


def probe_node(gpus: float) -> dict[str, Any]:
    """Runs in a Ray worker: ``import verl`` registers plugins the way training workers do."""
    from importlib.metadata import version

    import ray
    import verl
    from verl.experimental.agent_loop.tool_parser import ToolParser

    from cof_plugins.verl.registration import EXTERNAL_MODULES_ENV, PARSER_NAME

    url = os.environ.get(JUDGE_URL_ENV)
    return asdict(
        NodeReport(
            node_id=ray.get_runtime_context().get_node_id(),
            host=socket.gethostname(),
            gpus=gpus,
            registered=PARSER_NAME in ToolParser._registry,
            cof_version=version("cof-plugins"),
            verl_version=str(verl.__version__),
            external_modules=os.environ.get(EXTERNAL_MODULES_ENV, ""),
            judge=judge_reachable(url, os.environ.get(JUDGE_KEY_ENV)) if url else None,
        )
    )


def judge_reachable(url: str, api_key: str | None = None, timeout_s: float = 10.0) -> str:
    """ "ok" when ``GET {url}/models`` answers 200 from here, else what went wrong."""
    request = urllib.request.Request(url.rstrip("/") + "/models")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return "ok" if response.status == 200 else f"HTTP {response.status}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"unreachable ({getattr(exc, 'reason', exc)})"


def problems(reports: Sequence[NodeReport], nnodes: int, gpus_per_node: int) -> list[str]:
    """Every reason the recipe cannot run on these nodes, each with its fix."""
    found = []
    if len(reports) < nnodes:
        found.append(
            f"the recipe wants trainer.nnodes={nnodes} but Ray has {len(reports)} alive node(s): "
            "wait for the workers to join (see their logs) or lower trainer.nnodes"
        )
    for r in reports:
        where = f"node {r.host} ({r.node_id[:8]})"
        if not r.registered:
            found.append(
                f"{where}: the cof tool parser is not registered after `import verl`: install "
                "cof-plugins in that node's environment (its verl.plugins entry point), or ship "
                f"it with Ray and set VERL_USE_EXTERNAL_MODULES (now {r.external_modules!r})"
            )
        if r.gpus < gpus_per_node:
            found.append(
                f"{where}: Ray sees {r.gpus:g} GPU(s), the recipe wants "
                f"trainer.n_gpus_per_node={gpus_per_node}: start the node with --num-gpus "
                "or change the recipe"
            )
        if r.judge not in (None, "ok"):
            found.append(f"{where}: the judge at ${JUDGE_URL_ENV} is {r.judge}")
    versions = {(r.cof_version, r.verl_version) for r in reports}
    if len(versions) > 1:
        listing = ", ".join(f"{r.host}: cof-plugins {r.cof_version} verl {r.verl_version}"
                            for r in reports)  # fmt: skip
        found.append(f"nodes run different versions ({listing}): install the same everywhere")
    return found


def render(reports: Sequence[NodeReport]) -> str:
    lines = ["node       host                 GPUs  cof parser  cof-plugins  verl    judge"]
    for r in reports:
        parser = "registered" if r.registered else "MISSING"
        judge = "-" if r.judge is None else r.judge
        lines.append(
            f"{r.node_id[:8]:<10} {r.host[:20]:<20} {r.gpus:>4g}  {parser:<10}  "
            f"{r.cof_version:<11}  {r.verl_version:<6}  {judge}"
        )
    return "\n".join(lines)


def gather_reports(timeout_s: float) -> list[NodeReport]:
    """One ``probe_node`` task pinned to every alive node (call inside a Ray worker/driver)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0)(probe_node)
    alive = [n for n in ray.nodes() if n.get("Alive")]
    refs = [
        probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote(float(n.get("Resources", {}).get("GPU", 0)))
        for n in alive
    ]
    return [NodeReport(**r) for r in ray.get(refs, timeout=timeout_s)]


def check_runner_class() -> type:
    """A Ray actor with the TaskRunner's interface (``run(config)``) for ``run_ppo``."""
    import ray

    @ray.remote(num_cpus=0)
    class ClusterCheck:
        def run(self, config) -> None:
            timeout = float(os.environ.get(TIMEOUT_ENV, "600"))
            reports = gather_reports(timeout)
            print(render(reports), flush=True)
            trainer = config.trainer
            found = problems(reports, int(trainer.nnodes), int(trainer.n_gpus_per_node))
            if found:
                raise ClusterCheckError("\n".join(f"- {p}" for p in found))
            print(f"cluster check: {len(reports)} node(s) ready", flush=True)

    return ClusterCheck


def check_cluster(recipe: str, overrides: Sequence[str] = ()) -> list[str]:
    """Compose ``recipe`` as ``cof rl`` does and run the check through verl's ``run_ppo``.

    Returns the runtime-env notes; raises ``ClusterCheckError`` (or Ray's wrapper of it).
    """
    from verl.trainer.main_ppo import run_ppo

    from cof_plugins.verl.launcher import ship_to_ray
    from cof_plugins.verl.recipe import compose_recipe, resolve

    config = resolve(compose_recipe(recipe, overrides))
    notes = ship_to_ray(config)
    run_ppo(config, task_runner_class=check_runner_class())
    return notes


def wait_for_nodes(
    count: int,
    timeout_s: float,
    list_nodes: Callable[[], list[dict[str, Any]]],
    *,
    poll_s: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Block until ``count`` nodes are alive; raise ``TimeoutError`` naming who is missing."""
    deadline = clock() + timeout_s
    while True:
        alive = [n for n in list_nodes() if n.get("Alive")]
        if len(alive) >= count:
            return len(alive)
        if clock() >= deadline:
            seen = ", ".join(str(n.get("NodeManagerAddress", "?")) for n in alive) or "none"
            raise TimeoutError(
                f"only {len(alive)} of {count} Ray nodes joined within {timeout_s:g}s "
                f"(alive: {seen}); read the missing nodes' `ray start` output in the job log"
            )
        sleep(poll_s)
