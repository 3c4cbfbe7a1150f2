#!/usr/bin/env bash
# Install what the `isabelle` verifier backend needs: an Isabelle release and the STP_MiniF2F
# heap image (isabelle/ROOT) with everything the miniF2F headers import.
#
#     scripts/setup_isabelle.sh                          # Isabelle2024 into ~/.local/isabelle
#     ISABELLE_RELEASE=Isabelle2025 ISABELLE_PREFIX=/opt scripts/setup_isabelle.sh
#
# Then verify with
#     --set verification.isabelle_cmd=<prefix>/<release>/bin/isabelle \
#     --set verification.isabelle_session=STP_MiniF2F --set verification.memory_limit_mb=16384
# Safe to re-run: the download and the build skip work already done. Needs internet access to
# isabelle.in.tum.de, about 6 GB of disk and, for the heap, 10-30 minutes on a few cores.
#
# UNTESTED HERE: the machines this project is developed on cannot download Isabelle, so this
# script has never been run. Each step is the documented upstream command.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RELEASE="${ISABELLE_RELEASE:-Isabelle2024}"
PREFIX="${ISABELLE_PREFIX:-$HOME/.local/isabelle}"
ISABELLE="$PREFIX/$RELEASE/bin/isabelle"

if [[ ! -x "$ISABELLE" ]]; then
  echo "+ download $RELEASE"
  mkdir -p "$PREFIX"
  curl -sSfL "https://isabelle.in.tum.de/dist/${RELEASE}_linux.tar.gz" | tar -xz -C "$PREFIX"
fi
"$ISABELLE" version

echo "+ isabelle build -d isabelle -b STP_MiniF2F"
"$ISABELLE" build -d "$ROOT/isabelle" -b STP_MiniF2F

echo
echo "Isabelle is ready. Check proofs with:"
echo "  stp verify --backend isabelle --isabelle-cmd $ISABELLE \\"
echo "    --set verification.isabelle_session=STP_MiniF2F --set verification.memory_limit_mb=16384 \\"
echo "    proofs.jsonl --out results.jsonl"
