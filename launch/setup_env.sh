#!/usr/bin/env bash
# Create a virtual environment for one side of cof-plugins and install it.
#   bash launch/setup_env.sh cpu   # both trainers, CPU torch stack: tests, quickstart (default)
#   bash launch/setup_env.sh sft   # GPU SFT side: LLaMA-Factory 0.9.5 (transformers 5.5.x),
#                                  # DeepSpeed and liger-kernel (the GPU SFT recipes use both)
#   bash launch/setup_env.sh rl    # GPU RL/eval side: verl[vllm] 0.9.1 (torch 2.11, transformers 5.9)
# VENV=path selects the environment folder (default .venv); PYTHON the interpreter (python3.11).
set -euo pipefail
side="${1:-cpu}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$here/.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
"$python" -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12)), sys.version' \
  || { echo "setup_env.sh: needs Python 3.11 or 3.12 (set PYTHON=...)" >&2; exit 1; }

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip() { "$venv/bin/python" -m pip "$@"; }
pip install -q --upgrade pip
case "$side" in
  cpu)
    # torch 2.14.1 satisfies both trainers on CPU; torch 2.9.x is refused for Qwen-VL.
    pip install -q torch==2.14.1 torchvision==0.29.1
    pip install -q -e "$here[cpu-all]" ;;
  sft)
    # sft-gpu: DeepSpeed (ZeRO-3 recipes) and liger-kernel (enable_liger_kernel: true).
    pip install -q -e "$here[sft,sft-gpu,eval,test]" ;;
  rl)
    pip install -q "verl[vllm]==0.9.1"
    pip install -q -e "$here[rl,eval,math,test]" ;;
  *) echo "setup_env.sh: unknown side '$side' (cpu, sft or rl)" >&2; exit 2 ;;
esac
echo "environment ready: source $venv/bin/activate"
