"""The verifier's vocabulary: a job in, exactly one frozen result out, with a closed verdict."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class Verdict(enum.Enum):
    """What a proof assistant said about one proof. Only ``PROVED`` counts as a proof anywhere."""

    PROVED = "proved"
    FAILED = "failed"  # the assistant reported an error
    INCOMPLETE = "incomplete"  # sorry / admit / Admitted
    UNSOUND = "unsound"  # forbidden axiom, changed statement, banned command
    TIMEOUT = "timeout"
    # The checker ran out of memory or threads on fresh processes too (retried, as it depends
    # on the machine's load): like a timeout, no verdict about the proof.
    RESOURCE_LIMIT = "resource_limit"
    VERIFIER_ERROR = "verifier_error"  # the checker crashed or misbehaved
    ILL_TYPED = "ill_typed"  # the statement itself does not parse or elaborate: no proof ran


@dataclass(frozen=True, slots=True)
class VerifyJob:
    """Check ``proof`` against the dataset's ``formal_statement`` under ``header``.

    The statement is fixed: the model supplies only the proof, so it cannot change what is proved.
    """

    id: str
    header: str
    formal_statement: str
    proof: str
    # Names the proof may not cite: the target's own library copy, which the header loads
    # (a corpus theorem restated under a fresh name would otherwise be `exact <original>.`).
    forbidden_names: tuple[str, ...] = ()

    def key(self) -> tuple[str, str, str, tuple[str, ...]]:
        """Identical keys are checked once and the result fanned out."""
        return (self.header, self.formal_statement, self.proof, self.forbidden_names)


@dataclass(frozen=True, slots=True)
class Message:
    """One message from the assistant; ``line``/``column`` are relative to the proof text
    where the backend can map them (1-based line, 0-based column), else to the whole file."""

    severity: str  # "error" | "warning" | "info"
    text: str
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    id: str
    verdict: Verdict
    messages: tuple[Message, ...] = ()
    axioms: tuple[str, ...] = ()
    check_seconds: float = 0.0
    backend: str = ""
    assistant_version: str = ""
    detail: str = field(default="", compare=False)  # why, in one line, for non-proved verdicts

    @property
    def proved(self) -> bool:
        return self.verdict is Verdict.PROVED

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "verdict": self.verdict.value,
            "messages": [
                {"severity": m.severity, "text": m.text, "line": m.line, "column": m.column}
                for m in self.messages
            ],
            "axioms": list(self.axioms),
            "check_seconds": round(self.check_seconds, 4),
            "backend": self.backend,
            "assistant_version": self.assistant_version,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> VerifyResult:
        return cls(
            id=row["id"],
            verdict=Verdict(row["verdict"]),
            messages=tuple(Message(**m) for m in row.get("messages", ())),
            axioms=tuple(row.get("axioms", ())),
            check_seconds=float(row.get("check_seconds", 0.0)),
            backend=row.get("backend", ""),
            assistant_version=row.get("assistant_version", ""),
            detail=row.get("detail", ""),
        )


@dataclass(frozen=True, slots=True)
class Checking:
    """One job being checked by one backend: makes the job's result, timed from when the check
    began, so every backend fills the shared fields the same way."""

    job: VerifyJob
    backend: str
    assistant_version: str
    started: float = field(default_factory=time.perf_counter)

    def result(
        self,
        verdict: Verdict,
        detail: str = "",
        messages: tuple[Message, ...] = (),
        axioms: tuple[str, ...] = (),
    ) -> VerifyResult:
        return VerifyResult(
            id=self.job.id,
            verdict=verdict,
            messages=messages,
            axioms=axioms,
            check_seconds=time.perf_counter() - self.started,
            backend=self.backend,
            assistant_version=self.assistant_version,
            detail=detail,
        )


class Verifier(Protocol):
    """Checks a batch of jobs; returns exactly one result per job, in job order."""

    def verify(
        self, jobs: Sequence[VerifyJob], progress: Callable[[int], None] | None = None
    ) -> list[VerifyResult]: ...

    def close(self) -> None: ...
