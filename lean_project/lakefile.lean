/-
The Lean project the `lean` verifier backend runs in: `lake exe repl` here starts the REPL.

These lines and `lean-toolchain` are the ONE place where the Lean toolchain, Mathlib and REPL
revisions are pinned; `stp.verify.lean` reads them back into every result's `assistant_version`.
`scripts/setup_lean.sh` installs everything (elan, toolchain, Mathlib oleans, REPL build).

The pins are those DeepSeek-Prover-V1.5 and STP verified the benchmarks with: Lean
v4.9.0-rc1, the Mathlib fork xinhjBrant/mathlib4 at the commit DeepSeek-Prover-V1.5 pins as its
`mathlib4` submodule (branch `deepseek`), and the REPL fork xinhjBrant/repl (branch `deepseek`)
at the revision that Mathlib fork's manifest resolves. The miniF2F, ProofNet and PutnamBench
statements bundled with stp target exactly this Lean and Mathlib.
-/
import Lake
open Lake DSL

package stp_lean

require mathlib from git
  "https://github.com/xinhjBrant/mathlib4.git" @ "2f65ba7f1a9144b20c8e7358513548e317d26de1"

require REPL from git
  "https://github.com/xinhjBrant/repl.git" @ "3334a97b268ecc67beb36a75787f7e831208a724"

-- The second line of the verifier (`stp.verify.lean_check`): replays a compiled proof through
-- the kernel in a process that runs none of the proof's code.
lean_exe stp_check where
  root := `StpCheck
  supportInterpreter := true
