"""Lean 4: its prompt format (``LEAN``), its comments, and the name a statement declares."""

from __future__ import annotations

import re

from stp.languages.base import FENCE, FormalLanguage


class _Lean(FormalLanguage):
    _NAME = re.compile(r"^\s*([^\s(\[{:]+)")
    _HEAD = re.compile(r"^\s*(?:theorem|lemma)\s+[^\s(\[{:]+")

    def theorem_name(self, formal_statement: str) -> str | None:
        match = _LEAN_DECLARATION.match(formal_statement)
        return match.group("name") if match else None

    def statement_body(self, formal_statement: str) -> str:
        return self._HEAD.sub("", formal_statement, count=1).strip()

    _STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
    _COMMENT = re.compile(r"/-|-/|--")

    def code(self, text: str) -> str:
        """Strings emptied; line comments and (nested) block comments removed."""
        text = self._STRING.sub('""', text)
        out: list[str] = []
        depth = 0
        at = 0
        for match in self._COMMENT.finditer(text):
            if match.start() < at:
                continue  # inside a line comment already skipped
            token = match.group()
            if depth == 0:
                out.append(text[at : match.start()])
            if token == "/-":
                depth += 1
            elif token == "-/" and depth:
                depth -= 1
            elif token == "--" and depth == 0:
                end = text.find("\n", match.end())
                at = len(text) if end == -1 else end
                continue
            at = match.end()
        if depth == 0:
            out.append(text[at:])
        return " ".join(out)

    def parse_conjecture(self, completion: str, name: str) -> str | None:
        text = completion.split(FENCE, 1)[0]
        at = text.find(":=")
        if at == -1:
            return None
        body = text[:at].strip()
        match = self._NAME.match(body)
        if match is None:
            return None
        rest = body[match.end() :].strip()
        if ":" not in rest or "sorry" in rest:
            return None
        return f"theorem {name} {rest} := by"


# The declaration a Lean formal statement opens, and its name.
_LEAN_DECLARATION = re.compile(
    r"^\s*(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable)\s+)*"
    r"(?:theorem|lemma|def|abbrev)\s+(?P<name>[^\s(\[{:⦃]+)"
)


def lean_rename_declaration(formal_statement: str, new_name: str) -> str:
    """The same Lean statement declaring ``new_name``; ValueError when it names nothing."""
    match = _LEAN_DECLARATION.match(formal_statement)
    if match is None:
        raise ValueError(f"not a named Lean declaration: {formal_statement[:60]!r}")
    return (
        formal_statement[: match.start("name")] + new_name + formal_statement[match.end("name") :]
    )


LEAN = _Lean(
    name="lean",
    display="Lean 4",
    fence="lean4",
    theorem_keyword="theorem",
    proof_open="\n",
    proof_close="",
    comment_open="/--",
    comment_close="-/",
)
