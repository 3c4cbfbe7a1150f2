"""From statements to checked proofs: the one pipeline of the rounds and ``stp eval``.

``Problem`` is a statement as the prover sees it: its prompt and, for each proof, the job the
proof assistant checks. A bundled benchmark ``Statement`` becomes one once
(``Problem.from_statement``); a round's ``Target`` is one.

``ModelSampler`` is the one place that turns ``SamplingConfig`` into a ``generate`` call: the
rounds' conjecturer and prover stages and ``stp eval`` all sample through it, so the same
settings mean the same call everywhere. The sampler (and the model) is built on first use:
a stage or evaluation that finds its work done loads nothing.

The pipeline, in a folder (a round's, an evaluation's)::

    problems --cut--> chunks of a fixed size, in order
      sample   k completions per problem (chunk i seeded chunk_seed(seed, i)), each parsed
               into a proof          -> attempts/chunk_<i>.jsonl   (Attempt rows, in order)
      check    each distinct (problem, proof) of the chunk checked once, kept with its
               multiplicity          -> verified/chunk_<i>.jsonl   (VerifiedAttempt rows)

Chunks go through the chunk store (``stp.artifacts.write_chunk``): a rerun keeps every
finished chunk, checks a sampled but unchecked chunk without sampling it again and samples
only the rest, so a kill loses at most the chunk in flight and a resumed call writes what an
uninterrupted one would. ``sample`` and ``check`` are the two halves (a round runs them as
its generate and verify stages, freeing the model in between); ``prove`` runs both, checking
chunk i while chunk i+1 is sampled, so the accelerator does not wait for the proof assistant.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

from stp.artifacts import (
    chunk_done,
    chunk_path,
    derive_seed,
    drop_chunk,
    read_jsonl,
    write_chunk,
)
from stp.config import SamplingConfig
from stp.data.benchmarks import Statement
from stp.errors import MissingInput
from stp.languages.base import FENCE, FormalLanguage
from stp.models.sampler import Completion, Sampler
from stp.verify.types import Verifier, VerifyJob

Progress = Callable[[int], None]

# The pipeline's folders, under the folder it is given.
ATTEMPTS_DIR = "attempts"  # chunks of Attempt
VERIFIED_DIR = "verified"  # chunks of VerifiedAttempt


@dataclass(frozen=True, slots=True)
class Problem:
    """A statement to prove: what the prover is shown and what its proofs are checked against."""

    id: str
    header: str
    formal_statement: str
    informal: str | None = None
    forbidden: tuple[str, ...] = ()  # names a proof may not cite (its own library copy)

    @classmethod
    def from_statement(cls, statement: Statement) -> Self:
        return cls(
            id=statement.name,
            header=statement.header,
            formal_statement=statement.formal_statement,
            informal=statement.informal_statement,
            forbidden=statement.forbidden_names,
        )

    def prompt(self, lang: FormalLanguage) -> str:
        return lang.prover_prompt(self.header, self.formal_statement, self.informal)

    def job(self, job_id: str, proof: str) -> VerifyJob:
        return VerifyJob(
            id=job_id,
            header=self.header,
            formal_statement=self.formal_statement,
            proof=proof,
            forbidden_names=self.forbidden,
        )


def load_sampler(model: str, settings: SamplingConfig) -> Sampler:
    """The sampler of ``settings.backend`` over ``model`` (a local folder or a hub id); a
    model that cannot be loaded is a one-line user error."""
    from stp.models import make_sampler  # loads torch: only when something is sampled

    try:
        return make_sampler(model, settings)
    except OSError as exc:  # transformers: no such folder, hub id unknown or offline
        reason = str(exc).strip().splitlines()[0]
        raise MissingInput(
            f"cannot load model {model!r} ({reason}); give a local model folder "
            "(`stp model init`, or a round's model) or a hub id reachable from here"
        ) from exc


class ModelSampler:
    """``sampler_factory()`` built once, on first use, and called with ``settings``."""

    def __init__(self, sampler_factory: Callable[[], Sampler], settings: SamplingConfig) -> None:
        self._factory = sampler_factory
        self._sampler: Sampler | None = None
        self.settings = settings

    @classmethod
    def of_model(cls, model: str, settings: SamplingConfig) -> ModelSampler:
        return cls(lambda: load_sampler(model, settings), settings)

    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        seed: int,
        progress: Progress | None = None,
        temperature: float | None = None,
    ) -> list[list[Completion]]:
        """``n`` completions per prompt, in prompt order; each stops at the closing fence.
        ``temperature`` (default: the settings') is for a role sampled otherwise."""
        if self._sampler is None:
            self._sampler = self._factory()
        return self._sampler.generate(
            prompts,
            n,
            temperature=self.settings.temperature if temperature is None else temperature,
            top_p=self.settings.top_p,
            max_new_tokens=self.settings.max_new_tokens,
            seed=seed,
            stop=(FENCE,),
            progress=progress,
        )

    def close(self) -> None:
        """Free the model (its memory goes back to the verifier workers); a later
        ``generate`` builds it again."""
        if self._sampler is not None:
            self._sampler.close()
            self._sampler = None


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Attempt:
    """One sampled proof of a problem (``target``: the problem's id)."""

    target: str
    proof: str
    tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "proof": self.proof, "tokens": self.tokens}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Attempt:
        return cls(row["target"], row["proof"], int(row["tokens"]))


@dataclass(frozen=True, slots=True)
class VerifiedAttempt:
    """One distinct proof of a problem, how often it was sampled, and its verdict;
    ``seconds`` is what checking it once took."""

    target: str
    proof: str
    count: int
    verdict: str  # a stp.verify.Verdict value
    seconds: float
    assistant_version: str = ""
    detail: str = ""  # why, in one line, for a proof not proved

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "proof": self.proof,
            "count": self.count,
            "verdict": self.verdict,
            "seconds": self.seconds,
            "assistant_version": self.assistant_version,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> VerifiedAttempt:
        return cls(
            row["target"],
            row["proof"],
            int(row["count"]),
            row["verdict"],
            float(row["seconds"]),
            row.get("assistant_version", ""),  # rows of earlier versions have neither
            row.get("detail", ""),
        )


def read_attempts(folder: Path, chunks: Iterable[int]) -> Iterator[Attempt]:
    """The attempts of the chunks numbered ``chunks``, in order: problem by problem, each
    problem's in sampling order."""
    for index in chunks:
        for row in read_jsonl(chunk_path(folder / ATTEMPTS_DIR, index)):
            yield Attempt.from_dict(row)


def read_verified(folder: Path, chunks: Iterable[int]) -> Iterator[VerifiedAttempt]:
    """The checked proofs of the chunks numbered ``chunks``, in order, grouped by problem."""
    for index in chunks:
        for row in read_jsonl(chunk_path(folder / VERIFIED_DIR, index)):
            yield VerifiedAttempt.from_dict(row)


# ------------------------------------------------------------------------------ pipeline

T = TypeVar("T")


def cut(problems: Sequence[T], size: int) -> list[list[T]]:
    """The chunks: ``size`` problems each, in order (the last may hold fewer)."""
    return [list(problems[i : i + size]) for i in range(0, len(problems), size)]


def chunk_seed(seed: int, index: int) -> int:
    """The sampling seed of chunk ``index`` of a pipeline seeded ``seed``: chunks share no
    stream, and a resumed chunk draws what the killed one drew."""
    return derive_seed(seed, "chunk", index)


def chunks_done(folder: Path, chunks: int) -> tuple[list[int], list[int]]:
    """Which chunks are sampled, and which are sampled and checked, by their sidecars."""
    sampled = [i for i in range(chunks) if chunk_done(folder / ATTEMPTS_DIR, i)]
    checked = [i for i in sampled if chunk_done(folder / VERIFIED_DIR, i)]
    return sampled, checked


def count_distinct(attempts: Iterable[Attempt]) -> dict[tuple[str, str], int]:
    """(target, proof) -> multiplicity over attempts, in first-seen order: identical proofs
    are checked once and counted with their multiplicity."""
    counts: dict[tuple[str, str], int] = {}
    for row in attempts:
        key = (row.target, row.proof)
        counts[key] = counts.get(key, 0) + 1
    return counts


def _sample_chunk(
    folder: Path,
    index: int,
    chunk: Sequence[Problem],
    k: int,
    sampler: ModelSampler,
    lang: FormalLanguage,
    seed: int,
    progress: Progress | None = None,
) -> float:
    """Sample, parse and write chunk ``index``'s attempts; returns the seconds it took.
    Verdicts of the chunk's earlier attempts (a damaged chunk) no longer apply: removed."""
    drop_chunk(folder / VERIFIED_DIR, index)
    started = time.monotonic()
    prompts = [problem.prompt(lang) for problem in chunk]
    samples = sampler.generate(prompts, k, chunk_seed(seed, index), progress)
    attempts = (
        Attempt(problem.id, lang.parse_proof(c.text, problem.formal_statement), c.num_tokens)
        for problem, completions in zip(chunk, samples, strict=True)
        for c in completions
    )
    write_chunk(folder / ATTEMPTS_DIR, index, (a.to_dict() for a in attempts))
    return time.monotonic() - started


def _check_chunk(
    folder: Path,
    index: int,
    chunk: Sequence[Problem],
    verifier: Verifier,
    progress: Progress | None = None,
    on_jobs: Callable[[int], None] | None = None,
) -> tuple[float, list[VerifiedAttempt]]:
    """Check each distinct proof of chunk ``index``'s attempts once and write them with
    their multiplicity; returns the seconds it took and what it wrote."""
    started = time.monotonic()
    problems = {problem.id: problem for problem in chunk}
    counts = count_distinct(read_attempts(folder, [index]))
    jobs = [
        problems[target].job(f"{index}:{number}", proof)
        for number, (target, proof) in enumerate(counts)
    ]
    if on_jobs is not None:
        on_jobs(len(jobs))
    results = verifier.verify(jobs, progress)
    verified = [
        VerifiedAttempt(
            target,
            proof,
            count,
            result.verdict.value,
            round(result.check_seconds, 4),
            result.assistant_version,
            result.detail,
        )
        for ((target, proof), count), result in zip(counts.items(), results, strict=True)
    ]
    write_chunk(folder / VERIFIED_DIR, index, (v.to_dict() for v in verified))
    return time.monotonic() - started, verified


def sample(
    folder: Path,
    chunks: Sequence[Sequence[Problem]],
    k: int,
    sampler: ModelSampler,
    lang: FormalLanguage,
    seed: int,
    progress: Progress | None = None,
) -> None:
    """``k`` attempts at every problem of every chunk not sampled yet. ``progress`` gets
    the number of problems done so far (finished chunks included)."""
    done_before = 0
    for index, chunk in enumerate(chunks):
        if not chunk_done(folder / ATTEMPTS_DIR, index):
            moved = None if progress is None else _offset(progress, done_before)
            _sample_chunk(folder, index, chunk, k, sampler, lang, seed, moved)
        done_before += len(chunk)


def check(
    folder: Path,
    chunks: Sequence[Sequence[Problem]],
    make_verifier: Callable[[], Verifier],
    progress: Progress | None = None,
    on_jobs: Callable[[int], None] | None = None,
) -> None:
    """Check every sampled chunk not checked yet (no verifier is built when none is left).
    ``progress`` gets the number of further proofs checked; ``on_jobs`` the number of
    distinct proofs of each chunk before it is checked."""
    todo = [i for i in range(len(chunks)) if not chunk_done(folder / VERIFIED_DIR, i)]
    if not todo:
        return
    verifier = make_verifier()
    try:
        for index in todo:
            _check_chunk(folder, index, chunks[index], verifier, progress, on_jobs)
    finally:
        verifier.close()  # kills every checker process (or Ray actor)


def prove(
    folder: Path,
    chunks: Sequence[Sequence[Problem]],
    k: int,
    sampler: ModelSampler,
    lang: FormalLanguage,
    make_verifier: Callable[[], Verifier],
    seed: int,
    on_sampled: Callable[[int, float], None] = lambda index, seconds: None,
    on_checked: Callable[[int, float, list[VerifiedAttempt]], None] = lambda i, s, rows: None,
) -> None:
    """``sample`` and ``check`` together, chunk by chunk: chunk i is checked on a thread
    while chunk i+1 is sampled (at most one chunk is being checked at a time). The
    callbacks run on the calling thread after a chunk is written; the verifier is built on
    first use. The sampler is left open (the caller closes it)."""
    verifier: Verifier | None = None
    try:
        with ThreadPoolExecutor(max_workers=1) as checker:
            checking: Future[tuple[float, list[VerifiedAttempt]]] | None = None
            checking_index = -1
            for index, chunk in enumerate(chunks):
                if not chunk_done(folder / ATTEMPTS_DIR, index):
                    seconds = _sample_chunk(folder, index, chunk, k, sampler, lang, seed)
                    on_sampled(index, seconds)
                if chunk_done(folder / VERIFIED_DIR, index):
                    continue
                if checking is not None:
                    on_checked(checking_index, *checking.result())  # raises what it raised
                if verifier is None:
                    verifier = make_verifier()
                checking = checker.submit(_check_chunk, folder, index, chunk, verifier)
                checking_index = index
            if checking is not None:
                on_checked(checking_index, *checking.result())
    finally:
        if verifier is not None:
            verifier.close()


def _offset(progress: Progress, start: int) -> Progress:
    return lambda done: progress(start + done)
