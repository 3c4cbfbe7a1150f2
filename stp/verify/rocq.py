"""Rocq (Coq) backend: two independent lines of checks, every proof text treated as hostile.

    with make_verifier(VerificationConfig(backend="rocq")) as verifier:
        results = verifier.verify(jobs)      # exactly one VerifyResult per job, in job order

**What runs.** ``stp.verify.rocq_proof`` cuts the proof into sentences by Coq's lexer rules
and rebuilds each tactic sentence as ``( <tactic> ) .``: inside the parentheses Coq's grammar
accepts a tactic and nothing else, so no vernacular command of the proof can run. That rebuilt
text, and nothing else, is what both lines below execute.

**First line: a warm ``coqtop -q -emacs`` per worker**, one job at a time. It loads each
header once (a header sharing its first sentences with the last one goes back to the state
after them and loads only the rest) and elaborates each statement once, remembering the
state with its proof just opened; the pool hands it the jobs of one statement back to back.
Every exchange ends with ``Check <marker>.`` for a fresh random marker: coqtop answers it with
an error naming the marker and then a prompt holding the state number and the open proof.
The proof cannot know the marker, so that prompt (the *trusted prompt*) is coqtop's own; the
verdict is read from trusted prompts alone, never from text the proof could have printed:

1. once per statement: ``BackTo <post-header state>. Definition stp_stmt_N : Type :=
   (<statement as one type>). Module Cand_N. <statement> Proof.``; the trusted prompt must
   show the theorem's proof open (else the statement does not elaborate: ``ill_typed``).
2. each sentence in its own exchange: it went through if and only if the state changed. The
   first that fails makes the proof ``failed``, as ``coqc`` would stop there. A proof whose
   output runs past ``_OUTPUT_LIMIT`` bytes is ``failed``: nothing of it is read.
3. ``Qed.`` must close the proof; ``End Cand_N.`` and ``Definition stp_chk_N : stp_stmt_N :=
   @Cand_N.<name>.`` must each go through: the kernel accepted a theorem whose type is the
   statement as elaborated before any proof text ran, in the clean top-level environment.
4. ``BackTo <post-statement state>``: the trusted prompt must show that state with the proof
   open, else the worker is retired. ``BackTo`` restores the whole environment, and coqtop
   never reuses a state number.

**Second line: the kernel, in fresh processes, batched** (``KernelCheck``). The proofs the
first line accepted in one ``verify`` call are compiled again by ``coqc`` in one file, each
header in a module of its own, each proof in its candidate module, ending with
``Redirect "stp_assumptions" Print Assumptions`` of a definition bundling every candidate, and
``Locate`` of each allowed axiom (both written to files the proofs cannot write). Then
``coqchk -norec`` re-checks the compiled file with its own kernel and must report no constant
relying on type-in-type, unsafe (co)fixpoints or assumed positivity: the constructions
``Print Assumptions`` misses (functors applied with guard or universe checking off, Coq issues
12155, 16646, 22366) do not pass it. Every assumption must be a fully qualified axiom from
``ALLOWED_AXIOMS``. ``Print Assumptions`` costs as much for the bundle as for one theorem,
which is what makes the batch cheap; when a batch shows a problem, each proof is checked
alone the same way (its header at top level), and only the proofs at fault lose ``proved``.

coqtop runs in a directory of its own, emptied after every job. A proof still running at
``verification.timeout_s`` is interrupted (SIGINT, coqtop's Ctrl-C) and the worker goes back
to step 4; one that does not come back within a few seconds is killed with its process group
and replaced. A resource failure while loading a header (out of memory) is retried once on a
fresh coqtop and never remembered as a bad header.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from stp.config import VerificationConfig
from stp.errors import VerifierUnavailableError
from stp.languages.rocq import ROCQ, THEOREM_HEAD, rocq_sentences, rocq_strip_comments
from stp.verify.pool import PoolVerifier, default_workers
from stp.verify.process import kill_group, run_bounded, spawn
from stp.verify.rocq_proof import ProofSentence, proof_sentences, single_sentence
from stp.verify.types import Checking, Message, Verdict, VerifyJob, VerifyResult
from stp.verify.worker import Judged, admit

BACKEND = "rocq"
INSTALL_HINT = "install Rocq/Coq with `apt-get install -y coq` (or set verification.coqtop)"

# Axioms a proof may depend on, fully qualified. The standard library's real numbers rest on
# the first three. The others are classical logic, extensionality, proof irrelevance and the
# classical description and choice axioms: all hold in the set-theoretic model the real
# numbers' axioms assume (Lean's Mathlib allows the same strength: Classical.choice). Not
# allowed: anything else, e.g. Coq.Compat.AdmitAxiom.proof_admitted (False) or an axiom a
# header declares.
ALLOWED_AXIOMS: frozenset[str] = frozenset(
    {
        "Coq.Reals.ClassicalDedekindReals.sig_forall_dec",
        "Coq.Reals.ClassicalDedekindReals.sig_not_dec",
        "Coq.Logic.FunctionalExtensionality.functional_extensionality_dep",
        "Coq.Logic.Classical_Prop.classic",
        "Coq.Logic.PropExtensionality.propositional_extensionality",
        "Coq.Logic.ProofIrrelevance.proof_irrelevance",
        "Coq.Logic.Eqdep.Eq_rect_eq.eq_rect_eq",
        "Coq.Logic.JMeq.JMeq_eq",
        "Coq.Logic.Description.constructive_definite_description",
        "Coq.Logic.IndefiniteDescription.constructive_indefinite_description",
        "Coq.Logic.ClassicalEpsilon.constructive_indefinite_description",
        "Coq.Logic.Epsilon.epsilon_statement",
        "Coq.Logic.ClassicalUniqueChoice.dependent_unique_choice",
        "Coq.Logic.RelationalChoice.relational_choice",
    }
)

_OUTPUT_LIMIT = 4 * 1024 * 1024  # bytes of output one exchange may produce; more is `failed`
_INTERRUPT_GRACE_S = 3.0  # after a timeout, how long interrupts may take to bring coqtop back
_INTERRUPT_STALL_S = 0.5  # ... and how long a later sentence may run before it is interrupted
_MAX_MESSAGE_CHARS = 2000

_PROMPT = re.compile(rb"<prompt>(.*?)</prompt>", re.S)
_PROMPT_STATE = re.compile(r"^\S+ < (\d+) \|([^|]*)\| \d+ < $")  # state, open proofs
_TAG = re.compile(r"</?(?:infomsg|warning)>")
_INFOMSG = re.compile(r"<infomsg>.*?</infomsg>", re.S)
_LOCATION = re.compile(r"Toplevel input, characters (\d+)-(\d+):")
_STATEMENT = re.compile(rf"^\s*{THEOREM_HEAD}")
# coqtop survives a stack overflow (a failed proof, as coqc says) but not running out of memory.
_OUT_OF_MEMORY = "Out of memory"


class _Timeout(Exception):
    def __init__(self, recovered: bool) -> None:
        super().__init__("recovered" if recovered else "not recovered")
        self.recovered = recovered  # interrupted, and every sentence sent has been answered


class _Crashed(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ParsedStatement:
    name: str
    type: str  # the statement as one type: binders before the colon become a forall


def parse_statement(formal_statement: str) -> ParsedStatement:
    """``Theorem name binders : type.`` -> name and ``forall binders, type``."""
    text = rocq_strip_comments(formal_statement).strip()
    match = _STATEMENT.match(text)
    if match is None or not text.endswith("."):
        raise ValueError(f"not a 'Theorem <name> ... : <type>.' statement: {text[:80]!r}")
    rest = text[match.end() : -1]
    depth = 0
    for i, c in enumerate(rest):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == ":" and depth == 0 and rest[i + 1 : i + 2] not in (":", "="):
            binders, body = rest[:i].strip(), rest[i + 1 :].strip()
            return ParsedStatement(
                match.group("name"), f"forall {binders}, {body}" if binders else body
            )
    raise ValueError(f"no ':' before the statement's type: {text[:80]!r}")


def statement_definition(name: str, statement: ParsedStatement) -> str:
    """The statement as a definition of type ``Type``: elaborated against a sort, as a theorem's
    statement is (``type_scope``, coercions to a sort), with implicit binders kept."""
    return f"Definition {name} : Type := ({statement.type})."


# ------------------------------------------------------------------ coqtop session


@dataclass(frozen=True, slots=True)
class _Reply:
    """What coqtop printed for one exchange. ``state`` and ``open_proof`` come from the
    trusted prompt; ``text`` is free text (the proof may have printed it): messages only."""

    text: str
    state: int
    open_proof: str
    truncated: bool

    def responses(self) -> list[str]:
        """The answer to each sentence sent (free text), without the marker's."""
        return [_decode(r) for r in _PROMPT.split(self.text.encode())[0::2][:-2]]


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _error_text(response: str) -> str:
    text = _TAG.sub("", response)
    at = text.find("Error:")
    return " ".join(text[at + len("Error:") :].split()) if at != -1 else " ".join(text.split())


class _Coqtop:
    """One coqtop process in its own process group, spoken to through its pipes."""

    def __init__(self, argv: list[str], cwd: str, memory_limit_mb: int) -> None:
        self.proc = spawn(argv, cwd, memory_limit_mb)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        os.set_blocking(self._in, False)

    def exchange(self, text: str, timeout_s: float) -> _Reply:
        """Send ``text`` followed by a marker sentence; return coqtop's reply up to the prompt
        after the marker's answer. Raises ``_Timeout`` or ``_Crashed``."""
        marker = f"stp_mark_{secrets.token_hex(8)}".encode()
        pending = text.encode() + b"\nCheck " + marker + b".\n"
        deadline = time.monotonic() + timeout_s
        give_up: float | None = None  # set once the deadline passed and interrupts began
        last_progress = 0.0  # when coqtop last answered a sentence or was interrupted
        out = bytearray()
        dropped = 0  # bytes of a flood not kept (only the window where the marker can be)
        marker_at = -1
        while True:
            now = time.monotonic()
            if now >= deadline:
                # Interrupt the sentence running (coqtop answers "User interrupt" and reads
                # on), and each later one that stalls, until the marker answers: the worker
                # stays warm. An interrupt between sentences can kill coqtop, and one that
                # does not come back in time is killed by the caller: a restart either way.
                give_up = give_up if give_up is not None else now + _INTERRUPT_GRACE_S
                if now >= give_up:
                    raise _Timeout(recovered=False)
                if now - last_progress >= _INTERRUPT_STALL_S:
                    os.kill(self.proc.pid, signal.SIGINT)
                    last_progress = now
            wait = _INTERRUPT_STALL_S / 5 if give_up is not None else deadline - now
            writers = [self._in] if pending else []
            readable, writable, _ = select.select([self._out], writers, [], wait)
            if writable:
                try:
                    pending = pending[os.write(self._in, pending) :]
                except BlockingIOError:
                    pass  # the pipe filled up between select and write: try again later
                except BrokenPipeError:
                    raise _Crashed("coqtop closed its input") from None
            if not readable:
                continue
            chunk = os.read(self._out, 65536)
            if not chunk and give_up is not None:
                raise _Timeout(recovered=False)
            if not chunk:
                raise _Crashed("coqtop closed its output")
            out += chunk
            if b"</prompt>" in chunk:
                last_progress = time.monotonic()
            if marker_at == -1:
                marker_at = out.find(marker, max(0, len(out) - len(chunk) - len(marker)))
                if marker_at == -1 and len(out) > _OUTPUT_LIMIT:
                    keep = len(marker) + 64  # the marker may straddle two reads
                    dropped += len(out) - keep
                    del out[: len(out) - keep]
            if marker_at != -1 and (end := out.find(b"</prompt>", marker_at)) != -1:
                if give_up is not None:
                    raise _Timeout(recovered=True)
                return self._reply(bytes(out[: end + len(b"</prompt>")]), marker_at, dropped)

    @staticmethod
    def _reply(out: bytes, marker_at: int, dropped: int) -> _Reply:
        trusted = _PROMPT.findall(out, marker_at)
        match = _PROMPT_STATE.match(_decode(trusted[-1])) if trusted else None
        if match is None:
            raise _Crashed(f"unexpected coqtop prompt after the marker: {trusted[-1:]!r}")
        return _Reply(
            _decode(out), int(match.group(1)), match.group(2), dropped + len(out) > _OUTPUT_LIMIT
        )

    def close(self) -> None:
        kill_group(self.proc)


# ------------------------------------------------------------------ first line: the worker


def _sibling(coqtop: str, program: str) -> str:
    """``coqc``/``coqchk`` from the installation ``verification.coqtop`` names."""
    argv = shlex.split(coqtop)
    if argv and "/" in argv[0]:
        return str(Path(argv[0]).with_name(program))
    return program


def coqtop_version(coqtop: str) -> str:
    """The first line of ``coqtop --version``; raises ``VerifierUnavailableError`` without it
    (or without the ``coqc`` and ``coqchk`` installed beside it)."""
    argv = shlex.split(coqtop)
    if not argv or shutil.which(argv[0]) is None:
        raise VerifierUnavailableError(f"{coqtop!r} not found on PATH: {INSTALL_HINT}")
    for program in ("coqc", "coqchk"):
        if shutil.which(_sibling(coqtop, program)) is None:
            raise VerifierUnavailableError(
                f"{program} not found beside {argv[0]!r}: it checks accepted proofs again; "
                f"{INSTALL_HINT}"
            )
    done = subprocess.run(
        [argv[0], "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise VerifierUnavailableError(
            f"{coqtop!r} --version failed ({done.stderr.strip()[:200]}): {INSTALL_HINT}"
        )
    return done.stdout.strip().splitlines()[0]


class RocqWorker:
    """One warm coqtop: the first line (see the module docstring)."""

    def __init__(self, config: VerificationConfig, assistant_version: str) -> None:
        self._config = config
        self._version = assistant_version
        self._argv = [*shlex.split(config.coqtop), "-q", "-emacs"]
        self._root = tempfile.mkdtemp(prefix="stp-rocq-")
        self._coqtop: _Coqtop | None = None
        self._initial_state = 0
        self._header: str | None = None
        self._header_state = 0
        self._header_error = ""
        # The sentences of the headers loaded in turn that still hold: each with its state.
        self._loaded: list[tuple[str, int]] = []
        # The statement whose proof is open in the state jobs start from (step 1).
        self._statement: str | None = None
        self._statement_state = 0
        self._statement_error = ""  # it does not elaborate: the worker stays at the header
        self._module = self._stmt = ""
        self._healthy = True
        self._retry = False  # the job's answer may come from the state of a spent coqtop
        self._died_in_proof = False

    @property
    def healthy(self) -> bool:
        return self._healthy

    def close(self) -> None:
        self._healthy = False
        self._stop()
        shutil.rmtree(self._root, ignore_errors=True)

    def _stop(self) -> None:
        """Kill coqtop; the next job starts a fresh one and loads its header again."""
        if self._coqtop is not None:
            self._coqtop.close()
            self._coqtop = None
        self._header = self._statement = None
        self._loaded = []

    def _start(self) -> _Coqtop:
        if self._coqtop is None:
            self._coqtop = _Coqtop(self._argv, self._root, self._config.memory_limit_mb)
            self._initial_state = self._coqtop.exchange("", self._config.header_timeout_s).state
        return self._coqtop

    def _load_header(self, header: str) -> None:
        """Make the post-``header`` state current (loading it once per worker, from the state
        after the sentences it shares with the last header loaded). A header that runs out of
        memory is loaded once more on a fresh coqtop, and not remembered as bad."""
        for attempt in range(2):
            self._load_header_once(header)
            if _OUT_OF_MEMORY not in self._header_error or attempt:
                break
            self._stop()
        if _OUT_OF_MEMORY in self._header_error:
            self._healthy = False  # this worker's memory is spent; the next job gets another

    def _load_header_once(self, header: str) -> None:
        coqtop = self._start()
        if header == self._header:
            return
        self._header = self._statement = None
        spans, unread = rocq_sentences(header)
        if header[unread:].strip():  # coqtop would read our marker as the end of it
            self._header_error = "it ends inside a sentence, comment or string"
            self._header = header
            return
        sentences = [header[a:b] for a, b in spans]
        shared = 0
        while shared < min(len(sentences), len(self._loaded)) and (
            sentences[shared] == self._loaded[shared][0]
        ):
            shared += 1
        del self._loaded[shared:]  # gone with the BackTo below
        base = self._loaded[-1][1] if self._loaded else self._initial_state
        rest = header[spans[shared - 1][1] :] if shared else header
        reply = coqtop.exchange(f"BackTo {base}.\n{rest}", self._config.header_timeout_s)
        # No proof text has run in this coqtop since its state was restored: every answer is
        # coqtop's own.
        responses = reply.responses()
        errors = [r for r in responses if "Error:" in r]
        self._header_error = _error_text(errors[0]) if errors else ""
        self._header_state = reply.state
        # A prompt after the BackTo, after each sentence and after the marker: when coqtop read
        # the sentences we split, the states after them can start a later header.
        prompts = [_PROMPT_STATE.match(_decode(p)) for p in _PROMPT.findall(reply.text.encode())]
        if not errors and len(prompts) == len(sentences) - shared + 2 and all(prompts):
            states = [int(p.group(1)) for p in prompts[1:-1] if p is not None]
            self._loaded += zip(sentences[shared:], states, strict=True)
        self._header = header if _OUT_OF_MEMORY not in self._header_error else None

    def check(self, job: VerifyJob) -> VerifyResult:
        result = self._check_once(job)
        if self._retry:
            # coqtop ran out of memory or died: once more on a fresh one, so that what an
            # earlier job left in this coqtop decides nothing. The second answer stands (a
            # proof that exhausts memory fails, as it does under coqc).
            self._stop()
            result = self._check_once(job)
            if self._died_in_proof and result.verdict is Verdict.VERIFIER_ERROR:
                detail = "coqtop died running the proof, on a fresh coqtop too (out of memory?)"
                result = dataclasses.replace(result, verdict=Verdict.FAILED, detail=detail)
        return result

    def _check_once(self, job: VerifyJob) -> VerifyResult:
        self._retry = self._died_in_proof = False
        checking = Checking(job, BACKEND, self._version)
        try:
            sentences = proof_sentences(job.proof)  # the screen
            admit(job, ROCQ)
            statement = parse_statement(job.formal_statement)
        except Judged as judged:
            return checking.result(judged.verdict, judged.detail)
        except ValueError as exc:
            return checking.result(Verdict.ILL_TYPED, detail=str(exc))
        if not single_sentence(job.formal_statement):
            detail = "the statement is not exactly one sentence (or holds unusual characters)"
            return checking.result(Verdict.ILL_TYPED, detail=detail)
        try:
            self._load_header(job.header)
        except (_Timeout, _Crashed) as exc:
            self._stop()
            self._retry = isinstance(exc, _Crashed)
            return checking.result(
                Verdict.VERIFIER_ERROR, detail=f"loading the header failed: {exc!r}"
            )
        if self._header_error:
            return checking.result(
                Verdict.VERIFIER_ERROR,
                detail=f"the header does not load: {self._header_error}",
            )
        try:
            if not self._enter_statement(job, statement):
                return checking.result(
                    Verdict.ILL_TYPED,
                    detail=f"the statement does not elaborate: {self._statement_error}",
                )
            result = self._run_job(job, sentences, statement, checking)
            if not self._restore(statement.name):
                self._healthy = False
            return result
        except _Timeout as exc:
            entered = self._statement == job.formal_statement and not self._statement_error
            if not (exc.recovered and self._restore(statement.name if entered else "")):
                self.close()
            return checking.result(
                Verdict.TIMEOUT,
                detail=f"no verdict within {self._config.timeout_s:g} s",
            )
        except _Crashed as exc:
            self._stop()
            self._retry = self._died_in_proof = True
            return checking.result(Verdict.VERIFIER_ERROR, detail=f"coqtop: {exc}")
        finally:
            if self._coqtop is not None:  # close() removed the directory
                _empty_directory(self._root)

    def _enter_statement(self, job: VerifyJob, statement: ParsedStatement) -> bool:
        """1. Make the post-statement state current, elaborating the statement when it is not
        the one the last job restored to; False (with ``_statement_error`` set, back at the
        post-header state) when it does not elaborate."""
        assert self._coqtop is not None
        if job.formal_statement == self._statement:
            return not self._statement_error
        self._statement, self._statement_error = None, ""  # until the trusted prompt answers
        nonce = secrets.token_hex(8)
        module, stmt = f"Cand_{nonce}", f"stp_stmt_{nonce}"
        reply = self._coqtop.exchange(
            f"BackTo {self._header_state}.\n{statement_definition(stmt, statement)}\n"
            f"Module {module}.\n{job.formal_statement}\nProof.",
            self._config.timeout_s,
        )
        errors = [r for r in reply.responses() if "Error:" in r]
        if errors or reply.open_proof != statement.name:
            self._statement_error = _error_text(errors[0]) if errors else "no proof opened"
            if not self._restore():
                raise _Crashed("could not return to the post-header state")
        else:
            self._statement_state, self._module, self._stmt = reply.state, module, stmt
        self._statement = job.formal_statement
        return not self._statement_error

    def _restore(self, open_proof: str = "") -> bool:
        """4. Back to the post-statement state (the post-header state when ``open_proof`` is
        empty); True when the trusted prompt shows that state with that proof open."""
        assert self._coqtop is not None
        target = self._statement_state if open_proof else self._header_state
        try:
            reply = self._coqtop.exchange(f"BackTo {target}.", self._config.header_timeout_s)
        except (_Timeout, _Crashed):
            return False
        return (reply.state, reply.open_proof) == (target, open_proof)

    def _run_job(
        self,
        job: VerifyJob,
        sentences: list[ProofSentence],
        statement: ParsedStatement,
        checking: Checking,
    ) -> VerifyResult:
        assert self._coqtop is not None
        coqtop = self._coqtop
        deadline = time.monotonic() + self._config.timeout_s  # header and statement are free
        state = self._statement_state

        def step(text: str) -> _Reply:
            return coqtop.exchange(text, max(0.0, deadline - time.monotonic()))

        # 2. The proof, one sentence at a time: it went through iff the state changed.
        for sentence in sentences:
            reply = step(sentence.sent)
            if reply.truncated:
                detail = f"the proof printed more than {_OUTPUT_LIMIT} bytes"
                return checking.result(Verdict.FAILED, detail)
            if reply.state == state or reply.open_proof != statement.name:
                self._retry = _OUT_OF_MEMORY in reply.text
                message = _message(job.proof, sentence, reply)
                return checking.result(Verdict.FAILED, message.text, (message,))
            state = reply.state

        # 3. Qed, then the questions: no proof text runs from here on.
        reply = step("Qed.")
        if reply.state == state or reply.open_proof:
            message = _message(job.proof, sentences[-1], reply, located=False)
            detail = f"the proof is not complete: {message.text}"
            return checking.result(Verdict.FAILED, detail, (message,))
        state = reply.state
        reply = step(f"End {self._module}.")
        if reply.state == state or reply.open_proof:
            return checking.result(Verdict.UNSOUND, "the candidate module could not be closed")
        state = reply.state
        reply = step(
            f"Definition stp_chk_{secrets.token_hex(8)} : {self._stmt} := "
            f"@{self._module}.{statement.name}."
        )
        if reply.state == state:
            detail = "the theorem closed is not a proof of the dataset statement"
            return checking.result(Verdict.UNSOUND, detail)
        return checking.result(Verdict.PROVED)


def _message(
    proof: str, sentence: ProofSentence, reply: _Reply, *, located: bool = True
) -> Message:
    """The error coqtop gave for ``sentence`` (free text: shown, never decisive), placed in
    the proof where coqtop's ``characters A-B`` (bytes from the start of the sent text) allow."""
    responses = reply.responses()
    errors = [r for r in responses if "Error:" in r]
    text = _error_text(errors[0] if errors else (responses[0] if responses else ""))
    offset = sentence.start
    location = _LOCATION.search(errors[0]) if errors and located else None
    if location is not None and sentence.body_offset:
        sent_bytes = sentence.sent.encode()
        at = len(sent_bytes[: int(location.group(1))].decode(errors="ignore"))
        offset = min(sentence.end, sentence.body_start + max(0, at - sentence.body_offset))
    line = proof.count("\n", 0, offset) + 1
    column = offset - (proof.rfind("\n", 0, offset) + 1)
    return Message("error", (text or "the sentence failed")[:_MAX_MESSAGE_CHARS], line, column)


def _empty_directory(path: str) -> None:
    """Remove what a proof wrote in coqtop's directory (coqtop's working directory stays)."""
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


# ------------------------------------------------------------------ second line: the kernel


def parse_assumptions(response: str) -> tuple[list[str], str]:
    """Axiom names and the first unsafe line (an unchecked fixpoint, positivity or universe
    constraint, a section variable), from a ``Print Assumptions`` answer."""
    text = _INFOMSG.sub("", response).strip()
    if text == "Closed under the global context":
        return [], ""
    lines = text.splitlines()
    if not lines:
        return [], "no answer"
    if lines[0] != "Axioms:":
        return [], text[:200]
    names = []
    for line in lines[1:]:
        if not line or line[0].isspace():
            continue  # the wrapped type of the previous axiom
        match = re.fullmatch(r"(\S+)(?: : .*)?", line)
        if match is None:
            return [], line
        names.append(match.group(1))
    return names, ""


_SHORTER = re.compile(r"\(shorter name to refer to it in current context is (\S+)\)")
_CHECKER_UNSAFE = (
    "Constants/Inductives relying on type-in-type",
    "Constants/Inductives relying on unsafe (co)fixpoints",
    "Inductives whose positivity is assumed",
)


@dataclass(frozen=True, slots=True)
class KernelVerdict:
    """The second line's word on one proof: None where it confirms ``proved``."""

    verdict: Verdict | None
    detail: str = ""
    axioms: tuple[str, ...] = ()


class KernelCheck:
    """The second line: ``coqc`` and ``coqchk`` in fresh processes, one file per batch."""

    def __init__(self, config: VerificationConfig) -> None:
        argv = shlex.split(config.coqtop)
        self._coqc = [_sibling(config.coqtop, "coqc"), *argv[1:]]
        self._coqchk = [_sibling(config.coqtop, "coqchk"), *_load_path_flags(argv[1:])]
        self._config = config

    def check(self, jobs: Sequence[VerifyJob]) -> list[KernelVerdict]:
        """One verdict per job: all in one file first; each alone when that file fails."""
        if not jobs:
            return []
        seconds = self._config.header_timeout_s + self._config.timeout_s * len(jobs)
        together = self._check_file(jobs, seconds, wrap_headers=True, explain=False)
        if together is not None:
            return [together] * len(jobs)
        limit = self._config.header_timeout_s + self._config.timeout_s
        return [self.check_alone(job, limit) for job in jobs]

    def check_alone(self, job: VerifyJob, timeout_s: float) -> KernelVerdict:
        """``job`` in a file of its own, its header at top level, as ``coqc`` would see it;
        ``timeout`` when ``coqc`` runs past ``timeout_s``."""
        verdict = self._check_file([job], timeout_s, wrap_headers=False, explain=True)
        assert verdict is not None
        return verdict

    def _check_file(
        self, jobs: Sequence[VerifyJob], timeout_s: float, *, wrap_headers: bool, explain: bool
    ) -> KernelVerdict | None:
        """Compile ``jobs`` in one file and check it; the verdict for all of them, or None when
        something failed and ``explain`` is off (the caller then checks each alone)."""
        limit = self._config.memory_limit_mb
        with tempfile.TemporaryDirectory(prefix="stp-rocq-kernel-") as tmp:
            Path(tmp, "Batch.v").write_text(_batch_file(jobs, wrap_headers=wrap_headers))
            code, output = run_bounded(
                [*self._coqc, "-q", *_STP_PATH, "Batch.v"], tmp, limit, timeout_s
            )
            if code is None:
                return KernelVerdict(Verdict.TIMEOUT, "coqc timed out") if explain else None
            if code != 0:
                detail = f"coqc rejects the file: {_tail(output)}"
                return KernelVerdict(Verdict.FAILED, detail) if explain else None
            verdict = _read_modules(Path(tmp), jobs) or _read_assumptions(Path(tmp))
            if verdict.verdict is not None:
                return verdict if explain else None
            argv = [*self._coqchk, "-silent", "-o", *_STP_PATH, "-norec", "STP.Batch"]
            code, output = run_bounded(argv, tmp, limit, timeout_s)
            problem = _checker_problem(code, output)
            if problem:
                return KernelVerdict(Verdict.UNSOUND, f"coqchk: {problem}") if explain else None
            return verdict


_STP_PATH = ("-Q", ".", "STP")  # the batch file's logical path, for coqc and coqchk alike


def _load_path_flags(args: Sequence[str]) -> list[str]:
    """The ``-Q``/``-R`` load-path options among coqtop's extra arguments (coqchk takes those)."""
    flags: list[str] = []
    for i, arg in enumerate(args):
        if arg in ("-Q", "-R") and len(args) >= i + 3:
            flags += args[i : i + 3]
    return flags


def _batch_file(jobs: Sequence[VerifyJob], *, wrap_headers: bool) -> str:
    """The file the second line compiles: every job's proof as the first line ran it."""
    by_header: dict[str, list[int]] = {}
    for index, job in enumerate(jobs):
        by_header.setdefault(job.header, []).append(index)
    parts: list[str] = []
    checks: list[str] = []
    for h, (header, indices) in enumerate(by_header.items()):
        scope = f"STP_H{h}." if wrap_headers else ""
        if wrap_headers:
            parts.append(f"Module STP_H{h}.\n")
        parts.append(f"{header.rstrip()}\n")
        for i in indices:
            job = jobs[i]
            statement = parse_statement(job.formal_statement)
            sentences = "\n".join(s.sent for s in proof_sentences(job.proof))
            parts.append(
                f"{statement_definition(f'stp_stmt_{i}', statement)}\n"
                f"Module Cand_{i}.\n{job.formal_statement}\nProof.\n{sentences}\nQed.\n"
                f'End Cand_{i}.\nRedirect "stp_module_{i}" Print Module Cand_{i}.\n'
                f"Definition stp_chk_{i} : stp_stmt_{i} := @Cand_{i}.{statement.name}.\n"
            )
            checks.append(f"{scope}stp_chk_{i}")
        if wrap_headers:
            parts.append(f"End STP_H{h}.\n")
    bundle = "tt"
    for name in reversed(checks):
        bundle = f"(@{name}, {bundle})"
    parts.append(f"Definition stp_all := {bundle}.\n")
    parts.append('Redirect "stp_assumptions" Print Assumptions stp_all.\n')
    for k, axiom in enumerate(sorted(ALLOWED_AXIOMS)):
        parts.append(f'Redirect "stp_locate_{k}" Locate Term {axiom}.\n')
    return "".join(parts)


_FIELD = re.compile(
    r"(?:Struct|\.) (Parameter|Definition|Axiom|Inductive|CoInductive|Variant|Record|Structure|"
    r"Class|Instance|Fixpoint|CoFixpoint|Module|Scheme|Notation) "
)


def _read_modules(folder: Path, jobs: Sequence[VerifyJob]) -> KernelVerdict | None:
    """Each candidate module must hold its theorem and nothing else (``Print Module`` lists
    neither the ``_subproof`` constants of ``abstract`` nor anything of the header)."""
    for i, job in enumerate(jobs):
        printed = " ".join(_report(folder, f"stp_module_{i}").split())
        name = parse_statement(job.formal_statement).name
        head = f"Module Cand_{i} := Struct Parameter {name} :"
        if not printed.startswith(head) or _FIELD.findall(printed) != ["Parameter"]:
            return KernelVerdict(Verdict.UNSOUND, f"the candidate holds more than {name}")
    return None


def _read_assumptions(folder: Path) -> KernelVerdict:
    """The batch's axioms from the files its ``Redirect`` commands wrote: each short name
    ``Print Assumptions`` printed must be the name ``Locate`` gives an allowed axiom."""
    printed = _report(folder, "stp_assumptions")
    if not printed.strip():
        return KernelVerdict(Verdict.VERIFIER_ERROR, "no Print Assumptions report")
    names, unsafe = parse_assumptions(printed)
    if unsafe:
        return KernelVerdict(Verdict.UNSOUND, f"unsafe: {unsafe}")
    allowed: dict[str, str] = {}
    for k, axiom in enumerate(sorted(ALLOWED_AXIOMS)):
        located = _report(folder, f"stp_locate_{k}")
        if located.startswith(f"Constant {axiom}"):
            shorter = _SHORTER.search(located)
            allowed[shorter.group(1) if shorter else axiom] = axiom
    outside = [n for n in names if n not in allowed]
    if outside:
        detail = f"depends on axioms outside the allow-list: {', '.join(outside)}"
        return KernelVerdict(Verdict.UNSOUND, detail, tuple(names))
    return KernelVerdict(None, axioms=tuple(sorted({allowed[n] for n in names})))


def _report(folder: Path, name: str) -> str:
    """What a ``Redirect "name"`` command wrote; "" when it wrote nothing (never a clean bill:
    every reader wants a positive answer)."""
    path = folder / f"{name}.out"
    return path.read_text(errors="replace") if path.exists() else ""


def _checker_problem(code: int | None, output: str) -> str:
    """Why coqchk's answer is not a clean bill, or "" when it is."""
    if code is None:
        return "timed out"
    if code != 0:
        return f"rejected the file: {_tail(output)}"
    lines = output.splitlines()
    for title in _CHECKER_UNSAFE:
        line = next((x for x in lines if x.startswith(f"* {title}:")), None)
        if line is None or not line.endswith("<none>"):
            return f"{title}: {line or 'no report'}"
    return ""


def _tail(output: str) -> str:
    return " ".join(output.split())[-300:]


# ------------------------------------------------------------------ both lines together


class RocqVerifier:
    """The first line's pool, and the second line on whatever it accepted."""

    def __init__(self, pool: PoolVerifier, kernel: KernelCheck, workers: int) -> None:
        self.pool = pool
        self.kernel = kernel
        self._workers = workers
        self.kernel_seconds = 0.0  # spent in the second line, over this verifier's life

    def verify(
        self, jobs: Sequence[VerifyJob], progress: Callable[[int], None] | None = None
    ) -> list[VerifyResult]:
        results = self.pool.verify(jobs, progress)
        accepted = sorted(
            (i for i, r in enumerate(results) if r.verdict is Verdict.PROVED),
            key=lambda i: jobs[i].header,  # a header's proofs share a batch where they can
        )
        if not accepted:
            return results
        start = time.perf_counter()
        batches = _split(accepted, self._workers)
        with ThreadPoolExecutor(len(batches)) as threads:
            verdicts = list(threads.map(lambda b: self._check([jobs[i] for i in b]), batches))
        seconds = time.perf_counter() - start
        self.kernel_seconds += seconds
        for batch, batch_verdicts in zip(batches, verdicts, strict=True):
            for i, kernel in zip(batch, batch_verdicts, strict=True):
                result = dataclasses.replace(
                    results[i],
                    axioms=kernel.axioms,
                    check_seconds=results[i].check_seconds + seconds / len(accepted),
                )
                if kernel.verdict is not None:
                    result = dataclasses.replace(
                        result, verdict=kernel.verdict, detail=f"kernel re-check: {kernel.detail}"
                    )
                results[i] = result
        return results

    def _check(self, jobs: list[VerifyJob]) -> list[KernelVerdict]:
        try:
            return self.kernel.check(jobs)
        except OSError as exc:  # no process could start, a disk full: no verdict, not proved
            return [KernelVerdict(Verdict.VERIFIER_ERROR, f"{type(exc).__name__}: {exc}")] * len(
                jobs
            )

    def close(self) -> None:
        self.pool.close()


def _split(items: Sequence[int], parts: int) -> list[list[int]]:
    """``items`` cut into at most ``parts`` consecutive runs of about equal length."""
    size = -(-len(items) // max(1, min(parts, len(items))))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def make_backend(config: VerificationConfig) -> RocqVerifier:
    """The Rocq verifier: a pool of warm coqtop workers, then the kernel re-check."""
    version = coqtop_version(config.coqtop)
    workers = default_workers(config.workers)
    pool = PoolVerifier(
        BACKEND, version, lambda: RocqWorker(config, version), workers, config.jobs_per_worker
    )
    return RocqVerifier(pool, KernelCheck(config), workers)
