#!/usr/bin/env bash
# Install what the `lean` verifier backend needs: elan, the pinned Lean toolchain, the pinned
# Mathlib (built here) and the Lean REPL, then check that the REPL proves and refuses.
#
#     scripts/setup_lean.sh                 # into lean_project/ (the config default)
#     LEAN_PROJECT=/data/lean_project scripts/setup_lean.sh
#
# Pins live only in lean_project/lean-toolchain and lean_project/lakefile.lean; this script
# reads them, it never names a version itself. Safe to re-run: every step skips work already
# done. Needs git and curl (installed with apt-get, dnf or yum where missing), internet access
# to GitHub, and about 10 GB of disk.
#
# THE MATHLIB BUILD TAKES HOURS. The pinned Mathlib is DeepSeek's fork (xinhjBrant/mathlib4),
# whose lakefile and manifest differ from upstream Mathlib's: Mathlib's olean cache is keyed
# by them, so `lake exe cache get` never has this fork's files and all of Mathlib is compiled
# here: hours, more with fewer cores (not measured on this project's machines; the build step
# prints its time). Build once on a shared filesystem, or on one node and copy the project
# folder (with its .lake/) and ~/.elan to the others.
#
# The smoke test at the end sends the REPL one true theorem (must come back without errors)
# and one false one (must come back with an error): a REPL that starts but does not check is
# caught here, not by the first run.
#
# UNTESTED HERE: the machines this project is developed on have no route to GitHub and no Lean
# toolchain, so the install steps have only run against stand-ins (tests/test_setup_lean.py).
set -euo pipefail

HERE="${BASH_SOURCE[0]%/*}"
[[ "$HERE" == "${BASH_SOURCE[0]}" ]] && HERE=.  # run from scripts/ itself
ROOT="$(cd "$HERE/.." && pwd)"
# Where elan's installer puts it; stp looks there too (verification.lean_lake_path otherwise).
ELAN_BIN="${ELAN_HOME:-$HOME/.elan}/bin"
# Mathlib's cache server, probed before `lake exe cache get` (which may hang without a route).
MATHLIB_CACHE_URL="${MATHLIB_CACHE_URL:-https://lakecache.blob.core.windows.net/mathlib4/}"

ensure_tools() {  # ensure_tools TOOL...: install the missing ones with the system's packager
  local missing=() tool sudo=()
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  (( ${#missing[@]} == 0 )) && return 0
  echo "+ installing ${missing[*]}"
  if (( EUID != 0 )); then
    command -v sudo >/dev/null 2>&1 \
      || { echo "need ${missing[*]}: install them (as root) and re-run" >&2; return 1; }
    sudo=(sudo)
  fi
  if command -v apt-get >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y "${missing[@]}"
  elif command -v dnf >/dev/null 2>&1; then
    "${sudo[@]}" dnf install -y "${missing[@]}"
  elif command -v yum >/dev/null 2>&1; then
    "${sudo[@]}" yum install -y "${missing[@]}"
  else
    echo "need ${missing[*]}, and found no apt-get, dnf or yum: install them and re-run" >&2
    return 1
  fi
}

reachable() {  # reachable URL: whether anything answers there within 15 s
  curl -sS -o /dev/null --max-time 15 "$1" 2>/dev/null
}

# smoke_test CMD...: run the REPL command CMD (in the current folder) on a true and a false
# theorem over Mathlib; succeed only when the true one checks and the false one is refused.
smoke_test() {
  local answers
  answers="$(printf '%s\n\n' \
    '{"cmd": "import Mathlib"}' \
    '{"cmd": "theorem stp_smoke_true : (2 : ℕ) + 2 = 4 := by norm_num", "env": 0}' \
    '{"cmd": "theorem stp_smoke_false : (2 : ℕ) + 2 = 5 := by norm_num", "env": 0}' \
    | "$@")" || { echo "smoke test: the REPL ($*) exited with an error" >&2; return 1; }
  SMOKE_ANSWERS="$answers" python3 - <<'PY'
import json, os, sys

text, answers, decoder, at = os.environ["SMOKE_ANSWERS"], [], json.JSONDecoder(), 0
while (at := len(text) - len(text[at:].lstrip())) < len(text):  # answers, blank-line apart
    try:
        answer, at = decoder.raw_decode(text, at)
    except json.JSONDecodeError:
        sys.exit(f"smoke test: the REPL answered something that is not JSON: {text[at:][:200]!r}")
    if not isinstance(answer, dict):
        sys.exit(f"smoke test: the REPL answered something that is not an object: {answer!r}")
    answers.append(answer)


def errors(answer):
    found = [m.get("data", "") for m in answer.get("messages", []) if m.get("severity") == "error"]
    return found + ([answer["message"]] if "message" in answer and "env" not in answer else [])


if len(answers) != 3:
    sys.exit(f"smoke test: expected 3 answers from the REPL, got {len(answers)}: {text[:300]!r}")
header, true, false = answers
if errors(header):
    sys.exit(f"smoke test: `import Mathlib` failed: {errors(header)[0][:300]}")
if errors(true) or true.get("sorries") or "env" not in true:
    sys.exit(f"smoke test: a true theorem did not check: {json.dumps(true)[:300]}")
if not errors(false):
    sys.exit(f"smoke test: the REPL accepted a false theorem: {json.dumps(false)[:300]}")
print("smoke test: the REPL proves 2 + 2 = 4 and refuses 2 + 2 = 5")
PY
}

main() {
  local project="${LEAN_PROJECT:-$ROOT/lean_project}" toolchain started
  if [[ "$project" != "$ROOT/lean_project" && ! -f "$project/lakefile.lean" ]]; then
    mkdir -p "$project"
    cp "$ROOT/lean_project/lakefile.lean" "$ROOT/lean_project/lean-toolchain" \
      "$ROOT/lean_project/StpCheck.lean" "$project/"
  fi
  toolchain="$(< "$project/lean-toolchain")"
  toolchain="${toolchain//[[:space:]]/}"

  ensure_tools git curl python3

  echo "+ elan"
  if ! command -v elan >/dev/null 2>&1 && [[ ! -x "$ELAN_BIN/elan" ]]; then
    curl -sSfL https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh \
      | sh -s -- -y --default-toolchain none
  fi
  export PATH="$ELAN_BIN:$PATH"

  echo "+ elan toolchain install $toolchain"
  elan toolchain install "$toolchain"  # a no-op when it is installed

  cd "$project"
  if [[ ! -f lake-manifest.json ]]; then
    echo "+ lake update (clones Mathlib, the REPL and their dependencies at the pinned revisions)"
    lake update
  fi

  if reachable "$MATHLIB_CACHE_URL"; then
    echo "+ lake exe cache get (this Mathlib fork is not in the cache: expect it to fetch nothing)"
    lake exe cache get || echo "cache get failed: Mathlib is built from source below"
  else
    echo "+ Mathlib's cache ($MATHLIB_CACHE_URL) is unreachable: skipping lake exe cache get"
  fi

  echo "+ lake build Mathlib repl stp_check"
  echo "  Mathlib is compiled from source (its fork is never in the cache): expect hours"
  started=$SECONDS
  lake build Mathlib repl stp_check
  echo "  built in $(( (SECONDS - started) / 3600 )) h $(( (SECONDS - started) % 3600 / 60 )) min"

  echo "+ smoke test: a true and a false theorem through the REPL"
  smoke_test lake exe repl
  lean --version
  echo "Lean backend ready in $project: stp verify --backend lean"
  if [[ "$ELAN_BIN" == "$HOME/.elan/bin" ]]; then
    echo "lake is $ELAN_BIN/lake, where verifier workers look when elan is not on their PATH."
  else
    echo "lake is $ELAN_BIN/lake: verifier workers started over ssh or by Ray may not have"
    echo "ELAN_HOME set, so put  verification.lean_lake_path: $ELAN_BIN/lake  in the config."
  fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
