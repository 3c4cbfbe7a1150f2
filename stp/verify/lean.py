"""Lean 4 backend: proofs checked by the Lean REPL, one warm REPL per header.

    with make_verifier(VerificationConfig(backend="lean")) as verifier:
        results = verifier.verify(jobs)      # exactly one VerifyResult per job, in job order

or from the shell: ``stp verify --backend lean --repl-cmd 'lake exe repl' proofs.jsonl --out
results.jsonl``. The REPL runs in ``verification.lean_project``; ``scripts/setup_lean.sh``
installs it there. Workers are ``stp.verify.pool`` workers, one REPL process each.

How one job is checked (what each line guarantees and what it does not: the
README's "Lean 4 verification"):

1. The screen (``stp.verify.lean_screen``) reads the proof with a Lean lexer and rejects,
   anywhere outside comments and strings, what could make Lean run the proof's own code or
   change how later commands read: commands, declarations, attributes, syntax extensions,
   ``open``/``set_option`` other than their ``... in`` forms, ``set_option debug.*``,
   ``native_decide``, ``apply?``/``exact?``. A proof that cites one of the job's forbidden
   names (the target's library copy) is ``unsound``.
2. The worker's REPL has run the job's header once, as its env 0 (a job under another
   header replaces the REPL), and ``statement + "\n" + proof`` (``LEAN.assemble``) runs
   against env 0, so proofs never see each other. The statement is the dataset's, fixed as a
   prefix: the model writes only the proof. ``verdict_of`` reads the response: an error is
   ``failed``; ``sorry`` (in ``sorries`` or, for a term-mode ``sorry`` that the REPL leaves out
   of them, only as the warning) is ``incomplete``.
3. Only a clean response goes on to the follow-up command, run in the proof's environment (the
   only one that holds the theorem; the screen is what keeps the proof from changing how it
   reads): the statement is elaborated again under a name drawn at random for this job and
   must have the named theorem's type, and ``#print axioms`` must list only ``propext``,
   ``Classical.choice`` and ``Quot.sound`` (``sorryAx`` makes it ``incomplete``;
   ``Lean.ofReduceBool`` or any added axiom ``unsound``). The answer must report the random
   name too, so that it is this request's answer and not one printed ahead of time.
4. Every answer must line up with its request (``stp.verify.lean_repl``): nothing written
   between answers, each command's ``env`` the next one. Anything else retires the REPL (the
   proof ran code that writes to the REPL's output) and the job is ``unsound``.
5. Where the second line is on (``verification.lean_kernel_check``), a proof all of the above
   accepted is compiled again in a fresh ``lean`` process and its ``.olean`` replayed through
   the kernel in another (``stp.verify.lean_check``); only its verdict counts.

The worker is ``stp.verify.worker``'s template (screen, cited names, header with a shared
bad-header cache, retries). A timeout kills the REPL's process group and answers ``timeout``.
A crash (end of output, garbage) is retried once on a fresh REPL, then answers
``verifier_error``. Running out of memory or threads under the address-space limit (``failed
to create thread``, ``std::bad_alloc``, ``Cannot allocate memory``, ``out of memory`` in what
the REPL printed, or a REPL killed by SIGKILL) is a resource failure: retried on a fresh REPL
up to ``verification.resource_retries`` times, then ``resource_limit``. Standard error decides
nothing else: Lake's warnings there leave a good answer as it is.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stp.config import VerificationConfig
from stp.errors import VerifierUnavailableError
from stp.languages.lean import LEAN, lean_rename_declaration
from stp.verify.lean_check import ALLOWED_AXIOMS, CHECKER, KernelCheck, KernelCheckError
from stp.verify.lean_repl import LeanRepl, ReplCrashed, ReplDesynchronised, ReplTimedOut
from stp.verify.lean_screen import screen
from stp.verify.pool import PoolVerifier, normalise_header
from stp.verify.process import RunAs, program_found, run_as_user
from stp.verify.types import Message, Verdict, VerifyJob
from stp.verify.worker import (
    Crashed,
    HeaderError,
    Judged,
    Outcome,
    ProcessWorker,
    TimedOut,
    WorkerSettings,
    resource_failure,
    worker_pool,
)

BACKEND = "lean"
INSTALL_HINT = (
    "install Lean with scripts/setup_lean.sh (or set verification.repl_cmd and "
    "verification.lean_project)"
)
LAKE_HINT = (
    " (lake is looked up on PATH, then in $ELAN_HOME/bin and ~/.elan/bin: where elan put it "
    "elsewhere, set verification.lean_lake_path)"
)

# Lean 4.9 quotes with 'sorry', newer Lean with `sorry`.
_SORRY_WARNING = re.compile(r"declaration uses ['`]sorry['`]")
_AXIOMS_LINE = re.compile(r"'(?P<name>[^']+)' depends on axioms: \[(?P<axioms>[^\]]*)\]")
_NO_AXIOMS_LINE = re.compile(r"'(?P<name>[^']+)' does not depend on any axioms")


class MessagesRewritten(Exception):
    """The follow-up's answer lacks the error it must hold: something in the REPL process
    rewrites its messages (code a proof ran there, in this job or an earlier one)."""


# ----------------------------------------------------------------------------- verdicts


def _judge(response: dict[str, Any]) -> tuple[Verdict, str]:
    """The verdict of one REPL response, and why in one line (empty for ``proved``)."""
    if "message" in response and "env" not in response and "proofState" not in response:
        text = str(response["message"]).strip()
        if text.startswith("Unknown environment"):  # the pool lost its env 0: our fault
            return Verdict.VERIFIER_ERROR, f"REPL: {text}"
        return Verdict.FAILED, text.splitlines()[0] if text else "REPL error"
    messages = response.get("messages", [])
    errors = [m for m in messages if m.get("severity") == "error"]
    if errors:
        return Verdict.FAILED, _first_line(errors[0].get("data", ""))
    if response.get("sorries"):
        return Verdict.INCOMPLETE, "proof contains sorry"
    if any(_SORRY_WARNING.search(str(m.get("data", ""))) for m in messages):
        return Verdict.INCOMPLETE, "declaration uses sorry"
    # Tactic-mode responses (not used to check proofs, but the REPL speaks them): newer REPLs
    # say "Completed"/"Incomplete: ..."/"Error: ..."; Lean 4.9's leave open goals in `goals`.
    status = response.get("proofStatus")
    if isinstance(status, str) and status != "Completed":
        verdict = Verdict.INCOMPLETE if status.startswith("Incomplete") else Verdict.FAILED
        return verdict, status
    if response.get("goals"):
        return Verdict.INCOMPLETE, "open goals remain"
    if "env" not in response and "proofState" not in response:
        return Verdict.VERIFIER_ERROR, f"not a REPL response: {sorted(response)}"
    return Verdict.PROVED, ""


def verdict_of(response: dict[str, Any]) -> Verdict:
    """The verdict of one REPL command response, before the follow-up checks: a clean
    response (no error, no sorry) is ``proved``; an error message or error object is
    ``failed``; a ``sorry`` is ``incomplete``; ``Unknown environment.`` is ``verifier_error``."""
    return _judge(response)[0]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def restated_name(name: str) -> str:
    """A fresh name for one job's restated statement: nothing printed before the follow-up
    was sent can mention it."""
    return f"{name}_stp_{secrets.token_hex(8)}"


def canary_name(restated: str) -> str:
    """A name nothing declares: the follow-up's ``#check`` of it must fail, so an answer
    without that error has had its messages rewritten (by code a proof left in the REPL)."""
    return f"{restated}_absent"


def follow_up_command(formal_statement: str, name: str, restated: str) -> str:
    """Checks run in a clean proof's environment: the statement elaborated again as
    ``restated`` must have the named theorem's type, ``#print axioms`` lists the axioms of
    the theorem and then of ``restated`` (admitted with ``sorry``; its report shows the answer
    is this command's), and a ``#check`` of ``canary_name(restated)`` must be an error.

    Names are written from the root (``_root_.``): the proof text may leave a namespace open,
    with a look-alike theorem in it that a bare name would resolve to. The types are compared
    by ``#check``, not in an ``example``'s signature: there, the universe levels of each side
    would become separate parameters before ``rfl`` could equate them (``Type*`` statements)."""
    theorem = f"_root_.{name}"
    copy = f"_root_.{restated}"
    restatement = lean_rename_declaration(formal_statement, copy)
    return (
        f"{LEAN.assemble('', restatement, 'sorry')}\n\n"
        f"#check (rfl : type_of% @{theorem} = type_of% @{copy})\n\n"
        f"#print axioms {theorem}\n\n"
        f"#print axioms {copy}\n\n"
        f"#check _root_.{canary_name(restated)}"
    )


def _axiom_reports(messages: list[dict[str, Any]], name: str) -> list[set[str]]:
    """The axioms of each ``#print axioms`` report about ``name`` among ``messages``."""
    reports = []
    for message in messages:
        if message.get("severity") != "info":
            continue
        data = str(message.get("data", ""))
        if (match := _AXIOMS_LINE.search(data)) and match.group("name") == name:
            reports.append({a.strip() for a in match.group("axioms").split(",") if a.strip()})
        elif (match := _NO_AXIOMS_LINE.search(data)) and match.group("name") == name:
            reports.append(set())
    return reports


def judge_follow_up(
    response: dict[str, Any], name: str, restated: str
) -> tuple[Verdict, str, tuple[str, ...]]:
    """Verdict, reason and axioms from the follow-up command's response."""
    if "env" not in response:
        return Verdict.VERIFIER_ERROR, f"follow-up check: {response.get('message', response)}", ()
    messages = response.get("messages", [])
    canary = canary_name(restated)
    errors = [m for m in messages if m.get("severity") == "error"]
    if sum(canary in str(m.get("data", "")) for m in errors) != 1:
        raise MessagesRewritten(f"the answer lacks the error about {canary}")
    errors = [m for m in errors if canary not in str(m.get("data", ""))]
    if errors:  # the theorem is missing, or its type is not the statement's
        return (
            Verdict.UNSOUND,
            f"statement re-check failed: {_first_line(str(errors[0].get('data', '')))}",
            (),
        )
    if len(_axiom_reports(messages, restated)) != 1:
        return (
            Verdict.UNSOUND,
            "the follow-up's answer does not report this job's random name once: it is not "
            "the answer to this request",
            (),
        )
    reports = _axiom_reports(messages, name)
    if not reports:
        return Verdict.VERIFIER_ERROR, "no #print axioms report for the theorem", ()
    if len(reports) > 1:
        return Verdict.UNSOUND, f"{len(reports)} #print axioms reports for one theorem", ()
    axioms = reports[0]
    used = tuple(sorted(axioms))
    if "sorryAx" in axioms:
        return Verdict.INCOMPLETE, "depends on sorryAx", used
    forbidden = sorted(axioms - ALLOWED_AXIOMS)
    if forbidden:
        return Verdict.UNSOUND, f"depends on forbidden axioms: {', '.join(forbidden)}", used
    return Verdict.PROVED, "", used


def messages_of(response: dict[str, Any], proof_line: int) -> tuple[Message, ...]:
    """The response's messages; lines from ``proof_line`` on (1-based, in the command) are
    renumbered relative to the proof, earlier ones (the statement) are left as they are."""
    out = []
    for m in response.get("messages", []):
        pos = m.get("pos") or {}
        line, column = pos.get("line"), pos.get("column")
        if isinstance(line, int) and line >= proof_line:
            line = line - proof_line + 1
        out.append(
            Message(
                severity=str(m.get("severity", "")),
                text=str(m.get("data", "")),
                line=line,
                column=column,
            )
        )
    return tuple(out)


# ----------------------------------------------------------------------------- versions

_REQUIRE = re.compile(
    r'require\s+(?P<pkg>[\w«»]+)\s+from\s+git\s+"(?P<url>[^"]+)"\s*@\s*"(?P<rev>[^"]+)"'
)


def pinned_versions(lean_project: Path) -> dict[str, str]:
    """Toolchain and dependency revisions pinned in ``lean_project`` (empty if unpinned)."""
    pins: dict[str, str] = {}
    toolchain = lean_project / "lean-toolchain"
    if toolchain.is_file():
        pins["toolchain"] = toolchain.read_text().strip()
    lakefile = lean_project / "lakefile.lean"
    if lakefile.is_file():
        for match in _REQUIRE.finditer(lakefile.read_text()):
            url = match.group("url").removeprefix("https://github.com/").removesuffix(".git")
            pins[match.group("pkg")] = f"{url}@{match.group('rev')}"
    return pins


def find_lake(configured: str = "") -> Path | None:
    """Lean's ``lake``: ``configured`` (``verification.lean_lake_path``) when set, else the one on
    PATH, else where elan installs it (``$ELAN_HOME/bin``, ``~/.elan/bin``): a shell started over
    ssh or a Ray raylet often lacks the PATH elan's installer set up in a login shell. None when
    there is none (or the configured file is not executable)."""
    if configured:
        lake = Path(configured).expanduser()
        return lake if os.access(lake, os.X_OK) and lake.is_file() else None
    on_path = shutil.which("lake")
    if on_path is not None:
        return Path(on_path).absolute()
    elan_homes = [Path(os.environ["ELAN_HOME"])] if os.environ.get("ELAN_HOME") else []
    for home in [*elan_homes, Path("~/.elan").expanduser()]:
        lake = home / "bin" / "lake"
        if lake.is_file() and os.access(lake, os.X_OK):
            return lake
    return None


def path_with_lake(config: VerificationConfig, path: str) -> str:
    """``path`` (a PATH value) with the folder of the lake ``find_lake`` finds put first, for a
    process whose children must find it (and elan's ``lean`` beside it) by name."""
    lake = find_lake(config.lean_lake_path)
    if lake is None or str(lake.parent) in path.split(os.pathsep):
        return path
    return os.pathsep.join([str(lake.parent), *([path] if path else [])])


def assistant_version(lean_project: Path, repl_cmd: str, lake: Path | None = None) -> str:
    """What checks the proofs, for every result: the pins, plus ``lean --version`` where a
    ``lean`` is beside ``lake`` or on PATH (elan resolves it to the project's toolchain)."""
    pins = pinned_versions(lean_project)
    parts = [f"{key} {value}" for key, value in pins.items()] or [f"unpinned ({repl_cmd})"]
    search = os.pathsep.join([*([str(lake.parent)] if lake else []), os.environ.get("PATH", "")])
    lean = shutil.which("lean", path=search)
    if lean is not None:
        try:
            out = subprocess.run(
                [lean, "--version"], cwd=lean_project, capture_output=True, text=True, timeout=60
            )
            if out.returncode == 0 and out.stdout.strip():
                parts.append(out.stdout.strip().splitlines()[0])
        except (OSError, subprocess.SubprocessError):
            pass  # the pins still say what was asked for
    return "; ".join(parts)


# --------------------------------------------------------------------------- the worker


@dataclass(frozen=True, kw_only=True)
class LeanSettings(WorkerSettings):
    """What every worker of one verifier shares."""

    lake: Path  # what the second line runs
    lean_project: Path
    kernel_check: bool = False  # the second line (stp.verify.lean_check)
    run_as: RunAs | None = None


def _crash(stage: str, exc: ReplCrashed) -> Crashed:
    """A crash of the REPL, as the worker template retries it: a resource failure when the
    REPL said it ran out of memory or threads, or was killed (the kernel's OOM killer)."""
    resource = resource_failure(str(exc)) is not None or exc.returncode == -signal.SIGKILL
    return Crashed(f"{stage}: {exc}", resource=resource)


def _raise_if_out_of_resources(repl: LeanRepl, response: dict[str, Any], verdict: Verdict) -> None:
    """A REPL that answered with an error while it ran out of memory or threads (on stderr or
    in the error) answered for want of resources, not about the proof: run it again."""
    if verdict is Verdict.PROVED:
        return
    errors = [str(m.get("data", "")) for m in response.get("messages", [])]
    said = resource_failure("\n".join([repl.stderr, str(response.get("message", "")), *errors]))
    if said is not None:
        raise Crashed(f"REPL out of resources: {said}", resource=True)


class LeanWorker(ProcessWorker):
    """One REPL with one header run as its base environment (the worker template:
    ``stp.verify.worker``).

    A job under another header replaces the process (imports cannot be undone in a REPL);
    the pool keeps jobs with this header coming and gives up least recently used headers
    first."""

    backend = BACKEND
    language = LEAN
    settings: LeanSettings

    def __init__(self, settings: LeanSettings, bad_headers: dict[str, str]) -> None:
        super().__init__(settings, bad_headers)
        self._repl: LeanRepl | None = None
        self._header: str | None = None
        self._base_env = 0
        self._kernel: KernelCheck | None = None

    @property
    def healthy(self) -> bool:
        return self._repl is not None

    def screen(self, proof: str) -> tuple[Verdict, str] | None:
        reason = screen(proof)
        return None if reason is None else (Verdict.UNSOUND, reason)

    def reset(self) -> None:
        if self._repl is not None:
            self._repl.close()
        self._repl = None
        self._header = None

    def close(self) -> None:
        self.reset()
        if self._kernel is not None:
            self._kernel.close()
        self._kernel = None

    def load(self, header: str) -> None:
        if self._repl is not None and self._header == header:
            return
        self.reset()
        settings = self.settings
        try:
            repl = LeanRepl(
                settings.argv, settings.lean_project, settings.memory_limit_mb, settings.run_as
            )
        except OSError as exc:
            raise Crashed(f"starting the REPL failed: {exc}") from exc
        try:
            response = repl.request({"cmd": header}, timeout=settings.header_timeout_s)
            verdict, detail = _judge(response)
            _raise_if_out_of_resources(repl, response, verdict)
        except ReplCrashed as exc:
            repl.close()
            raise _crash("starting the REPL failed", exc) from exc
        except ReplTimedOut as exc:
            repl.close()
            raise Crashed(f"starting the REPL failed: the header took longer: {exc}") from exc
        except BaseException:
            repl.close()
            raise
        if verdict is not Verdict.PROVED:
            repl.close()
            if verdict is Verdict.VERIFIER_ERROR:
                raise Crashed(f"starting the REPL failed: header: {detail}")
            raise HeaderError(f"header does not check: {detail}")
        self._repl, self._header, self._base_env = repl, header, int(response["env"])

    def run(self, job: VerifyJob, prepared: Any) -> Outcome:
        name = str(prepared)
        assert self._repl is not None
        try:
            outcome = self._run(self._repl, job, name)
        except ReplTimedOut as exc:
            raise TimedOut(f"no answer within {self.settings.timeout_s:g} s") from exc
        except ReplDesynchronised as exc:
            if exc.before_request:  # left by an earlier job: this one runs on a fresh REPL
                raise Crashed(f"REPL retired: {exc}") from exc
            raise Judged(
                Verdict.UNSOUND,
                f"the REPL's answers did not line up with the requests ({exc}): the proof "
                "ran code that writes to the REPL's output",
            ) from exc
        except ReplCrashed as exc:
            raise _crash("REPL crashed", exc) from exc
        except MessagesRewritten as exc:  # perhaps an earlier job's doing: once more, fresh
            raise Crashed(
                f"REPL retired: {exc}",
                if_repeated=(Verdict.UNSOUND, f"the proof rewrites the REPL's messages: {exc}"),
            ) from exc
        return self._second_line(job, name, outcome)

    def _run(self, repl: LeanRepl, job: VerifyJob, name: str) -> Outcome:
        timeout = self.settings.timeout_s
        command = LEAN.assemble("", job.formal_statement, job.proof)
        response = repl.request({"cmd": command, "env": self._base_env}, timeout)
        proof_line = LEAN.assemble("", job.formal_statement, "").count("\n") + 1
        messages = messages_of(response, proof_line)
        verdict, detail = _judge(response)
        _raise_if_out_of_resources(repl, response, verdict)
        if verdict is not Verdict.PROVED:
            return verdict, detail, messages, ()
        restated = restated_name(name)
        try:
            follow_up = repl.request(
                {
                    "cmd": follow_up_command(job.formal_statement, name, restated),
                    "env": int(response["env"]),
                },
                timeout,
            )
            repl.check_quiet()  # an answer left over now is this job's doing too
        except ReplDesynchronised as exc:
            raise ReplDesynchronised(str(exc), before_request=False) from exc
        verdict, detail, axioms = judge_follow_up(follow_up, name, restated)
        _raise_if_out_of_resources(repl, follow_up, verdict)
        return verdict, detail, messages, axioms

    def _second_line(self, job: VerifyJob, name: str, outcome: Outcome) -> Outcome:
        """The REPL's verdict, or where it is ``proved`` and the second line is on, the second
        line's (its axioms are the ones reported)."""
        verdict, _, messages, _ = outcome
        if verdict is not Verdict.PROVED or not self.settings.kernel_check:
            return outcome
        if self._kernel is None:
            settings = self.settings
            self._kernel = KernelCheck(
                settings.lean_project,
                settings.memory_limit_mb,
                settings.header_timeout_s + settings.timeout_s,
                settings.run_as,
                lake=settings.lake,
            )
        header = normalise_header(job.header) + "\n\n"
        try:
            verdict, detail, axioms = self._kernel.check(
                header, job.formal_statement, job.proof, name
            )
        except (KernelCheckError, OSError) as exc:
            return Verdict.VERIFIER_ERROR, f"second check: {exc}", messages, ()
        return verdict, detail, messages, axioms


def kernel_check_enabled(config: VerificationConfig) -> bool:
    """Whether the second line runs: ``on``, or ``auto`` where ``lake`` is found (``find_lake``)."""
    if config.lean_kernel_check == "auto":
        return find_lake(config.lean_lake_path) is not None
    return config.lean_kernel_check == "on"


def needs_lean_project(
    config: VerificationConfig, argv: tuple[str, ...], kernel_check: bool
) -> bool:
    """Whether the verifier cannot run without ``lean_project``: a REPL command of one's own
    that speaks the protocol needs none, so with the default folder missing it runs in the
    current directory; lake, a command given relative to the project, the second check and a
    folder named on purpose do."""
    default = VerificationConfig.__dataclass_fields__["lean_project"].default
    return (
        config.lean_project != default
        or kernel_check
        or not argv
        or Path(argv[0]).name == "lake"
        or ("/" in argv[0] and not Path(argv[0]).is_absolute())
    )


def make_backend(config: VerificationConfig) -> PoolVerifier:
    """The Lean verifier: a pool of warm REPL workers (registered in ``stp.verify.backends``)."""
    argv = tuple(shlex.split(config.repl_cmd))
    lake = find_lake(config.lean_lake_path)
    if argv and argv[0] == "lake" and lake is not None:  # found off PATH, or configured
        argv = (str(lake), *argv[1:])
    kernel_check = kernel_check_enabled(config)
    lean_project = Path(config.lean_project).resolve()
    if not lean_project.is_dir():
        if needs_lean_project(config, argv, kernel_check):
            raise VerifierUnavailableError(f"Lean project {lean_project} not found: {INSTALL_HINT}")
        lean_project = Path.cwd()
    if not argv or not program_found(argv[0], lean_project):
        raise VerifierUnavailableError(
            f"Lean REPL command {config.repl_cmd!r} not found: {INSTALL_HINT}"
            + (LAKE_HINT if argv and Path(argv[0]).name == "lake" else "")
        )
    if kernel_check and lake is None:
        raise VerifierUnavailableError(f"the second check needs lake, not found: {LAKE_HINT}")
    if kernel_check and not (lean_project / CHECKER).is_file():
        raise VerifierUnavailableError(
            f"the second check needs {lean_project / CHECKER}: {INSTALL_HINT} (it builds "
            "stp_check), or set verification.lean_kernel_check=off to rely on the REPL alone"
        )
    try:
        run_as = run_as_user(config.lean_run_as)
    except ValueError as exc:
        raise VerifierUnavailableError(f"verification.lean_run_as: {exc}") from None
    version = assistant_version(lean_project, config.repl_cmd, lake)
    version += "; second check: " + ("kernel replay (stp_check)" if kernel_check else "off")
    settings = LeanSettings(
        argv=argv,
        lake=lake or Path("lake"),
        lean_project=lean_project,
        memory_limit_mb=config.memory_limit_mb,
        timeout_s=config.timeout_s,
        header_timeout_s=config.header_timeout_s,
        assistant_version=version,
        kernel_check=kernel_check,
        run_as=run_as,
        resource_retries=config.resource_retries,
    )
    return worker_pool(LeanWorker, settings, config)
