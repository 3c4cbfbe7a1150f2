"""Isabelle backend: proofs checked by an Isabelle server, one warm session per worker.

    with make_verifier(VerificationConfig(backend="isabelle")) as verifier:
        results = verifier.verify(jobs)      # exactly one VerifyResult per job, in job order

or from the shell: ``stp verify --backend isabelle proofs.jsonl --out results.jsonl``. Each
worker starts ``isabelle server`` (``verification.isabelle_cmd``) and one PIDE session of
``verification.isabelle_session``, found in ``verification.isabelle_dir`` besides the
distribution (``isabelle/ROOT`` defines ``STP_MiniF2F``, a heap with everything the miniF2F
headers import; ``scripts/setup_isabelle.sh`` installs Isabelle and builds it). The protocol
is in ``stp.verify.isabelle_server``.

How one job is checked:

1. A text pre-filter, on the proof with comments removed and strings and cartouches emptied:
   ``sorry`` or ``oops`` is ``incomplete``; a command that is not a proof command
   (``lemma``, ``definition``, ``axiomatization``, ``end``, ...) or any ML (``ML``,
   ``ML_prf``, ``setup``, ``method_setup``, ``oracle``, ...) is ``unsound``. A proof only
   proves the statement: nothing after it may change the theory or run code that could
   rewrite the checks below.
2. The first job under a header loads it (``verification.header_timeout_s``): a theory of the
   header alone, so its imports enter the session once and a header that does not check
   fails all its jobs at once.
3. The job's theory is the header (under a fresh theory name), an ``ML`` line that counts
   the theory's axioms, the dataset's statement, the proof, a theory-level sentinel command,
   the check, and ``end``. ``use_theories`` runs it and ``purge_theories`` drops it.
4. The verdict comes from the messages by line: the first error above the statement means the
   header is broken (``verifier_error``); in the proof, ``failed``; at the sentinel (a
   theory-level command, illegal while a proof is open), ``failed``: the proof did not
   finish; in the check, ``verifier_error``. Without errors, the check's own line, tagged with
   a nonce the proof cannot know, decides: the named theorem exists, depends on no oracle
   (``skip_proof``, Isabelle's sorry, is ``incomplete``; the code generator's ``eval`` or any
   other is ``unsound``) and the theory has no more axioms than its header made.

The worker is ``stp.verify.worker``'s template (screen, cited names, header with a shared
bad-header cache, retries). A timeout kills the server's process group (the JVM and Poly/ML)
and answers ``timeout``; the next job starts a fresh server. A crash is retried once on a
fresh server, then answers ``verifier_error``; a server that ran out of memory
(``OutOfMemoryError``) is retried up to ``verification.resource_retries`` times, then answers
``resource_limit``.

No Isabelle can be installed where this was written: the backend is tested against a
scripted stand-in server that speaks the protocol of the system manual
(``tests/fake_isabelle.py``), and by live tests marked ``isabelle`` where ``isabelle`` is
found. The ML of the check uses long-standing Isabelle/ML functions (``Global_Theory.get_thms``,
``Thm_Deps.all_oracles``, ``Theory.axioms_of``) but has not run on a real Isabelle yet: if it
breaks, every job says ``verifier_error: the soundness check failed``, never ``proved``.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stp.config import VerificationConfig
from stp.errors import VerifierUnavailableError
from stp.languages.isabelle import ISABELLE
from stp.verify.isabelle_server import IsabelleServer, ServerCrashed, ServerTimedOut, TaskFailed
from stp.verify.pool import PoolVerifier, normalise_header
from stp.verify.process import program_found
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

BACKEND = "isabelle"
INSTALL_HINT = (
    "install Isabelle with scripts/setup_isabelle.sh (or set verification.isabelle_cmd to "
    "the isabelle launcher)"
)

# Commands a proof may not contain. Isabelle reserves command keywords in its outer syntax,
# so one of these words outside comments, strings and cartouches is that command.
_INCOMPLETE_COMMANDS = frozenset({"sorry", "oops"})
_BANNED_COMMANDS = frozenset(
    {
        # theory-level: statements, definitions, axioms, notation, contexts, code generation
        "theorem", "lemma", "corollary", "proposition", "schematic_goal", "lemmas",
        "theorems", "named_theorems", "declare", "definition", "abbreviation", "fun",
        "function", "primrec", "primcorec", "datatype", "codatatype", "record", "typedef",
        "type_synonym", "typedecl", "consts", "axiomatization", "axioms", "inductive",
        "inductive_set", "coinductive", "coinductive_set", "termination", "locale",
        "context", "begin", "end", "theory", "class", "subclass", "instantiation",
        "instance", "interpretation", "global_interpretation", "sublocale", "bundle",
        "unbundle", "notation", "no_notation", "type_notation", "no_type_notation",
        "syntax", "no_syntax", "translations", "no_translations", "hide_const", "hide_fact",
        "hide_type", "hide_class", "default_sort", "nonterminal", "judgment", "export_code",
        "code_printing", "code_identifier", "code_reserved", "code_datatype", "code_thms",
        "export_generated_files", "compile_generated_files", "generate_file",
        "external_file", "experiment", "overloading", "quickcheck_params", "nitpick_params",
        # ML, anywhere: it could add theorems without the kernel or rewrite the checks
        "ML", "ML_prf", "ML_val", "ML_command", "ML_file", "ML_file_debug",
        "ML_file_no_debug", "ML_export", "ML_import", "SML_file", "SML_file_debug",
        "SML_file_no_debug", "SML_import", "SML_export", "setup", "local_setup",
        "method_setup", "attribute_setup", "simproc_setup", "declaration",
        "syntax_declaration", "parse_ast_translation", "parse_translation",
        "print_translation", "typed_print_translation", "print_ast_translation", "oracle",
    }
)  # fmt: skip
_WORD = re.compile(r"(?<![\w'.])[A-Za-z_][\w']*(?![\w'.])")
_THEORY_NAME = re.compile(r'(?P<keyword>\btheory\s+)(?P<name>"[^"]*"|[^\s"]+)')
_CHECK_REPLY = re.compile(
    r"STP_CHECK (?P<nonce>\w+) (?P<verdict>OK|ORACLES|AXIOMS)(?P<rest>.*)", re.DOTALL
)
_SKIP_PROOF_ORACLE = "skip_proof"


# ----------------------------------------------------------------------------- theories


def banned_text(proof: str) -> tuple[Verdict, str] | None:
    """The verdict for a proof the pre-filter rejects, and why; None when it passes."""
    words = set(_WORD.findall(ISABELLE.code(proof)))
    if incomplete := sorted(words & _INCOMPLETE_COMMANDS):
        return Verdict.INCOMPLETE, f"proof contains {incomplete[0]}"
    if banned := sorted(words & _BANNED_COMMANDS):
        return Verdict.UNSOUND, f"not a proof command: {banned[0]}"
    return None


def rename_theory(header: str, name: str) -> str:
    """``header`` declaring theory ``name``: every job's theory needs a name of its own, and
    the file it is read from must be called after it."""
    renamed, count = _THEORY_NAME.subn(lambda m: m.group("keyword") + name, header, count=1)
    if count != 1:
        raise ValueError(f"header declares no theory: {header[:80]!r}")
    return renamed


@dataclass(frozen=True)
class JobTheory:
    """The theory text of one job, and the lines (1-based) where its parts start."""

    name: str
    text: str
    nonce: str
    statement_line: int
    proof_line: int
    sentinel_line: int
    check_line: int


def job_theory(header: str, formal_statement: str, proof: str, theorem: str) -> JobTheory:
    """The theory that checks ``proof`` of ``formal_statement`` (whose theorem is named
    ``theorem``) under ``header``; see the module docstring for its parts."""
    nonce = uuid.uuid4().hex[:16]
    name = f"Stp_Job_{nonce}"
    before = (
        f"{rename_theory(header, name).rstrip()}\n\n"
        f"ML \\<open>val stp_axioms_{nonce} = length (Theory.axioms_of @{{theory}})\\<close>\n\n"
    )
    statement = f"{formal_statement.rstrip()}\n"
    body = f"{proof.rstrip()}\n\n"
    sentinel = "ML \\<open>\\<close>\n\n"
    check = (
        "ML_val \\<open>\n"
        "  let\n"
        f'    val thms = Global_Theory.get_thms @{{theory}} "{theorem}";\n'
        "    val oracles = Thm_Deps.all_oracles thms;\n"
        "    val verdict =\n"
        '      if not (null oracles) then "ORACLES " ^\n'
        "        Pretty.string_of (Thm_Deps.pretty_thm_oracles @{context} thms)\n"
        f"      else if length (Theory.axioms_of @{{theory}}) <> stp_axioms_{nonce}\n"
        '      then "AXIOMS" else "OK";\n'
        f'  in writeln ("STP_CHECK {nonce} " ^ verdict) end\n'
        "\\<close>\n\n"
        "end\n"
    )
    lines = [before, statement, body, sentinel, check]
    starts = [1]
    for part in lines[:-1]:
        starts.append(starts[-1] + part.count("\n"))
    return JobTheory(
        name=name,
        text="".join(lines),
        nonce=nonce,
        statement_line=starts[1],
        proof_line=starts[2],
        sentinel_line=starts[3],
        check_line=starts[4],
    )


def header_theory(header: str) -> tuple[str, str]:
    """Name and text of a theory of ``header`` alone: it loads the header's imports."""
    name = f"Stp_Header_{uuid.uuid4().hex[:16]}"
    return name, f"{rename_theory(header, name).rstrip()}\n\nend\n"


# ----------------------------------------------------------------------------- verdicts


def _line(message: dict[str, Any]) -> int | None:
    line = (message.get("pos") or {}).get("line")
    return line if isinstance(line, int) else None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _node(result: dict[str, Any], theory: str) -> dict[str, Any] | None:
    """The result of theory ``theory`` among the nodes (theory names are session-qualified)."""
    for node in result.get("nodes", []):
        if str(node.get("theory_name", "")).rsplit(".", 1)[-1] == theory:
            return node
    return None


def messages_of(node: dict[str, Any], proof_line: int) -> tuple[Message, ...]:
    """The node's messages; lines from ``proof_line`` on are renumbered relative to the proof."""
    out = []
    for m in node.get("messages", []):
        line = _line(m)
        if line is not None and line >= proof_line:
            line = line - proof_line + 1
        kind = str(m.get("kind", ""))
        severity = {"writeln": "info"}.get(kind, kind)
        out.append(Message(severity=severity, text=str(m.get("message", "")), line=line))
    return tuple(out)


def judge(result: dict[str, Any], theory: JobTheory) -> tuple[Verdict, str, tuple[str, ...]]:
    """Verdict, reason and oracles of a job from the ``use_theories`` result (the FINISHED
    payload: ``ok``, ``errors``, ``nodes`` with ``status`` and ``messages``)."""
    node = _node(result, theory.name)
    if node is None:
        errors = result.get("errors") or []
        detail = _first_line(str(errors[0].get("message", ""))) if errors else "no node"
        return Verdict.VERIFIER_ERROR, f"no result for theory {theory.name}: {detail}", ()
    messages = node.get("messages", [])
    errors = [m for m in messages if m.get("kind") == "error"]
    if errors:
        # Unknown lines count as the proof's: only our own lines may blame the checker.
        first = min(errors, key=lambda m: _line(m) or theory.proof_line)
        line = _line(first) or theory.proof_line
        text = _first_line(str(first.get("message", "")))
        if line < theory.statement_line:
            return Verdict.VERIFIER_ERROR, f"header does not check: {text}", ()
        if line < theory.sentinel_line:
            return Verdict.FAILED, text, ()
        if line < theory.check_line:
            return Verdict.FAILED, f"the proof does not finish: {text}", ()
        return Verdict.VERIFIER_ERROR, f"the soundness check failed: {text}", ()
    status = node.get("status", {})
    if not result.get("ok", False) or not status.get("ok", False):
        errors = result.get("errors") or []
        detail = _first_line(str(errors[0].get("message", ""))) if errors else str(status)
        return Verdict.FAILED, detail, ()
    if status.get("canceled") or not status.get("consolidated", False):
        return Verdict.VERIFIER_ERROR, f"the theory was not finished: {status}", ()
    # The reply counts from the check's lines only (Isabelle may place it at the command or
    # inside its ML text); the nonce keeps the proof from printing a look-alike anyway.
    replies = [
        match
        for m in messages
        if m.get("kind") == "writeln"
        and (_line(m) or theory.check_line) >= theory.check_line
        and (match := _CHECK_REPLY.fullmatch(str(m.get("message", "")).strip()))
        and match.group("nonce") == theory.nonce
    ]
    if len(replies) != 1:
        return Verdict.VERIFIER_ERROR, f"expected one check reply, got {len(replies)}", ()
    reply = replies[0]
    if reply.group("verdict") == "OK":
        return Verdict.PROVED, "", ()
    if reply.group("verdict") == "AXIOMS":
        return Verdict.UNSOUND, "the proof added axioms to the theory", ()
    oracles = tuple(_oracle_names(reply.group("rest")))
    if any(name.rsplit(".", 1)[-1] == _SKIP_PROOF_ORACLE for name in oracles):
        return Verdict.INCOMPLETE, "depends on skip_proof (sorry)", oracles
    return Verdict.UNSOUND, f"depends on oracles: {', '.join(oracles) or '?'}", oracles


def _oracle_names(text: str) -> list[str]:
    """Oracle names in ``thm_oracles`` output (``oracles: Pure.skip_proof ...``), in order,
    without repeats."""
    body = text.split(":", 1)[-1]
    return list(dict.fromkeys(re.findall(r"[A-Za-z_][\w.']*", body)))


# --------------------------------------------------------------------------- the worker


@dataclass(frozen=True, kw_only=True)
class IsabelleSettings(WorkerSettings):
    """What every worker of one verifier shares."""

    session: str
    session_dirs: tuple[str, ...]


def _crash(stage: str, exc: Exception, server: IsabelleServer | None) -> Crashed:
    """A failure of the server, as the worker template retries it: a resource failure when it
    said it ran out of memory or threads (the JVM's ``OutOfMemoryError``, Poly/ML's), in the
    error or in what the server printed."""
    said = resource_failure(f"{exc}\n{server.output() if server is not None else ''}")
    if said is not None:
        return Crashed(f"{stage}: {exc}: {said}", resource=True)
    return Crashed(f"{stage}: {exc}")


class IsabelleWorker(ProcessWorker):
    """One Isabelle server with one PIDE session (the worker template: ``stp.verify.worker``)."""

    backend = BACKEND
    language = ISABELLE
    settings: IsabelleSettings

    def __init__(self, settings: IsabelleSettings, bad_headers: dict[str, str]) -> None:
        super().__init__(settings, bad_headers)
        self._scratch = Path(tempfile.mkdtemp(prefix="stp-isabelle-"))
        self._server: IsabelleServer | None = None
        self._session_id = ""
        self._headers: set[str] = set()  # headers whose imports the session has loaded

    @property
    def healthy(self) -> bool:
        return self._server is not None

    def screen(self, proof: str) -> tuple[Verdict, str] | None:
        return banned_text(proof)

    def prepare(self, job: VerifyJob, theorem: str) -> Any:
        try:
            return job_theory(
                normalise_header(job.header), job.formal_statement, job.proof, theorem
            )
        except ValueError as exc:
            raise Judged(Verdict.VERIFIER_ERROR, str(exc)) from exc

    def reset(self) -> None:
        if self._server is not None:
            self._server.close()
        self._server = None
        self._headers.clear()

    def close(self) -> None:
        self.reset()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def _start(self) -> IsabelleServer:
        if self._server is not None:
            return self._server
        settings = self.settings
        self._scratch.mkdir(parents=True, exist_ok=True)
        try:
            server = IsabelleServer(
                settings.argv,
                self._scratch,
                settings.memory_limit_mb,
                settings.header_timeout_s,
                log=self._scratch / "server.log",
            )
        except ServerCrashed as exc:  # the JVM reserves much address space up front
            raise ServerCrashed(
                f"{exc}; if it ran out of address space, raise verification.memory_limit_mb "
                f"(now {settings.memory_limit_mb}; Isabelle wants 16384 or more)"
            ) from exc
        try:
            started = server.task(
                "session_start",
                {"session": settings.session, "dirs": list(settings.session_dirs)},
                settings.header_timeout_s,
            )
        except TaskFailed as exc:
            server.close()
            raise ServerCrashed(
                f"session {settings.session} did not start: {exc}; server output: "
                f"{server.output()[-300:]!r}"
            ) from exc
        except BaseException:
            server.close()
            raise
        self._server, self._session_id = server, str(started["session_id"])
        return server

    def _use(self, server: IsabelleServer, name: str, text: str, timeout: float) -> dict[str, Any]:
        """Run one theory in a fresh directory, drop it from the session, delete the folder."""
        folder = Path(tempfile.mkdtemp(dir=self._scratch))
        try:
            (folder / f"{name}.thy").write_text(text, encoding="utf-8")
            where = {"session_id": self._session_id, "master_dir": str(folder)}
            result = server.task(
                "use_theories",
                {**where, "theories": [name], "unicode_symbols": False, "check_delay": 0.1},
                timeout,
            )
            server.command("purge_theories", {**where, "theories": [name]}, timeout)
            return result
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def load(self, header: str) -> None:
        """A server whose session has ``header``'s imports loaded."""
        try:
            server = self._start()
            if header in self._headers:
                return
            name, text = header_theory(header)
            result = self._use(server, name, text, self.settings.header_timeout_s)
        except (ServerCrashed, ServerTimedOut, TaskFailed, OSError) as exc:
            raise _crash("starting the Isabelle session failed", exc, self._server) from exc
        node = _node(result, name)
        errors = [m for m in (node or {}).get("messages", []) if m.get("kind") == "error"]
        errors += result.get("errors") or []
        if node is None or errors or not result.get("ok", False):
            detail = _first_line(str(errors[0].get("message", ""))) if errors else "no result"
            raise HeaderError(f"header does not check: {detail}")
        self._headers.add(header)

    def run(self, job: VerifyJob, prepared: Any) -> Outcome:
        theory: JobTheory = prepared
        assert self._server is not None
        try:
            used = self._use(self._server, theory.name, theory.text, self.settings.timeout_s)
        except ServerTimedOut as exc:
            raise TimedOut(f"no answer within {self.settings.timeout_s:g} s") from exc
        except (ServerCrashed, TaskFailed, OSError) as exc:
            raise _crash("Isabelle server crashed", exc, self._server) from exc
        verdict, detail, oracles = judge(used, theory)
        node = _node(used, theory.name) or {}
        return verdict, detail, messages_of(node, theory.proof_line), oracles


def assistant_version(argv: tuple[str, ...]) -> str:
    """``isabelle version`` (``Isabelle2024``); VerifierUnavailableError when it does not run."""
    try:
        out = subprocess.run([*argv, "version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise VerifierUnavailableError(f"`{shlex.join(argv)} version` failed: {exc}") from exc
    if out.returncode != 0 or not out.stdout.strip():
        raise VerifierUnavailableError(
            f"`{shlex.join(argv)} version` failed ({out.returncode}): "
            f"{(out.stderr or out.stdout).strip()[:200]}; {INSTALL_HINT}"
        )
    return out.stdout.strip().splitlines()[0]


def make_backend(config: VerificationConfig) -> PoolVerifier:
    """The Isabelle verifier: a pool of warm server workers (registered in
    ``stp.verify.backends``)."""
    argv = tuple(shlex.split(config.isabelle_cmd))
    if not argv or not program_found(argv[0], Path.cwd()):
        raise VerifierUnavailableError(
            f"Isabelle launcher {config.isabelle_cmd!r} not found: {INSTALL_HINT}"
        )
    if "/" in argv[0]:  # the server runs in a scratch folder: a relative path would break
        argv = (str(Path(argv[0]).resolve()), *argv[1:])
    dirs: tuple[str, ...] = ()
    if config.isabelle_dir:
        folder = Path(config.isabelle_dir).resolve()
        if not (folder / "ROOT").is_file():
            raise VerifierUnavailableError(
                f"verification.isabelle_dir: no ROOT file in {folder} (set it to '' for none)"
            )
        dirs = (str(folder),)
    settings = IsabelleSettings(
        argv=argv,
        session=config.isabelle_session,
        session_dirs=dirs,
        memory_limit_mb=config.memory_limit_mb,
        timeout_s=config.timeout_s,
        header_timeout_s=config.header_timeout_s,
        assistant_version=assistant_version(argv),
        resource_retries=config.resource_retries,
    )
    return worker_pool(IsabelleWorker, settings, config)
