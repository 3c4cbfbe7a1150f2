"""Isabelle: its prompt format (``ISABELLE``), its outer syntax's comments, strings and
cartouches, and the name a statement gives its theorem."""

from __future__ import annotations

import re

from stp.languages.base import FENCE, FormalLanguage


class _Isabelle(FormalLanguage):
    _HEAD = re.compile(r"^\s*(?:theorem|lemma)\s+[^\s:]+\s*:")
    _NAME = re.compile(r"^\s*([A-Za-z_][\w'.]*)\s*:\s*(?P<rest>\S.*)$", re.DOTALL)
    _PROOF_WORDS = re.compile(r"(?<![\w'.])(by|proof|apply|sorry|oops|done|using|qed)(?![\w'.])")

    def theorem_name(self, formal_statement: str) -> str | None:
        match = _ISABELLE_THEOREM.match(formal_statement)
        return match.group("name") if match else None

    def statement_body(self, formal_statement: str) -> str:
        return self._HEAD.sub("", formal_statement, count=1).strip()

    def code(self, text: str) -> str:
        return isabelle_code(text)

    def parse_conjecture(self, completion: str, name: str) -> str | None:
        text = completion.split(FENCE, 1)[0].strip()
        match = self._NAME.match(text)
        if match is None:
            return None
        rest = match.group("rest").strip()
        has_term = '"' in rest or "\\<open>" in rest or "\u2039" in rest
        if not has_term or self._PROOF_WORDS.search(self.code(rest)):
            return None
        return f"theorem {name}:\n  {rest}"


# The theorem an Isabelle formal statement opens, and its name.
_ISABELLE_THEOREM = re.compile(r"^\s*(?:theorem|lemma)\s+(?P<name>[A-Za-z_][\w'.]*)\s*:")


# Isabelle outer syntax that holds no commands: nested comments (dropped), and strings,
# alternative strings, verbatim text and nested cartouches (emptied).
_ISABELLE_OPENERS = ("(*", '"', "`", "{*", "\\<open>", "\u2039")


def _isabelle_skip(text: str, i: int) -> int:
    """Index just past the comment, string or cartouche opening at ``text[i]``; ``len(text)``
    when it never closes (Isabelle then reports an error: nothing after it is a command)."""
    n = len(text)
    if text.startswith("(*", i):
        depth = 0
        while i < n:
            if text.startswith("(*", i):
                depth, i = depth + 1, i + 2
            elif text.startswith("*)", i):
                depth, i = depth - 1, i + 2
                if depth == 0:
                    return i
            else:
                i += 1
        return n
    if text[i] in '"`':
        quote = text[i]
        i += 1
        while i < n and text[i] != quote:
            i += 2 if text[i] == "\\" else 1
        return min(n, i + 1)
    if text.startswith("{*", i):
        end = text.find("*}", i + 2)
        return n if end == -1 else end + 2
    depth = 0  # a cartouche: \<open> ... \<close> or its Unicode rendering, nested
    while i < n:
        if text.startswith("\\<open>", i) or text[i] == "\u2039":
            depth += 1
            i += 7 if text[i] == "\\" else 1
        elif text.startswith("\\<close>", i) or text[i] == "\u203a":
            depth -= 1
            i += 8 if text[i] == "\\" else 1
            if depth == 0:
                return i
        else:
            i += 1
    return n


def isabelle_code(text: str) -> str:
    """Isabelle ``text`` with comments removed and strings, verbatim text and cartouches
    emptied (``""``): what is left is outer syntax, commands and names."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        opener = next((o for o in _ISABELLE_OPENERS if text.startswith(o, i)), None)
        if opener is None:
            out.append(text[i])
            i += 1
            continue
        out.append(" " if opener == "(*" else ' "" ')
        i = _isabelle_skip(text, i)
    return "".join(out)


ISABELLE = _Isabelle(
    name="isabelle",
    display="Isabelle",
    fence="isabelle",
    theorem_keyword="theorem",
    proof_open="\n",
    proof_close="",
    comment_open="(*",
    comment_close="*)",
)
