/-
`stp_check`: the second line of the `lean` verifier backend (`stp/verify/lean_check.py`).

    lake env .lake/build/bin/stp_check STATEMENT.olean PROOF.olean NAME

STATEMENT.olean is compiled from header + dataset statement + `sorry`; PROOF.olean from header
+ statement + the proof, by `lean` in another process (which may have run code of the proof's).
This program runs none of it: it reads both files, imports the header's modules (their
initializers are not run), and

* requires the same imports in both, and every constant the statement's type mentions to come
  from them (the proof's file may not define what the statement means);
* requires NAME in the proof's file to be a declaration of the same kind, type and universe
  parameters as in the statement's file;
* replays every constant of the proof's file through the kernel (`Lean.Environment.replay`,
  as lean4checker does): nothing the elaborator or the proof's code added goes unchecked
  (unsafe and partial constants are not replayed, so a theorem that uses one fails);
* collects the axioms NAME depends on in the replayed environment.

It prints one line of JSON, `{"stp_check": 1, "ok": true|false, "reason": ..., "axioms": [...]}`,
and exits 0 when it reached a verdict. The caller allows only propext, Classical.choice and
Quot.sound. Written against Lean v4.9 (lean-toolchain); the Lean API it uses
(`readModuleData`, `importModules`, `Environment.replay`, `CollectAxioms`) changes across Lean
versions.
-/
import Lean

open Lean

def report (ok : Bool) (reason : String) (axioms : Array Name := #[]) : String :=
  (Json.mkObj [("stp_check", toJson (1 : Nat)), ("ok", Json.bool ok), ("reason", Json.str reason),
    ("axioms", Json.arr (axioms.map fun a => Json.str a.toString))]).compress

def kind : ConstantInfo → String
  | .axiomInfo _ => "axiom"
  | .defnInfo _ => "def"
  | .thmInfo _ => "theorem"
  | .opaqueInfo _ => "opaque"
  | .quotInfo _ => "quot"
  | .inductInfo _ => "inductive"
  | .ctorInfo _ => "constructor"
  | .recInfo _ => "recursor"

/-- The constant `name` declares in `mod`; failing that, the only one whose full name ends
with `.name` (a header may leave a namespace open). -/
def declared (mod : ModuleData) (name : Name) : Option ConstantInfo := Id.run do
  let mut suffixed : Array ConstantInfo := #[]
  for n in mod.constNames, ci in mod.constants do
    if n == name then
      return some ci
    if n.toString.endsWith ("." ++ name.toString) then
      suffixed := suffixed.push ci
  return if suffixed.size == 1 then suffixed[0]? else none

def check (statement proof : ModuleData) (name : Name) : IO String := do
  let importsOf (mod : ModuleData) := mod.imports.map fun i => (i.module, i.runtimeOnly)
  if importsOf statement != importsOf proof then
    return report false "the proof's file does not have the statement's imports"
  let some expected := declared statement name
    | return report false s!"the statement's file does not declare {name}"
  let some submitted := declared proof expected.name
    | return report false s!"the proof's file does not declare {expected.name}"
  if kind submitted != kind expected || submitted.type != expected.type
      || submitted.levelParams != expected.levelParams then
    return report false s!"{expected.name} does not have the statement's type"
  let env ← importModules proof.imports {} 0
  for c in expected.type.getUsedConstants do
    unless env.contains c do
      return report false s!"the statement's {c} does not come from the imports"
  let mut newConstants := {}  -- a Lean.HashMap on 4.9, Std.HashMap later: as replay takes it
  for n in proof.constNames, ci in proof.constants do
    newConstants := newConstants.insert n ci
  try
    let replayed ← env.replay newConstants
    let (_, state) := ((CollectAxioms.collect expected.name).run replayed).run {}
    return report true "" state.axioms
  catch e =>
    return report false s!"the kernel rejects the proof's file: {e}"

unsafe def main (args : List String) : IO UInt32 := do
  let [statementPath, proofPath, nameArg] := args
    | IO.eprintln "usage: stp_check STATEMENT.olean PROOF.olean NAME"
      return 2
  initSearchPath (← findSysroot)
  let (statement, _) ← readModuleData ⟨statementPath⟩
  let (proof, _) ← readModuleData ⟨proofPath⟩
  IO.println (← check statement proof nameArg.toName)
  return 0
