"""The records a round's stages pass to each other, and their one conversion to and from
JSONL rows.

    Target ── prover prompt ──> Attempt ── proof assistant ──> VerifiedAttempt
      ^                                                              │
    Seed ── conjecturer ──> Conjecture ── gate ──> GateOutcome
                                                       StatementStats, TrainingExample

``Attempt`` and ``VerifiedAttempt`` are the records of the proving pipeline the rounds share
with ``stp eval`` (``stp.prove``); the others are the round's own.

A stage reads its inputs as records (``read_records``) and writes its outputs as records
(``write_records``); nothing else spells out a row's fields. The row formats are those of
every earlier version, so earlier run folders stay readable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

from stp.artifacts import atomic_write_jsonl, read_jsonl
from stp.languages.base import FormalLanguage
from stp.prove import Problem

DATASET = "dataset"
CONJECTURE = "conjecture"
GATE_PASSED = "passed"  # a GateOutcome's outcome when the conjecture gets proof attempts
ILL_TYPED = "ill_typed"  # the gate's outcome when the statement is not a well-typed proposition
UNCHECKED = "unchecked"  # ... when its elaboration timed out

# The files of a round folder (runs/<name>/round_NNN/) and the records they hold; which stage
# writes each is declared in stp.selfplay.round.STAGES.
SEEDS_FILE = "seeds.jsonl"  # Seed
CONJECTURES_FILE = "conjectures.jsonl"  # Conjecture
GATE_FILE = "gate.jsonl"  # GateOutcome, one per conjecture
TARGETS_FILE = "targets.jsonl"  # Target
# attempts/, verified/: the chunks of Attempt and VerifiedAttempt (stp.prove)
STATS_FILE = "stats.jsonl"  # StatementStats
PROVER_FILE = "prover.jsonl"  # TrainingExample, with its target
CONJECTURER_FILE = "conjecturer.jsonl"  # TrainingExample, with its target
TRAIN_FILE = "train.jsonl"  # TrainingExample: the round's training set
MODEL_DIR = "model"  # the fine-tuned model (when the round trained one)
SUMMARY_FILE = "summary.json"


class Row(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class _Plain:
    """``to_dict``/``from_dict`` for records whose row holds exactly their fields."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Self:
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        return cls(  # a field with a default may be missing from rows written before it existed
            **{
                f.name: row.get(f.name)
                for f in fields
                if f.name in row or f.default is dataclasses.MISSING
            }
        )


R = TypeVar("R")


def read_records(path: Path, kind: type[R]) -> list[R]:
    return [kind.from_dict(row) for row in read_jsonl(path)]  # type: ignore[attr-defined]


def write_records(path: Path, records: Iterable[Row]) -> int:
    return atomic_write_jsonl(path, (record.to_dict() for record in records))


@dataclass(frozen=True, slots=True)
class Target(Problem):
    """A problem the round samples proofs of: a dataset statement or a new conjecture."""

    kind: str = DATASET

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "header": self.header,
            "formal_statement": self.formal_statement,
            "informal": self.informal,
            "forbidden": list(self.forbidden),
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Target:
        return cls(
            id=row["id"],
            header=row["header"],
            formal_statement=row["formal_statement"],
            informal=row.get("informal"),
            forbidden=tuple(row.get("forbidden", ())),
            kind=row.get("kind", DATASET),  # the run's targets.jsonl of earlier versions
        )


@dataclass(frozen=True, slots=True)
class Seed(_Plain):
    """A proved statement, its proof and a lemma that proof uses (None: the trivial lemma);
    ``from_corpus``: the proof is a corpus sft proof, not one the model found."""

    id: str
    header: str
    formal_statement: str
    proof: str
    lemma: str | None
    lemma_text: str | None
    from_corpus: bool = False

    def conjecturer_prompt(self, lang: FormalLanguage) -> str:
        return lang.conjecturer_prompt(
            self.header, self.formal_statement, self.proof, self.lemma_text
        )


@dataclass(frozen=True, slots=True)
class Conjecture(_Plain):
    """A new statement the conjecturer wrote from a seed; ``key`` is its dedup digest (hex)."""

    id: str
    header: str
    formal_statement: str
    seed: str
    seed_statement: str
    seed_proof: str
    lemma: str | None
    lemma_text: str | None
    key: str
    samples: int = 1  # how many of the round's samples wrote this statement

    def as_target(self) -> Target:
        return Target(self.id, self.header, self.formal_statement, kind=CONJECTURE)

    def conjecturer_prompt(self, lang: FormalLanguage) -> str:
        return lang.conjecturer_prompt(
            self.header, self.seed_statement, self.seed_proof, self.lemma_text
        )


@dataclass(frozen=True, slots=True)
class GateOutcome(_Plain):
    """What the conjecture gate said about one conjecture: ``passed`` (it gets proof
    attempts) or why not (``stp.selfplay.gate.REJECTIONS``), with the check that decided."""

    conjecture: str
    outcome: str
    check: str  # the tactic (and given) that closed it, or the elaboration probe
    detail: str

    @property
    def passed(self) -> bool:
        return self.outcome == GATE_PASSED

    @property
    def well_typed(self) -> bool:
        """Whether the statement elaborated (every later check needs that)."""
        return self.outcome not in (ILL_TYPED, UNCHECKED)


@dataclass(frozen=True, slots=True)
class StatementStats(_Plain):
    """How a target fared this round; ``proof`` is its shortest correct proof."""

    target: str
    kind: str
    attempts: int
    correct: int
    pass_rate: float
    proof: str | None


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """A weighted (prompt, completion) pair; ``target`` says where a selected one came from
    (absent in the training set itself)."""

    prompt: str
    completion: str
    weight: float
    target: str | None = None

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {} if self.target is None else {"target": self.target}
        return row | {"prompt": self.prompt, "completion": self.completion, "weight": self.weight}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> TrainingExample:
        return cls(row["prompt"], row["completion"], float(row["weight"]), row.get("target"))

    def unattributed(self) -> TrainingExample:
        return dataclasses.replace(self, target=None)


def iter_records(rows: Iterable[dict[str, Any]], kind: type[R]) -> Iterator[R]:
    """Records from rows read lazily (chunked stages stream millions of them)."""
    for row in rows:
        yield kind.from_dict(row)  # type: ignore[attr-defined]
