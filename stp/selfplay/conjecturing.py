"""The conjecturer's half of a round: seeds, then new conjectures.

Seeds are dataset statements (never conjectures) whose best pass rate so far is above
``selection.seed_pass_rate_min``, with the shortest correct proof the model found. The
corpus' sft proofs (human proofs of other proved statements) fill the rest up to
``selection.max_seeds``: all of round 0 (no pass rates yet), and every later round where fewer
statements qualify. Without ``max_seeds`` they seed only a round where no statement qualifies.
A run without a corpus (Lean from an SFT model) has no seeds until its model proves
something, and pairs seeds with the trivial lemma only.

Conjectures are parsed from the conjecturer's samples, renamed ``conj_rNNN_SSSSS_JJ``, and
dropped when their statement (white space ignored, under the same header) is one of the
dataset's, the corpus' or any earlier one's (this round's included). The gate
(``stp.selfplay.gate``) checks what is left.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stp.config import SelectionConfig
from stp.languages.base import FormalLanguage
from stp.models.sampler import Completion
from stp.prove import ModelSampler, Progress
from stp.selfplay.history import RunHistory, key_digest
from stp.selfplay.records import Conjecture, Seed, Target
from stp.selfplay.selection import whitespace_key

if TYPE_CHECKING:
    from stp.data.corpus import Corpus, Lemma


def lemmas_used(proof: str, index: Mapping[str, Lemma] | None, prover: str) -> list[Lemma]:
    if index is None:
        return []
    from stp.data.corpus import lemmas_used as used

    return list(used(proof, index, prover))


def uses_lemma(
    lemma: str | None, index: Mapping[str, Lemma] | None, prover: str, proof: str
) -> bool:
    """Whether ``proof`` cites ``lemma`` (by the name the seed gave); the trivial lemma
    (None) is used by every proof."""
    return lemma is None or lemma in {used.name for used in lemmas_used(proof, index, prover)}


@dataclass(frozen=True, slots=True)
class _Candidate:
    id: str
    header: str
    formal_statement: str
    proof: str
    lemmas: tuple[tuple[str, str], ...]  # (name, statement) of lemmas the proof uses
    from_corpus: bool = False


def choose_seeds(
    dataset: Iterable[Target],
    history: RunHistory,
    corpus: Corpus | None,
    settings: SelectionConfig,
    lang: FormalLanguage,
    rng: random.Random,
) -> tuple[list[Seed], str]:
    """The round's seeds and where they came from (how many model proofs and corpus sft
    proofs)."""
    index = corpus.lemma_index if corpus is not None else None
    candidates = []
    for target in dataset:
        record = history.statements.get(target.id)
        if record and record.proof and record.best_pass_rate > settings.seed_pass_rate_min:
            lemmas = lemmas_used(record.proof, index, lang.name)
            candidates.append(
                _Candidate(
                    target.id,
                    target.header,
                    target.formal_statement,
                    record.proof,
                    tuple((lemma.name, lemma.statement) for lemma in lemmas),
                )
            )
    if settings.max_seeds is not None and len(candidates) > settings.max_seeds:
        keep = sorted(rng.sample(range(len(candidates)), settings.max_seeds))
        candidates = [candidates[i] for i in keep]
    pool = corpus.sft if corpus is not None else []
    if settings.max_seeds is not None:
        room = max(settings.max_seeds - len(candidates), 0)
    else:
        room = 0 if candidates else len(pool)
    room = min(room, len(pool))
    source = f"{len(candidates)} model proofs, {room} corpus sft proofs"
    candidates += [
        _Candidate(
            theorem.name,
            theorem.statement.header,
            theorem.statement.formal_statement,
            theorem.proof,
            tuple((lemma.name, lemma.statement) for lemma in theorem.lemmas),
            from_corpus=True,
        )
        for theorem in (pool[i] for i in sorted(rng.sample(range(len(pool)), room)))
    ]
    seeds = []
    for candidate in candidates:
        trivial = not candidate.lemmas or rng.random() < settings.trivial_lemma_prob
        name, text = (None, None) if trivial else rng.choice(candidate.lemmas)
        seeds.append(
            Seed(
                candidate.id,
                candidate.header,
                candidate.formal_statement,
                candidate.proof,
                name,
                text,
                candidate.from_corpus,
            )
        )
    return seeds, source


@dataclass(frozen=True, slots=True)
class KnownStatements:
    """Dedup keys of the statements known before a round's samples: the dataset's, the
    corpus' and every earlier conjecture's; ``well_typed`` holds those known to elaborate
    (dataset and corpus statements, earlier conjectures the gate found well-typed)."""

    keys: set[bytes]
    well_typed: set[bytes]


def statement_key(lang: FormalLanguage, header: str, formal_statement: str) -> bytes:
    """The dedup key of a statement: its body (name dropped), white space ignored, under its
    header."""
    return key_digest(whitespace_key(header, lang.statement_body(formal_statement)))


def known_statements(
    dataset: Iterable[Target], corpus: Corpus | None, history: RunHistory, lang: FormalLanguage
) -> KnownStatements:
    theorems = {statement_key(lang, t.header, t.formal_statement) for t in dataset}
    if corpus is not None:
        theorems.update(
            statement_key(lang, t.statement.header, t.statement.formal_statement)
            for t in corpus.theorems
        )
    return KnownStatements(theorems | history.conjecture_keys, theorems | history.well_typed_keys)


@dataclass(frozen=True, slots=True)
class ConjectureCounts:
    generated: int = 0
    valid: int = 0
    duplicates: int = 0  # parsed samples of a known statement or of one sampled before them
    known_well_typed: int = 0  # duplicates of a statement known to elaborate
    tokens: int = 0


def _samples_per_seed(
    seeds: list[Seed],
    sampler: ModelSampler,
    lang: FormalLanguage,
    settings: SelectionConfig,
    seed: int,
    progress: Progress | None,
) -> list[list[Completion]]:
    """``selection.conjectures_per_seed`` samples of each seed's prompt, or
    ``selection.conjectures_per_corpus_seed`` of a corpus seed's, in seed order."""
    per_corpus_seed = settings.conjectures_per_corpus_seed
    if per_corpus_seed is None:
        per_corpus_seed = settings.conjectures_per_seed
    samples: list[list[Completion]] = [[] for _ in seeds]
    for offset, (from_corpus, n) in enumerate(
        ((False, settings.conjectures_per_seed), (True, per_corpus_seed))
    ):
        picked = [i for i, s in enumerate(seeds) if s.from_corpus is from_corpus]
        if not picked:
            continue
        completions = sampler.generate(
            [seeds[i].conjecturer_prompt(lang) for i in picked],
            n,
            seed + offset,
            progress,
            temperature=sampler.settings.conjecturer_temperature,
        )
        for i, drawn in zip(picked, completions, strict=True):
            samples[i] = drawn
    return samples


def sample_conjectures(
    seeds: list[Seed],
    sampler: ModelSampler,
    lang: FormalLanguage,
    known: KnownStatements,
    round_index: int,
    settings: SelectionConfig,
    seed: int,
    progress: Progress | None = None,
) -> tuple[list[Conjecture], ConjectureCounts]:
    """The new conjectures of the seeds' samples (the gate and ``selection.max_conjectures``
    decide later which of them get proof attempts). A statement sampled more than once is
    one conjecture, its ``samples`` the count; ``known.keys`` grows by the new ones."""
    if not seeds:
        return [], ConjectureCounts()
    samples = _samples_per_seed(seeds, sampler, lang, settings, seed, progress)
    conjectures: list[Conjecture] = []
    repeats: dict[bytes, int] = {}  # a new statement's key -> its samples after the first
    generated = valid = duplicates = known_well_typed = tokens = 0
    for i, (source, completions) in enumerate(zip(seeds, samples, strict=True)):
        for j, completion in enumerate(completions):
            generated += 1
            tokens += completion.num_tokens
            name = f"conj_r{round_index:03d}_{i:05d}_{j:02d}"
            statement = lang.parse_conjecture(completion.text, name)
            if statement is None:
                continue
            valid += 1
            key = statement_key(lang, source.header, statement)
            if key in repeats:
                repeats[key] += 1
                duplicates += 1
                continue
            if key in known.keys:
                known_well_typed += key in known.well_typed
                duplicates += 1
                continue
            repeats[key] = 0
            known.keys.add(key)
            conjectures.append(
                Conjecture(
                    id=name,
                    header=source.header,
                    formal_statement=statement,
                    seed=source.id,
                    seed_statement=source.formal_statement,
                    seed_proof=source.proof,
                    lemma=source.lemma,
                    lemma_text=source.lemma_text,
                    key=key.hex(),
                )
            )
    conjectures = [
        dataclasses.replace(c, samples=1 + repeats[bytes.fromhex(c.key)]) for c in conjectures
    ]
    return conjectures, ConjectureCounts(generated, valid, duplicates, known_well_typed, tokens)
