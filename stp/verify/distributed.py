"""Verification spread over the CPU nodes of a Ray cluster (extra ``dist``).

    ray start --head                                           # head node
    stp verify-workers --address HEAD:6379 --cpus 16           # each CPU node
    stp verify proofs.jsonl --out results.jsonl --set verification.ray_address=HEAD:6379

``make_verifier`` returns a ``RayVerifier`` when ``verification.ray_address`` is set. CPU nodes
offer slots of the custom resource ``stp_verifier`` (``stp verify-workers`` offers one per
CPU); GPU nodes offer none, so no checker lands there. The verifier starts one actor per slot,
each owning the configured backend's local pool with one warm worker.

A batch is cut into chunks of at most ``verification.ray_chunk_size`` jobs that share a
header. Each actor is kept ``IN_FLIGHT_PER_ACTOR`` chunks ahead and is given chunks with the
header it last checked when there are any (loading a header is the expensive part), so a fast
node takes more chunks and a slow one cannot hold the batch for long.

When an actor or its node dies, its unfinished chunks go back to the queue and run on the
other actors, and actors are started for any slots the cluster still offers. A chunk that
failed ``MAX_ATTEMPTS`` times gives its jobs ``verifier_error``: every job gets exactly one
result, in job order.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from stp.config import VerificationConfig
from stp.errors import MissingExtraError, VerifierUnavailableError
from stp.verify.local import make_local_backend
from stp.verify.types import Verdict, Verifier, VerifyJob, VerifyResult

RESOURCE = "stp_verifier"
# One chunk running and the next already on the actor: it never waits for a round trip.
IN_FLIGHT_PER_ACTOR = 2
# A chunk is tried on this many actors before its jobs get `verifier_error`: a job that kills
# every actor it runs on must not take the whole cluster down one node at a time.
MAX_ATTEMPTS = 3
# Starting an actor means a Python worker and a backend on a possibly busy node.
ACTOR_START_TIMEOUT_S = 120.0
# Once one actor is up, how long to wait for the others before the first batch: actors started
# together come up within seconds of each other, but a slot another run holds may never free
# up. Latecomers join mid-batch.
LATECOMER_WAIT_S = 15.0
CLOSE_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 10.0

START_HINT = "start its head node with `ray start --head` and pass that node's HOST:6379"

log = logging.getLogger(__name__)


def import_ray() -> ModuleType:
    """The ``ray`` module, or a ``MissingExtraError`` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError(
            "verification on a Ray cluster needs ray: pip install 'stp[dist]'"
        ) from exc
    return ray


class _VerifierActor:
    """Runs on a CPU node: the configured backend's local pool with one warm worker."""

    def __init__(self, config: VerificationConfig) -> None:
        # A node without the proof assistant is reported by `ready`, in the backend's own
        # words, rather than as a creation-task traceback.
        self._verifier: Verifier | None = None
        self._problem = ""
        try:
            self._verifier = make_local_backend(
                dataclasses.replace(config, workers=1, ray_address=None)
            )
        except VerifierUnavailableError as exc:
            self._problem = str(exc)

    def ready(self) -> tuple[str, str]:
        """(the node's IP address, what keeps this actor from checking proofs or "")."""
        import ray

        return ray.util.get_node_ip_address(), self._problem

    def verify(self, jobs: list[VerifyJob]) -> list[VerifyResult]:
        if self._verifier is None:
            raise VerifierUnavailableError(self._problem)
        return self._verifier.verify(jobs)

    def close(self) -> None:
        if self._verifier is not None:
            self._verifier.close()


@dataclasses.dataclass(eq=False)
class _Actor:
    handle: Any  # ray.actor.ActorHandle
    node: str = "?"  # IP address, once it answered
    header: str | None = None  # the header of the last chunk sent to it
    in_flight: int = 0


@dataclasses.dataclass(eq=False)
class _Chunk:
    header: str
    indices: list[int]
    attempts: int = 0
    error: str = ""


class _ChunkQueue:
    """Chunks waiting for an actor, bucketed by header."""

    def __init__(self, jobs: Sequence[VerifyJob], chunk_size: int) -> None:
        by_header: dict[str, list[int]] = {}
        for index, job in enumerate(jobs):
            by_header.setdefault(job.header, []).append(index)
        self._buckets = {
            header: deque(
                _Chunk(header, indices[start : start + chunk_size])
                for start in range(0, len(indices), chunk_size)
            )
            for header, indices in by_header.items()
        }

    def __bool__(self) -> bool:
        return any(self._buckets.values())

    def take(self, header: str | None) -> _Chunk | None:
        """The next chunk, preferably one with ``header``; None when the queue is empty."""
        bucket = self._buckets.get(header) if header is not None else None
        if not bucket:
            live = [b for b in self._buckets.values() if b]
            if not live:
                return None
            bucket = max(live, key=len)  # the biggest bucket amortises a header load best
        return bucket.popleft()

    def put_back(self, chunk: _Chunk) -> None:
        self._buckets[chunk.header].appendleft(chunk)


class RayVerifier:
    """``Verifier`` over actors on the Ray cluster at ``config.ray_address``.

    Reuses this process's Ray connection if it has one (and then leaves it open on ``close``).
    """

    def __init__(self, config: VerificationConfig) -> None:
        self._ray = ray = import_ray()
        # Actors do not run in this process's working directory: a relative path means here.
        self._config = config = dataclasses.replace(
            config, lean_project=str(Path(config.lean_project).resolve())
        )
        self._owns_connection = not ray.is_initialized()
        address = config.ray_address
        if self._owns_connection:
            check_reachable(address)  # ray.init retries an unreachable address for minutes
            try:
                ray.init(address=address, logging_level=logging.WARNING)
            except ConnectionError as exc:  # e.g. 'auto' and no cluster on this machine
                raise VerifierUnavailableError(
                    f"cannot reach the Ray cluster at {address!r} ({exc}); {START_HINT}"
                ) from exc
        self._new_actor = ray.remote(num_cpus=1, resources={RESOURCE: 1}, max_restarts=0)(
            _VerifierActor
        )
        self._live: list[_Actor] = []
        self._starting: dict[Any, _Actor] = {}  # ready() reference -> actor not yet placed
        self._start_error = ""
        self._closed = False
        try:
            self._top_up()
            if not self._starting:
                raise VerifierUnavailableError(
                    f"the Ray cluster at {address!r} offers no {RESOURCE!r} slots: start CPU "
                    f"nodes with `stp verify-workers --address {address} --cpus N`"
                )
            self._await_starting(ACTOR_START_TIMEOUT_S, until_all=False)
            if not self._live:
                raise VerifierUnavailableError(
                    f"no verifier actor could start on the Ray cluster at {address!r}: "
                    + (
                        self._start_error
                        or f"none was placed within {ACTOR_START_TIMEOUT_S:.0f} s "
                        f"(another run may hold its {RESOURCE!r} slots)"
                    )
                )
            self._await_starting(LATECOMER_WAIT_S, until_all=True)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ actors

    def _top_up(self) -> None:
        """Start actors for the verifier slots the cluster offers beyond ours (all of them at
        first; after a death, those of nodes that joined or of a dead actor's node)."""
        slots = int(self._ray.cluster_resources().get(RESOURCE, 0))
        for _ in range(slots - len(self._live) - len(self._starting)):
            handle = self._new_actor.remote(self._config)
            self._starting[handle.ready.remote()] = _Actor(handle)

    def _started(self, ref: Any) -> None:
        """Move the actor whose ``ready`` answered to the live set (or drop it if it failed)."""
        actor = self._starting.pop(ref)
        try:
            actor.node, problem = self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            problem = _one_line(exc)
        if problem:
            self._start_error = f"node {actor.node}: {problem}"
            log.warning("a verifier actor failed to start on %s", self._start_error)
            self._ray.kill(actor.handle)
            return
        self._live.append(actor)

    def _await_starting(self, timeout_s: float, until_all: bool) -> None:
        """Wait up to ``timeout_s`` for one live actor (or for all starting ones)."""
        deadline = time.monotonic() + timeout_s
        pending = list(self._starting)
        while pending and (remaining := deadline - time.monotonic()) > 0:
            done, pending = self._ray.wait(pending, num_returns=1, timeout=remaining)
            if not done:
                return
            self._started(done[0])
            if self._live and not until_all:
                return

    def _lost(self, actor: _Actor, exc: Exception) -> None:
        """Forget a dead actor and start replacements where the cluster has room."""
        if actor not in self._live:  # its other chunks already reported the death
            return
        self._live.remove(actor)
        log.warning(
            "verifier actor on node %s died (%s); its chunks re-run on other actors",
            actor.node,
            _one_line(exc),
        )
        self._ray.kill(actor.handle)
        self._top_up()

    # ------------------------------------------------------------------ verify

    def _error(self, job: VerifyJob, detail: str) -> VerifyResult:
        return VerifyResult(
            id=job.id, verdict=Verdict.VERIFIER_ERROR, backend=self._config.backend, detail=detail
        )

    def verify(
        self, jobs: Sequence[VerifyJob], progress: Callable[[int], None] | None = None
    ) -> list[VerifyResult]:
        if self._closed:
            raise RuntimeError("verify() called on a closed verifier")
        ray = self._ray
        self._top_up()  # nodes may have joined since the last batch
        results: list[VerifyResult | None] = [None] * len(jobs)
        # Small batches get smaller chunks, so every actor has work.
        per_chunk = math.ceil(len(jobs) / (IN_FLIGHT_PER_ACTOR * max(1, len(self._live))))
        queue = _ChunkQueue(jobs, max(1, min(self._config.ray_chunk_size, per_chunk)))
        running: dict[Any, tuple[_Actor, _Chunk]] = {}  # verify() reference -> where, what

        def finish(chunk: _Chunk, chunk_results: list[VerifyResult]) -> None:
            for index, result in zip(chunk.indices, chunk_results, strict=True):
                results[index] = result
            if progress is not None:
                progress(len(chunk.indices))

        while queue or running:
            for _ in range(IN_FLIGHT_PER_ACTOR):  # round robin: every actor gets work first
                for actor in self._live:
                    if actor.in_flight < IN_FLIGHT_PER_ACTOR and (
                        chunk := queue.take(actor.header)
                    ):
                        ref = actor.handle.verify.remote([jobs[i] for i in chunk.indices])
                        running[ref] = (actor, chunk)
                        actor.in_flight += 1
                        actor.header = chunk.header
            if not running:  # no live actor: wait for one to start, or give up
                self._top_up()
                self._await_starting(ACTOR_START_TIMEOUT_S, until_all=False)
                if not self._live:
                    while chunk := queue.take(None):
                        detail = "no verifier actor alive on the Ray cluster"
                        finish(chunk, [self._error(jobs[i], detail) for i in chunk.indices])
                continue

            [ref], _ = ray.wait([*running, *self._starting], num_returns=1)
            if ref in self._starting:
                self._started(ref)
                continue
            actor, chunk = running.pop(ref)
            actor.in_flight -= 1
            try:
                finish(chunk, ray.get(ref))
            except ray.exceptions.RayError as exc:
                if isinstance(
                    exc, ray.exceptions.RayActorError | ray.exceptions.WorkerCrashedError
                ):
                    self._lost(actor, exc)
                chunk.attempts += 1
                chunk.error = _one_line(exc)
                if chunk.attempts < MAX_ATTEMPTS:
                    queue.put_back(chunk)
                else:
                    detail = f"failed on {chunk.attempts} Ray actors; last: {chunk.error}"
                    finish(chunk, [self._error(jobs[i], detail) for i in chunk.indices])
        return [
            r if r is not None else self._error(job, "no result")
            for r, job in zip(results, jobs, strict=True)
        ]

    def close(self) -> None:
        """Let each actor kill its checker processes, then end the actors (and the Ray
        connection, if this verifier opened it)."""
        if self._closed:
            return
        self._closed = True
        ray = self._ray
        closing = [actor.handle.close.remote() for actor in self._live]
        if closing:
            ray.wait(closing, num_returns=len(closing), timeout=CLOSE_TIMEOUT_S)
        for actor in [*self._live, *self._starting.values()]:
            ray.kill(actor.handle)
        self._live.clear()
        self._starting.clear()
        if self._owns_connection:
            ray.shutdown()

    def __enter__(self) -> RayVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_reachable(address: str | None) -> None:
    """Raise ``VerifierUnavailableError`` unless something listens at a HOST:PORT ``address``
    (``auto`` is left to ``ray.init``, which looks for a cluster on this machine)."""
    host, _, port = (address or "").rpartition(":")
    if not (host and port.isdigit()):
        return
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:  # refused, timed out, unknown host
        raise VerifierUnavailableError(
            f"cannot reach the Ray cluster at {address!r} ({exc}); {START_HINT}"
        ) from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
