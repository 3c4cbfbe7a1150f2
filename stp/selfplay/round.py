"""One self-play round, stage by stage (DESIGN §1); each stage resumable and skippable.

    seeds -> conjectures -> targets -> generate -> verify -> select -> train -> summary

Every stage writes its artifacts atomically under ``runs/<name>/round_NNN/`` and then a
``<stage>.done.json`` marker (``stp.selfplay.stages``); a stage whose marker is missing or
does not match its files is redone. ``generate`` and ``verify`` work in chunks of
``run.chunk_targets`` targets, each written as it finishes, so a killed round loses at most
one chunk. Every random draw is seeded from ``run.seed``, the round and the stage
(``stage_seed``): a resumed round writes the same artifacts as one never interrupted.

Decisions where the paper leaves room:

- Seeds are dataset statements (never conjectures) whose best pass rate so far is above
  ``selection.seed_pass_rate_min``, with the shortest correct proof the model found. In round 0
  (no pass rates yet), and in any round where no statement qualifies, the corpus' sft proofs
  seed the conjecturer instead. A run without a corpus (Lean from an SFT model) has no seeds
  until its model proves something, and pairs seeds with the trivial lemma only.
- Proof attempts go to every unproved dataset statement, every new conjecture, and proved
  statements whose best pass rate is at most ``selection.resample_pass_rate_max``.
  ``expert_iteration`` and ``parallel_sampling`` sample only the unproved statements.
- A proof citing the target's own library name (``forbidden`` names, passed on each
  ``VerifyJob``) is ``unsound``: the verifier rejects it before running the checker.
"""

from __future__ import annotations

import functools
import json
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from stp.artifacts import atomic_write_json, atomic_write_jsonl, read_jsonl
from stp.config import STPConfig
from stp.languages import FENCE, FormalLanguage, language
from stp.selfplay import selection
from stp.selfplay.layout import (
    CONJECTURE,
    DATASET,
    RunHistory,
    RunLayout,
    fold_stats,
    key_digest,
    load_history,
    stage_seed,
)
from stp.selfplay.lock import run_lock
from stp.selfplay.stages import (
    chunk_done,
    chunk_path,
    read_chunks,
    read_stage,
    run_stage,
    write_chunk,
)
from stp.selfplay.targets import preflight

STAGES: tuple[str, ...] = (
    "seeds",
    "conjectures",
    "targets",
    "generate",
    "verify",
    "select",
    "train",
    "summary",
)

Log = Callable[[str], None]


def _bar(total: int, desc: str, unit: str) -> tqdm:
    return tqdm(total=total, desc=f"  {desc}", unit=unit, leave=False, dynamic_ncols=True)


@dataclass
class RoundContext:
    """What every stage of one round reads: config, paths, language, corpus, model."""

    config: STPConfig
    layout: RunLayout
    index: int
    model: str  # the model this round samples from (and fine-tunes)
    log: Log
    corpus: Any = None  # stp.data.corpus.Corpus when run.corpus is set
    _sampler: Any = field(default=None, repr=False)

    @property
    def directory(self) -> Path:
        return self.layout.round_dir(self.index)

    @property
    def lang(self) -> FormalLanguage:
        return language(self.config.verification.backend)

    def seed(self, stage: str, part: int = 0) -> int:
        return stage_seed(self.config.run.seed, self.index, stage, part)

    def sampler(self) -> Any:
        if self._sampler is None:
            from stp.models import make_sampler

            self._sampler = make_sampler(self.model, self.config.sampling)
        return self._sampler

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.close()
            self._sampler = None

    def generate(
        self, prompts: list[str], n: int, seed: int, progress: Callable[[int], None]
    ) -> list[list[Any]]:
        s = self.config.sampling
        return self.sampler().generate(
            prompts,
            n,
            temperature=s.temperature,
            top_p=s.top_p,
            max_new_tokens=s.max_new_tokens,
            seed=seed,
            stop=(FENCE,),
            progress=progress,
        )

    def history(self) -> RunHistory:
        return load_history(self.layout, self.index)

    def dataset(self) -> list[dict[str, Any]]:
        return list(read_jsonl(self.layout.targets))


# ------------------------------------------------------------------------------ seeds


def _seeds(ctx: RoundContext) -> dict[str, Any]:
    sel = ctx.config.selection
    rows: list[dict[str, Any]] = []
    source = "none"
    if ctx.config.run.mode == "stp":
        rng = random.Random(ctx.seed("seeds"))
        lemma_index = ctx.corpus.lemma_index if ctx.corpus is not None else None
        candidates: list[dict[str, Any]] = []
        history = ctx.history()
        for target in ctx.dataset():
            record = history.statements.get(target["id"])
            if record and record.proof and record.best_pass_rate > sel.seed_pass_rate_min:
                lemmas = _lemmas_used(record.proof, lemma_index, ctx.lang.name)
                candidates.append({**_seed_base(target, record.proof), "lemmas": lemmas})
        source = "model proofs"
        if not candidates and ctx.corpus is not None:
            source = "corpus sft proofs"
            for theorem in ctx.corpus.sft:
                base = {
                    "id": theorem.name,
                    "header": theorem.statement.header,
                    "formal_statement": theorem.statement.formal_statement,
                    "proof": theorem.proof,
                }
                lemmas = [(lemma.name, lemma.statement) for lemma in theorem.lemmas]
                candidates.append({**base, "lemmas": lemmas})
        if sel.max_seeds is not None and len(candidates) > sel.max_seeds:
            keep = sorted(rng.sample(range(len(candidates)), sel.max_seeds))
            candidates = [candidates[i] for i in keep]
        for candidate in candidates:
            lemmas = candidate.pop("lemmas")
            trivial = not lemmas or rng.random() < sel.trivial_lemma_prob
            name, text = (None, None) if trivial else rng.choice(lemmas)
            rows.append({**candidate, "lemma": name, "lemma_text": text})
    atomic_write_jsonl(ctx.directory / "seeds.jsonl", rows)
    ctx.log(f"  seeds: {len(rows)} ({source})")
    return {"seeds": len(rows), "source": source}


def _seed_base(target: dict[str, Any], proof: str) -> dict[str, Any]:
    return {
        "id": target["id"],
        "header": target["header"],
        "formal_statement": target["formal_statement"],
        "proof": proof,
    }


def _lemmas_used(proof: str, index: Any, prover: str) -> list[tuple[str, str]]:
    if index is None:
        return []
    from stp.data.corpus import lemmas_used

    return [(lemma.name, lemma.statement) for lemma in lemmas_used(proof, index, prover)]


def _uses_lemma(lemma: str | None, index: Any, prover: str, proof: str) -> bool:
    """Whether ``proof`` cites ``lemma`` (by the name the seed gave); the trivial lemma
    (None) is used by every proof."""
    return lemma is None or lemma in {name for name, _ in _lemmas_used(proof, index, prover)}


# ------------------------------------------------------------------------ conjectures


def _known_statement_keys(ctx: RoundContext) -> set[bytes]:
    """Keys of the dataset's statements, the corpus' and every earlier conjecture."""
    body = ctx.lang.statement_body
    keys = set(ctx.history().conjecture_keys)
    for target in ctx.dataset():
        keys.add(
            key_digest(selection.whitespace_key(target["header"], body(target["formal_statement"])))
        )
    if ctx.corpus is not None:
        for theorem in ctx.corpus.theorems:
            s = theorem.statement
            keys.add(key_digest(selection.whitespace_key(s.header, body(s.formal_statement))))
    return keys


def _conjectures(ctx: RoundContext) -> dict[str, Any]:
    sel = ctx.config.selection
    seeds = list(read_jsonl(ctx.directory / "seeds.jsonl"))
    rows: list[dict[str, Any]] = []
    generated = valid = duplicates = tokens = 0
    if seeds:
        lang = ctx.lang
        prompts = [
            lang.conjecturer_prompt(s["header"], s["formal_statement"], s["proof"], s["lemma_text"])
            for s in seeds
        ]
        bar = _bar(len(prompts), "conjectures", "seed")
        samples = ctx.generate(
            prompts, sel.conjectures_per_seed, ctx.seed("conjectures"), _progress(bar)
        )
        bar.close()
        known = _known_statement_keys(ctx)
        for i, (seed, completions) in enumerate(zip(seeds, samples, strict=True)):
            for j, completion in enumerate(completions):
                generated += 1
                tokens += completion.num_tokens
                name = f"conj_r{ctx.index:03d}_{i:05d}_{j:02d}"
                statement = lang.parse_conjecture(completion.text, name)
                if statement is None:
                    continue
                valid += 1
                key = key_digest(
                    selection.whitespace_key(seed["header"], lang.statement_body(statement))
                )
                if key in known:
                    duplicates += 1
                    continue
                known.add(key)
                if len(rows) < sel.max_conjectures:
                    rows.append(
                        {
                            "id": name,
                            "header": seed["header"],
                            "formal_statement": statement,
                            "seed": seed["id"],
                            "seed_statement": seed["formal_statement"],
                            "seed_proof": seed["proof"],
                            "lemma": seed["lemma"],
                            "lemma_text": seed["lemma_text"],
                            "key": key.hex(),
                        }
                    )
    atomic_write_jsonl(ctx.directory / "conjectures.jsonl", rows)
    ctx.log(
        f"  conjectures: {generated} sampled, {valid} parsed, {duplicates} duplicates, "
        f"{len(rows)} new"
    )
    return {
        "generated": generated,
        "valid": valid,
        "duplicates": duplicates,
        "new": len(rows),
        "tokens": tokens,
    }


def _progress(bar: tqdm, start: int = 0) -> Callable[[int], None]:
    """A sampler/verifier progress callback (items done so far) that moves ``bar``, which
    already stood at ``start`` when the call began."""

    def update(done: int) -> None:
        bar.update(start + done - bar.n)

    return update


def _increments(bar: tqdm) -> Callable[[int], None]:
    """A verifier progress callback: the verifier reports how many more jobs finished."""

    def update(count: int) -> None:
        bar.update(count)

    return update


# ---------------------------------------------------------------------------- targets


def round_k(config: STPConfig, index: int) -> int:
    sel = config.selection
    return sel.proofs_per_statement_round0 if index == 0 else sel.proofs_per_statement


def _targets(ctx: RoundContext) -> dict[str, Any]:
    history = ctx.history()
    resample = ctx.config.selection.resample_pass_rate_max
    rows = []
    for target in ctx.dataset():
        record = history.statements.get(target["id"])
        if (
            record is None
            or not record.proved
            or (ctx.config.run.mode == "stp" and record.best_pass_rate <= resample)
        ):
            rows.append({**target, "kind": DATASET})
    n_dataset = len(rows)
    for conjecture in read_jsonl(ctx.directory / "conjectures.jsonl"):
        rows.append(
            {
                "id": conjecture["id"],
                "header": conjecture["header"],
                "formal_statement": conjecture["formal_statement"],
                "informal": None,
                "forbidden": [],
                "kind": CONJECTURE,
            }
        )
    atomic_write_jsonl(ctx.directory / "targets.jsonl", rows)
    size = ctx.config.run.chunk_targets
    k = round_k(ctx.config, ctx.index)
    ctx.log(f"  targets: {n_dataset} statements + {len(rows) - n_dataset} conjectures, k={k}")
    return {
        "k": k,
        "chunk_targets": size,
        "chunks": -(-len(rows) // size),
        "dataset": n_dataset,
        "conjectures": len(rows) - n_dataset,
    }


def _chunks(ctx: RoundContext) -> tuple[list[list[dict[str, Any]]], dict[str, Any]]:
    """The round's targets cut into the chunks the targets stage fixed."""
    record = read_stage(ctx.directory, "targets")
    assert record is not None, "targets stage must be finished first"
    rows = list(read_jsonl(ctx.directory / "targets.jsonl"))
    size = int(record.info["chunk_targets"])
    return [rows[i : i + size] for i in range(0, len(rows), size)], record.info


# --------------------------------------------------------------------------- generate


def _generate(ctx: RoundContext) -> dict[str, Any]:
    chunks, info = _chunks(ctx)
    out = ctx.directory / "attempts"
    lang = ctx.lang
    bar = _bar(sum(len(c) for c in chunks), "proofs", "target")
    for index, chunk in enumerate(chunks):
        if chunk_done(out, index):
            bar.update(len(chunk))
            continue
        prompts = [
            lang.prover_prompt(t["header"], t["formal_statement"], t["informal"]) for t in chunk
        ]
        start = int(bar.n)
        samples = ctx.generate(
            prompts,
            int(info["k"]),
            ctx.seed("generate", index),
            _progress(bar, start),
        )
        write_chunk(
            out,
            index,
            (
                {
                    "target": t["id"],
                    "proof": lang.parse_proof(c.text, t["formal_statement"]),
                    "tokens": c.num_tokens,
                }
                for t, completions in zip(chunk, samples, strict=True)
                for c in completions
            ),
        )
    bar.close()
    attempts = tokens = 0
    for row in read_chunks(out, len(chunks)):
        attempts += 1
        tokens += row["tokens"]
    ctx.log(f"  generate: {attempts} proofs sampled, {tokens} tokens")
    return {"attempts": attempts, "tokens": tokens}


# ----------------------------------------------------------------------------- verify


def verify_attempts(ctx: RoundContext) -> dict[str, Any]:
    from stp.verify import VerifyJob, make_verifier

    chunks, _ = _chunks(ctx)
    attempts_dir = ctx.directory / "attempts"
    out = ctx.directory / "verified"
    todo = [i for i in range(len(chunks)) if not chunk_done(out, i)]
    if todo:
        bar = _bar(0, "verify", "proof")
        with make_verifier(ctx.config.verification) as verifier:
            for index in todo:
                targets = {t["id"]: t for t in chunks[index]}
                counts = selection.count_distinct(read_jsonl(chunk_path(attempts_dir, index)))
                jobs, job_keys = [], []
                verdicts: dict[tuple[str, str], tuple[str, float]] = {}
                for number, (target_id, proof) in enumerate(counts):
                    target = targets[target_id]
                    job_keys.append((target_id, proof))
                    jobs.append(
                        VerifyJob(
                            f"{index}:{number}",
                            target["header"],
                            target["formal_statement"],
                            proof,
                            tuple(target["forbidden"]),
                        )
                    )
                bar.total = bar.n + len(jobs)
                bar.refresh()
                results = verifier.verify(jobs, _increments(bar))
                for key, result in zip(job_keys, results, strict=True):
                    verdicts[key] = (result.verdict.value, result.check_seconds)
                write_chunk(
                    out,
                    index,
                    (
                        {
                            "target": target_id,
                            "proof": proof,
                            "count": count,
                            "verdict": verdicts[(target_id, proof)][0],
                            "seconds": round(verdicts[(target_id, proof)][1], 4),
                        }
                        for (target_id, proof), count in counts.items()
                    ),
                )
        bar.close()
    checked = proved = 0
    seconds = 0.0
    for row in read_chunks(out, len(chunks)):
        checked += 1
        seconds += row["seconds"]
        proved += row["count"] if row["verdict"] == selection.PROVED else 0
    ctx.log(
        f"  verify: {checked} distinct proofs checked ({seconds:.1f} verifier-s), {proved} proved"
    )
    return {"distinct_proofs": checked, "verifier_seconds": seconds, "proved_attempts": proved}


# ----------------------------------------------------------------------------- select


def _embed(model: str, texts: list[str]) -> Any:
    from stp.models.embed import mean_pooled_embeddings

    return mean_pooled_embeddings(model, texts)


def select_training_data(ctx: RoundContext) -> dict[str, Any]:
    import numpy as np

    sel = ctx.config.selection
    lang = ctx.lang
    chunks, _ = _chunks(ctx)
    targets = {t["id"]: t for chunk in chunks for t in chunk}
    conjectures = {c["id"]: c for c in read_jsonl(ctx.directory / "conjectures.jsonl")}
    lemma_index = ctx.corpus.lemma_index if ctx.corpus is not None else None
    candidates: list[selection.ConjectureCandidate] = []
    stats_rows: list[dict[str, Any]] = []

    def prover_rows() -> Iterator[dict[str, Any]]:
        rows = read_chunks(ctx.directory / "verified", len(chunks))
        for outcome in selection.outcomes(rows):
            target = targets[outcome.target]
            stats_rows.append(
                {
                    "target": outcome.target,
                    "kind": target["kind"],
                    "attempts": outcome.attempts,
                    "correct": outcome.correct,
                    "pass_rate": outcome.pass_rate,
                    "proof": outcome.shortest_proof(),
                }
            )
            if target["kind"] == CONJECTURE:
                lemma = conjectures[outcome.target]["lemma"]
                candidate = selection.conjecture_candidate(
                    outcome,
                    target["formal_statement"],
                    functools.partial(_uses_lemma, lemma, lemma_index, lang.name),
                    sel.window_low,
                    sel.window_high,
                )
                if candidate is not None:
                    candidates.append(candidate)
            prompt = lang.prover_prompt(
                target["header"], target["formal_statement"], target["informal"]
            )
            for proof, weight in selection.prover_proof_weights(
                outcome, sel.length_penalty, sel.prover_pass_rate_max
            ):
                yield {
                    "target": outcome.target,
                    "prompt": prompt,
                    "completion": lang.prover_completion(proof),
                    "weight": weight,
                }

    n_prover = atomic_write_jsonl(ctx.directory / "prover.jsonl", prover_rows())
    atomic_write_jsonl(ctx.directory / "stats.jsonl", stats_rows)

    kept = selection.drop_least_elegant(candidates, sel.elegance_drop_fraction)
    weights = np.ones(len(kept))
    if kept and sel.reweight_conjectures:
        history = ctx.history()
        fold_stats(history, iter(stats_rows))
        unproved = [
            t["formal_statement"]
            for t in ctx.dataset()
            if not (t["id"] in history.statements and history.statements[t["id"]].proved)
        ]
        if unproved:
            texts = [targets[c.target]["formal_statement"] for c in kept]
            embedded = _embed(ctx.model, texts + unproved)
            weights = selection.nearest_neighbour_weights(
                embedded[: len(kept)], embedded[len(kept) :], sel.conjecture_weight_cap
            )
    conjecturer_rows = []
    for candidate, weight in zip(kept, weights, strict=True):
        if weight <= 0:
            continue
        c = conjectures[candidate.target]
        conjecturer_rows.append(
            {
                "target": candidate.target,
                "prompt": lang.conjecturer_prompt(
                    c["header"], c["seed_statement"], c["seed_proof"], c["lemma_text"]
                ),
                "completion": lang.conjecture_completion(c["formal_statement"]),
                "weight": float(weight),
            }
        )
    atomic_write_jsonl(ctx.directory / "conjecturer.jsonl", conjecturer_rows)

    def training_rows() -> Iterator[dict[str, Any]]:
        for row in conjecturer_rows:
            yield {k: row[k] for k in ("prompt", "completion", "weight")}
        for index in selection.replay_window(ctx.index, sel.replay_rounds):
            path = (
                ctx.directory / "prover.jsonl"
                if index == ctx.index
                else ctx.layout.round_dir(index) / "prover.jsonl"
            )
            for row in read_jsonl(path):
                yield {k: row[k] for k in ("prompt", "completion", "weight")}

    n_train = atomic_write_jsonl(ctx.directory / "train.jsonl", training_rows())
    ctx.log(
        f"  select: {len(candidates)} barely provable conjectures, {len(conjecturer_rows)} kept; "
        f"{n_prover} prover examples this round, {n_train} training examples with replay"
    )
    return {
        "candidates": len(candidates),
        "conjecturer_examples": len(conjecturer_rows),
        "prover_examples": n_prover,
        "train_examples": n_train,
    }


# ------------------------------------------------------------------------------ train


def train_round_model(ctx: RoundContext) -> dict[str, Any]:
    examples = ctx.directory / "train.jsonl"
    out = ctx.directory / "model"
    discard_finished_model(out)
    if ctx.config.run.mode == "parallel_sampling":
        ctx.log("  train: skipped (parallel_sampling keeps the model fixed)")
        return {"model": ctx.model, "trained": False}
    with examples.open() as handle:
        if not any(line.strip() for line in handle):
            ctx.log("  train: no examples this round, the model stays as it is")
            return {"model": ctx.model, "trained": False}
    out = train_model(ctx.model, examples, out, ctx.config, ctx.seed("train"))
    ctx.log(f"  train: model written to {out}")
    return {"model": str(out), "trained": True}


def discard_finished_model(out: Path) -> None:
    """Called when a train stage is (re)done: a model folder the trainer had finished although
    the stage's marker is missing or no longer matches it cannot be trusted (the trainer would
    return it as it is), so it is removed and trained again. A folder the trainer did not
    finish keeps its checkpoints, and training resumes from them."""
    from stp.models.train import MARKER

    if (out / MARKER).is_file():
        shutil.rmtree(out)


def train_model(base: str, examples: Path, out: Path, config: STPConfig, seed: int) -> Path:
    from stp.models.train import train

    bar = _bar(0, "train", "step")

    def progress(step: int, total: int) -> None:
        bar.total = total
        bar.update(step - bar.n)

    try:
        return Path(train(base, examples, out, config.training, seed=seed, progress=progress))
    finally:
        bar.close()


# ---------------------------------------------------------------------------- summary


def _info(directory: Path, stage: str) -> dict[str, Any]:
    record = read_stage(directory, stage)
    return record.info if record is not None else {}


def _summary(ctx: RoundContext, started: float) -> dict[str, Any]:
    directory = ctx.directory
    stats = list(read_jsonl(directory / "stats.jsonl"))
    before = ctx.history()
    after = ctx.history()
    fold_stats(after, iter(stats))
    total = sum(1 for _ in read_jsonl(ctx.layout.targets))
    conj = _info(directory, "conjectures")
    gen = _info(directory, "generate")
    ver = _info(directory, "verify")
    sel = _info(directory, "select")
    tgt = _info(directory, "targets")
    stage_seconds = {}
    for stage in STAGES[:-1]:
        record = read_stage(directory, stage)
        stage_seconds[stage] = round(record.seconds, 2) if record is not None else None
    summary = {
        "round": ctx.index,
        "mode": ctx.config.run.mode,
        "model": ctx.model,
        "k": tgt.get("k"),
        "dataset_statements": total,
        "proved": len(after.proved_ids()),
        "proved_new": len(after.proved_ids() - before.proved_ids()),
        "targets": {"dataset": tgt.get("dataset"), "conjectures": tgt.get("conjectures")},
        "conjectures": {
            "generated": conj.get("generated", 0),
            "valid": conj.get("valid", 0),
            "new": conj.get("new", 0),
            "selected": sel.get("conjecturer_examples", 0),
        },
        "pass_rate_histogram": {
            kind: selection.histogram(r["pass_rate"] for r in stats if r["kind"] == kind)
            for kind in (DATASET, CONJECTURE)
        },
        "proofs_sampled": gen.get("attempts", 0),
        "tokens_generated": gen.get("tokens", 0) + conj.get("tokens", 0),
        "distinct_proofs_checked": ver.get("distinct_proofs", 0),
        "verifier_cpu_seconds": round(ver.get("verifier_seconds", 0.0), 2),
        "train_examples": {
            "prover": sel.get("prover_examples", 0),
            "conjecturer": sel.get("conjecturer_examples", 0),
            "with_replay": sel.get("train_examples", 0),
        },
        "stage_seconds": stage_seconds,
        "wall_seconds_this_invocation": round(time.perf_counter() - started, 2),
    }
    atomic_write_json(directory / "summary.json", summary)
    return {"proved": summary["proved"], "proved_new": summary["proved_new"]}


def write_rounds_table(layout: RunLayout) -> list[dict[str, Any]]:
    """Rewrite ``rounds.jsonl`` from the finished rounds' summaries (derived, idempotent)."""
    rows = [
        json.loads((layout.round_dir(i) / "summary.json").read_text())
        for i in layout.finished_rounds()
    ]
    atomic_write_jsonl(layout.rounds_table, rows)
    return rows


def closing_lines(rows: list[dict[str, Any]]) -> list[str]:
    """What the last round changed, in words (printed at the end of `stp round`)."""
    last = rows[-1]
    lines = [
        f"round {last['round']} ({last['mode']}): {last['proved']}/{last['dataset_statements']} "
        f"dataset statements proved so far, {last['proved_new']} new this round",
        f"  conjectures: {last['conjectures']['generated']} sampled, "
        f"{last['conjectures']['valid']} well-formed, {last['conjectures']['new']} new, "
        f"{last['conjectures']['selected']} selected for training",
        f"  {last['proofs_sampled']} proofs sampled ({last['tokens_generated']} tokens), "
        f"{last['distinct_proofs_checked']} distinct checked in "
        f"{last['verifier_cpu_seconds']} verifier-s; "
        f"{last['train_examples']['with_replay']} training examples",
        "  stage seconds: "
        + ", ".join(f"{k} {v}" for k, v in last["stage_seconds"].items() if v is not None),
    ]
    if len(rows) > 1:
        prev = rows[-2]
        lines.append(
            f"  vs round {prev['round']}: proved {prev['proved']} -> {last['proved']}, "
            f"selected conjectures {prev['conjectures']['selected']} -> "
            f"{last['conjectures']['selected']}"
        )
    return lines


# ---------------------------------------------------------------------------- driving


def start_model(config: STPConfig, layout: RunLayout) -> str:
    """The model round 0 samples from: the initial fine-tune's when there is one."""
    return str(layout.bootstrap / "sft_model") if config.run.initial_sft else config.run.base_model


def model_for_round(config: STPConfig, layout: RunLayout, index: int) -> str:
    """Round ``index`` samples from the model the previous round trained (if it trained)."""
    if index == 0 or config.run.mode == "parallel_sampling":
        return start_model(config, layout)
    info = _info(layout.round_dir(index - 1), "train")
    if "model" not in info:
        raise RuntimeError(f"round {index - 1} has no finished train stage")
    return str(info["model"])


def current_model(config: STPConfig) -> str:
    """The run's newest model: what its next round would sample from, once the run has
    started (bootstrap done); before that, ``run.base_model``."""
    layout = RunLayout.of(config)
    model = model_for_round(config, layout, layout.next_round())
    return model if Path(model).exists() else config.run.base_model


def apply_torch_threads(config: STPConfig) -> None:
    if config.run.torch_threads is not None:
        import torch

        torch.set_num_threads(config.run.torch_threads)


def load_run_corpus(config: STPConfig) -> Any:
    if config.run.corpus is None:
        return None
    from stp.data.corpus import load_corpus

    return load_corpus(config.run.corpus)


def advance(config: STPConfig, log: Log = print) -> dict[str, Any]:
    """``stp round``: finish the unfinished round, or run the next one; returns its summary."""
    from stp.selfplay.bootstrap import bootstrap

    preflight(config)
    apply_torch_threads(config)
    layout = RunLayout.of(config)
    with run_lock(layout.root):
        started = time.perf_counter()
        bootstrap(config, layout, log)
        index = layout.next_round()
        ctx = RoundContext(
            config=config,
            layout=layout,
            index=index,
            model=model_for_round(config, layout, index),
            log=log,
            corpus=load_run_corpus(config),
        )
        log(f"round {index} of run {layout.root} ({config.run.mode}), model {ctx.model}")
        directory = ctx.directory
        try:
            run_stage(directory, "seeds", [directory / "seeds.jsonl"], lambda: _seeds(ctx), log)
            run_stage(
                directory,
                "conjectures",
                [directory / "conjectures.jsonl"],
                lambda: _conjectures(ctx),
                log,
            )
            run_stage(
                directory, "targets", [directory / "targets.jsonl"], lambda: _targets(ctx), log
            )
            run_stage(directory, "generate", [directory / "attempts"], lambda: _generate(ctx), log)
            ctx.close()  # free the model's memory for the verifier workers
            run_stage(
                directory, "verify", [directory / "verified"], lambda: verify_attempts(ctx), log
            )
            run_stage(
                directory,
                "select",
                [
                    directory / name
                    for name in ("stats.jsonl", "prover.jsonl", "conjecturer.jsonl", "train.jsonl")
                ],
                lambda: select_training_data(ctx),
                log,
            )
            model_dir = directory / "model"
            run_stage(
                directory,
                "train",
                lambda: [model_dir] if model_dir.is_dir() else [],
                lambda: train_round_model(ctx),
                log,
            )
            run_stage(
                directory,
                "summary",
                [directory / "summary.json"],
                lambda: _summary(ctx, started),
                log,
            )
        finally:
            ctx.close()
        rows = write_rounds_table(layout)
        for line in closing_lines(rows):
            log(line)
        return rows[-1]
