"""Where a run's artifacts live, how its random draws are seeded, and which model each
round samples from.

    runs/<name>/
      run.lock, run.lock.owner      one `stp round` at a time (stp.selfplay.lock)
      targets.jsonl                 the dataset statements the run tries to prove
      bootstrap/                    initial fine-tune (STP stage 1) when the config asks for it
      round_000/                    one folder per round, stage artifacts + <stage>.done.json
      rounds.jsonl                  one summary row per finished round (the run-level table)
      final/                        `stp run final-retrain`
      eval/                         `stp eval` folders (stp.eval)

Self-play writes these folders; evaluation only reads which model is the run's newest
(``current_model``), so this module sits below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stp.artifacts import derive_seed
from stp.config import STPConfig
from stp.stages import read_stage

# The stages of a round whose files later rounds read (conjectures for dedup, select for
# history and replay, train for the model), and its last one.
STAGES_LATER_ROUNDS_READ: tuple[str, ...] = ("conjectures", "select", "train")
LAST_STAGE = "summary"


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
        rounds read, still match their markers. A corrupted one makes the round unfinished,
        so the next `stp round` redoes that stage instead of building on it."""
        directory = self.round_dir(index)
        return all(
            read_stage(directory, stage) is not None
            for stage in (LAST_STAGE, *STAGES_LATER_ROUNDS_READ)
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


def stage_seed(run_seed: int, round_index: int, stage: str) -> int:
    """The RNG seed of one stage of one round: a resumed stage redraws exactly what the
    killed one drew, and no two stages share a stream (a chunked stage derives its chunks'
    seeds from it: ``stp.prove.chunk_seed``)."""
    return derive_seed(run_seed, round_index, stage, 0)  # the 0: the seeds run folders hold


# ------------------------------------------------------------------------ model lineage


def start_model(config: STPConfig, layout: RunLayout) -> str:
    """The model round 0 samples from: the initial fine-tune's when there is one."""
    return str(layout.bootstrap / "sft_model") if config.run.initial_sft else config.run.base_model


def model_for_round(config: STPConfig, layout: RunLayout, index: int) -> str:
    """Round ``index`` samples from the model the previous round trained (if it trained)."""
    if index == 0 or config.run.mode == "parallel_sampling":
        return start_model(config, layout)
    record = read_stage(layout.round_dir(index - 1), "train")
    if record is None or "model" not in record.info:
        raise RuntimeError(f"round {index - 1} has no finished train stage")
    return str(record.info["model"])


def current_model(config: STPConfig) -> str:
    """The run's newest model: what its next round would sample from, once the run has
    started (bootstrap done); before that, ``run.base_model``."""
    layout = RunLayout.of(config)
    model = model_for_round(config, layout, layout.next_round())
    return model if Path(model).exists() else config.run.base_model
