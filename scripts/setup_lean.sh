#!/usr/bin/env bash
# Install what the `lean` verifier backend needs: elan, the pinned Lean toolchain, the pinned
# Mathlib (prebuilt oleans where the cache has them, else built here) and the Lean REPL.
#
#     scripts/setup_lean.sh                 # into lean_project/ (the config default)
#     LEAN_PROJECT=/data/lean_project scripts/setup_lean.sh
#
# Pins live only in lean_project/lean-toolchain and lean_project/lakefile.lean; this script
# reads them, it never names a version itself. Safe to re-run: every step skips work already
# done. Needs internet access to GitHub (and the Mathlib cache), about 10 GB of disk, and for a
# Mathlib build from source (the DeepSeek fork may miss the cache) an hour or more on 16+ cores.
#
# UNTESTED HERE: the machines this project is developed on have no route to GitHub and no Lean
# toolchain, so this script has never been run. Each step is the documented upstream command.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROJECT="${LEAN_PROJECT:-$ROOT/lean_project}"
if [[ "$PROJECT" != "$ROOT/lean_project" && ! -f "$PROJECT/lakefile.lean" ]]; then
  mkdir -p "$PROJECT"
  cp "$ROOT/lean_project/lakefile.lean" "$ROOT/lean_project/lean-toolchain" "$PROJECT/"
fi
TOOLCHAIN="$(tr -d '[:space:]' < "$PROJECT/lean-toolchain")"

echo "+ elan"
if ! command -v elan >/dev/null 2>&1 && [[ ! -x "$HOME/.elan/bin/elan" ]]; then
  curl -sSfL https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh \
    | sh -s -- -y --default-toolchain none
fi
export PATH="$HOME/.elan/bin:$PATH"

echo "+ elan toolchain install $TOOLCHAIN"
elan toolchain install "$TOOLCHAIN"  # a no-op when it is installed

cd "$PROJECT"
if [[ ! -f lake-manifest.json ]]; then
  echo "+ lake update (clones Mathlib, the REPL and their dependencies at the pinned revisions)"
  lake update
fi

echo "+ lake exe cache get (prebuilt Mathlib oleans; files the cache lacks are built next)"
lake exe cache get || echo "cache get failed: Mathlib will be built from source below"

echo "+ lake build Mathlib repl stp_check"
lake build Mathlib repl stp_check

echo "+ smoke test: one proof through the REPL"
printf '%s\n\n' '{"cmd": "import Mathlib\ntheorem smoke : (2 : ℕ) + 2 = 4 := by norm_num"}' \
  | lake exe repl
lean --version
echo "Lean backend ready in $PROJECT: stp verify --backend lean"
