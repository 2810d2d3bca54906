"""``cof cluster``: get a multi-node Ray cluster ready for ``cof rl`` (used by launch/).

- ``cof cluster wait --address HEAD:PORT --nodes N``: block until N Ray nodes are alive;
- ``cof cluster check RECIPE [OVERRIDES...]``: run as a Ray job, checks every node imports
  verl with the CoF parser registered, has the GPUs the recipe wants, runs the same
  cof-plugins and verl versions and can reach ``COF_JUDGE_URL``. It starts through verl's own
  ``run_ppo``, so the Ray job's runtime env is merged exactly as training will merge it.

Exit status 0 when ready, 1 when not (the message says what to fix).
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cluster",
        help="multi-node Ray: wait for nodes, check every node can run a recipe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    wait = sub.add_parser("wait", help="block until N Ray nodes are alive")
    wait.add_argument("--address", required=True, help="the head's GCS address, HOST:PORT")
    wait.add_argument("--nodes", type=int, required=True, help="how many nodes to wait for")
    wait.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    wait.set_defaults(func=run_wait)
    check = sub.add_parser("check", help="check every node can run RECIPE (run as a Ray job)")
    check.add_argument("recipe", help="RL recipe YAML path or shipped recipe name")
    check.add_argument("overrides", nargs="*", help="Hydra overrides, as for `cof rl`")
    check.set_defaults(func=run_check)


def run_wait(args: argparse.Namespace) -> int:
    import ray

    from cof_plugins.verl.cluster import wait_for_nodes

    if args.nodes < 1:
        print("cof cluster wait: --nodes must be >= 1", file=sys.stderr)
        return 2
    ray.init(address=args.address, log_to_driver=False, logging_level="WARNING")
    try:
        alive = wait_for_nodes(args.nodes, args.timeout, ray.nodes)
    except TimeoutError as exc:
        print(f"cof cluster wait: {exc}", file=sys.stderr)
        return 1
    finally:
        ray.shutdown()
    print(f"cof cluster wait: {alive} node(s) alive")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from cof_plugins.verl.cluster import ClusterCheckError, check_cluster
    from cof_plugins.verl.recipe import RecipeError
    from cof_plugins.verl.runtime_env import RuntimeEnvConflict

    try:
        notes = check_cluster(args.recipe, args.overrides)
    except (RecipeError, RuntimeEnvConflict) as exc:
        print(f"cof cluster check: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # Ray wraps the actor's ClusterCheckError in RayTaskError
        cause = getattr(exc, "cause", None)
        if isinstance(exc, ClusterCheckError) or isinstance(cause, ClusterCheckError):
            print(f"cof cluster check: NOT READY\n{cause or exc}", file=sys.stderr)
            return 1
        raise
    for note in notes:
        print(f"ray runtime env: {note}")
    print("cof cluster check: ready")
    return 0
