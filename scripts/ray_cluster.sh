#!/usr/bin/env bash
# Start a Ray cluster for STP over ssh, then run self-play rounds on its head node.
#
#   scripts/ray_cluster.sh --config configs/stp-lean-7b.yaml \
#       --head gpu01 --gpu-nodes "gpu02 gpu03" --cpu-nodes "cpu01 cpu02" -- --rounds 48
#
# - head node: `ray start --head`; it also runs `stp round --config CONFIG ARGS...` (sampling
#   with vLLM and training use its GPUs; vLLM's data-parallel engines land on the GPU nodes);
# - GPU nodes: `ray start --address HEAD:PORT` with their GPUs;
# - CPU nodes: `stp verify-workers --address HEAD:PORT --cpus <cores> --config CONFIG`, which
#   checks that the proof assistant is installed and offers one verifier slot per core; the
#   round's checks go there because the config sets verification.ray_address (HEAD:PORT is
#   passed to it here).
# Every node needs the same checkout, the same Python environment (make setup, plus the `gpu`
# extra on GPU nodes) and, on CPU nodes, the proof assistant (Lean + Mathlib in
# lean_project/ for Lean, `apt-get install coq` for Rocq).
#
# Stop the cluster with:  scripts/ray_cluster.sh --head gpu01 --gpu-nodes ... --cpu-nodes ... --stop
# On SLURM use scripts/slurm_stp.sbatch instead (same steps through srun).
set -euo pipefail

HEAD="" GPU_NODES="" CPU_NODES="" PORT=6379 STOP=0 CONFIG=""
VENV="${VENV:-$PWD/.venv}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) CONFIG="$2"; shift 2 ;;
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
[[ -n "$CONFIG" || "$STOP" == 1 ]] || { echo "--config FILE is required" >&2; exit 2; }

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
  # verify-workers blocks (it is the node): leave it running, logging on the node
  remote "$host" "nohup stp verify-workers --address $ADDRESS --cpus \$(nproc) --config $CONFIG \
      > verify-workers-\$(hostname).log 2>&1 &"
done
sleep 10
remote "$HEAD" ray status --address "$ADDRESS"

# The rounds, on the head node, with their checks sent to the cluster's verifier slots.
remote "$HEAD" stp round --config "$CONFIG" --set "verification.ray_address=$ADDRESS" "$@"
