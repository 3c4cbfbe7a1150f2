"""The proof assistants STP knows, one descriptor each, in one registry.

    assistant("lean").language              # prompt format and proof/conjecture parsing
    assistant("lean").backend_module        # stp.verify.lean: make_backend(config) -> Verifier

Everything that depends on which assistant a run uses (config validation, bundled
benchmarks, ``stp verify``, ``stp eval``, the pre-flight check of a round, ``stp env``)
reads it from here; ``stp.verify.backends`` builds a verifier from the descriptor and
``check_installed`` runs the backend's own installation check (with its install hint). A
backend module is imported only when a verifier is built, so naming an assistant loads none.
"""

from __future__ import annotations

from dataclasses import dataclass

from stp.errors import VerifierUnavailableError
from stp.languages.base import FormalLanguage
from stp.languages.isabelle import ISABELLE
from stp.languages.lean import LEAN
from stp.languages.rocq import ROCQ


@dataclass(frozen=True, slots=True)
class ProofAssistant:
    name: str  # the value of verification.backend
    title: str
    language: FormalLanguage
    backend_module: str  # provides make_backend(VerificationConfig) -> Verifier
    # Its own fields of the `verification` config section (the rest are shared by all).
    settings: tuple[str, ...]
    # Commands whose first output line names the installed version (`stp env`).
    version_commands: tuple[tuple[str, ...], ...]


ASSISTANTS: dict[str, ProofAssistant] = {
    a.name: a
    for a in (
        ProofAssistant(
            name="rocq",
            title="Rocq (Coq)",
            language=ROCQ,
            backend_module="stp.verify.rocq",
            settings=("coqtop",),
            version_commands=(("coqtop", "--version"),),
        ),
        ProofAssistant(
            name="lean",
            title="Lean 4",
            language=LEAN,
            backend_module="stp.verify.lean",
            settings=("repl_cmd", "lean_project", "lean_kernel_check", "lean_run_as"),
            version_commands=(("lake", "--version"), ("lean", "--version")),
        ),
        ProofAssistant(
            name="isabelle",
            title="Isabelle/HOL",
            language=ISABELLE,
            backend_module="stp.verify.isabelle",
            settings=("isabelle_cmd", "isabelle_session", "isabelle_dir"),
            version_commands=(("isabelle", "version"),),
        ),
    )
}

NAMES: tuple[str, ...] = tuple(ASSISTANTS)


def assistant(name: str) -> ProofAssistant:
    """The descriptor of ``name``; ``VerifierUnavailableError`` for an unknown name."""
    try:
        return ASSISTANTS[name]
    except KeyError:
        raise VerifierUnavailableError(
            f"no verifier backend {name!r} in this installation; available: {', '.join(NAMES)}"
        ) from None
