"""launch/slurm_ray.sbatch, run for real on one machine as a 3-node allocation.

Stand-ins: `srun` runs its command here (with per-"node" Ray ports and temp dirs, as separate
machines would have), `scontrol` expands the node list, and `vllm` serves the repository's
scripted OpenAI-compatible judge (cof_plugins.testbed.openai_server) instead of loading weights.
Everything else is real: launch/ray_node.sh starts a Ray head and a worker raylet (two
`ray start` processes on this machine's address), the script waits for the head's GCS and for
both nodes, starts and waits for the judge on the third node, and submits
`cof cluster check` as a Ray job, which goes through verl's own `run_ppo` (its `ray.init`,
merged with the job's runtime env) and imports verl in a task on each Ray node.

VERL_USE_EXTERNAL_MODULES is exported before the script, as in the issue that made
`ray.init` fail with "Failed to merge the Job's runtime env".
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODES = ("cofn0", "cofn1", "cofjudge")

SRUN = """#!{python}
# srun stand-in: run the command on this machine with the chosen node's environment.
import json, os, sys
NODES = json.loads({nodes!r})
args, opts, node, i = sys.argv[1:], [], None, 0
while i < len(args) and args[i].startswith("-"):
    flag = args[i]
    if "=" in flag:
        flag, value = flag.split("=", 1)
        i += 1
    elif flag in ("-w", "--nodelist", "-N", "--nodes", "-n", "--ntasks", "-c"):
        value, i = args[i + 1], i + 2
    else:
        value, i = None, i + 1
    opts.append([flag, value])
    node = value if flag in ("-w", "--nodelist") else node
env = {{**os.environ, **NODES[node], "SLURMD_NODENAME": node}}
keep = ("COF_RAY_NUM_CPUS", "COF_RAY_NUM_GPUS", "COF_NNODES")
with open({log!r}, "a") as log:
    print(json.dumps({{"node": node, "opts": opts, "cmd": args[i:],
                       "env": {{k: env.get(k) for k in keep}}}}), file=log)
os.execvpe(args[i], args[i:], env)
"""

SCONTROL = """#!{python}
# scontrol stand-in: only `scontrol show hostnames a,b,c`.
import sys
assert sys.argv[1:3] == ["show", "hostnames"], sys.argv
print("\\n".join(sys.argv[3].split(",")))
"""

VLLM = """#!{python}
# vllm stand-in: `vllm serve CKPT --served-model-name M --host H --port P ...` serves the
# scripted judge of cof_plugins.testbed.openai_server until terminated.
import sys, threading
from cof_plugins.testbed.openai_server import FakeOpenAIServer, truthful_judge
args = sys.argv[1:]
assert args[0] == "serve", args
value = {{args[i]: args[i + 1] for i in range(2, len(args) - 1) if args[i].startswith("--")}}
models = (value["--served-model-name"],)
with FakeOpenAIServer(truthful_judge, models, host="0.0.0.0", port=int(value["--port"])):
    print("judge stand-in serving", flush=True)
    threading.Event().wait()
"""


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _node_env(temp: Path, name: str, index: int) -> dict[str, str]:
    """What a separate machine would have for free: its own Ray ports and temp dir. Worker
    ports get a wide range of their own per node (Ray skips ports in use within it)."""
    p = _free_ports(7)
    low = 11000 + 2000 * index
    flags = [
        f"--temp-dir={temp / name}", f"--node-manager-port={p[0]}",
        f"--object-manager-port={p[1]}", f"--dashboard-agent-listen-port={p[2]}",
        f"--dashboard-agent-grpc-port={p[3]}", f"--runtime-env-agent-port={p[4]}",
        f"--metrics-export-port={p[5]}", f"--ray-client-server-port={p[6]}",
        f"--min-worker-port={low}", f"--max-worker-port={low + 1999}",
        "--object-store-memory=100000000",
    ]  # fmt: skip
    return {"COF_RAY_START_ARGS": " ".join(flags)}


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _ours(marker: str) -> list[int]:
    """PIDs of processes whose command line names our temp root (the Ray processes)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def _stop(proc: subprocess.Popen, marker: str) -> None:
    """Terminate the script's process group, then anything left that names our temp root."""
    for sig, grace in ((signal.SIGTERM, 45), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        for pid in _ours(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (proc.poll() is None or _ours(marker)):
            time.sleep(0.5)


@pytest.fixture
def allocation():
    # A short root: Ray's Unix socket paths must stay under 108 bytes.
    temp = Path(tempfile.mkdtemp(prefix="cofray", dir="/tmp"))
    bin_dir = temp / "bin"
    bin_dir.mkdir()
    log = temp / "srun.jsonl"
    nodes = {n: _node_env(temp, n, i) for i, n in enumerate(NODES)}
    fill = {"python": sys.executable, "log": str(log), "nodes": json.dumps(nodes)}
    _write(bin_dir / "srun", SRUN.format(**fill))
    _write(bin_dir / "scontrol", SCONTROL.format(python=sys.executable))
    _write(bin_dir / "vllm", VLLM.format(python=sys.executable))
    yield temp, bin_dir, log
    shutil.rmtree(temp, ignore_errors=True)


def _environment(temp: Path, bin_dir: Path) -> dict[str, str]:
    ray_port, dashboard_port, judge_port = _free_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SLURM_", "COF_"))}
    return {
        **env,
        "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env["PATH"]]),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        "SLURM_JOB_NODELIST": ",".join(NODES),
        "SLURM_JOB_NUM_NODES": str(len(NODES)),
        "SLURM_SUBMIT_DIR": str(ROOT),
        "SLURM_CPUS_ON_NODE": "2",
        "SLURM_GPUS_PER_NODE": "gpu:1",  # typed form; Ray gets logical GPU slots
        "COF_CKPT_DIR": str(temp / "ckpt"),
        "COF_CLUSTER_CHECK": "only",
        "COF_RAY_START_TIMEOUT": "240",
        "COF_START_JUDGE": "1",
        "COF_JUDGE_CHECKPOINT": "stand-in",
        "COF_JUDGE_MODEL": "judge",
        "COF_JUDGE_PORT": str(judge_port),
        "RAY_PORT": str(ray_port),
        "RAY_DASHBOARD_PORT": str(dashboard_port),
        "RAY_USAGE_STATS_ENABLED": "0",
        # The trigger: exported before sbatch, forwarded to the job, added by cof too.
        "VERL_USE_EXTERNAL_MODULES": "cof_plugins.verl.autoload",
        "TOKENIZERS_PARALLELISM": "false",
    }


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sbatch_script_brings_up_ray_and_the_judge_and_every_node_sees_the_plugin(allocation):
    temp, bin_dir, log = allocation
    script = ROOT / "launch" / "slurm_ray.sbatch"
    args = ["paper_qwen2_5_vl_7b_grpo_multi_node", "trainer.n_gpus_per_node=1"]
    output = temp / "sbatch.log"  # a file, not a pipe: Ray's daemons would hold a pipe open
    with output.open("w") as sink:
        proc = subprocess.Popen(
            ["bash", str(script), *args],
            env=_environment(temp, bin_dir),
            cwd=temp,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=720)
        finally:
            _stop(proc, str(temp))
    out = output.read_text(errors="replace")
    assert proc.returncode == 0, out[-6000:]
    assert not _ours(str(temp)), "Ray processes outlived the script"

    table = [
        line
        for line in out.splitlines()
        if re.search(r" (registered|MISSING) +\S+ +\d+\.\d+\.\d+ ", line)
    ]
    assert len(table) == 2 and all(" registered " in line for line in table), out[-4000:]
    assert all(line.rstrip().endswith("ok") for line in table)  # judge reached from each node
    assert "cluster check: 2 node(s) ready" in out
    assert "VERL_USE_EXTERNAL_MODULES: the Ray job already sets it" in out
    assert "judge ready at http://" in out

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert {c["node"] for c in calls} == set(NODES)
    assert all(["--cpus-per-task", "2"] in c["opts"] for c in calls)
    starts = {c["cmd"][1]: c for c in calls if c["cmd"][0].endswith("ray_node.sh")}
    assert starts["head"]["node"] == "cofn0" and starts["worker"]["node"] == "cofn1"
    assert starts["worker"]["env"] == {
        "COF_RAY_NUM_CPUS": "2", "COF_RAY_NUM_GPUS": "1", "COF_NNODES": "2"
    }  # fmt: skip
    judge = [c for c in calls if any(a.endswith("judge_server.sh") for a in c["cmd"])]
    assert [c["node"] for c in judge] == ["cofjudge"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"COF_CKPT_DIR": None}, "set COF_CKPT_DIR to shared storage"),
        ({"COF_CLUSTER_CHECK": "maybe"}, "COF_CLUSTER_CHECK=maybe: use 1, 0 or only"),
        ({"COF_JUDGE_URL": "http://elsewhere/v1"}, "COF_JUDGE_URL is already set; unset one"),
        ({"SLURM_JOB_NODELIST": "cofn0"}, "needs a node for the judge besides the Ray nodes"),
        ({"COF_JUDGE_MODEL": None}, "set COF_JUDGE_MODEL to the name the reward asks for"),
        ({"SLURM_GPUS_PER_NODE": "lots"}, "cannot read the GPUs per node"),
    ],
)
def test_sbatch_script_fails_fast_naming_the_fix(allocation, change, message):
    temp, bin_dir, log = allocation
    env = _environment(temp, bin_dir)
    for key, value in change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    done = subprocess.run(
        ["bash", str(ROOT / "launch" / "slurm_ray.sbatch"), "paper_qwen2_5_vl_7b_grpo"],
        env=env, cwd=temp, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert not log.exists()  # nothing was started


@pytest.mark.parametrize(
    ("env", "hostname_says", "expected"),
    [
        ({"COF_RAY_NODE_IP": "10.1.2.3"}, "127.0.1.1", "10.1.2.3"),
        ({"COF_RAY_IFNAME": "ib0"}, "172.16.0.5", "10.9.8.7"),
        ({"NCCL_SOCKET_IFNAME": "ib0"}, "172.16.0.5", "10.9.8.7"),
        ({"NCCL_SOCKET_IFNAME": "^docker,lo"}, "127.0.1.1 fd00::2 172.16.0.5", "172.16.0.5"),
        ({}, "127.0.1.1", None),
    ],
)
def test_ray_node_picks_the_address_other_nodes_dial(tmp_path, env, hostname_says, expected):
    # Stand-ins for the system's `ip` (one interface, ib0) and `hostname --all-ip-addresses`.
    ip_line = "4: ib0    inet 10.9.8.7/16 brd 10.9.255.255 scope global ib0"
    ip_script = f'#!/usr/bin/env bash\n[[ " $* " == *" dev ib0"* ]] && echo "{ip_line}"\nexit 0\n'
    _write(tmp_path / "ip", ip_script)
    _write(tmp_path / "hostname", f"#!/usr/bin/env bash\necho '{hostname_says}'\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("COF_RAY", "NCCL_"))}
    done = subprocess.run(
        [str(ROOT / "launch" / "ray_node.sh"), "ip"],
        env={**clean, **env, "PATH": f"{tmp_path}{os.pathsep}{clean['PATH']}"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if expected is None:
        assert done.returncode == 1 and "set COF_RAY_NODE_IP" in done.stderr
    else:
        assert (done.returncode, done.stdout.strip()) == (0, expected), done.stderr
