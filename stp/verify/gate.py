"""The conjecture gate's checks, per proof assistant, as ordinary verifier jobs.

A conjecture is model-written: its statement is hostile input like any proof. Every check
here is a ``VerifyJob`` the assistant's own verifier runs (the warm workers, the screen, the
kernel re-check), so the gate adds no second way of reading a proof assistant:

- *elaborates*: the statement, as a proposition, with a probe proof that searches nothing.
  Rocq: its type cast to ``Prop``, and ``idtac.`` (``failed``: the statement elaborated and
  the goal stayed open; ``ill_typed``: it did not, or it is a type such as ``nat -> bool``
  that any term of it "proves"). Lean: ``sorry`` (``incomplete``: it elaborated; ``failed``:
  the only error can be the statement's, since ``sorry`` closes any goal).
- *closed by a tactic*: the statement with one tactic of a configured list as its proof.
- *given implies it*: a statement built here, ``(stp_given : <given>) -> <conjecture>``,
  where ``<given>`` is the seed theorem's or the given lemma's statement as one type; a
  tactic proving it (``exact stp_given.``) shows the conjecture restates what it was given.
- *refuted*: the negation ``~ (<conjecture>)``, built here; a tactic proving it shows the
  conjecture is false.

A check's statement is built from the conjecture's text: a conjecture written to confuse it
can only make the gate reject it, never make a proof count (the proof stage checks the
conjecture's own statement).
"""

from __future__ import annotations

from dataclasses import dataclass

from stp.verify.types import Verdict, VerifyJob, VerifyResult

GIVEN = "stp_given"  # the hypothesis the restatement tactics name


@dataclass(frozen=True, slots=True)
class _Assistant:
    probe: str  # a proof that runs no search: its verdict says whether the statement elaborates
    elaborated: Verdict  # the probe's verdict on a statement that elaborates
    ill_typed: frozenset[Verdict]  # its verdicts on one that does not
    indent: str = ""  # written before a tactic (Lean reads a tactic block by its indentation)


_ASSISTANTS: dict[str, _Assistant] = {
    "rocq": _Assistant("idtac.", Verdict.FAILED, frozenset({Verdict.ILL_TYPED})),
    "lean": _Assistant(
        "sorry", Verdict.INCOMPLETE, frozenset({Verdict.FAILED, Verdict.ILL_TYPED}), "  "
    ),
}


def supported(assistant: str) -> bool:
    """Whether the gate has checks for ``assistant`` (Rocq and Lean)."""
    return assistant in _ASSISTANTS


def elaboration_job(job_id: str, header: str, formal_statement: str, assistant: str) -> VerifyJob:
    """The statement, as a proposition, with the probe as its proof."""
    statement = proposition_statement(formal_statement, assistant) or formal_statement
    return tactic_job(job_id, header, statement, _ASSISTANTS[assistant].probe, assistant)


def proposition_statement(formal_statement: str, assistant: str) -> str | None:
    """The statement that elaborates only when ``formal_statement`` states a proposition; None
    when it cannot be read. Rocq's ``Theorem`` takes any type (``forall A : Type, bool`` is
    proved by ``intros; exact true``), so its type is cast to ``Prop``; Lean's ``theorem``
    rejects a type that is not a proposition itself."""
    if assistant != "rocq":
        return formal_statement
    claim = statement_type(formal_statement, assistant)
    return None if claim is None else _theorem("stp_gate_prop", f"(({claim}) : Prop)", assistant)


def tactic_job(
    job_id: str, header: str, formal_statement: str, tactic: str, assistant: str
) -> VerifyJob:
    """The statement with ``tactic`` (one line of a configured list) as its whole proof."""
    return VerifyJob(job_id, header, formal_statement, tactic_proof(tactic, assistant))


def tactic_proof(tactic: str, assistant: str) -> str:
    """One tactic as a whole proof of ``assistant`` (Lean: indented, as a tactic block)."""
    spec = _ASSISTANTS.get(assistant)
    return (spec.indent if spec is not None else "") + tactic


def elaborates(result: VerifyResult, assistant: str) -> bool | None:
    """True: the statement elaborates; False: it is ill-typed; None: the check said neither
    (a timeout, a crash), so nothing is known."""
    spec = _ASSISTANTS[assistant]
    if result.verdict is spec.elaborated:
        return True
    if result.verdict in spec.ill_typed:
        return False
    return None


def statement_type(formal_statement: str, assistant: str) -> str | None:
    """The statement as one type (binders become a ``forall``/``∀``); None when it is not a
    statement this module can read."""
    if assistant == "rocq":
        from stp.verify.rocq import parse_statement

        try:
            return parse_statement(formal_statement).type
        except ValueError:
            return None
    if assistant == "lean":
        return _lean_statement_type(formal_statement)
    return None


def lemma_type(lemma_text: str, assistant: str) -> str | None:
    """A given lemma's ``name binders : type`` text as one type (its name may be qualified)."""
    parts = lemma_text.strip().removesuffix(".").split(None, 1)
    if len(parts) != 2:
        return None
    if assistant == "rocq":
        return statement_type(f"Theorem stp_lemma {parts[1]}.", assistant)
    if assistant == "lean":
        return _lean_statement_type(f"theorem stp_lemma {parts[1]}")
    return None


def given_statement(given_type: str, formal_statement: str, assistant: str) -> str | None:
    """``formal_statement`` with ``given_type`` as an extra hypothesis named ``stp_given``;
    None when the statement cannot be read."""
    conclusion = statement_type(formal_statement, assistant)
    if conclusion is None:
        return None
    return _theorem(f"stp_gate_given ({GIVEN} : {given_type})", conclusion, assistant)


def negated_statement(formal_statement: str, assistant: str) -> str | None:
    """The negation of ``formal_statement`` as a statement of its own; None when the statement
    cannot be read."""
    claim = statement_type(formal_statement, assistant)
    if claim is None:
        return None
    negation = f"~ ({claim})" if assistant == "rocq" else f"¬ ({claim})"
    return _theorem("stp_gate_refute", negation, assistant)


def _theorem(name_and_binders: str, claim: str, assistant: str) -> str:
    if assistant == "rocq":
        return f"Theorem {name_and_binders} : {claim}."
    return f"theorem {name_and_binders} : {claim} := by"


_LEAN_HEAD = ("theorem ", "lemma ")
_OPEN, _CLOSE = "([{⦃⟨", ")]}⦄⟩"


def _lean_statement_type(formal_statement: str) -> str | None:
    """``theorem name binders : type := by`` -> ``∀ binders, type``."""
    text = formal_statement.strip()
    head = next((h for h in _LEAN_HEAD if text.startswith(h)), None)
    if head is None:
        return None
    text = text[len(head) :].lstrip()
    name_end = next((i for i, c in enumerate(text) if c.isspace() or c in _OPEN + ":"), None)
    if not name_end:
        return None
    rest = text[name_end:]
    for suffix in (":= by", ":="):
        if rest.rstrip().endswith(suffix):
            rest = rest.rstrip()[: -len(suffix)]
            break
    depth = 0
    for i, c in enumerate(rest):
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif c == ":" and depth == 0 and rest[i + 1 : i + 2] != "=":
            binders, body = rest[:i].strip(), rest[i + 1 :].strip()
            if not body:
                return None
            return f"∀ {binders}, {body}" if binders else body
    return None
