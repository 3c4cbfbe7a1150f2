"""The Lean proof screen (stp.verify.lean_screen): every known way past the old line-start
filter stays rejected, and ordinary proofs, with banned words in comments and strings, pass."""

from __future__ import annotations

import pytest

from stp.verify.lean_screen import LexicalError, screen, tokens

# Each of these got past the filter that looked only at line starts, or is a Lean 4.9 exploit.
BYPASSES = {
    "doc comment before elab": '  simp\n/-- -/ elab "cheat" : tactic => pure ()',
    "local elab": '  simp\nlocal elab "cheat" : tactic => pure ()',
    "scoped macro": '  simp\nscoped macro "cheat" : tactic => `(tactic| sorry)',
    "attribute before elab": '  simp\n@[inline] elab "cheat" : term => pure (Lean.mkConst ``True)',
    "command_elab attribute": (
        "  simp\n@[command_elab Lean.Parser.Command.print] def printElab : "
        "Lean.Elab.Command.CommandElab := fun _ => pure ()"
    ),
    "macro attribute": (
        "  simp\n@[macro Lean.Parser.Command.print] def printMacro : Lean.Macro := "
        "fun _ => Lean.Macro.throwUnsupported"
    ),
    "local macro_rules for #print axioms": (
        "  simp\nlocal macro_rules | `(#print axioms $x) => `(#check $x)"
    ),
    "macro_rules after a term": "  exact trivial macro_rules | `(tactic| rfl) => `(tactic| sorry)",
    "guillemet debug option": "  set_option «debug».skipKernelTC true in\n  simp",
    "guillemet debug option, second part": "  set_option debug.«skipKernelTC» true in\n  simp",
    "debug option": "  set_option debug.skipKernelTC true in\n  simp",
    "set_option without in": "  simp\nset_option pp.all true",
    "option off the allow-list": "  set_option compiler.extract_closed false in\n  simp",
    "open without in": "  simp\nopen Lean Elab Command",
    "keyword inside an open clause": "  open elab in\n  simp",
    "keyword as an option value": "  set_option pp.all elab in\n  simp",
    "open, then a command": "  simp\nopen Lean in\n#eval IO.println 1",
    "keyword after a projection": "  exact h.1.elab",
    "keyword glued to a Latin-1 letter": '  simp\néelab "x" : term => pure (Lean.mkConst ``True)',
    "native_decide": "  native_decide",
    "native_decide in a combinator": "  all_goals native_decide",
    "ofReduceBool": "  exact Lean.ofReduceBool _ _ rfl",
    "apply?": "  apply?",
    "exact?": "  exact?",
    "apply? using": "  apply? using h",
    "rw?": "  rw?",
    "#exit": "  simp\n#exit",
    "#eval mid-line": "  simp; #eval IO.println 1",
    "#print": "  simp\n#print axioms foo",
    "run_tac": "  run_tac Lean.Elab.Tactic.evalTactic (← `(tactic| simp))",
    "by_elab": "  exact by_elab return .const ``trivial []",
    "axiom": "  exact cheat\naxiom cheat : False",
    "theorem after the proof": "  simp\ntheorem cheat : False := sorry",
    "instance": "  simp\ninstance : Inhabited Nat := ⟨0⟩",
    "namespace": "  simp\nnamespace Foo",
    "end": "  simp\nend",
    "import": "  simp\nimport Mathlib",
    "initialize": "  simp\ninitialize pure ()",
    "syntax": '  simp\nsyntax "cheat" : tactic',
    "notation": '  simp\nnotation "cheat" => sorry',
    "attribute command": "  simp\nattribute [simp] foo in\n  simp",
    "deriving": "  simp\nderiving instance Repr for Nat",
    "unsafe": "  exact unsafe (cheat)",
    "name literal": "  exact (`elab)",
    "simproc": "  simp\nsimproc cheat (_) := fun _ => return .continue",
    "eval%": "  exact eval% (1 + 1)",
    "elab inside a raw string's neighbour": '  exact r"\\" elab "x" : term => pure ()',
}

# Text Lean could read differently from the lexer: rejected rather than guessed at.
AMBIGUOUS = {
    "unterminated comment": "  simp /- elab",
    "unterminated string": '  exact "elab',
    "unknown escape": '  exact "\\q" ++ "x"',
    "escape not every Lean reads": '  exact "\\r elab"',
    "raw string": '  exact r"\\" elab "x"',
    "interpolated string": '  exact s!"{by_elab return .const ``trivial []}"',
    "comment opener glued to a symbol": "  exact foo <-- elab\n",
    "char literal glued to a symbol": "  exact (f)'\"' elab \"",
    "tab": "\tsimp",
    "unterminated guillemets": "  exact «foo",
    "lone quote": "  exact '",
}

GENUINE = {
    "simp": "  simp",
    "nlinarith": "  nlinarith [sq_nonneg (a - b), sq_nonneg (a + b), mul_pos h₀ h₁]",
    "omega": "  omega",
    "decide": "  decide",
    "norm_num at": "  norm_num [Nat.factorial] at h ⊢",
    "bullets": "  constructor\n  · linarith\n  · nlinarith [sq_nonneg x]",
    "<;>": "  constructor <;> linarith",
    "calc": "  calc a = b := by rw [h₀]\n    _ = c := by linarith",
    "show from": "  exact show (2 : ℕ) + 2 = 4 from rfl",
    "fun": "  exact fun x hx => hx.le",
    "match": "  match h with\n  | Or.inl h => exact h\n  | Or.inr h => exact absurd h (by simp)",
    "have obtain": "  have h₂ : x = 2 := by linarith\n  obtain ⟨a, b⟩ := h\n  exact ⟨a, b⟩",
    "rcases": "  rcases h with ⟨x, hx⟩ | ⟨y, hy⟩\n  all_goals simp_all",
    "comments with banned words": (
        "  -- elab, macro_rules, #eval, native_decide, exact?\n"
        '  /- local elab "x" : term => sorry\n     /- nested: theorem axiom -/ -/\n  simp'
    ),
    "strings with banned words": '  have : "elab #eval macro".length = 15 := by decide\n  simp',
    "string escapes": '  have : "a\\"b\\\\c\\n".length = 6 := by decide\n  simp',
    "char literal": "  have : 'a'.toNat = 97 := by decide\n  simp",
    "set_option in": "  set_option maxRecDepth 10000 in\n  norm_num",
    "set_option heartbeats in": "  set_option maxHeartbeats 400000 in\n  nlinarith [sq_nonneg x]",
    "set_option tactic in": ("  set_option tactic.skipAssignedInstances false in\n  norm_num [h]"),
    "comment after the goal sign": "  simp at h ⊢-- closes it",
    "open in": "  open Real in\n  simp [Real.sqrt_eq_iff]",
    "open scoped in": "  open scoped BigOperators in\n  simp [Finset.sum_range_succ]",
    "simp? says": "  simp? says simp only [h]",
    "tsum": "  exact tsum_eq_zero_of_not_summable (by simpa using h)  -- ∑' i, f i",
    "tsum token": "  have : ∑' i : ℕ, (0 : ℝ) = 0 := by simp\n  simp",
    "primes": "  simp only [h', h'']\n  exact h'.trans h''",
    "projections": "  exact ⟨h.1, h.2.1, h.2.2⟩",
    "names containing keywords": "  exact my_elab_lemma.trans Lean.Elab.foo_end",
    "interval_cases": "  interval_cases x <;> simp_all",
    "term proof": "  ⟨by norm_num, fun n hn => by omega⟩",
    "comment right after a name": "  simp--done",
    "conv in": "  conv in a + b => rw [add_comm]",
    "decreasing recursion helpers": "  exact h\ntermination_by n\ndecreasing_by omega",
    "eval as a name": "  simp [Polynomial.eval, eval_add]",
    "numbers": "  norm_num [show (0.5 : ℝ) = 1 / 2 by norm_num, show (1e3 : ℝ) = 1000 by norm_num]",
}


@pytest.mark.parametrize("proof", BYPASSES.values(), ids=BYPASSES.keys())
def test_known_bypasses_are_rejected(proof: str) -> None:
    assert screen(proof) is not None


@pytest.mark.parametrize("proof", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_text_lean_could_read_otherwise_is_rejected(proof: str) -> None:
    reason = screen(proof)
    assert reason is not None and "could read otherwise" in reason


@pytest.mark.parametrize("proof", GENUINE.values(), ids=GENUINE.keys())
def test_genuine_proofs_pass(proof: str) -> None:
    assert screen(proof) is None


def test_the_reason_names_what_was_found() -> None:
    assert (
        screen("  simp\n/-- -/ elab")
        == "commands and declarations (elab) are not allowed in a proof"
    )
    assert "debug.skipKernelTC" in str(screen("  set_option «debug».skipKernelTC true in simp"))
    assert "#exit" in str(screen("  simp\n#exit"))


def test_tokens_follow_lean() -> None:
    def kinds(text: str) -> list[tuple[str, str]]:
        return [(t.kind, t.text) for t in tokens(text)]

    # comments vanish, nested ones too; strings and char literals are single tokens
    assert kinds('a /- x /- y -/ z -/ "q\\"r" -- c\n\'x\'') == [
        ("ident", "a"),
        ("string", '"q\\"r"'),
        ("char", "'x'"),
    ]
    # raw strings: Lean with them reads `r#"a "#` as a string, Lean before them `r`, `#`, then
    # a string `"a "`: the readings part ways, so neither is taken
    with pytest.raises(LexicalError, match="raw string"):
        tokens('r#"a "# b"# c')
    assert [t.text for t in tokens('fr"x"')] == ["fr", '"x"']  # only at a token's start
    # dotted names with guillemets are one token; `h.1.elab` is three names and a number
    assert [t.parts for t in tokens("«debug».skipKernelTC")] == [("debug", "skipKernelTC")]
    assert [t.text for t in tokens("h.1.elab")] == ["h", ".", "1", ".", "elab"]
    # Lean's identifier characters: subscripts and Greek continue a name, é does not
    assert [t.text for t in tokens("h₀α éx")] == ["h₀α", "é", "x"]
    assert [t.text for t in tokens("∑' i")] == ["∑'", "i"]
    with pytest.raises(LexicalError):
        tokens('"unterminated')
