"""The proving pipeline shared by the rounds and `stp eval` (stp.prove): chunking, seeding,
dedup with multiplicity, resume, and checking overlapped with sampling.

The sampler and the checker are stand-ins that record what they were asked: these tests are
about the pipeline's bookkeeping; real coqtop runs through it in test_eval.py and
test_selfplay_verify.py."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from stp import prove
from stp.artifacts import chunk_done, chunk_path
from stp.config import SamplingConfig
from stp.languages import language
from stp.models.sampler import Completion
from stp.prove import ModelSampler, Problem
from stp.verify.types import Verdict, VerifyJob, VerifyResult

ROCQ = language("rocq")
PROBLEMS = [Problem(f"p{i}", "", f"Theorem p{i} : {i} = {i}.") for i in range(5)]
PROOFS = ["reflexivity.", "auto.", "reflexivity."]  # sample j writes PROOFS[j % 3]


class Sampler:
    def __init__(self, on_call: Callable[[], None] = lambda: None) -> None:
        self.seeds: list[int] = []
        self.prompts: list[str] = []
        self.on_call = on_call

    def generate(
        self, prompts: Sequence[str], n: int, *, seed: int, **_: object
    ) -> list[list[Completion]]:
        self.on_call()
        self.seeds.append(seed)
        self.prompts += prompts
        return [[Completion(f"{PROOFS[j % 3]}\nQed.\n```", 4) for j in range(n)] for _ in prompts]

    def close(self) -> None:
        pass


class Checker:
    """'reflexivity.' proves, anything else fails; records every job it is given."""

    def __init__(self, fail_on: str | None = None, before: Callable[[], None] = lambda: None):
        self.jobs: list[VerifyJob] = []
        self.fail_on, self.before = fail_on, before
        self.closed = False

    def verify(
        self, jobs: Sequence[VerifyJob], progress: Callable[[int], None] | None = None
    ) -> list[VerifyResult]:
        self.before()
        if any(job.formal_statement.startswith(f"Theorem {self.fail_on} ") for job in jobs):
            raise RuntimeError("checker died")
        self.jobs += jobs
        return [
            VerifyResult(job.id, Verdict.PROVED if job.proof == "reflexivity." else Verdict.FAILED)
            for job in jobs
        ]

    def close(self) -> None:
        self.closed = True


def model(sampler: Sampler) -> ModelSampler:
    return ModelSampler(lambda: sampler, SamplingConfig())


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.*"))}


def test_the_rounds_two_halves_and_evals_overlapped_run_write_the_same_chunks(tmp_path):
    chunks = prove.cut(PROBLEMS, 2)
    assert [len(c) for c in chunks] == [2, 2, 1]
    halves, whole = tmp_path / "round", tmp_path / "eval"
    sampler, checker = Sampler(), Checker()
    prove.sample(halves, chunks, 3, model(sampler), ROCQ, seed=7)
    prove.check(halves, chunks, lambda: checker)
    assert checker.closed
    prove.prove(whole, chunks, 3, model(Sampler()), ROCQ, lambda: Checker(), seed=7)
    assert files(halves) == files(whole)

    # one seed per chunk, derived from the pipeline's seed and the chunk's number
    assert sampler.seeds == [prove.chunk_seed(7, i) for i in range(3)]
    assert len(set(sampler.seeds)) == 3 and prove.chunk_seed(8, 0) != prove.chunk_seed(7, 0)
    # each distinct (problem, proof) checked once, counted with its multiplicity
    assert len(checker.jobs) == 5 * 2
    verified = list(prove.read_verified(halves, range(3)))
    assert [(v.target, v.proof, v.count, v.verdict) for v in verified[:2]] == [
        ("p0", "reflexivity.", 2, "proved"),
        ("p0", "auto.", 1, "failed"),
    ]
    attempts = list(prove.read_attempts(halves, range(3)))
    assert len(attempts) == 15 and attempts[1] == prove.Attempt("p0", "auto.", 4)


def test_a_killed_pipeline_resumes_at_the_chunk_it_was_on(tmp_path):
    chunks = prove.cut(PROBLEMS, 2)
    first = Checker(fail_on="p2")  # dies on chunk 1
    with pytest.raises(RuntimeError, match="checker died"):
        prove.prove(tmp_path, chunks, 3, model(Sampler()), ROCQ, lambda: first, seed=1)
    assert first.closed
    attempts, verified = tmp_path / prove.ATTEMPTS_DIR, tmp_path / prove.VERIFIED_DIR
    assert chunk_done(verified, 0) and not chunk_done(verified, 1)
    # chunk 2 was sampled while chunk 1 was being checked
    assert chunk_done(attempts, 1) and chunk_done(attempts, 2)
    chunk_path(attempts, 2).unlink()  # as if killed while sampling it

    sampler, checker = Sampler(), Checker()
    prove.prove(tmp_path, chunks, 3, model(sampler), ROCQ, lambda: checker, seed=1)
    # chunk 1 is checked without being sampled again; only chunk 2 is sampled
    assert sampler.seeds == [prove.chunk_seed(1, 2)] and "p4" in sampler.prompts[0]
    assert {job.formal_statement.split()[1] for job in checker.jobs} == {"p2", "p3", "p4"}

    # a chunk sampled again (its attempts damaged) loses its old verdicts and is rechecked
    damaged = chunk_path(attempts, 0)
    damaged.write_text(damaged.read_text().replace("auto.", "lia."))
    sampler, checker = Sampler(), Checker()
    prove.prove(tmp_path, chunks, 3, model(sampler), ROCQ, lambda: checker, seed=1)
    assert sampler.seeds == [prove.chunk_seed(1, 0)]
    assert {job.formal_statement.split()[1] for job in checker.jobs} == {"p0", "p1"}

    # nothing left: no sampler and no checker is built
    def never():
        raise AssertionError("built although every chunk is done")

    prove.prove(tmp_path, chunks, 3, ModelSampler(never, SamplingConfig()), ROCQ, never, seed=1)


def test_checking_a_chunk_overlaps_sampling_the_next(tmp_path):
    next_sampled = threading.Event()
    calls = 0

    def sampling() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            next_sampled.set()

    def wait_for_next_chunk() -> None:
        # chunk 0's check finishes only once chunk 1 is being sampled
        if not next_sampled.is_set():
            assert next_sampled.wait(timeout=30), "chunk 1 was not sampled during chunk 0's check"

    checker = Checker(before=wait_for_next_chunk)
    prove.prove(
        tmp_path, prove.cut(PROBLEMS, 2), 1, model(Sampler(sampling)), ROCQ, lambda: checker, 0
    )
    assert calls == 3 and len(checker.jobs) == 5


def test_verified_rows_of_earlier_round_folders_still_read():
    row = {"target": "t", "proof": "auto.", "count": 3, "verdict": "failed", "seconds": 0.5}
    verified = prove.VerifiedAttempt.from_dict(row)
    assert (verified.count, verified.assistant_version, verified.detail) == (3, "", "")
    assert prove.VerifiedAttempt.from_dict(verified.to_dict()) == verified
