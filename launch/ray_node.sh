#!/usr/bin/env bash
# Start one Ray node for multi-node GRPO and keep it in the foreground (for srun / systemd).
#   launch/ray_node.sh head                 # on the first node
#   launch/ray_node.sh worker HEAD_IP       # on every other node
#   launch/ray_node.sh ip                   # print the address other nodes reach this one at
# RAY_PORT (default 6379) and RAY_DASHBOARD_PORT (8265) must be reachable between nodes.
# COF_RAY_NUM_CPUS / COF_RAY_NUM_GPUS: the node's resources for Ray (default: what Ray
#   detects, which inside a Slurm step may be the whole machine, not the allocation);
#   launch/slurm_ray.sbatch sets both from the allocation.
# COF_RAY_NODE_IP: this node's address. Default: the IPv4 address of COF_RAY_IFNAME, else of
#   NCCL_SOCKET_IFNAME (one interface name), else the node's first IPv4 address that is not
#   loopback (`hostname --ip-address` is often 127.0.x.1, which no other node can dial).
# COF_RAY_START_ARGS: more `ray start` flags, e.g. "--temp-dir=/scratch/$USER/ray".
# Set NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME to the interface the nodes talk over
# (e.g. ib0, eth0) BEFORE this script: Ray workers inherit this environment, and NCCL/Gloo
# otherwise pick the first interface, often a docker or loopback one, and hang.
set -euo pipefail
role="${1:-}"
port="${RAY_PORT:-6379}"

node_ip() {
  if [[ -n "${COF_RAY_NODE_IP:-}" ]]; then echo "$COF_RAY_NODE_IP"; return; fi
  local ip ifname="${COF_RAY_IFNAME:-${NCCL_SOCKET_IFNAME:-}}"
  # The interface NCCL is told to use is the one the nodes reach each other over.
  if [[ -n "$ifname" && "$ifname" != *[,^=]* ]] && command -v ip >/dev/null; then
    ip="$(ip -4 -o addr show dev "$ifname" 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}' || true)"
    if [[ -n "$ip" ]]; then echo "$ip"; return; fi
  fi
  for ip in $(hostname --all-ip-addresses 2>/dev/null); do
    if [[ "$ip" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ && "$ip" != 127.* ]]; then echo "$ip"; return; fi
  done
  echo "ray_node.sh: no non-loopback IPv4 address on $(hostname); set COF_RAY_NODE_IP" >&2
  exit 1
}

# Every Ray worker holds sockets to its peers; the usual soft limit of 1024 runs out on a
# node with hundreds of workers ("Too many open files"). Raise it to the hard limit.
raise_open_files() {
  ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
  local soft
  soft="$(ulimit -Sn)"
  if [[ "$soft" != unlimited ]] && ((soft < 65536)); then
    echo "ray_node.sh: warning: open-file limit is $soft (hard limit); Ray wants >= 65536" >&2
  fi
}

start_args() {
  local ip
  ip="$(node_ip)" || exit 1
  args=(--node-ip-address="$ip")
  if [[ -n "${COF_RAY_NUM_CPUS:-}" ]]; then args+=(--num-cpus="$COF_RAY_NUM_CPUS"); fi
  if [[ -n "${COF_RAY_NUM_GPUS:-}" ]]; then args+=(--num-gpus="$COF_RAY_NUM_GPUS"); fi
  local extra
  read -r -a extra <<<"${COF_RAY_START_ARGS:-}"
  args+=("${extra[@]}")
}

case "$role" in
  ip)
    node_ip ;;
  head)
    command -v ray >/dev/null || { echo "$0: 'ray' is not on PATH; activate the RL environment" >&2; exit 1; }
    raise_open_files
    start_args
    exec ray start --head --port="$port" "${args[@]}" \
      --dashboard-host=0.0.0.0 --dashboard-port="${RAY_DASHBOARD_PORT:-8265}" --block ;;
  worker)
    head_ip="${2:?usage: $0 worker HEAD_IP}"
    command -v ray >/dev/null || { echo "$0: 'ray' is not on PATH; activate the RL environment" >&2; exit 1; }
    raise_open_files
    start_args
    exec ray start --address="$head_ip:$port" "${args[@]}" --block ;;
  *)
    echo "usage: $0 head | worker HEAD_IP | ip" >&2
    exit 2 ;;
esac
