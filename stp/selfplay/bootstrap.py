"""What a run needs before its first round; each step skipped when already done.

1. corpus: ``run.corpus`` is extracted from the Coq standard library when the folder is missing
   (``stp data extract-rocq``; shared by every run that names the same folder);
2. targets: the run's dataset statements, frozen in ``runs/<name>/targets.jsonl``;
3. model: with ``run.init_model``, the offline tiny model (``tiny_model``) is built into
   ``run.base_model`` and pre-trained on the raw sources ``tiny_model.pretrain_sources``
   (``stp.models.pretrain``: built once, shared by every run naming that folder, rebuilt only
   when its inputs change);
4. initial fine-tune (STP stage 1, with ``run.initial_sft``): the base model is trained on the
   corpus' sft proofs (prover examples) and its conjecturer examples, weight 1 each, into
   ``runs/<name>/bootstrap/sft_model``; round 0 samples from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stp.assistants import assistant
from stp.config import STPConfig, TrainingConfig
from stp.errors import ConfigError
from stp.runs import RunLayout, stage_seed
from stp.selfplay.records import TrainingExample, write_records
from stp.selfplay.targets import dataset_targets
from stp.selfplay.training import train_model
from stp.stages import fingerprint, read_stage, run_stage

if TYPE_CHECKING:
    from stp.data.corpus import Corpus

Log = Callable[[str], None]


def load_run_corpus(config: STPConfig) -> Corpus | None:
    if config.run.corpus is None:
        return None
    from stp.data.corpus import load_corpus

    return load_corpus(config.run.corpus)


def ensure_corpus(config: STPConfig, log: Log) -> None:
    if config.run.corpus is None:
        return
    folder = Path(config.run.corpus)
    from stp.data.corpus import THEOREMS_FILE

    if (folder / THEOREMS_FILE).is_file():
        return
    from stp.data.rocq_corpus import DEFAULT_MODULES, extract_rocq
    from stp.verify import make_verifier

    log(f"bootstrap: extracting the Rocq corpus into {folder} (first use)")
    with make_verifier(config.verification) as verifier:
        extract_rocq(
            folder,
            verifier,
            modules=config.run.corpus_modules or DEFAULT_MODULES,
            max_theorems=config.run.corpus_max_theorems,
        )


def ensure_base_model(config: STPConfig, log: Log) -> None:
    """With ``run.init_model``: the tiny model ``config.tiny_model`` describes, in
    ``run.base_model``; built (and pre-trained) only when missing or built from other inputs."""
    if not config.run.init_model:
        return
    from stp.data.corpus import CORPUS_TEXT_FILE
    from stp.data.rocq_corpus import source_files
    from stp.models.pretrain import Pretraining, build_pretrained_model
    from stp.models.tiny import TinyModelSpec

    assert config.run.corpus is not None  # RunConfig.validate requires it with init_model
    tiny = config.tiny_model
    sources = tuple(source_files(tiny.pretrain_sources))
    plan = Pretraining(
        tokenizer_text=sources or (Path(config.run.corpus) / CORPUS_TEXT_FILE,),
        sources=sources,
        # Seeds fixed, not run.seed: every run that names this folder shares one model.
        spec=TinyModelSpec(
            vocab_size=tiny.vocab_size,
            hidden_size=tiny.hidden_size,
            num_layers=tiny.num_layers,
            num_heads=tiny.num_heads,
            intermediate_size=tiny.intermediate_size,
        ),
        training=TrainingConfig(
            learning_rate=tiny.pretrain_learning_rate,
            epochs=tiny.pretrain_epochs,
            batch_size=tiny.pretrain_batch_size,
            max_seq_len=tiny.pretrain_block_tokens,
            warmup_ratio=0.02,
        ),
    )
    build_pretrained_model(plan, config.run.base_model, 0, log, train_model)


def sft_examples(config: STPConfig) -> list[TrainingExample]:
    """STP stage 1 data: the corpus' sft proofs and its conjecturer examples."""
    corpus = load_run_corpus(config)
    assert corpus is not None
    lang = assistant(config.verification.backend).language
    examples = []
    for theorem in corpus.sft:
        s = theorem.statement
        examples.append(
            TrainingExample(
                lang.prover_prompt(s.header, s.formal_statement, s.informal_statement),
                lang.prover_completion(theorem.proof),
                1.0,
            )
        )
    for example in corpus.conjecture_examples:
        examples.append(TrainingExample(example.prompt(), example.completion(), 1.0))
    return examples


def freeze_targets(config: STPConfig, layout: RunLayout) -> None:
    """Write the run's dataset once; a config that names other statements later is refused
    once a round has started (its history is about the first dataset)."""
    inputs = fingerprint(
        {
            "targets": config.run.targets,
            "target_limit": config.run.target_limit,
            "corpus": config.run.corpus,
            "backend": config.verification.backend,
        },
        [],
    )
    record = read_stage(layout.root, "targets")
    if record is not None and record.inputs not in (None, inputs) and layout.round_dir(0).exists():
        raise ConfigError(
            f"run.targets/run.target_limit/run.corpus differ from those run {layout.root} "
            "started with; restore them, or start a new run (run.name)"
        )
    run_stage(
        layout.root,
        "targets",
        [layout.targets],
        lambda: {
            "statements": write_records(layout.targets, dataset_targets(config)),
        },
        log=lambda _: None,
        inputs=inputs,
    )


def bootstrap(config: STPConfig, layout: RunLayout, log: Log) -> None:
    ensure_corpus(config, log)
    freeze_targets(config, layout)
    ensure_base_model(config, log)
    if not config.run.initial_sft:
        return
    directory = layout.bootstrap
    examples = directory / "sft.jsonl"
    out = directory / "sft_model"

    def initial_fine_tune() -> dict[str, Any]:
        count = write_records(examples, sft_examples(config))
        log(f"bootstrap: initial fine-tune on {count} corpus examples")
        training = dataclasses.replace(
            config.training,
            epochs=config.run.initial_sft_epochs or config.training.epochs,
            learning_rate=config.run.initial_sft_learning_rate or config.training.learning_rate,
        )
        seed = stage_seed(config.run.seed, -1, "sft")
        train_model(config.run.base_model, examples, out, training, seed, log)
        return {"examples": count}

    from stp.models.pretrain import built_digest

    settings = {
        "base_model": config.run.base_model,
        "base_model_inputs": built_digest(config.run.base_model),
        "corpus": config.run.corpus,
        "seed": config.run.seed,
        "epochs": config.run.initial_sft_epochs,
        "learning_rate": config.run.initial_sft_learning_rate,
        "training": vars(config.training),
    }
    run_stage(
        directory, "sft", [examples, out], initial_fine_tune, log, inputs=fingerprint(settings, [])
    )
