"""A local pool of warm checker processes, generic over the backend.

A backend supplies a ``Worker``: one warm proof-assistant process that checks one job at a
time and says when its state can no longer be trusted. The pool runs one thread per worker
(the work happens in the subprocesses; the threads only feed pipes), hands each worker jobs
with the header it has loaded when there are any (loading a header is the expensive part),
else with the header that starts most like it (a backend may load only the rest),
and retires a worker after ``jobs_per_worker`` jobs or as soon as it reports itself
unhealthy (timeout, crash, state not restored). Workers stay warm across ``verify`` calls
until ``close``; when a batch needs fewer workers than the pool has, those warm with its
headers run it first, and a header nobody needs is given up least recently used first.

A backend plugs in with a ``Worker`` class and a ``make_backend(config)`` that returns
``PoolVerifier(name, assistant_version, lambda: TheWorker(config, ...), size, jobs_per_worker)``
(see ``stp.verify.rocq``); the same ``Worker`` can run anywhere a process can be started.

``Deduplicated`` checks identical (header, statement, proof) jobs once and fans the result
out; ``make_verifier`` puts it in front of every backend.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from stp.verify.types import Verdict, Verifier, VerifyJob, VerifyResult


class Worker(Protocol):
    """One warm checker process. ``check`` never raises for a bad proof: every outcome is a
    result. It may raise for a broken process; the pool then records ``verifier_error``."""

    def check(self, job: VerifyJob) -> VerifyResult: ...

    @property
    def healthy(self) -> bool:
        """False once the process died or its state cannot be restored: the pool retires it."""
        ...

    def close(self) -> None:
        """Kill the process group; safe to call twice."""
        ...


def default_workers(workers: int) -> int:
    """``verification.workers`` resolved: 0 means one per CPU core available to us."""
    if workers > 0:
        return workers
    return max(1, len(os.sched_getaffinity(0)))


def normalise_header(header: str) -> str:
    """The header as a worker loads it and compares it: trailing spaces and blank lines do not
    make a new REPL or session."""
    lines = [line.rstrip() for line in header.strip().splitlines()]
    return "\n".join(line for line in lines if line)


def _shared_start(a: str, b: str) -> int:
    """How many characters ``a`` and ``b`` share at their start."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class _JobQueue:
    """Pending jobs bucketed by header, so a worker keeps the header it has loaded, and a
    worker whose header runs out moves to one no other worker is loading when there is one.
    Within a header, the jobs of one statement come one after another (a worker may keep the
    statement elaborated between them)."""

    def __init__(self, jobs: Sequence[VerifyJob]) -> None:
        self._lock = threading.Lock()
        self._by_header: dict[str, deque[int]] = {}
        by_statement: dict[tuple[str, str], list[int]] = {}  # in the batch's order
        for index, job in enumerate(jobs):
            by_statement.setdefault((job.header, job.formal_statement), []).append(index)
        for (header, _), indices in by_statement.items():
            self._by_header.setdefault(header, deque()).extend(indices)
        self._taken_by: dict[int, str] = {}  # slot id -> header of the last job it took

    def take(self, slot_id: int, header: str | None) -> int | None:
        """The next job's index for a slot with ``header`` loaded; None when all are taken."""
        with self._lock:
            bucket = self._by_header.get(header) if header is not None else None
            if not bucket:
                busy = {h for s, h in self._taken_by.items() if s != slot_id}
                live = [(h, b) for h, b in self._by_header.items() if b]
                if not live:
                    self._taken_by.pop(slot_id, None)
                    return None
                # A header another worker has loaded only when nothing else is left; then the
                # one that shares the longest start with this slot's (a worker may load only
                # the rest), then the biggest: it amortises the header load best.
                current = header or ""
                header, bucket = max(
                    live,
                    key=lambda hb: (hb[0] not in busy, _shared_start(hb[0], current), len(hb[1])),
                )
            assert header is not None
            self._taken_by[slot_id] = header
            return bucket.popleft()


class _Slot:
    """A place in the pool: the current worker and how many jobs it has checked."""

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.jobs_done = 0
        self.header: str | None = None
        self.last_used = 0.0  # when its last job ended: the least recent gives up its header

    def retire(self) -> None:
        if self.worker is not None:
            self.worker.close()
        self.worker = None
        self.jobs_done = 0
        self.header = None


class PoolVerifier:
    """``Verifier`` over a pool of ``size`` warm workers made by ``new_worker``."""

    def __init__(
        self,
        backend: str,
        assistant_version: str,
        new_worker: Callable[[], Worker],
        size: int,
        jobs_per_worker: int,
    ) -> None:
        self.backend = backend
        self.assistant_version = assistant_version
        self._new_worker = new_worker
        self._slots = [_Slot() for _ in range(max(1, size))]
        self._jobs_per_worker = jobs_per_worker
        self._closed = False

    def _error(self, job: VerifyJob, detail: str, seconds: float) -> VerifyResult:
        return VerifyResult(
            id=job.id,
            verdict=Verdict.VERIFIER_ERROR,
            check_seconds=seconds,
            backend=self.backend,
            assistant_version=self.assistant_version,
            detail=detail,
        )

    def _run_slot(
        self,
        slot: _Slot,
        queue: _JobQueue,
        jobs: Sequence[VerifyJob],
        results: list[VerifyResult | None],
        progress: Callable[[int], None] | None,
        progress_lock: threading.Lock,
    ) -> None:
        while (index := queue.take(id(slot), slot.header)) is not None:
            job = jobs[index]
            start = time.perf_counter()
            try:
                if slot.worker is None:
                    slot.worker = self._new_worker()
                result = slot.worker.check(job)
                slot.header = job.header
                slot.jobs_done += 1
                if result.id != job.id:
                    result = dataclasses.replace(result, id=job.id)
            except Exception as exc:  # a broken process must not lose the job's result
                result = self._error(
                    job, f"{type(exc).__name__}: {exc}", time.perf_counter() - start
                )
                slot.retire()
            if slot.worker is not None and (
                not slot.worker.healthy or slot.jobs_done >= self._jobs_per_worker
            ):
                slot.retire()
            slot.last_used = time.monotonic()
            results[index] = result
            if progress is not None:
                with progress_lock:
                    progress(1)

    def _pick_slots(self, jobs: Sequence[VerifyJob]) -> list[_Slot]:
        """The slots that run a batch (one per job at most): first those warm with a header
        the batch has, then empty ones, then the least recently used warm ones. A slot that
        takes a job with another header loads it in place of its own, so headers are given up
        least recently used first."""
        headers = {job.header for job in jobs}
        ranked = sorted(
            self._slots,
            key=lambda s: (s.header not in headers, s.worker is not None, s.last_used),
        )
        return ranked[: max(1, min(len(ranked), len(jobs)))]

    def verify(
        self, jobs: Sequence[VerifyJob], progress: Callable[[int], None] | None = None
    ) -> list[VerifyResult]:
        if self._closed:
            raise RuntimeError("verify() called on a closed verifier")
        results: list[VerifyResult | None] = [None] * len(jobs)
        queue = _JobQueue(jobs)
        progress_lock = threading.Lock()
        threads = [
            threading.Thread(
                target=self._run_slot,
                args=(slot, queue, jobs, results, progress, progress_lock),
                daemon=True,
            )
            for slot in self._pick_slots(jobs)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [
            r if r is not None else self._error(job, "no result (worker thread died)", 0.0)
            for r, job in zip(results, jobs, strict=True)
        ]

    def close(self) -> None:
        self._closed = True
        for slot in self._slots:
            slot.retire()

    def __enter__(self) -> PoolVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Deduplicated:
    """Checks each distinct (header, statement, proof) once and fans the result out to every
    job that shares it (with that job's id)."""

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner

    def verify(
        self, jobs: Sequence[VerifyJob], progress: Callable[[int], None] | None = None
    ) -> list[VerifyResult]:
        first: dict[tuple[str, str, str, tuple[str, ...]], int] = {}
        unique: list[VerifyJob] = []
        for job in jobs:
            key = job.key()
            if key not in first:
                first[key] = len(unique)
                unique.append(job)

        # The inner verifier reports unique jobs; the copies are counted when the batch ends.
        unique_results = self.inner.verify(unique, progress)
        if progress is not None and len(jobs) > len(unique):
            progress(len(jobs) - len(unique))
        return [dataclasses.replace(unique_results[first[job.key()]], id=job.id) for job in jobs]

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> Deduplicated:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
