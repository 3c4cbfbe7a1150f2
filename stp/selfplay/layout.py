"""Where a run's artifacts live, and what earlier rounds established.

    runs/<name>/
      run.lock, run.lock.owner      one `stp round` at a time (stp.selfplay.lock)
      targets.jsonl                 the dataset statements the run tries to prove
      bootstrap/                    initial fine-tune (STP stage 1) when the config asks for it
      round_000/                    one folder per round, stage artifacts + <stage>.done.json
      rounds.jsonl                  one summary row per finished round (the run-level table)
      final/                        `stp run final-retrain`

Nothing here is mutable state: what earlier rounds established (best pass rates, proofs, the
conjectures already asked) is folded from their finished artifacts each time it is needed, so
a resumed round sees exactly what an uninterrupted one saw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stp.artifacts import read_jsonl
from stp.config import STPConfig
from stp.selfplay.stages import read_stage

DATASET = "dataset"
CONJECTURE = "conjecture"


@dataclass(frozen=True, slots=True)
class RunLayout:
    root: Path

    @classmethod
    def of(cls, config: STPConfig) -> RunLayout:
        return cls(Path(config.run.output_dir) / config.run.name)

    @property
    def targets(self) -> Path:
        return self.root / "targets.jsonl"

    @property
    def bootstrap(self) -> Path:
        return self.root / "bootstrap"

    @property
    def rounds_table(self) -> Path:
        return self.root / "rounds.jsonl"

    @property
    def final(self) -> Path:
        return self.root / "final"

    def round_dir(self, index: int) -> Path:
        return self.root / f"round_{index:03d}"

    def round_finished(self, index: int) -> bool:
        """Whether round ``index`` is whole: its summary, and every stage whose files later
        rounds read (conjectures for dedup, select for history and replay, train for the
        model), still match their markers. A corrupted one makes the round unfinished, so
        the next `stp round` redoes that stage instead of building on it."""
        directory = self.round_dir(index)
        return all(
            read_stage(directory, stage) is not None
            for stage in ("summary", "conjectures", "select", "train")
        )

    def finished_rounds(self) -> list[int]:
        """Finished rounds from round 0 on, up to the first unfinished one."""
        done = []
        index = 0
        while self.round_finished(index):
            done.append(index)
            index += 1
        return done

    def next_round(self) -> int:
        return len(self.finished_rounds())


def stage_seed(run_seed: int, round_index: int, stage: str, part: int = 0) -> int:
    """The RNG seed of one stage (and chunk) of one round: a resumed stage redraws exactly
    what the killed one drew, and no two stages share a stream."""
    digest = hashlib.sha256(f"{run_seed}:{round_index}:{stage}:{part}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


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
    """Folded from the ``stats.jsonl`` and ``conjectures.jsonl`` of finished rounds."""

    statements: dict[str, StatementHistory] = field(default_factory=dict)
    conjecture_keys: set[bytes] = field(default_factory=set)

    def proved_ids(self) -> set[str]:
        return {sid for sid, h in self.statements.items() if h.proved}


def fold_stats(history: RunHistory, stats_rows: Iterator[dict[str, Any]]) -> None:
    for row in stats_rows:
        if row["kind"] != DATASET:
            continue
        entry = history.statements.setdefault(row["target"], StatementHistory())
        entry.best_pass_rate = max(entry.best_pass_rate, float(row["pass_rate"]))
        proof = row.get("proof")
        if proof is not None and (
            entry.proof is None or (len(proof), proof) < (len(entry.proof), entry.proof)
        ):
            entry.proof = proof


def key_digest(key: tuple[str, str]) -> bytes:
    """16 bytes per conjecture key: millions of earlier conjectures fit in memory."""
    return hashlib.blake2b("\x00".join(key).encode(), digest_size=16).digest()


def load_history(layout: RunLayout, before_round: int) -> RunHistory:
    """What rounds ``0 .. before_round-1`` established (they must be finished)."""
    history = RunHistory()
    for index in range(before_round):
        directory = layout.round_dir(index)
        fold_stats(history, read_jsonl(directory / "stats.jsonl"))
        conjectures = directory / "conjectures.jsonl"
        if conjectures.is_file():
            history.conjecture_keys.update(bytes.fromhex(r["key"]) for r in read_jsonl(conjectures))
    return history
