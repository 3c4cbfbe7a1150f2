"""Rocq (Coq): its prompt format (``ROCQ``), the keywords that open a theorem, and a lexer for
comments, strings and sentences."""

from __future__ import annotations

import re

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


def rocq_sentence_end(text: str) -> int | None:
    """Index just past the first sentence-ending ``.`` of Rocq text (a period followed by
    white space or the end), skipping comments and strings; None when there is none."""
    in_string = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if in_string:
            if c == '"':
                in_string = False
        elif text.startswith("(*", i):
            after = _rocq_skip_comment(text, i)
            if after is None:
                return None
            i = after
            continue
        elif c == '"':
            in_string = True
        elif (
            c == "."
            and (i + 1 == n or text[i + 1].isspace())
            and (i == 0 or text[i - 1] != ".")  # ".." is not a sentence end
        ):
            return i + 1
        i += 1
    return None


def rocq_sentences(text: str) -> tuple[list[tuple[int, int]], int]:
    """Split Rocq text into sentences the way ``coqtop`` reads them.

    Returns the ``(start, end)`` spans of the sentences, white space and comments between them
    excluded: each ``.``-terminated sentence, and the braces and bullets (``{``, ``}``, runs of
    ``-``, ``+`` or ``*``) that coqtop reads as sentences of their own; and the index where
    unread text begins: ``len(text)`` when nothing but white space and comments follows the last
    sentence, less when the text ends inside a sentence, a comment or a string."""
    spans: list[tuple[int, int]] = []
    i = 0
    n = len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i == n:
            return spans, n
        if text.startswith("(*", i):
            after = _rocq_skip_comment(text, i)
            if after is None:
                return spans, i
            i = after
            continue
        c = text[i]
        if c in "{}":
            spans.append((i, i + 1))
            i += 1
            continue
        if c in "-+*":
            j = i
            while j < n and text[j] == c:
                j += 1
            spans.append((i, j))
            i = j
            continue
        end = rocq_sentence_end(text[i:])
        if end is None:
            return spans, i
        spans.append((i, i + end))
        i += end


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
