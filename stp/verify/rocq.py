"""Rocq (Coq) backend: warm ``coqtop -q -emacs`` workers, one job at a time each.

A worker loads each header once and remembers the state number after it, and after each of
its sentences: a header that starts with the same sentences as the last one loaded goes back
to the state after them and loads only the rest (the state a load from scratch gives: each
sentence runs on the state its predecessors left). Likewise it elaborates each statement
once (step 1) and remembers the state with its proof just opened; the pool hands it the jobs
of one statement back to back. A job is a few exchanges with coqtop, each ended by
``Check <marker>.`` with a fresh random marker: coqtop answers it with an error naming the
marker, so the answer (and the prompt after it, which shows the state number and any open
proof) marks where the output for our input ends. The proof text cannot know the marker, so
however much it prints (``idtac`` prints anything, fake prompts and errors included) it
cannot fake that prompt or anything after it.

1. The statement, once per statement and worker, from the post-header state; no proof text
   has run, so every answer is trusted::

       BackTo <post-header state>.
       Definition stp_stmt_<n> := (<dataset statement as one type>).
       Module Cand_<n>.
       <dataset statement>
       Proof.

   An error here means the statement itself does not elaborate: ``verifier_error`` (for
   every job of that statement). Otherwise the trusted prompt gives the post-statement state:
   the theorem's proof open, nothing else run since the header.

2. ``<proof text> Qed.``: the trusted prompt says whether a proof is still open (Qed did not
   go through: ``failed``, the common case, which costs no more exchanges). The proof's own
   output gives only the messages, and errors that make an accepted theorem ``failed`` (the
   assembled file would not compile): faking an error can only make a proof fail.

3. The questions, every answer trusted::

       End Cand_<n>.                                   (fails if a section/module is left open)
       Definition stp_chk_<n> : stp_stmt_<n> := Cand_<n>.<name>.   (through the kernel)
       Print Assumptions stp_chk_<n>.

   So the kernel accepted a theorem whose type is the statement as elaborated before the proof
   ran, checked in the clean top-level environment (outside the module: a Section hypothesis,
   a notation or a redefinition inside it changes nothing), with no unsafe flag (guard,
   positivity, universes).

4. ``About`` each assumption: ``Print Assumptions`` prints short names, and only fully
   qualified standard-library axioms from ``ALLOWED_AXIOMS`` pass (a user ``Axiom classic``
   resolves to ``Top.Cand_<n>.classic``).

5. ``BackTo <post-statement state>``; the trusted prompt must show that state with the
   theorem's proof open, else the worker is retired. The next proof of the statement starts
   from exactly the state the first one did: ``BackTo`` restores the whole environment,
   proof state included, and coqtop never reuses a state number (a proof's own ``BackTo``
   to an earlier state discards ours, and then this step fails).

coqtop runs in a fresh directory of its own (files a proof writes land there), emptied after
every job. A proof still running at ``verification.timeout_s`` is interrupted (SIGINT,
coqtop's Ctrl-C) and the worker goes back to step 5; one that does not come back within a
few seconds is killed with its process group and replaced. Either way the verdict is
``timeout``.

Before any of this, ``screen_proof`` rejects proof text that is not made of tactic sentences
(an allow-list of sentence shapes): a cheap, clear verdict for ``Admitted``, ``Axiom``,
``Section``, ``Unset Guard Checking``, ``Redirect``, ``Quit``, ``BackTo``, ... It is not
what makes the check sound; the questions above are.
"""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass

from stp.config import VerificationConfig
from stp.languages import ROCQ, rocq_sentences, rocq_strip_comments
from stp.verify.backends import VerifierUnavailableError
from stp.verify.pool import PoolVerifier, default_workers
from stp.verify.process import kill_group, spawn
from stp.verify.types import Checking, Message, Verdict, VerifyJob, VerifyResult

BACKEND = "rocq"
INSTALL_HINT = "install Rocq/Coq with `apt-get install -y coq` (or set verification.coqtop)"

# Axioms a proof may depend on, fully qualified. The first three are what the standard
# library's real numbers rest on (found with `Print Assumptions` over lra, sqrt, exp, ln, PI,
# Rpower, series, ...); the others are the standard classical axioms, consistent with them.
ALLOWED_AXIOMS: frozenset[str] = frozenset(
    {
        "Coq.Reals.ClassicalDedekindReals.sig_forall_dec",
        "Coq.Reals.ClassicalDedekindReals.sig_not_dec",
        "Coq.Logic.FunctionalExtensionality.functional_extensionality_dep",
        "Coq.Logic.Classical_Prop.classic",
        "Coq.Logic.PropExtensionality.propositional_extensionality",
        "Coq.Logic.ProofIrrelevance.proof_irrelevance",
        "Coq.Logic.ClassicalEpsilon.constructive_indefinite_description",
        "Coq.Logic.Eqdep.Eq_rect_eq.eq_rect_eq",
        "Coq.Logic.JMeq.JMeq_eq",
    }
)

_OUTPUT_HEAD = 64 * 1024  # of a flooding proof's output we keep the start ...
_OUTPUT_TAIL = 1024 * 1024  # ... and the end, where the trusted answers are
_INTERRUPT_GRACE_S = 3.0  # after a timeout, how long interrupts may take to bring coqtop back
_INTERRUPT_STALL_S = 0.5  # ... and how long a later sentence may run before it is interrupted
_MAX_MESSAGES = 10
_MAX_MESSAGE_CHARS = 2000

_PROMPT = re.compile(r"<prompt>(.*?)</prompt>", re.S)
_PROMPT_STATE = re.compile(r"^\S+ < (\d+) \|([^|]*)\| \d+ < $")  # state, open proofs
_TAG = re.compile(r"</?(?:infomsg|warning)>")
_INFOMSG = re.compile(r"<infomsg>.*?</infomsg>", re.S)
_LOCATION = re.compile(r"Toplevel input, characters (\d+)-(\d+):")
_EXPANDS_TO = re.compile(r"Expands to: \w+\s+(\S+)")
_STATEMENT = re.compile(
    r"^\s*(?:Theorem|Lemma|Fact|Remark|Corollary|Proposition|Example)\s+([A-Za-z_][\w']*)"
)
_SELECTOR = re.compile(
    r"(?:\d+(?:\s*-\s*\d+)?(?:\s*,\s*\d+(?:\s*-\s*\d+)?)*|all|par|!|\[\s*[A-Za-z_][\w']*\s*\])"
    r"\s*:\s*"
)
_WORD = re.compile(r"[A-Za-z_][\w']*")
# A qualified name (`Z.le_elim`) starts a tactic call: no vernacular command has a dot in it.
_QUALIFIED = re.compile(r"[A-Za-z_][\w']*(?:\.[A-Za-z_][\w']*)+(?![\w'])")
_STRING = re.compile(r'"(?:[^"]|"")*"')
# coqtop survives a stack overflow (a failed proof, as coqc says) but not running out of memory.
_OUT_OF_MEMORY = "Out of memory"


class _Timeout(Exception):
    def __init__(self, recovered: bool) -> None:
        super().__init__("recovered" if recovered else "not recovered")
        self.recovered = recovered  # interrupted, and every sentence sent has been answered


class _Crashed(Exception):
    pass


# ------------------------------------------------------------------ proof screening


def screen_proof(proof: str) -> tuple[Verdict, str] | None:
    """None when every sentence of ``proof`` has an allowed shape (a tactic, possibly after a
    goal selector; a bullet; a brace); else the verdict and why."""
    spans, unread = rocq_sentences(proof)
    for start, end in spans:
        sentence = rocq_strip_comments(proof[start:end]).strip()
        body = sentence.removesuffix(".").strip()
        if body in ("{", "}") or re.fullmatch(r"-+|\++|\*+", body):
            continue
        selector = _SELECTOR.match(body)
        if selector is not None:
            body = body[selector.end() :].strip()
            if body.startswith("{"):  # "2: {" focuses a goal; coqtop reads it as one sentence
                body = body[1:].strip()
                if not body:
                    continue
        body = body.lstrip("( ")  # "(tac1; tac2)." is a tactic too
        first = _WORD.match(body)
        if first is not None and (body[0].islower() or _QUALIFIED.match(body)):
            words = set(_WORD.findall(_STRING.sub(" ", body)))
            if words & {"admit", "give_up"}:
                return Verdict.INCOMPLETE, f"the proof gives up a goal: {sentence!r}"
            continue
        if first is not None and first.group() in ("Admitted", "Abort"):
            return Verdict.INCOMPLETE, f"the proof is not finished: {sentence!r}"
        if first is not None or body.startswith("#"):
            return (
                Verdict.UNSOUND,
                f"{sentence[:80]!r} is a command, not a tactic: a proof may only hold tactics, "
                "bullets, braces and goal selectors",
            )
        return Verdict.FAILED, f"not a tactic sentence: {sentence[:80]!r}"
    if proof[unread:].strip():
        return Verdict.FAILED, "the proof text ends inside a sentence, comment or string"
    if not spans:
        return Verdict.FAILED, "empty proof"
    return None


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
            return ParsedStatement(match.group(1), f"forall {binders}, {body}" if binders else body)
    raise ValueError(f"no ':' before the statement's type: {text[:80]!r}")


# ------------------------------------------------------------------ coqtop session


def _responses(output: str) -> list[str]:
    """The answer to each sentence of an exchange (the text before each prompt, in order),
    without the final marker's."""
    return _PROMPT.split(output)[0::2][:-2]


def _prompt_state(output: str) -> tuple[int, str]:
    """(state number, the open proof's name or "") from the last prompt in ``output``."""
    prompts = _PROMPT.findall(output)
    match = _PROMPT_STATE.match(prompts[-1]) if prompts else None
    if match is None:
        raise _Crashed(f"unexpected coqtop prompt: {prompts[-1:]}")
    return int(match.group(1)), match.group(2)


def _has_error(response: str) -> bool:
    return "Error:" in response


def _error_text(response: str) -> str:
    text = _TAG.sub("", response)
    at = text.find("Error:")
    return " ".join(text[at + len("Error:") :].split()) if at != -1 else text.strip()


class _Coqtop:
    """One coqtop process in its own process group, spoken to through its pipes."""

    def __init__(self, argv: list[str], cwd: str, memory_limit_mb: int) -> None:
        self.proc = spawn(argv, cwd, memory_limit_mb)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        os.set_blocking(self._in, False)

    def exchange(self, text: str, timeout_s: float) -> str:
        """Send ``text`` followed by a marker sentence; return the output up to and including
        the prompt after the marker's answer. Raises ``_Timeout`` or ``_Crashed``."""
        marker = f"stp_mark_{secrets.token_hex(8)}"
        pending = f"{text}\nCheck {marker}.\n".encode()
        needle = marker.encode()
        deadline = time.monotonic() + timeout_s
        give_up: float | None = None  # set once the deadline passed and interrupts began
        last_progress = 0.0  # when coqtop last answered a sentence or was interrupted
        head = bytearray()
        out = bytearray()
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
                last_words = " ".join(out[-200:].decode("utf-8", errors="replace").split())
                raise _Crashed(f"coqtop closed its output: {last_words}")
            out += chunk
            if b"</prompt>" in chunk:
                last_progress = time.monotonic()
            if marker_at == -1:
                marker_at = out.find(needle, max(0, len(out) - len(chunk) - len(needle)))
                if marker_at == -1 and len(out) > _OUTPUT_TAIL + _OUTPUT_HEAD:
                    # A flooding proof: keep its first bytes and a window at the end.
                    if not head:
                        head = out[:_OUTPUT_HEAD] + b"\n[... output truncated ...]\n"
                    del out[: len(out) - _OUTPUT_TAIL]
            if marker_at != -1 and out.find(b"</prompt>", marker_at) != -1:
                if give_up is not None:
                    raise _Timeout(recovered=True)
                return (bytes(head) + bytes(out)).decode("utf-8", errors="replace")

    def close(self) -> None:
        kill_group(self.proc)


# ------------------------------------------------------------------ the worker


def coqtop_version(coqtop: str) -> str:
    """The first line of ``coqtop --version``; raises ``VerifierUnavailableError`` without it."""
    argv = shlex.split(coqtop)
    if not argv or shutil.which(argv[0]) is None:
        raise VerifierUnavailableError(f"{coqtop!r} not found on PATH: {INSTALL_HINT}")
    done = subprocess.run(
        [argv[0], "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise VerifierUnavailableError(
            f"{coqtop!r} --version failed ({done.stderr.strip()[:200]}): {INSTALL_HINT}"
        )
    return done.stdout.strip().splitlines()[0]


class RocqWorker:
    """One warm coqtop; see the module docstring for the protocol."""

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

    @property
    def healthy(self) -> bool:
        return self._healthy

    def close(self) -> None:
        self._healthy = False
        if self._coqtop is not None:
            self._coqtop.close()
            self._coqtop = None
        shutil.rmtree(self._root, ignore_errors=True)

    def _load_header(self, header: str) -> None:
        """Make the post-``header`` state current (loading it once per worker, from the state
        after the sentences it shares with the last header loaded)."""
        if self._coqtop is None:
            self._coqtop = _Coqtop(self._argv, self._root, self._config.memory_limit_mb)
            self._initial_state, _ = _prompt_state(
                self._coqtop.exchange("", self._config.header_timeout_s)
            )
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
        output = self._coqtop.exchange(f"BackTo {base}.\n{rest}", self._config.header_timeout_s)
        errors = [r for r in _responses(output) if _has_error(r)]
        self._header_error = _error_text(errors[0]) if errors else ""
        self._header_state, _ = _prompt_state(output)
        # A prompt after the BackTo, after each sentence and after the marker: when coqtop read
        # the sentences we split, the states after them can start a later header.
        prompts = [_PROMPT_STATE.match(p) for p in _PROMPT.findall(output)]
        if not errors and len(prompts) == len(sentences) - shared + 2 and all(prompts):
            states = [int(p.group(1)) for p in prompts[1:-1] if p is not None]
            self._loaded += zip(sentences[shared:], states, strict=True)
        self._header = header

    def check(self, job: VerifyJob) -> VerifyResult:
        checking = Checking(job, BACKEND, self._version)
        screened = screen_proof(job.proof)
        cited = ROCQ.cited(job.proof, job.forbidden_names)
        if cited is not None:
            screened = (Verdict.UNSOUND, f"the proof cites {cited}, the target's own library copy")
        if screened is not None:
            return checking.result(*screened)
        try:
            statement = parse_statement(job.formal_statement)
        except ValueError as exc:
            return checking.result(Verdict.VERIFIER_ERROR, detail=str(exc))
        try:
            self._load_header(job.header)
        except (_Timeout, _Crashed) as exc:
            self.close()
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
                    Verdict.VERIFIER_ERROR,
                    detail=f"the statement does not elaborate: {self._statement_error}",
                )
            return self._check_in(job, statement, checking)
        except _Timeout as exc:
            entered = self._statement == job.formal_statement and not self._statement_error
            if not (exc.recovered and self._restore(statement.name if entered else "")):
                self.close()
            return checking.result(
                Verdict.TIMEOUT,
                detail=f"no verdict within {self._config.timeout_s:g} s",
            )
        except _Crashed as exc:
            self.close()
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
        output = self._coqtop.exchange(
            f"BackTo {self._header_state}.\nDefinition {stmt} := ({statement.type}).\n"
            f"Module {module}.\n{job.formal_statement}\nProof.",
            self._config.timeout_s,
        )
        errors = [r for r in _responses(output) if _has_error(r)]
        state, open_proof = _prompt_state(output)
        if errors or open_proof != statement.name:
            self._statement_error = _error_text(errors[0]) if errors else "no proof opened"
            if not self._restore():
                raise _Crashed("could not return to the post-header state")
        else:
            self._statement_state, self._module, self._stmt = state, module, stmt
        self._statement = job.formal_statement
        return not self._statement_error

    def _check_in(
        self, job: VerifyJob, statement: ParsedStatement, checking: Checking
    ) -> VerifyResult:
        result = self._run_job(job, statement, checking)
        if not self._restore(statement.name):
            self._healthy = False
        return result

    def _restore(self, open_proof: str = "") -> bool:
        """5. Back to the post-statement state (the post-header state when ``open_proof`` is
        empty); True when the trusted prompt shows that state with that proof open."""
        assert self._coqtop is not None
        target = self._statement_state if open_proof else self._header_state
        try:
            output = self._coqtop.exchange(f"BackTo {target}.", self._config.header_timeout_s)
            return _prompt_state(output) == (target, open_proof)
        except (_Timeout, _Crashed):
            return False

    def _run_job(
        self, job: VerifyJob, statement: ParsedStatement, checking: Checking
    ) -> VerifyResult:
        assert self._coqtop is not None
        coqtop = self._coqtop
        timeout = self._config.timeout_s  # the header and statement do not count against it
        module, stmt, chk = self._module, self._stmt, f"stp_chk_{secrets.token_hex(8)}"

        # 2. The proof. Only the prompt after the marker is trusted: is a proof still open?
        sent = f"{job.proof}\nQed."
        output = coqtop.exchange(sent, timeout)
        responses = _responses(output)
        messages = _messages(job.proof, sent, responses)
        if any(_OUT_OF_MEMORY in r for r in responses):
            self._healthy = False
            return checking.result(Verdict.VERIFIER_ERROR, "out of memory", messages)
        _, proof_open = _prompt_state(output)
        if proof_open:  # Qed did not go through
            detail = messages[0].text if messages else "the proof is not complete"
            return checking.result(Verdict.FAILED, detail, messages)
        raised_errors = any(_has_error(r) for r in responses)

        # 3. The questions; every answer is trusted.
        output = coqtop.exchange(
            f"End {module}.\nDefinition {chk} : {stmt} := {module}.{statement.name}.\n"
            f"Print Assumptions {chk}.",
            timeout,
        )
        answers = _responses(output)
        if len(answers) != 3:
            raise _Crashed(f"expected 3 answers to the questions, got {len(answers)}")
        end, definition, assumptions = answers
        if _has_error(end) or f"Module {module} is defined" not in end:
            return checking.result(
                Verdict.UNSOUND, "the proof left a section or module open", messages
            )
        if _has_error(definition) or f"{chk} is defined" not in definition:
            detail = (
                "the theorem was closed without a proof of the dataset statement "
                "(abandoned, restated or changed)"
            )
            return checking.result(Verdict.UNSOUND, detail, messages)
        names, unsafe = parse_assumptions(assumptions)
        if unsafe:
            return checking.result(Verdict.UNSOUND, f"unsafe: {unsafe}", messages)

        # 4. Resolve the short names Print Assumptions printed, in the same environment.
        axioms: tuple[str, ...] = ()
        if names:
            output = coqtop.exchange("\n".join(f"About {n}." for n in names), timeout)
            answers = _responses(output)
            if len(answers) != len(names):
                raise _Crashed(f"expected {len(names)} answers to About, got {len(answers)}")
            axioms = tuple(
                m.group(1) if (m := _EXPANDS_TO.search(r)) else f"<unresolved {n}>"
                for n, r in zip(names, answers, strict=True)
            )
            forbidden = [a for a in axioms if a not in ALLOWED_AXIOMS]
            if forbidden:
                detail = f"depends on axioms outside the allow-list: {', '.join(forbidden)}"
                return checking.result(Verdict.UNSOUND, detail, messages, axioms)
        if raised_errors:
            # The kernel accepted the theorem, but the assembled file would not compile.
            return checking.result(Verdict.FAILED, "the proof raised errors", messages, axioms)
        return checking.result(Verdict.PROVED, "", messages, axioms)


def _empty_directory(path: str) -> None:
    """Remove what a proof wrote in coqtop's directory (coqtop's working directory stays)."""
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def parse_assumptions(response: str) -> tuple[list[str], str]:
    """Axiom names and the first unsafe line (an unchecked fixpoint, positivity or universe
    constraint, a section variable), from a ``Print Assumptions`` answer."""
    text = _INFOMSG.sub("", response).strip()
    if text == "Closed under the global context":
        return [], ""
    lines = text.splitlines()
    if not lines or lines[0] != "Axioms:":
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


def _messages(proof: str, sent: str, responses: list[str]) -> tuple[Message, ...]:
    """Errors from the answers to the proof's sentences, positioned in the proof text where
    coqtop's ``characters A-B`` (bytes from the start of the sentence's first line) allow."""
    spans, _ = rocq_sentences(sent)
    messages = []
    for index, response in enumerate(responses):
        if not _has_error(response):
            continue
        line = column = None
        location = _LOCATION.search(response)
        if location is not None and index < len(spans):
            line_start = sent.rfind("\n", 0, spans[index][0]) + 1
            line_bytes = sent[line_start:].encode()
            offset = line_start + len(line_bytes[: int(location.group(1))].decode(errors="ignore"))
            if offset < len(proof):
                line = proof.count("\n", 0, offset) + 1
                column = offset - (proof.rfind("\n", 0, offset) + 1)
        messages.append(Message("error", _error_text(response)[:_MAX_MESSAGE_CHARS], line, column))
        if len(messages) == _MAX_MESSAGES:
            break
    return tuple(messages)


def make_backend(config: VerificationConfig) -> PoolVerifier:
    """The Rocq verifier: a pool of warm coqtop workers."""
    version = coqtop_version(config.coqtop)
    return PoolVerifier(
        BACKEND,
        version,
        lambda: RocqWorker(config, version),
        default_workers(config.workers),
        config.jobs_per_worker,
    )
