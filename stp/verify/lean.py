"""Lean 4 backend: proofs checked by the Lean REPL, one warm REPL per header.

    with make_verifier(VerificationConfig(backend="lean")) as verifier:
        results = verifier.verify(jobs)      # exactly one VerifyResult per job, in job order

or from the shell: ``stp verify --backend lean --repl-cmd 'lake exe repl' proofs.jsonl --out
results.jsonl``. The REPL runs in ``verification.lean_project``; ``scripts/setup_lean.sh``
installs it there. Workers are ``stp.verify.pool`` workers, one REPL process each.

How one job is checked:

1. A text pre-filter rejects what no benchmark proof needs and what could hide a gap from the
   checks below (``set_option debug.*``, ``#exit``, ``native_decide``, ``run_tac`` and other
   metaprogramming, which could add a declaration without the kernel). It is cheap; for
   everything but metaprogramming it is not what makes the check sound.
2. The worker's REPL has run the job's header once, as its env 0 (a job under another
   header replaces the REPL), and ``statement + "\\n" + proof`` (``LEAN.assemble``) runs
   against env 0, so proofs never see each other. The statement is the dataset's, fixed as a prefix: the model writes only the
   proof. ``verdict_of`` reads the response: an error is ``failed``; ``sorry`` (in ``sorries``
   or, for a term-mode ``sorry`` that the REPL leaves out of them, only as the warning) is
   ``incomplete``.
3. Only a clean response goes on to the follow-up command, run in the proof's environment:
   the statement is elaborated again under a fresh name and must have the same type as the
   named theorem (so that theorem exists and states what the dataset says), and
   ``#print axioms`` must list only ``propext``, ``Classical.choice`` and ``Quot.sound``
   (``sorryAx`` makes it ``incomplete``; ``Lean.ofReduceBool`` or any added axiom ``unsound``).

A timeout kills the REPL's process group and answers ``timeout``; a crash (end of output,
garbage, anything on stderr) is retried once on a fresh REPL, then answers ``verifier_error``.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stp.config import VerificationConfig
from stp.languages import LEAN, lean_declaration_name, lean_rename_declaration
from stp.verify.backends import VerifierUnavailableError
from stp.verify.lean_repl import LeanRepl, ReplCrashed, ReplTimedOut
from stp.verify.pool import PoolVerifier, default_workers, normalise_header
from stp.verify.process import program_found
from stp.verify.types import Checking, Message, Verdict, VerifyJob, VerifyResult

BACKEND = "lean"
INSTALL_HINT = (
    "install Lean with scripts/setup_lean.sh (or set verification.repl_cmd and "
    "verification.lean_project)"
)

# What a Lean proof may depend on: Lean's own three axioms, nothing else.
ALLOWED_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})

# Lean 4.9 quotes with 'sorry', newer Lean with `sorry`.
_SORRY_WARNING = re.compile(r"declaration uses ['`]sorry['`]")
_AXIOMS_LINE = re.compile(r"'(?P<name>[^']+)' depends on axioms: \[(?P<axioms>[^\]]*)\]")
_NO_AXIOMS_LINE = re.compile(r"'(?P<name>[^']+)' does not depend on any axioms")

# Proof text that no benchmark proof needs and that can defeat the checks after it. Matched
# on the raw proof (comments included: a false alarm there costs one sample, nothing more).
_BANNED_PROOF_TEXT: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bset_option\s+debug\."), "set_option debug.* switches kernel checks off"),
    (re.compile(r"#exit\b"), "#exit stops processing"),
    (re.compile(r"\bnative_decide\b"), "native_decide trusts compiled code (Lean.ofReduceBool)"),
    (re.compile(r"\bofReduce(Bool|Nat)\b"), "Lean.ofReduceBool trusts compiled code"),
    # On Lean 4.9 `apply?` closes a goal it cannot prove with a synthetic sorry that no
    # message reports (#print axioms still shows sorryAx); a proof that needs a library
    # search at every check is not a finished proof anyway.
    (re.compile(r"(?<![\w.])(apply|exact|rw)\?"), "library search tactics (apply?, exact?, rw?)"),
    # Code run at elaboration time can add declarations without the kernel or rewrite the
    # messages the checks read: tactics and terms that run it, anywhere...
    (
        re.compile(r"(#eval|#exec|\b(run_tac|run_cmd|run_elab|run_meta|by_elab))\b"),
        "metaprogramming is banned in proofs",
    ),
    # ...and commands that define it, at the start of a line.
    (
        re.compile(
            r"^\s*(elab|elab_rules|macro|macro_rules|syntax|initialize|builtin_initialize|"
            r"declare_syntax_cat)\b",
            re.MULTILINE,
        ),
        "metaprogramming is banned in proofs",
    ),
    (
        re.compile(r"^\s*(import|axiom|opaque)\b", re.MULTILINE),
        "proofs may not add imports or axioms",
    ),
)

_RESTATED_SUFFIX = "_stp_restated"


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


def banned_text(proof: str) -> str | None:
    """Why ``proof`` is rejected before it reaches Lean; None when it passes the pre-filter."""
    for pattern, reason in _BANNED_PROOF_TEXT:
        if pattern.search(proof):
            return reason
    return None


def follow_up_command(formal_statement: str, name: str) -> str:
    """Checks run in a clean proof's environment: the statement elaborated again under a
    fresh name must have the named theorem's type, and ``#print axioms`` lists its axioms.
    The restated copy is admitted with ``sorry`` and used only for its type.

    Names are written from the root (``_root_.``): the proof text may leave a namespace open,
    with a look-alike theorem in it that a bare name would resolve to. The types are compared
    by ``#check``, not in an ``example``'s signature: there, the universe levels of each side
    would become separate parameters before ``rfl`` could equate them (``Type*`` statements)."""
    theorem = f"_root_.{name}"
    restated = f"_root_.{name}{_RESTATED_SUFFIX}"
    restatement = lean_rename_declaration(formal_statement, restated)
    return (
        f"{LEAN.assemble('', restatement, 'sorry')}\n\n"
        f"#check (rfl : type_of% @{theorem} = type_of% @{restated})\n\n"
        f"#print axioms {theorem}"
    )


def judge_follow_up(response: dict[str, Any], name: str) -> tuple[Verdict, str, tuple[str, ...]]:
    """Verdict, reason and axioms from the follow-up command's response."""
    if "env" not in response:
        return Verdict.VERIFIER_ERROR, f"follow-up check: {response.get('message', response)}", ()
    messages = response.get("messages", [])
    errors = [m for m in messages if m.get("severity") == "error"]
    if errors:  # the theorem is missing, or its type is not the statement's
        return (
            Verdict.UNSOUND,
            f"statement re-check failed: {_first_line(str(errors[0].get('data', '')))}",
            (),
        )
    axioms: set[str] = set()
    reports = 0
    for message in messages:
        if message.get("severity") != "info":
            continue
        data = str(message.get("data", ""))
        if (match := _AXIOMS_LINE.search(data)) and match.group("name") == name:
            axioms.update(a.strip() for a in match.group("axioms").split(",") if a.strip())
            reports += 1
        elif (match := _NO_AXIOMS_LINE.search(data)) and match.group("name") == name:
            reports += 1
    if reports != 1:
        return Verdict.VERIFIER_ERROR, f"expected one #print axioms report, got {reports}", ()
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


def assistant_version(lean_project: Path, repl_cmd: str) -> str:
    """What checks the proofs, for every result: the pins, plus ``lean --version`` where a
    ``lean`` is on PATH (elan resolves it to the project's toolchain)."""
    pins = pinned_versions(lean_project)
    parts = [f"{key} {value}" for key, value in pins.items()] or [f"unpinned ({repl_cmd})"]
    if shutil.which("lean") is not None:
        try:
            out = subprocess.run(
                ["lean", "--version"], cwd=lean_project, capture_output=True, text=True, timeout=60
            )
            if out.returncode == 0 and out.stdout.strip():
                parts.append(out.stdout.strip().splitlines()[0])
        except (OSError, subprocess.SubprocessError):
            pass  # the pins still say what was asked for
    return "; ".join(parts)


# --------------------------------------------------------------------------- the worker


class HeaderError(Exception):
    """A header that does not check; every job under it gets ``verifier_error``."""


@dataclass(frozen=True)
class LeanSettings:
    """What every worker of one verifier shares."""

    argv: tuple[str, ...]
    lean_project: Path
    memory_limit_mb: int
    timeout_s: float
    header_timeout_s: float
    assistant_version: str


class LeanWorker:
    """One REPL with one header run as its base environment: a ``stp.verify.pool`` worker.

    A job under another header replaces the process (imports cannot be undone in a REPL);
    the pool keeps jobs with this header coming and gives up least recently used headers
    first. A timeout or a crash that its retry did not mend leaves no process running, and
    the pool retires the worker."""

    def __init__(self, settings: LeanSettings, bad_headers: dict[str, str]) -> None:
        self._settings = settings
        self._bad_headers = bad_headers  # shared by the verifier's workers: each fails once
        self._repl: LeanRepl | None = None
        self._header: str | None = None
        self._base_env = 0

    @property
    def healthy(self) -> bool:
        return self._repl is not None

    def close(self) -> None:
        if self._repl is not None:
            self._repl.close()
        self._repl = None
        self._header = None

    def _load(self, header: str) -> LeanRepl:
        """A REPL whose base environment is ``header`` (normalised), started if need be."""
        if self._repl is not None and self._header == header:
            return self._repl
        self.close()
        if header in self._bad_headers:
            raise HeaderError(self._bad_headers[header])
        settings = self._settings
        repl = LeanRepl(settings.argv, settings.lean_project, settings.memory_limit_mb)
        try:
            response = repl.request({"cmd": header}, timeout=settings.header_timeout_s)
        except BaseException:
            repl.close()
            raise
        verdict, detail = _judge(response)
        if verdict is not Verdict.PROVED:
            repl.close()
            if verdict is Verdict.VERIFIER_ERROR:
                raise ReplCrashed(f"header: {detail}")
            self._bad_headers[header] = f"header does not check: {detail}"
            raise HeaderError(self._bad_headers[header])
        self._repl, self._header, self._base_env = repl, header, int(response["env"])
        return repl

    def check(self, job: VerifyJob) -> VerifyResult:
        """Check one job; every outcome is a result."""
        result = Checking(job, BACKEND, self._settings.assistant_version).result
        reason = banned_text(job.proof)
        cited = LEAN.cited(job.proof, job.forbidden_names)
        if cited is not None:
            reason = f"the proof cites {cited}, the target's own library copy"
        if reason is not None:
            return result(Verdict.UNSOUND, reason)
        name = lean_declaration_name(job.formal_statement)
        if name is None:  # nothing for #print axioms to name
            return result(
                Verdict.VERIFIER_ERROR,
                f"statement declares no named theorem: {job.formal_statement[:60]!r}",
            )
        header = normalise_header(job.header)
        crash = ""
        for _ in range(2):  # a crash is retried once, on a fresh REPL
            try:
                repl = self._load(header)
            except HeaderError as exc:
                return result(Verdict.VERIFIER_ERROR, str(exc))
            except (ReplCrashed, ReplTimedOut, OSError) as exc:
                crash = f"starting the REPL failed: {exc}"
                continue
            try:
                return result(*self._run(repl, job, name))
            except ReplTimedOut:
                self.close()
                return result(Verdict.TIMEOUT, f"no answer within {self._settings.timeout_s:g} s")
            except ReplCrashed as exc:
                self.close()
                crash = f"REPL crashed: {exc}"
        return result(Verdict.VERIFIER_ERROR, crash)

    def _run(
        self, repl: LeanRepl, job: VerifyJob, name: str
    ) -> tuple[Verdict, str, tuple[Message, ...], tuple[str, ...]]:
        timeout = self._settings.timeout_s
        command = LEAN.assemble("", job.formal_statement, job.proof)
        response = repl.request({"cmd": command, "env": self._base_env}, timeout)
        proof_line = LEAN.assemble("", job.formal_statement, "").count("\n") + 1
        messages = messages_of(response, proof_line)
        verdict, detail = _judge(response)
        if verdict is not Verdict.PROVED:
            return verdict, detail, messages, ()
        follow_up = repl.request(
            {"cmd": follow_up_command(job.formal_statement, name), "env": int(response["env"])},
            timeout,
        )
        verdict, detail, axioms = judge_follow_up(follow_up, name)
        return verdict, detail, messages, axioms


def make_backend(config: VerificationConfig) -> PoolVerifier:
    """The Lean verifier: a pool of warm REPL workers (registered in ``stp.verify.backends``)."""
    argv = tuple(shlex.split(config.repl_cmd))
    lean_project = Path(config.lean_project).resolve()
    if not lean_project.is_dir():
        raise VerifierUnavailableError(f"Lean project {lean_project} not found: {INSTALL_HINT}")
    if not argv or not program_found(argv[0], lean_project):
        raise VerifierUnavailableError(
            f"Lean REPL command {config.repl_cmd!r} not found: {INSTALL_HINT}"
        )
    settings = LeanSettings(
        argv=argv,
        lean_project=lean_project,
        memory_limit_mb=config.memory_limit_mb,
        timeout_s=config.timeout_s,
        header_timeout_s=config.header_timeout_s,
        assistant_version=assistant_version(lean_project, config.repl_cmd),
    )
    bad_headers: dict[str, str] = {}
    return PoolVerifier(
        BACKEND,
        settings.assistant_version,
        lambda: LeanWorker(settings, bad_headers),
        default_workers(config.workers),
        config.jobs_per_worker,
    )
