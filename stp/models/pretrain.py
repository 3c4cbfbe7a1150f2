"""Pre-training the offline tiny model on raw Rocq sources, built once and cached.

The tokenizer is trained on the sources, the randomly initialised model (``stp.models.tiny``)
learns next-token prediction on them with the fine-tuning loop of ``stp.models.train`` (every
block of text is a completion after an empty prompt), and the result is saved to ``out`` with
``pretraining.json``, which holds the digest of every input: the sources' contents, the model
size, the training settings and the seed. A folder whose digest matches is reused as it is; a
changed input builds it again. Work happens in ``.<out>.partial/`` next to ``out`` (a killed
build resumes from its training checkpoints) and the finished model replaces ``out`` by a
rename, so ``out`` never holds half a model.

Without sources the model is only initialised, its tokenizer trained on the given text files
(the corpus' corpus.txt), and cached the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from stp.artifacts import atomic_write_json, atomic_write_jsonl
from stp.config import TrainingConfig
from stp.models.tiny import TinyModelSpec, build_tiny_model

MARKER = "pretraining.json"
TEXT_FILE = "text.jsonl"
# Characters per token of the BPE tokenizer on Rocq sources, a little under the measured ~3.0,
# so that a block rarely exceeds its token budget (the excess would be cut off).
_CHARS_PER_TOKEN = 2.7

Log = Callable[[str], None]
TrainFn = Callable[[str, Path, Path, TrainingConfig, int], Path]


@dataclasses.dataclass(frozen=True)
class Pretraining:
    """What the model is built from and how long it trains (``training.epochs`` passes over
    the text, blocks of at most ``training.max_seq_len`` tokens)."""

    tokenizer_text: tuple[Path, ...]  # files the tokenizer is trained on
    sources: tuple[Path, ...]  # files pre-trained on; empty: initialise only
    spec: TinyModelSpec
    training: TrainingConfig


def inputs_digest(plan: Pretraining) -> str:
    """sha256 over the files' contents (in order) and every setting."""
    digest = hashlib.sha256()
    settings = {
        "spec": dataclasses.asdict(plan.spec),
        "training": dataclasses.asdict(plan.training),
        "tokenizer_text": len(plan.tokenizer_text),
        "sources": len(plan.sources),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for path in (*plan.tokenizer_text, *plan.sources):
        digest.update(b"\0file\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def is_current(out: str | Path, digest: str) -> bool:
    return built_digest(out) == digest


def text_blocks(files: Sequence[Path], max_chars: int) -> Iterator[str]:
    """Each file cut at line ends into blocks of at most ``max_chars`` characters (a longer
    line is cut where it must); blank-only blocks are dropped."""
    for path in files:
        block: list[str] = []
        size = 0
        # Some stdlib files carry Latin-1 bytes in comments: keep going, never crash on them.
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
            while len(line) > max_chars:
                yield line[:max_chars]
                line = line[max_chars:]
            if size + len(line) > max_chars and block:
                if "".join(block).strip():
                    yield "".join(block)
                block, size = [], 0
            block.append(line)
            size += len(line)
        if block and "".join(block).strip():
            yield "".join(block)


def build_pretrained_model(
    plan: Pretraining, out: str | Path, seed: int, log: Log, train_model: TrainFn
) -> Path:
    """``out`` holding the model ``plan`` describes: kept when its digest matches, built (or a
    killed build resumed) otherwise. ``train_model(base, examples, out, settings, seed)``
    runs the training (``stp.selfplay.training.train_model`` draws its progress bar)."""
    target = Path(out)
    digest = inputs_digest(plan)
    if is_current(target, digest):
        return target
    work = target.parent / f".{target.name}.partial"
    if not is_current(work, digest):  # another build's leftovers
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_json(work / MARKER, {"inputs": digest})
    initial = work / "init"
    if not (initial / "config.json").is_file():
        log(f"tiny model: tokenizer and initial weights into {target}")
        build_tiny_model(plan.tokenizer_text, initial, plan.spec)
    built = initial
    if plan.sources:
        text = work / TEXT_FILE
        if not text.is_file():
            max_chars = int(plan.training.max_seq_len * _CHARS_PER_TOKEN)
            rows = ({"prompt": "", "completion": b} for b in text_blocks(plan.sources, max_chars))
            count = atomic_write_jsonl(text, rows)
            log(
                f"tiny model: pre-training on {len(plan.sources)} source files "
                f"({count} blocks, {plan.training.epochs:g} epochs)"
            )
        built = train_model(str(initial), text, work / "model", plan.training, seed)
        shutil.rmtree(built / "checkpoints", ignore_errors=True)
    atomic_write_json(
        built / MARKER,
        {
            "inputs": digest,
            "sources": len(plan.sources),
            "spec": dataclasses.asdict(plan.spec),
            "training": dataclasses.asdict(plan.training) if plan.sources else None,
        },
    )
    previous = target.parent / f".{target.name}.previous"
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        target.rename(previous)
    built.rename(target)
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return target


def built_digest(out: str | Path) -> str | None:
    """The inputs digest a model folder was built from (None: not built here)."""
    marker = Path(out) / MARKER
    return json.loads(marker.read_text()).get("inputs") if marker.is_file() else None
