"""Rocq (Coq): its prompt format (``ROCQ``), the keywords that open a theorem, and a lexer for
comments, strings and sentences."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from stp.languages.base import FENCE, FormalLanguage

# The keywords that open a statement Rocq then proves in proof mode: ``Theorem`` and its
# synonyms, and ``Example`` (a definition stated as a goal). The verifier accepts exactly
# these, the corpus extracts them, and deduplication strips them.
THEOREM_KEYWORDS: tuple[str, ...] = (
    "Theorem",
    "Lemma",
    "Fact",
    "Remark",
    "Corollary",
    "Proposition",
    "Property",
    "Example",
)
# A theorem keyword and the name it declares (group ``name``), as a regular expression.
THEOREM_HEAD = rf"(?:{'|'.join(THEOREM_KEYWORDS)})\s+(?P<name>[A-Za-z_][\w']*)"


class _Rocq(FormalLanguage):
    _NAME = re.compile(r"^\s*([A-Za-z_][\w']*)")
    _STRING = re.compile(r'"(?:[^"]|"")*"')  # in comment-free text; "" escapes a quote
    _HEAD = re.compile(rf"^\s*{THEOREM_HEAD}")

    def theorem_name(self, formal_statement: str) -> str | None:
        match = self._HEAD.match(rocq_strip_comments(formal_statement))
        return match.group("name") if match else None

    def statement_body(self, formal_statement: str) -> str:
        return self._HEAD.sub("", formal_statement, count=1).strip()

    def code(self, text: str) -> str:
        return self._STRING.sub('""', rocq_strip_comments(text))

    def parse_conjecture(self, completion: str, name: str) -> str | None:
        text = completion.split(FENCE, 1)[0]
        end = rocq_sentence_end(text)
        if end is None:
            return None
        body = text[:end].strip()  # "<name> <binders> : <type>."
        match = self._NAME.match(body)
        if match is None or ":" not in body[match.end() :]:
            return None
        rest = body[match.end() :].strip()
        if len(rest) < 4 or FENCE in rest:
            return None
        return f"Theorem {name} {rest}"


def _rocq_skip_comment(text: str, i: int) -> int | None:
    """Index just past the comment opening at ``text[i]`` (``(*``); None if it never closes.
    Comments nest, and a string inside a comment is lexed as a string, as Coq does: the ``*)``
    in ``(* "*)" *)`` does not close the comment."""
    depth = 0
    in_string = False
    n = len(text)
    while i < n:
        c = text[i]
        if in_string:
            in_string = c != '"'
        elif c == '"':
            in_string = True
        elif text.startswith("(*", i):
            depth += 1
            i += 2
            continue
        elif text.startswith("*)", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
            continue
        i += 1
    return None


COQ_BLANKS = " \t\n\r"  # what Coq's lexer takes for a blank; nothing else ends a sentence

# A goal selector before a tactic or a brace (``2:``, ``1-3, 5:``, ``all:``, ``[x]:``).
GOAL_SELECTOR = re.compile(
    r"(\d+(?:\s*-\s*\d+)?(?:\s*,\s*\d+(?:\s*-\s*\d+)?)*|all|par|!|\[\s*[A-Za-z_][\w']*\s*\])"
    r"[ \t\n\r]*:(?![=:>])[ \t\n\r]*"
)


class LexError(ValueError):
    """Text whose reading could depend on lexer details this splitter does not model (raised
    only when reading strictly, as proofs are read)."""


def sentence_end(blanked: str, i: int, original: str, *, strict: bool) -> tuple[int, int] | None:
    """The sentence starting at ``i`` of ``blanked`` (``original`` with its comments blanked
    out): the end of its text and the end of its terminator, a ``.`` or ``...`` token followed
    by a blank or the end of the text, as Coq's lexer reads it; None when the text ends inside
    the sentence. ``strict`` raises ``LexError`` on that, and wherever Coq might read the text
    otherwise than this: a period directly before a comment (Coq reads ``.(``), another run of
    dots before a blank, or a run of dots inside a sentence."""
    n = len(blanked)
    in_string = False
    k = i
    while k < n:
        c = blanked[k]
        if in_string:
            if c == '"':
                if blanked.startswith('""', k):  # an escaped quote
                    k += 2
                    continue
                in_string = False
        elif c == '"':
            in_string = True
        elif c == ".":
            run = k
            while run < n and blanked[run] == ".":
                run += 1
            dots = run - k
            if original.startswith("(*", run):
                if strict:
                    raise LexError("a period directly before a comment")
            elif run == n or blanked[run] in COQ_BLANKS:
                if dots in (1, 3):
                    return k, run
                if strict:
                    raise LexError(f"a run of {dots} dots ends a sentence")
            elif dots > 1 and strict:
                raise LexError(f"unexpected {'.' * dots!r} inside a sentence")
            k = run
            continue
        k += 1
    if strict:
        raise LexError(f"the text ends inside a {'string' if in_string else 'sentence'}")
    return None


def _blank_closed_comments(text: str) -> tuple[str, int]:
    """``text`` with every closed comment blanked (positions kept), cut where a comment that
    never closes begins; and that index (``len(text)`` when every comment closes)."""
    out = list(text)
    for start, end in _rocq_comments(text):
        if end is None:
            return "".join(out[:start]), start
        out[start:end] = [c if c == "\n" else " " for c in text[start:end]]
    return "".join(out), len(text)


def rocq_sentence_end(text: str) -> int | None:
    """Index just past the first sentence's terminator in Rocq text (``sentence_end``),
    comments and strings skipped; None when there is none."""
    blanked, _ = _blank_closed_comments(text)
    found = sentence_end(blanked, 0, text, strict=False)
    return None if found is None else found[1]


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence of comment-blanked Rocq text: ``start``/``end`` span it, terminator
    included; ``body_start``/``body_end`` span its text after its goal selector and before its
    terminator (a brace or a bullet has no terminator: its body is itself)."""

    start: int
    end: int
    body_start: int
    body_end: int
    selector: str = ""  # its goal selector ("2", "1-3, 5", "all"), "" for none

    @property
    def terminated(self) -> bool:
        """Whether it ends in ``.`` or ``...`` (a tactic or a command), not a brace or bullet."""
        return self.body_end < self.end


def iter_sentences(blanked: str, original: str, *, strict: bool) -> Iterator[Sentence]:
    """The sentences of ``blanked`` (``original`` with its comments blanked out), in order, as
    coqtop reads them: each ``.``-terminated sentence (``sentence_end``), and the braces,
    bullets (``{``, ``}``, runs of ``-``, ``+`` or ``*``) and goal-selected braces (``2: {``)
    that are sentences of their own. Stops at the end of the text or, reading leniently, at a
    sentence the text ends inside of; ``strict`` raises ``LexError`` where ``sentence_end``
    does, when the caller asks for the sentence."""
    i = 0
    n = len(blanked)
    while True:
        while i < n and (blanked[i] in COQ_BLANKS or (not strict and blanked[i].isspace())):
            i += 1
        if i == n:
            return
        c = blanked[i]
        if c in "{}":
            yield Sentence(i, i + 1, i, i + 1)
            i += 1
            continue
        if c in "-+*":
            j = i
            while j < n and blanked[j] == c:
                j += 1
            yield Sentence(i, j, i, j)
            i = j
            continue
        selector = GOAL_SELECTOR.match(blanked, i)
        j = selector.end() if selector is not None else i
        named = " ".join(selector.group(1).split()) if selector is not None else ""
        if selector is not None and blanked.startswith("{", j):
            yield Sentence(i, j + 1, j, j + 1, named)
            i = j + 1
            continue
        found = sentence_end(blanked, j, original, strict=strict)
        if found is None:
            return
        yield Sentence(i, found[1], j, found[0], named)
        i = found[1]


def rocq_sentences(text: str) -> tuple[list[tuple[int, int]], int]:
    """Split Rocq text into sentences the way ``coqtop`` reads them (``iter_sentences``,
    leniently; the Rocq backend reads proofs strictly: ``stp.verify.rocq_proof``).

    Returns the ``(start, end)`` spans of the sentences, white space and comments between them
    excluded, and the index where unread text begins: ``len(text)`` when nothing but white
    space and comments follows the last sentence, less when the text ends inside a sentence, a
    comment or a string."""
    blanked, unread = _blank_closed_comments(text)
    spans = [(s.start, s.end) for s in iter_sentences(blanked, text, strict=False)]
    after = spans[-1][1] if spans else 0
    rest = blanked[after:]
    if rest.strip():
        return spans, after + len(rest) - len(rest.lstrip())
    return spans, unread


def _rocq_comments(text: str) -> list[tuple[int, int | None]]:
    """The ``(start, end)`` of each comment in Rocq text, strings skipped; the last one's end
    is None when it never closes."""
    comments: list[tuple[int, int | None]] = []
    i = 0
    n = len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            in_string = c != '"'
        elif c == '"':
            in_string = True
        elif text.startswith("(*", i):
            after = _rocq_skip_comment(text, i)
            comments.append((i, after))
            if after is None:
                break
            i = after
            continue
        i += 1
    return comments


def rocq_blank_comments(text: str) -> str | None:
    """``text`` with every comment's characters turned into spaces (its line breaks kept), so
    positions stay where they were; None when a comment never closes."""
    out = list(text)
    for start, end in _rocq_comments(text):
        if end is None:
            return None
        out[start:end] = [c if c == "\n" else " " for c in text[start:end]]
    return "".join(out)


def rocq_strip_comments(text: str) -> str:
    """``text`` with every comment replaced by a space (strings kept); an unclosed comment
    takes the rest of the text."""
    out: list[str] = []
    kept = 0
    for start, end in _rocq_comments(text):
        out += [text[kept:start], " "]
        kept = len(text) if end is None else end
    out.append(text[kept:])
    return "".join(out)


ROCQ = _Rocq(
    name="rocq",
    display="Rocq",
    fence="coq",
    theorem_keyword="Theorem",
    proof_open="\nProof.\n",
    proof_close="\nQed.",
    comment_open="(*",
    comment_close="*)",
)
