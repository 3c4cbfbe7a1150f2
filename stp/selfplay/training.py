"""Fine-tuning inside a run (the initial fine-tune, each round's, the final re-training):
``stp.models.train.train`` with a progress bar, and the rule for a model folder left over
from an earlier attempt."""

from __future__ import annotations

import shutil
from pathlib import Path

from tqdm import tqdm

from stp.config import STPConfig, TrainingConfig


def apply_torch_threads(config: STPConfig) -> None:
    if config.run.torch_threads is not None:
        import torch

        torch.set_num_threads(config.run.torch_threads)


def discard_finished_model(out: Path) -> None:
    """Called when a train stage is (re)done: a model folder the trainer had finished although
    the stage's marker is missing or no longer matches it cannot be trusted (the trainer would
    return it as it is), so it is removed and trained again. A folder the trainer did not
    finish keeps its checkpoints, and training resumes from them."""
    from stp.models.train import MARKER

    if (out / MARKER).is_file():
        shutil.rmtree(out)


def train_model(base: str, examples: Path, out: Path, settings: TrainingConfig, seed: int) -> Path:
    """Fine-tune ``base`` on the weighted ``examples`` into ``out``; returns the model folder."""
    from stp.models.train import train  # loads torch

    bar = tqdm(total=0, desc="  train", unit="step", leave=False, dynamic_ncols=True)

    def progress(step: int, total: int) -> None:
        bar.total = total
        bar.update(step - bar.n)

    try:
        return Path(train(base, examples, out, settings, seed=seed, progress=progress))
    finally:
        bar.close()
