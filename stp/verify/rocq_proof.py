"""A proof text as the Rocq backend runs it: cut into sentences by the rules of Coq's lexer,
each rebuilt so that coqtop can only read it as one tactic sentence.

Coq ends a sentence at a ``.`` or ``...`` token followed by a blank (space, tab, line feed,
carriage return) or the end of the input; at the start of a sentence, a brace or a run of
bullet characters is a sentence of its own, and so is a goal selector followed by ``{``
(``2: {``). Everything else a proof holds must be a tactic. The splitter
(``stp.languages.rocq.sentence_end``, which also splits headers and library files) follows
those rules on the proof with its comments blanked out; read strictly, as here, it rejects
(``failed``) anything whose reading could depend on lexer details it does not model: a blank
other than those four, a control character, a run of dots other than ``.`` and ``...`` before
a blank.

Each tactic sentence is then sent as ``<selector>: ( <tactic> ) .`` (or ``( <tactic> ) .``):
inside parentheses Coq's grammar accepts a tactic expression and nothing else, so a
vernacular command (``Admitted``, ``Unset Guard Checking``, ``Cd``, ``Redirect``, ...) is a
parse error, whatever the splitter believed. The rebuilt text is what both lines of the check
execute, so what the screen judged is what coqtop runs.

Three harmless proof-mode commands (``PROOF_COMMANDS``: ``Unshelve``, ``Show``, ``Guarded``)
are sent as that one word. Before any of that, ``screen`` gives the clear verdicts early: ``admit``/``give_up``/
``Admitted``/``Abort`` are ``incomplete``, a sentence that starts with a vernacular keyword is
``unsound``. The parentheses, not this list, are what keeps commands out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from stp.languages.rocq import (
    COQ_BLANKS,
    THEOREM_KEYWORDS,
    LexError,
    iter_sentences,
    rocq_blank_comments,
    sentence_end,
)
from stp.verify.types import Verdict
from stp.verify.worker import Judged

_WORD = re.compile(r"[A-Za-z_][\w']*")
_STRING = re.compile(r'"(?:[^"]|"")*"')
_GIVE_UP = frozenset({"admit", "give_up"})
_UNFINISHED = frozenset({"Admitted", "Abort"})
# Words that start a vernacular command, not a tactic: a sentence starting with one is
# `unsound` at once, with a clear reason. Anything missing here still cannot run as a command
# (it is sent inside parentheses); this list only names the verdict early.
VERNACULAR = frozenset(THEOREM_KEYWORDS) | frozenset(
    [
        "Abort",
        "About",
        "Add",
        "Admit",
        "Admitted",
        "Arguments",
        "Axiom",
        "Axioms",
        "Back",
        "BackTo",
        "Bind",
        "Canonical",
        "Cd",
        "Check",
        "Class",
        "Close",
        "CoFixpoint",
        "CoInductive",
        "Coercion",
        "Collection",
        "Compute",
        "Conjecture",
        "Constraint",
        "Context",
        "Create",
        "Declare",
        "Defined",
        "Definition",
        "Delimit",
        "Derive",
        "Drop",
        "Eval",
        "Existing",
        "Export",
        "Extract",
        "Extraction",
        "Fail",
        "Fixpoint",
        "Focus",
        "From",
        "Function",
        "Functional",
        "Generalizable",
        "Global",
        "Goal",
        "Guarded",
        "Hint",
        "Hypotheses",
        "Hypothesis",
        "Identity",
        "Implicit",
        "Import",
        "Include",
        "Inductive",
        "Infix",
        "Info",
        "Inspect",
        "Instance",
        "Let",
        "Load",
        "Local",
        "Locate",
        "Ltac",
        "Ltac2",
        "Module",
        "Monomorphic",
        "Next",
        "Notation",
        "Obligation",
        "Obligations",
        "Opaque",
        "Open",
        "Optimize",
        "Parameter",
        "Parameters",
        "Polymorphic",
        "Prenex",
        "Primitive",
        "Print",
        "Program",
        "Proof",
        "Pwd",
        "Qed",
        "Quit",
        "Record",
        "Recursive",
        "Redirect",
        "Register",
        "Remove",
        "Require",
        "Reserved",
        "Reset",
        "Restart",
        "Save",
        "Scheme",
        "Search",
        "SearchPattern",
        "SearchRewrite",
        "Section",
        "Set",
        "Show",
        "Strategy",
        "Structure",
        "Succeed",
        "Tactic",
        "Test",
        "Time",
        "Timeout",
        "Transparent",
        "Typeclasses",
        "Undelimit",
        "Undo",
        "Unfocus",
        "Unfocused",
        "Universe",
        "Universes",
        "Unset",
        "Unshelve",
        "Variable",
        "Variables",
        "Variant",
    ]
)


# Proof-mode commands a genuine proof may hold; each is sent as exactly this word (never the
# proof's own text), so nothing else can ride along.
PROOF_COMMANDS = frozenset({"Unshelve", "Show", "Guarded"})


@dataclass(frozen=True, slots=True)
class ProofSentence:
    """One sentence of a proof: where it stands in the proof text, and the text coqtop is
    sent for it. ``body_start`` is where the tactic starts in the proof, and ``body_offset``
    where it starts in ``sent`` (to place coqtop's error positions back in the proof)."""

    start: int
    end: int
    sent: str
    body_start: int = 0
    body_offset: int = 0


def _unusual_character(text: str, start: int, end: int) -> int | None:
    """Index of the first blank Coq does not treat as one, or control character."""
    for i in range(start, end):
        c = text[i]
        if c in COQ_BLANKS:
            continue
        if c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Zs"):
            return i
    return None


def screen(body: str) -> tuple[Verdict, str] | None:
    """The early verdict for one tactic sentence's text, or None to run it."""
    words = set(_WORD.findall(_STRING.sub(" ", body)))
    if words & _GIVE_UP:
        return Verdict.INCOMPLETE, f"the proof gives up a goal: {body[:80]!r}"
    first = _WORD.match(body.lstrip("( \t\n\r"))
    head = first.group() if first is not None else ""
    if head in _UNFINISHED:
        return Verdict.INCOMPLETE, f"the proof is not finished: {body[:80]!r}"
    if head in VERNACULAR or body.lstrip().startswith("#"):
        return (
            Verdict.UNSOUND,
            f"{body[:80]!r} is a command, not a tactic: a proof may only hold tactics, "
            "bullets, braces and goal selectors",
        )
    return None


def proof_sentences(proof: str) -> list[ProofSentence]:
    """The sentences of ``proof`` as the backend sends them; raises ``Judged``."""
    text = rocq_blank_comments(proof)
    if text is None:
        raise Judged(Verdict.FAILED, "the proof text ends inside a comment")
    unusual = _unusual_character(text, 0, len(text))
    if unusual is not None:
        raise Judged(
            Verdict.FAILED,
            f"unexpected character {text[unusual]!r} (Coq's blanks: space, tab, "
            "line feed, carriage return)",
        )
    sentences: list[ProofSentence] = []
    spans = iter_sentences(text, proof, strict=True)
    while True:  # each sentence screened before the next is read, as coqtop would run them
        try:
            span = next(spans, None)
        except LexError as exc:
            raise Judged(Verdict.FAILED, str(exc).replace("the text", "the proof text")) from exc
        if span is None:
            break
        prefix = f"{span.selector}: " if span.selector else ""
        if not span.terminated:  # a brace or a bullet
            sent = f"{prefix}{text[span.body_start : span.body_end]}"
            sentences.append(ProofSentence(span.start, span.end, sent))
            continue
        body = text[span.body_start : span.body_end].strip(COQ_BLANKS)
        if not body:
            raise Judged(Verdict.FAILED, f"an empty sentence at character {span.start}")
        if body in PROOF_COMMANDS and not prefix:
            sentences.append(ProofSentence(span.start, span.end, f"{body}."))
            continue
        verdict = screen(body)
        if verdict is not None:
            raise Judged(*verdict)
        # The body's own line breaks stay: coqtop's error positions count from its first line.
        body_start = text.index(body[0], span.body_start)
        sent = f"{prefix}( {body} ) ."
        sentences.append(ProofSentence(span.start, span.end, sent, body_start, len(prefix) + 2))
    if not sentences:
        raise Judged(Verdict.FAILED, "empty proof")
    return sentences


def screen_proof(proof: str) -> tuple[Verdict, str] | None:
    """None when ``proof`` can be run sentence by sentence; else the verdict and why."""
    try:
        proof_sentences(proof)
    except Judged as rejected:
        return rejected.verdict, rejected.detail
    return None


def single_sentence(text: str) -> bool:
    """Whether ``text`` (a statement: the model writes conjectures) is exactly one sentence by
    the rules above, so that nothing after its first sentence can run."""
    blanked = rocq_blank_comments(text)
    if blanked is None or _unusual_character(blanked, 0, len(blanked)) is not None:
        return False
    try:
        found = sentence_end(blanked, 0, text, strict=True)
    except LexError:
        return False
    assert found is not None  # strict: raised instead
    _, end = found
    return not blanked[end:].strip(COQ_BLANKS)
