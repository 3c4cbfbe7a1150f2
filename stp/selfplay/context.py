"""What every stage of one round reads: the config, where the round's files go, the
dataset, what earlier rounds established, the corpus and the model to sample from.

Built once per round by ``stp.selfplay.round.advance``; the dataset and the history are read
from disk here and nowhere else during the round.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stp.assistants import assistant
from stp.config import STPConfig
from stp.languages.base import FormalLanguage
from stp.prove import ModelSampler
from stp.runs import RunLayout, stage_seed
from stp.selfplay.history import RunHistory
from stp.selfplay.records import Target

if TYPE_CHECKING:
    from stp.data.corpus import Corpus

Log = Callable[[str], None]


@dataclass
class Round:
    config: STPConfig
    layout: RunLayout
    index: int
    model: str  # the model this round samples from (and fine-tunes)
    dataset: list[Target]  # the run's statements (runs/<name>/targets.jsonl)
    history: RunHistory  # what rounds 0 .. index-1 established
    log: Log
    corpus: Corpus | None = None
    started: float = 0.0  # time.perf_counter() when this invocation began
    sampler: ModelSampler = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.sampler = ModelSampler.of_model(self.model, self.config.sampling)

    @property
    def directory(self) -> Path:
        return self.layout.round_dir(self.index)

    @property
    def lang(self) -> FormalLanguage:
        return assistant(self.config.verification.backend).language

    def seed(self, stage: str) -> int:
        return stage_seed(self.config.run.seed, self.index, stage)

    def path(self, name: str) -> Path:
        return self.directory / name
