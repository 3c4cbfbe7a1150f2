"""One self-play round, read top to bottom: the stages in order, what each reads and writes.

    seeds -> conjectures -> gate -> targets -> generate -> verify -> select -> train -> summary

``STAGES`` declares each stage: its files (under ``runs/<name>/round_NNN/``), the settings
its output depends on, the earlier stages whose files it reads, and the function that runs
it. The functions below are thin: they read their inputs as records
(``stp.selfplay.records``), call the step that does the work (``conjecturing``, ``gate``,
``proving``, ``training_data``, ``training``, ``report``) and write their outputs.

Every stage writes its artifacts atomically and then a marker (``stp.stages``) holding a
fingerprint of its inputs; a stage whose marker is missing, does not match its files, or
was made from other inputs is redone. ``generate`` and ``verify`` work in chunks, so a
killed round loses at most one chunk; they are the two halves of the pipeline ``stp eval``
runs too (``stp.prove``). Every random draw is seeded from ``run.seed``, the round and the
stage (``Round.seed``): a resumed round writes the same artifacts as one never interrupted.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from stp import prove
from stp.artifacts import atomic_write_json, read_jsonl
from stp.assistants import assistant
from stp.config import STPConfig
from stp.runs import STAGES_LATER_ROUNDS_READ, RunLayout, model_for_round
from stp.selfplay import conjecturing, gate, proving, report, training, training_data
from stp.selfplay.bootstrap import bootstrap, load_run_corpus
from stp.selfplay.context import Log, Round
from stp.selfplay.history import load_history
from stp.selfplay.lock import run_lock
from stp.selfplay.records import (
    CONJECTURER_FILE,
    CONJECTURES_FILE,
    GATE_FILE,
    GATE_PASSED,
    MODEL_DIR,
    PROVER_FILE,
    SEEDS_FILE,
    STATS_FILE,
    SUMMARY_FILE,
    TARGETS_FILE,
    TRAIN_FILE,
    Conjecture,
    GateOutcome,
    Seed,
    StatementStats,
    Target,
    read_records,
    write_records,
)
from stp.selfplay.selection import PROVED, replay_window
from stp.selfplay.targets import preflight
from stp.stages import StageRecord, fingerprint, read_stage, run_stage

# ------------------------------------------------------------------------------ stages


def seeds(r: Round) -> dict[str, Any]:
    chosen: list[Seed] = []
    source = "none"
    if r.config.run.mode == "stp":
        rng = random.Random(r.seed("seeds"))
        chosen, source = conjecturing.choose_seeds(
            r.dataset, r.history, r.corpus, r.config.selection, r.lang, rng
        )
    write_records(r.path(SEEDS_FILE), chosen)
    r.log(f"  seeds: {len(chosen)} ({source})")
    return {"seeds": len(chosen), "source": source}


def conjectures(r: Round) -> dict[str, Any]:
    seed_records = read_records(r.path(SEEDS_FILE), Seed)
    known = conjecturing.known_statements(r.dataset, r.corpus, r.history, r.lang)
    with _bar(len(seed_records), "conjectures", "seed") as bar:
        new, counts = conjecturing.sample_conjectures(
            seed_records,
            r.sampler,
            r.lang,
            known,
            r.index,
            r.config.selection,
            r.seed("conjectures"),
            _moves(bar),
        )
    write_records(r.path(CONJECTURES_FILE), new)
    r.log(
        f"  conjectures: {counts.generated} sampled, {counts.valid} parsed, "
        f"{counts.duplicates} duplicates, {len(new)} new"
    )
    return {
        "generated": counts.generated,
        "valid": counts.valid,
        "duplicates": counts.duplicates,
        "known_well_typed": counts.known_well_typed,
        "new": len(new),
        "tokens": counts.tokens,
    }


def gate_stage(r: Round) -> dict[str, Any]:
    from stp.verify import make_verifier

    new = read_records(r.path(CONJECTURES_FILE), Conjecture)
    backend = r.config.verification.backend
    settings = dataclasses.replace(r.config.verification, timeout_s=r.config.gate.timeout_s)
    outcomes: list[GateOutcome] = []
    if new:  # expert iteration has none: no proof assistant to start
        with make_verifier(settings) as verifier:
            outcomes = gate.screen(new, verifier, r.config.gate, backend, r.log)
    write_records(r.path(GATE_FILE), outcomes)
    tally = gate.counts(outcomes)
    rejected = ", ".join(f"{n} {reason}" for reason in gate.REJECTIONS if (n := tally[reason]))
    r.log(f"  gate: {tally[GATE_PASSED]} of {len(new)} passed; rejected: {rejected or 'none'}")
    samples = {c.id: c.samples for c in new}
    return {
        "checked": gate.checks_statements(r.config.gate, backend),
        "well_typed_samples": sum(samples[o.conjecture] for o in outcomes if o.well_typed),
        **tally,
    }


def targets(r: Round) -> dict[str, Any]:
    gated = {o.conjecture: o for o in read_records(r.path(GATE_FILE), GateOutcome)}
    passed = [c for c in read_records(r.path(CONJECTURES_FILE), Conjecture) if gated[c.id].passed]
    new = passed[: r.config.selection.max_conjectures]
    chosen = proving.choose_targets(r.dataset, r.history, new, r.config)
    write_records(r.path(TARGETS_FILE), chosen)
    size, k = r.config.run.chunk_targets, proving.round_k(r.config, r.index)
    n_dataset = len(chosen) - len(new)
    r.log(f"  targets: {n_dataset} statements + {len(new)} conjectures, k={k}")
    return {
        "k": k,
        "chunk_targets": size,
        "chunks": -(-len(chosen) // size),
        "dataset": n_dataset,
        "conjectures": len(new),
    }


def _chunks(r: Round) -> tuple[list[list[Target]], dict[str, Any]]:
    """The round's targets cut into the chunks the targets stage fixed, and its figures."""
    record = read_stage(r.directory, "targets")
    assert record is not None, "the targets stage must be finished first"
    rows = read_records(r.path(TARGETS_FILE), Target)
    return prove.cut(rows, int(record.info["chunk_targets"])), record.info


def generate(r: Round) -> dict[str, Any]:
    chunks, info = _chunks(r)
    with _bar(sum(map(len, chunks)), "proofs", "target") as bar:
        prove.sample(
            r.directory, chunks, int(info["k"]), r.sampler, r.lang, r.seed("generate"), _moves(bar)
        )
    attempts = tokens = 0
    for attempt in prove.read_attempts(r.directory, range(len(chunks))):
        attempts += 1
        tokens += attempt.tokens
    r.log(f"  generate: {attempts} proofs sampled, {tokens} tokens")
    return {"attempts": attempts, "tokens": tokens}


def verify(r: Round) -> dict[str, Any]:
    from stp.verify import make_verifier

    chunks, _ = _chunks(r)
    with _bar(0, "verify", "proof") as bar:

        def grow(jobs: int) -> None:
            bar.total = bar.n + jobs
            bar.refresh()

        def advance_by(count: int) -> None:  # the verifier reports how many more finished
            bar.update(count)

        prove.check(
            r.directory,
            chunks,
            lambda: make_verifier(r.config.verification),
            advance_by,
            grow,
        )
    checked = proved = 0
    seconds = 0.0
    for row in prove.read_verified(r.directory, range(len(chunks))):
        checked += 1
        seconds += row.seconds
        proved += row.count if row.verdict == PROVED else 0
    r.log(
        f"  verify: {checked} distinct proofs checked ({seconds:.1f} verifier-s), {proved} proved"
    )
    return {"distinct_proofs": checked, "verifier_seconds": seconds, "proved_attempts": proved}


def select(r: Round) -> dict[str, Any]:
    settings, lang = r.config.selection, r.lang
    chunks, _ = _chunks(r)
    by_id = {t.id: t for chunk in chunks for t in chunk}
    new = {c.id: c for c in read_records(r.path(CONJECTURES_FILE), Conjecture)}
    verified = prove.read_verified(r.directory, range(len(chunks)))
    lemma_index = r.corpus.lemma_index if r.corpus is not None else None
    scores = training_data.score(verified, by_id, new, lemma_index, settings, lang)
    n_prover = write_records(r.path(PROVER_FILE), scores.prover_examples)
    write_records(r.path(STATS_FILE), scores.stats)

    after = r.history.with_round(scores.stats)
    unproved = [t.formal_statement for t in r.dataset if not after.proved(t.id)]
    conjecturer = training_data.conjecturer_examples(
        scores.candidates, new, unproved, training_data.embedder(r.model), settings, lang
    )
    n_selected = len(conjecturer)
    targeted = [new[t] for t in by_id if t in new]  # the conjectures past the gate
    rates = {s.target: s.pass_rate for s in scores.stats}
    ceiling = settings.gate_passed_max_pass_rate
    conjecturer += training_data.gate_passed_examples(
        [c for c in targeted if ceiling is None or rates.get(c.id, 0.0) <= ceiling],
        {c.target for c in scores.candidates},
        settings.gate_passed_weight if _form_still_unlearned(r) else 0.0,
        lang,
    )
    write_records(r.path(CONJECTURER_FILE), conjecturer)

    replayed = [
        r.layout.round_dir(index) / PROVER_FILE
        for index in replay_window(r.index, settings.replay_rounds)
    ]
    n_train = write_records(r.path(TRAIN_FILE), training_data.training_set(conjecturer, replayed))
    r.log(
        f"  select: {len(scores.candidates)} barely provable conjectures, {n_selected} kept, "
        f"{len(conjecturer) - n_selected} more past the gate; {n_prover} prover examples this "
        f"round, {n_train} training examples with replay"
    )
    return {
        **report.conjectures_proved(scores.stats, settings),
        "candidates": len(scores.candidates),
        "conjecturer_examples": n_selected,
        "gate_passed_examples": len(conjecturer) - n_selected,
        "prover_examples": n_prover,
        "train_examples": n_train,
    }


def train(r: Round) -> dict[str, Any]:
    examples, out = r.path(TRAIN_FILE), r.path(MODEL_DIR)
    if r.config.run.mode == "parallel_sampling":
        training.discard_model(out)
        r.log("  train: skipped (parallel_sampling keeps the model fixed)")
        return {"model": r.model, "trained": False}
    if not any(True for _ in read_jsonl(examples)):
        training.discard_model(out)
        r.log("  train: no examples this round, the model stays as it is")
        return {"model": r.model, "trained": False}
    model = training.train_model(r.model, examples, out, r.config.training, r.seed("train"), r.log)
    r.log(f"  train: model written to {model}")
    return {"model": str(model), "trained": True}


def summary(r: Round) -> dict[str, Any]:
    body = report.summarize(
        round_index=r.index,
        mode=r.config.run.mode,
        model=r.model,
        dataset_statements=len(r.dataset),
        before=r.history,
        stats=read_records(r.path(STATS_FILE), StatementStats),
        records={s.name: read_stage(r.directory, s.name) for s in STAGES if s.name != "summary"},
        wall_seconds=time.perf_counter() - r.started,
    )
    atomic_write_json(r.path(SUMMARY_FILE), body)
    return {"proved": body["proved"], "proved_new": body["proved_new"]}


# --------------------------------------------------------------------- the declaration

# Settings every stage's output depends on: the model it samples from (or trains) is part
# of its fingerprint separately, as are the run's dataset and the earlier rounds.
SAMPLING = ("sampling.temperature", "sampling.top_p", "sampling.max_new_tokens", "run.seed")
CHECKING = (
    "verification.backend",
    "verification.timeout_s",
    "verification.memory_limit_mb",
    "verification.header_timeout_s",
    "verification.<assistant>",  # the configured assistant's own fields (stp.assistants)
)


LAST_SAMPLING_STAGE = "generate"


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    files: tuple[str, ...]  # what it writes, relative to the round folder
    settings: tuple[str, ...]  # "section" or "section.field": what its output depends on
    reads: tuple[str, ...]  # earlier stages of this round whose files it reads
    run: Callable[[Round], dict[str, Any]]
    files_optional: bool = False  # train writes no model when it does not train


STAGES: tuple[Stage, ...] = (
    Stage(
        name="seeds",
        files=(SEEDS_FILE,),
        settings=(
            "run.mode",
            "run.seed",
            "run.corpus",
            "selection.seed_pass_rate_min",
            "selection.trivial_lemma_prob",
            "selection.max_seeds",
        ),
        reads=(),
        run=seeds,
    ),
    Stage(
        name="conjectures",
        files=(CONJECTURES_FILE,),
        settings=(
            *SAMPLING,
            "sampling.conjecturer_temperature",
            "selection.conjectures_per_seed",
            "selection.conjectures_per_corpus_seed",
        ),
        reads=("seeds",),
        run=conjectures,
    ),
    Stage(
        name="gate",
        files=(GATE_FILE,),
        settings=(
            "gate",
            "verification.backend",
            "verification.memory_limit_mb",
            "verification.header_timeout_s",
            "verification.<assistant>",
        ),
        reads=("conjectures",),
        run=gate_stage,
    ),
    Stage(
        name="targets",
        files=(TARGETS_FILE,),
        settings=(
            "run.mode",
            "run.chunk_targets",
            "selection.max_conjectures",
            "selection.resample_pass_rate_max",
            "selection.proofs_per_statement",
            "selection.proofs_per_statement_round0",
        ),
        reads=("conjectures", "gate"),
        run=targets,
    ),
    Stage(
        name="generate",
        files=(prove.ATTEMPTS_DIR,),
        settings=SAMPLING,
        reads=("targets",),
        run=generate,
    ),
    Stage(
        name="verify",
        files=(prove.VERIFIED_DIR,),
        settings=CHECKING,
        reads=("targets", "generate"),
        run=verify,
    ),
    Stage(
        name="select",
        files=(STATS_FILE, PROVER_FILE, CONJECTURER_FILE, TRAIN_FILE),
        settings=("selection",),
        reads=("conjectures", "gate", "targets", "verify"),
        run=select,
    ),
    Stage(
        name="train",
        files=(MODEL_DIR,),
        settings=("run.mode", "run.seed", "training"),
        reads=("select",),
        run=train,
        files_optional=True,
    ),
    Stage(
        name="summary",
        files=(SUMMARY_FILE,),
        settings=("run.mode",),
        reads=("targets", "conjectures", "gate", "generate", "verify", "select", "train"),
        run=summary,
    ),
)


def settings_of(config: STPConfig, names: tuple[str, ...]) -> dict[str, Any]:
    """The named settings' values (a section name stands for every field of it)."""
    values: dict[str, Any] = {}
    for name in names:
        section, _, field = name.partition(".")
        body = getattr(config, section)
        if field == "<assistant>":
            for own in assistant(config.verification.backend).settings:
                values[f"{section}.{own}"] = getattr(body, own)
        elif field:
            values[name] = getattr(body, field)
        else:
            values[name] = vars(body)
    return values


def run_round(r: Round, earlier: list[StageRecord | None]) -> None:
    """Run (or skip) every stage in order. ``earlier`` are the records of what the round
    builds on (the run's dataset, earlier rounds' files), part of every stage's inputs."""
    done: dict[str, StageRecord] = {}
    for stage in STAGES:
        settings = settings_of(r.config, stage.settings) | {"model": r.model, "round": r.index}
        inputs = fingerprint(settings, [*earlier, *(done[name] for name in stage.reads)])
        paths = [r.path(name) for name in stage.files]
        done[stage.name] = run_stage(
            r.directory,
            stage.name,
            functools.partial(_existing, paths) if stage.files_optional else paths,
            functools.partial(stage.run, r),
            r.log,
            inputs=inputs,
        )
        if stage.name == LAST_SAMPLING_STAGE:
            r.sampler.close()  # the model's memory goes to the verifier workers and training


def _existing(paths: list[Path]) -> list[Path]:
    return [path for path in paths if path.exists()]


# ------------------------------------------------------------------------------ driver


def advance(config: STPConfig, log: Log = print) -> dict[str, Any]:
    """``stp round``: finish the unfinished round, or run the next one; returns its summary."""
    preflight(config)
    training.apply_torch_threads(config)
    layout = RunLayout.of(config)
    with run_lock(layout.root):
        started = time.perf_counter()
        bootstrap(config, layout, log)
        index = layout.next_round()
        r = Round(
            config=config,
            layout=layout,
            index=index,
            model=model_for_round(config, layout, index),
            dataset=read_records(layout.targets, Target),
            history=load_history(layout, index),
            log=log,
            corpus=load_run_corpus(config),
            started=started,
        )
        log(f"round {index} of run {layout.root} ({config.run.mode}), model {r.model}")
        # What this round builds on: the run's dataset and every earlier round's files.
        earlier = [read_stage(layout.root, "targets")] + [
            read_stage(layout.round_dir(i), name)
            for i in range(index)
            for name in STAGES_LATER_ROUNDS_READ
        ]
        try:
            run_round(r, earlier)
        finally:
            r.sampler.close()
        rows = report.write_rounds_table(layout)
        for line in report.closing_lines(rows):
            log(line)
        return rows[-1]


# ----------------------------------------------------------------------------- helpers


def _form_still_unlearned(r: Round) -> bool:
    """Whether the round's well-typed share of conjecturer samples is below
    ``selection.gate_passed_until_well_typed`` (always, when that is None or nothing was
    counted)."""
    threshold = r.config.selection.gate_passed_until_well_typed
    if threshold is None:
        return True
    records = [read_stage(r.directory, name) for name in ("conjectures", "gate")]
    conj, gated = ({} if record is None else record.info for record in records)
    share = report.well_typed_share(report.conjecture_funnel(conj, gated, {}, {}))
    return share is None or share < threshold


def _bar(total: int, desc: str, unit: str) -> tqdm:
    return tqdm(total=total, desc=f"  {desc}", unit=unit, leave=False, dynamic_ncols=True)


def _moves(bar: tqdm) -> prove.Progress:
    """A progress callback (prompts done so far) that moves ``bar`` there."""

    def update(done: int) -> None:
        bar.update(done - bar.n)

    return update
