"""What earlier rounds established: best pass rates, shortest proofs, conjectures asked and
which of them elaborated.

Nothing here is mutable state on disk: it is folded from the finished rounds' artifacts
(``stats.jsonl``, ``conjectures.jsonl``, ``gate.jsonl``) once per round, so a resumed round
sees exactly what an uninterrupted one saw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from stp.artifacts import read_jsonl
from stp.runs import RunLayout
from stp.selfplay.records import (
    CONJECTURES_FILE,
    DATASET,
    GATE_FILE,
    STATS_FILE,
    GateOutcome,
    StatementStats,
    iter_records,
)


@dataclass(slots=True)
class StatementHistory:
    """What earlier rounds established about one dataset statement."""

    best_pass_rate: float = 0.0
    proof: str | None = None  # the shortest correct proof found so far

    @property
    def proved(self) -> bool:
        return self.proof is not None


@dataclass(slots=True)
class RunHistory:
    """Folded from the ``stats.jsonl``, ``conjectures.jsonl`` and ``gate.jsonl`` of finished
    rounds."""

    statements: dict[str, StatementHistory] = field(default_factory=dict)
    conjecture_keys: set[bytes] = field(default_factory=set)
    well_typed_keys: set[bytes] = field(default_factory=set)  # conjectures that elaborated

    def proved_ids(self) -> set[str]:
        return {sid for sid, h in self.statements.items() if h.proved}

    def proved(self, statement_id: str) -> bool:
        record = self.statements.get(statement_id)
        return record is not None and record.proved

    def with_round(self, stats: Iterable[StatementStats]) -> RunHistory:
        """A copy with one more round's stats folded in (the history stays as it was)."""
        after = RunHistory(
            {k: StatementHistory(v.best_pass_rate, v.proof) for k, v in self.statements.items()},
            set(self.conjecture_keys),
            set(self.well_typed_keys),
        )
        fold_stats(after, stats)
        return after


def fold_stats(history: RunHistory, stats: Iterable[StatementStats]) -> None:
    for row in stats:
        if row.kind != DATASET:
            continue
        entry = history.statements.setdefault(row.target, StatementHistory())
        entry.best_pass_rate = max(entry.best_pass_rate, float(row.pass_rate))
        proof = row.proof
        if proof is not None and (
            entry.proof is None or (len(proof), proof) < (len(entry.proof), entry.proof)
        ):
            entry.proof = proof


def key_digest(key: tuple[str, str]) -> bytes:
    """16 bytes per conjecture key: millions of earlier conjectures fit in memory. blake2b,
    not ``stp.artifacts.text_sha256``: the keys are stored in every round's
    ``conjectures.jsonl``, and earlier rounds' keys must keep matching."""
    return hashlib.blake2b("\x00".join(key).encode(), digest_size=16).digest()


def load_history(layout: RunLayout, before_round: int) -> RunHistory:
    """What rounds ``0 .. before_round-1`` established (they must be finished)."""
    history = RunHistory()
    for index in range(before_round):
        directory = layout.round_dir(index)
        fold_stats(history, iter_records(read_jsonl(directory / STATS_FILE), StatementStats))
        conjectures = directory / CONJECTURES_FILE
        if conjectures.is_file():
            keys = {r["id"]: bytes.fromhex(r["key"]) for r in read_jsonl(conjectures)}
            history.conjecture_keys.update(keys.values())
            if (directory / GATE_FILE).is_file():  # rounds before the gate: none known
                history.well_typed_keys.update(
                    keys[o.conjecture]
                    for o in iter_records(read_jsonl(directory / GATE_FILE), GateOutcome)
                    if o.well_typed
                )
    return history
