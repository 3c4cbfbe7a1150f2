"""The conjecture gate: what a new conjecture must pass before it gets proof attempts.

Each new conjecture is checked in its header, cheapest check first, and the first check that
rejects it names the reason; later checks run only on what is left:

1. ``ill_typed``: the statement does not elaborate as a proposition (one probe job, no proof
   search: ``forall A : Type, bool`` is well-formed, but any term of it would "prove" it);
   ``unchecked``: the probe gave no answer either way (a timeout, a crash);
2. ``trivial``: a tactic of ``gate.<assistant>_trivial_tactics`` proves it;
3. ``restatement``: with the seed theorem, or the lemma the conjecturer was given, as a
   hypothesis, a tactic of ``gate.<assistant>_restatement_tactics`` proves it (what STP's
   Isabelle run rejected with ``solve_direct``);
4. ``vacuous``: a tactic of ``gate.<assistant>_vacuous_tactics`` (``intros; exfalso; ...``)
   proves it: its hypotheses contradict each other;
5. ``refuted``: a tactic of ``gate.<assistant>_refutation_tactics`` proves its negation: it
   is false (Rocq's default tries small values for its variables), so no proof can exist.

Every check is a job of the run's own verifier (``stp.verify.gate`` builds them), with
``gate.timeout_s`` as its time limit; the conjectures that pass go on, in order, to the
targets stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stp.config import GateConfig
from stp.selfplay.records import GATE_PASSED, ILL_TYPED, UNCHECKED, Conjecture, GateOutcome
from stp.verify import gate as checks
from stp.verify.types import Verdict, Verifier, VerifyJob

TRIVIAL = "trivial"
RESTATEMENT = "restatement"
VACUOUS = "vacuous"
REFUTED = "refuted"
REJECTIONS: tuple[str, ...] = (ILL_TYPED, UNCHECKED, TRIVIAL, RESTATEMENT, VACUOUS, REFUTED)


@dataclass(frozen=True, slots=True)
class _Check:
    conjecture: str
    label: str  # what GateOutcome.check says when this job proves the conjecture
    job: VerifyJob


def screen(
    conjectures: Sequence[Conjecture],
    verifier: Verifier,
    settings: GateConfig,
    assistant: str,
    log: Callable[[str], None] = lambda _: None,
) -> list[GateOutcome]:
    """One outcome per conjecture, in conjecture order."""
    if not checks_statements(settings, assistant):
        why = "gate.enabled is false" if not settings.enabled else f"no gate for {assistant}"
        return [GateOutcome(c.id, GATE_PASSED, "", why) for c in conjectures]
    decided: dict[str, GateOutcome] = {}

    # 1. Each statement elaborated once.
    probes = [
        checks.elaboration_job(f"{c.id}/elaborates", c.header, c.formal_statement, assistant)
        for c in conjectures
    ]
    for conjecture, job, result in zip(conjectures, probes, verifier.verify(probes), strict=True):
        typed = checks.elaborates(result, assistant)
        if typed is not True:
            reason = ILL_TYPED if typed is False else UNCHECKED
            detail = result.detail or result.verdict.value
            decided[conjecture.id] = GateOutcome(conjecture.id, reason, job.proof.strip(), detail)
    log(f"    elaborated: {len(conjectures) - len(decided)} of {len(conjectures)}")

    # 2-5. Each check on what the earlier ones left.
    for reason, make in (
        (TRIVIAL, _closed_by(settings.tactics(assistant, "trivial"), assistant)),
        (RESTATEMENT, _given_implies(settings.tactics(assistant, "restatement"), assistant)),
        (VACUOUS, _closed_by(settings.tactics(assistant, "vacuous"), assistant)),
        (REFUTED, _closed_by(settings.tactics(assistant, "refutation"), assistant, negated=True)),
    ):
        left = [c for c in conjectures if c.id not in decided]
        jobs = [check for c in left for check in make(c)]
        results = verifier.verify([check.job for check in jobs]) if jobs else []
        for check, result in zip(jobs, results, strict=True):
            if result.verdict is Verdict.PROVED and check.conjecture not in decided:
                decided[check.conjecture] = GateOutcome(check.conjecture, reason, check.label, "")
        log(f"    {reason}: {sum(d.outcome == reason for d in decided.values())}")
    return [decided.get(c.id, GateOutcome(c.id, GATE_PASSED, "", "")) for c in conjectures]


def checks_statements(settings: GateConfig, assistant: str) -> bool:
    """Whether the gate checks anything (else every conjecture passes unchecked)."""
    return settings.enabled and checks.supported(assistant)


def _closed_by(
    tactics: Sequence[str], assistant: str, negated: bool = False
) -> Callable[[Conjecture], list[_Check]]:
    """Jobs proving the conjecture, or its negation, with each tactic."""
    label, job = ("not: ", "not/") if negated else ("", "")

    def make(c: Conjecture) -> list[_Check]:
        statement = (
            checks.negated_statement(c.formal_statement, assistant)
            if negated
            else c.formal_statement
        )
        if statement is None:
            return []
        return [
            _Check(
                c.id,
                label + tactic,
                checks.tactic_job(f"{c.id}/{job}{i}", c.header, statement, tactic, assistant),
            )
            for i, tactic in enumerate(tactics)
        ]

    return make


def _given_implies(tactics: Sequence[str], assistant: str) -> Callable[[Conjecture], list[_Check]]:
    def make(c: Conjecture) -> list[_Check]:
        givens = [("seed", checks.statement_type(c.seed_statement, assistant))]
        if c.lemma_text:
            givens.append((f"lemma {c.lemma}", checks.lemma_type(c.lemma_text, assistant)))
        out = []
        for name, given in givens:
            statement = (
                checks.given_statement(given, c.formal_statement, assistant) if given else None
            )
            if statement is None:
                continue
            out += [
                _Check(
                    c.id,
                    f"{name}: {t}",
                    checks.tactic_job(f"{c.id}/{name}/{i}", c.header, statement, t, assistant),
                )
                for i, t in enumerate(tactics)
            ]
        return out

    return make


def counts(outcomes: Sequence[GateOutcome]) -> dict[str, int]:
    """How many conjectures passed and how many each reason rejected."""
    tally = {reason: 0 for reason in (GATE_PASSED, *REJECTIONS)}
    for outcome in outcomes:
        tally[outcome.outcome] = tally.get(outcome.outcome, 0) + 1
    return tally
