#!/usr/bin/env bash
# Start a Ray cluster for STP over ssh, then run self-play rounds on its head node.
#
#   scripts/ray_cluster.sh --head gpu01 --gpu-nodes "gpu02 gpu03" --cpu-nodes "cpu01 cpu02" \
#       -- stp round --config configs/stp-lean-7b.yaml --rounds 48
#
# - head node: `ray start --head`; it also runs `stp round` (sampling with vLLM and training
#   use its GPUs; vLLM's data-parallel engines and Ray place work on the GPU nodes too);
# - GPU nodes: `ray start --address HEAD:PORT` with their GPUs;
# - CPU nodes: verifier workers. `ray start --address HEAD:PORT --resources '{"verifier": N}'`
#   with N = cores, so the round's Lean/Rocq checks are scheduled there (the config's
#   verification.ray_address: auto makes the verifier ask Ray for workers).
# Every node needs the same checkout, the same Python environment (make setup, plus the `gpu`
# extra on GPU nodes) and, on CPU nodes, the proof assistant (Lean + Mathlib in
# lean_project/ for Lean, `apt-get install coq` for Rocq).
#
# Stop the cluster with:  scripts/ray_cluster.sh --head gpu01 --gpu-nodes ... --cpu-nodes ... --stop
# On SLURM use scripts/slurm_stp.sbatch instead (same steps through srun).
set -euo pipefail

HEAD="" GPU_NODES="" CPU_NODES="" PORT=6379 STOP=0
VENV="${VENV:-$PWD/.venv}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --head) HEAD="$2"; shift 2 ;;
    --gpu-nodes) GPU_NODES="$2"; shift 2 ;;
    --cpu-nodes) CPU_NODES="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --stop) STOP=1; shift ;;
    --) shift; break ;;
    *) echo "unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[[ -n "$HEAD" ]] || { echo "--head HOST is required" >&2; exit 2; }

remote() {  # remote HOST COMMAND...: run in this checkout with the project's venv
  local host="$1"; shift
  echo "+ [$host] $*"
  ssh "$host" "cd '$PWD' && source '$VENV/bin/activate' && $*"
}

if [[ "$STOP" == 1 ]]; then
  for host in $CPU_NODES $GPU_NODES $HEAD; do remote "$host" ray stop || true; done
  exit 0
fi

ADDRESS="$HEAD:$PORT"
remote "$HEAD" ray start --head --port "$PORT"
for host in $GPU_NODES; do
  remote "$host" ray start --address "$ADDRESS"
done
for host in $CPU_NODES; do
  remote "$host" 'ray start --address '"$ADDRESS"' --num-gpus 0 --resources "{\"verifier\": $(nproc)}"'
done
remote "$HEAD" ray status

if [[ $# -gt 0 ]]; then
  # RAY_ADDRESS makes every Ray client in the round (verifier workers, vLLM) join this cluster.
  remote "$HEAD" "RAY_ADDRESS=$ADDRESS $*"
fi
