"""The worker template shared by the backends that keep one warm process per worker (Lean's
REPL, Isabelle's server): what every check does around the assistant-specific part.

    class LeanWorker(ProcessWorker):
        backend, language = "lean", LEAN
        def screen(self, proof): ...            # the backend's own reading of the proof text
        def load(self, header): ...             # make `header` the process's base state
        def run(self, job, prepared): ...       # check one job there: (verdict, detail, ...)
        def reset(self): ...                    # kill the process; the next job starts afresh

``ProcessWorker.check`` runs, for every job:

1. the preamble (``admit``): the backend's screen of the proof text, the names the proof may
   not cite (``VerifyJob.forbidden_names``), and the name of the theorem the statement
   declares, which the checks after the proof refer to (``ill_typed`` when it declares
   none). A proof refused here reaches no process. The Rocq backend runs the same preamble in its own worker.
2. the header, with a cache shared by the verifier's workers: a header that does not check
   (``HeaderError``) fails every job under it, and is run once.
3. the job, on the process the header left, retried on a fresh process when that process
   failed: once for a crash (``Crashed``: it died, answered garbage, or left output no request
   asked for), up to ``verification.resource_retries`` times for a resource failure (it ran out
   of memory or threads under its address-space limit: ``Crashed(resource=True)``), which
   depends on the machine's load and not on the proof. A crash that happens again answers
   ``verifier_error``; resource failures that keep happening answer ``resource_limit``. A
   timeout (``TimedOut``) answers ``timeout``, and a process caught misbehaving in a way that
   decides the verdict (``Judged``) answers that verdict; both retire the process.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from stp.config import VerificationConfig
from stp.languages.base import FormalLanguage
from stp.verify.pool import PoolVerifier, default_workers, normalise_header
from stp.verify.types import Checking, Message, Verdict, VerifyJob, VerifyResult

# What a process that ran out of memory or threads prints (Lean's runtime, C++, glibc, the
# JVM). Seen only in what a failed process printed: a clean answer is never overruled.
RESOURCE_FAILURE = re.compile(
    r"failed to create thread|std::bad_alloc|cannot allocate memory|out of memory"
    r"|OutOfMemoryError|unable to create (?:native|new native) thread",
    re.IGNORECASE,
)

Outcome = tuple[Verdict, str, tuple[Message, ...], tuple[str, ...]]
Screen = Callable[[str], tuple[Verdict, str] | None]


def resource_failure(text: str) -> str | None:
    """The line of ``text`` (what a failed process printed) that says it ran out of memory or
    threads; None when none does."""
    match = RESOURCE_FAILURE.search(text)
    if match is None:
        return None
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start : None if end == -1 else end].strip()[:300]


class HeaderError(Exception):
    """A header that does not check; every job under it gets ``verifier_error``."""


class Judged(Exception):
    """The job's verdict is known without the assistant's answer: a proof refused before it
    runs, or a process caught misbehaving in a way that decides it (then it is retired)."""

    def __init__(self, verdict: Verdict, detail: str) -> None:
        super().__init__(detail)
        self.verdict = verdict
        self.detail = detail


class TimedOut(Exception):
    """The process did not answer in time; it is retired and the job is ``timeout``."""


class Crashed(Exception):
    """The process failed: it is retired and the job runs again on a fresh one. ``resource``:
    it ran out of memory or threads (retried ``resource_retries`` times). ``if_repeated``: the
    verdict when the retry fails the same way (``verifier_error`` by default)."""

    def __init__(
        self,
        detail: str,
        *,
        resource: bool = False,
        if_repeated: tuple[Verdict, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.resource = resource
        self.if_repeated = if_repeated


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """What every worker of one verifier shares; a backend's settings add its own fields."""

    argv: tuple[str, ...]
    memory_limit_mb: int
    timeout_s: float
    header_timeout_s: float
    assistant_version: str
    resource_retries: int = 2


def worker_pool(
    worker: type[ProcessWorker], settings: WorkerSettings, config: VerificationConfig
) -> PoolVerifier:
    """A verifier: a pool of ``worker``s sharing ``settings`` and one bad-header cache."""
    bad_headers: dict[str, str] = {}
    return PoolVerifier(
        worker.backend,
        settings.assistant_version,
        lambda: worker(settings, bad_headers),
        default_workers(config.workers),
        config.jobs_per_worker,
    )


def admit(job: VerifyJob, language: FormalLanguage, screen: Screen | None = None) -> str:
    """The preamble of every check: the name of the theorem ``job``'s statement declares,
    once its proof passed ``screen`` (None: the caller screened it) and cites none of the
    job's forbidden names; ``Judged`` with the verdict otherwise."""
    screened = screen(job.proof) if screen is not None else None
    if screened is not None:
        raise Judged(*screened)
    cited = language.cited(job.proof, job.forbidden_names)
    if cited is not None:
        raise Judged(Verdict.UNSOUND, f"the proof cites {cited}, the target's own library copy")
    name = language.theorem_name(job.formal_statement)
    if name is None:
        raise Judged(
            Verdict.ILL_TYPED,
            f"statement declares no named theorem: {job.formal_statement[:60]!r}",
        )
    return name


class ProcessWorker(ABC):
    """One warm checker process: a ``stp.verify.pool`` worker. A timeout, a misbehaving
    process or a failure its retries did not mend leaves no process running, and the pool
    retires the worker."""

    backend: ClassVar[str]
    language: ClassVar[FormalLanguage]

    def __init__(self, settings: WorkerSettings, bad_headers: dict[str, str]) -> None:
        self.settings = settings
        self._bad_headers = bad_headers  # shared by the verifier's workers: each fails once

    @property
    @abstractmethod
    def healthy(self) -> bool:
        """False once the process is gone: the pool retires the worker."""

    @abstractmethod
    def screen(self, proof: str) -> tuple[Verdict, str] | None:
        """The verdict for a proof text refused before it runs, and why; None to run it."""

    def prepare(self, job: VerifyJob, theorem: str) -> Any:
        """What ``run`` needs besides the job, made once for all attempts (default: the
        theorem's name); ``Judged`` when the job cannot be run."""
        return theorem

    @abstractmethod
    def load(self, header: str) -> None:
        """Make ``header`` (normalised) the process's base state, starting one if need be.
        ``HeaderError`` when it does not check; ``Crashed`` when the process failed."""

    @abstractmethod
    def run(self, job: VerifyJob, prepared: Any) -> Outcome:
        """Check ``job`` on the loaded header. ``TimedOut``, ``Crashed`` or ``Judged`` when
        the process cannot give the answer."""

    @abstractmethod
    def reset(self) -> None:
        """Kill the process; the next job starts a fresh one."""

    def close(self) -> None:
        self.reset()

    def check(self, job: VerifyJob) -> VerifyResult:
        """Check one job; every outcome is a result."""
        result = Checking(job, self.backend, self.settings.assistant_version).result
        try:
            prepared = self.prepare(job, admit(job, self.language, self.screen))
        except Judged as judged:
            return result(judged.verdict, judged.detail)
        header = normalise_header(job.header)
        crashes = resources = 0
        while True:
            try:
                self._load(header)
                return result(*self.run(job, prepared))
            except HeaderError as exc:
                return result(Verdict.VERIFIER_ERROR, str(exc))
            except TimedOut as exc:
                self.reset()
                return result(Verdict.TIMEOUT, str(exc))
            except Judged as judged:
                self.reset()
                return result(judged.verdict, judged.detail)
            except Crashed as exc:
                self.reset()
                if exc.resource:
                    resources += 1
                    if resources > self.settings.resource_retries:
                        return result(
                            Verdict.RESOURCE_LIMIT,
                            f"out of resources on {resources} tries, the later ones on fresh "
                            f"processes (memory_limit_mb {self.settings.memory_limit_mb}): "
                            f"{exc.detail}",
                        )
                else:
                    crashes += 1
                    if crashes > 1:
                        return result(*(exc.if_repeated or (Verdict.VERIFIER_ERROR, exc.detail)))

    def _load(self, header: str) -> None:
        if header in self._bad_headers:
            raise HeaderError(self._bad_headers[header])
        try:
            self.load(header)
        except HeaderError as exc:
            self._bad_headers[header] = str(exc)
            raise
