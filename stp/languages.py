"""Formal languages: how a file is assembled, how prompts look, how completions are parsed.

Everything that depends on the proof assistant's syntax lives here, in one place, so that the
prompts used for training and for sampling can never drift apart (the original STP's did),
and the verifier checks exactly the text the prompt showed the model.

Prover prompt (Lean 4 shown; DeepSeek-Prover-V1.5's format, which STP also uses)::

    Complete the following Lean 4 code:

    ```lean4
    <header><informal statement as a comment><formal statement>
    <-- the model writes the proof here, then closes the fence

Rocq is the same with a ```coq fence and ``Proof.`` after the statement; the model writes the
tactics and ``Qed.``. Isabelle has an ```isabelle fence; the model writes the Isar proof. The model supplies only the proof: the statement is the dataset's.

Conjecturer prompt: a seed theorem with its proof and a lemma; the model writes a new theorem
statement (the "conjecture") after the keyword the prompt ends with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

FENCE = "```"
# A possibly qualified identifier, in Rocq and in Lean.
_IDENTIFIER = re.compile(r"(?<![\w'.])[A-Za-z_][\w']*(?:\.[A-Za-z_][\w']*)*")


@dataclass(frozen=True, slots=True)
class FormalLanguage:
    name: str  # the verifier backend name: "lean", "rocq", "isabelle"
    display: str  # as written in prompts
    fence: str  # code-fence language tag
    theorem_keyword: str
    proof_open: str  # written after the statement, before the proof
    proof_close: str  # written after the proof
    comment_open: str
    comment_close: str

    # ------------------------------------------------------------------ files

    def assemble(self, header: str, formal_statement: str, proof: str) -> str:
        """The complete file the verifier checks."""
        return f"{header}{formal_statement}{self.proof_open}{proof}{self.proof_close}"

    # ---------------------------------------------------------------- prover

    def _comment(self, text: str | None) -> str:
        if not text:
            return ""
        safe = text.replace(self.comment_close, " ").strip()
        return f"{self.comment_open} {safe} {self.comment_close}\n"

    def prover_prompt(
        self, header: str, formal_statement: str, informal_statement: str | None = None
    ) -> str:
        return (
            f"Complete the following {self.display} code:\n\n"
            f"{FENCE}{self.fence}\n{header}{self._comment(informal_statement)}"
            f"{formal_statement}{self.proof_open}"
        )

    def prover_completion(self, proof: str) -> str:
        """The training target for a proof: what the model should write after the prompt."""
        return f"{proof.strip()}{self.proof_close}\n{FENCE}"

    def parse_proof(self, completion: str, formal_statement: str | None = None) -> str:
        """The proof inside a sampled completion: cut at the closing fence; drop the proof
        closer the assembly adds back; drop a restated statement. A truncated completion (no
        closing fence) is kept as it is: the verifier rejects it if it does not check."""
        text = completion.split(FENCE, 1)[0]
        if formal_statement:
            at = text.find(formal_statement)
            if at != -1:  # the model restated the theorem: keep what follows it
                text = text[at + len(formal_statement) :]
                if self.proof_open.strip() and text.lstrip().startswith(self.proof_open.strip()):
                    text = text.lstrip()[len(self.proof_open.strip()) :]
        text = text.rstrip()
        closer = self.proof_close.strip()
        if closer and text.endswith(closer):
            text = text[: -len(closer)].rstrip()
        return text.strip("\n")

    # ----------------------------------------------------------- conjecturer

    def conjecturer_prompt(
        self,
        header: str,
        seed_statement: str,
        seed_proof: str,
        lemma: str | None,
    ) -> str:
        """Ask for a new theorem related to the seed whose proof may use ``lemma``.
        ``lemma`` is None for the trivial lemma (no lemma to use)."""
        seed = self.assemble("", seed_statement, seed_proof)
        lemma_part = (
            f"{self._comment('Lemma that the new theorem should use:')}{lemma.strip()}\n\n"
            if lemma
            else ""
        )
        return (
            f"Complete the following {self.display} code with a new theorem that is related "
            "to the given theorem and whose proof can use the given lemma:\n\n"
            f"{FENCE}{self.fence}\n{header}{self._comment('Given theorem:')}{seed}\n\n"
            f"{lemma_part}{self._comment('New theorem:')}{self.theorem_keyword} "
        )

    def conjecture_completion(self, formal_statement: str) -> str:
        """Training target for the conjecturer: the statement after the keyword."""
        body = formal_statement.strip()
        if body.startswith(self.theorem_keyword + " "):
            body = body[len(self.theorem_keyword) + 1 :]
        return f"{body}\n{FENCE}"

    def parse_conjecture(self, completion: str, name: str) -> str | None:
        """The statement a conjecturer completion proposes, renamed to ``name``, in the
        dataset's form (ready for ``assemble``); None when it is not a well-formed statement."""
        raise NotImplementedError

    # ------------------------------------------------------------------ names

    def code(self, text: str) -> str:
        """``text`` without comments and with every string emptied: the identifiers left in
        it are the ones the text really names (a comment can mention any lemma)."""
        raise NotImplementedError

    def identifiers(self, text: str) -> tuple[str, ...]:
        """The possibly qualified identifiers ``text`` names outside comments and strings, in
        order of first use: ``Nat.add_comm``, ``le_n_S'``, ``Finset.sum_range_succ``."""
        return tuple(dict.fromkeys(_IDENTIFIER.findall(self.code(text))))

    def cited(self, proof: str, names: Iterable[str]) -> str | None:
        """The first of ``names`` that ``proof`` cites, or None."""
        wanted = set(names)
        return next((name for name in self.identifiers(proof) if name in wanted), None)

    def statement_body(self, formal_statement: str) -> str:
        """The statement without its keyword and name (``Theorem foo (n : nat) : P`` ->
        ``(n : nat) : P``): statements that differ only in their names are the same."""
        raise NotImplementedError


class _Rocq(FormalLanguage):
    _NAME = re.compile(r"^\s*([A-Za-z_][\w']*)")
    _STRING = re.compile(r'"(?:[^"]|"")*"')  # in comment-free text; "" escapes a quote
    _HEAD = re.compile(
        r"^\s*(?:Theorem|Lemma|Fact|Remark|Corollary|Proposition|Property|Example)\s+[A-Za-z_][\w']*"
    )

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


class _Lean(FormalLanguage):
    _NAME = re.compile(r"^\s*([^\s(\[{:]+)")
    _HEAD = re.compile(r"^\s*(?:theorem|lemma)\s+[^\s(\[{:]+")

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


class _Isabelle(FormalLanguage):
    _HEAD = re.compile(r"^\s*(?:theorem|lemma)\s+[^\s:]+\s*:")
    _NAME = re.compile(r"^\s*([A-Za-z_][\w'.]*)\s*:\s*(?P<rest>\S.*)$", re.DOTALL)
    _PROOF_WORDS = re.compile(r"(?<![\w'.])(by|proof|apply|sorry|oops|done|using|qed)(?![\w'.])")

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


# The declaration a Lean formal statement opens, and its name.
_LEAN_DECLARATION = re.compile(
    r"^\s*(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable)\s+)*"
    r"(?:theorem|lemma|def|abbrev)\s+(?P<name>[^\s(\[{:⦃]+)"
)


def lean_declaration_name(formal_statement: str) -> str | None:
    """The name a Lean formal statement declares (``theorem NAME ...``); None when it opens
    no named declaration."""
    match = _LEAN_DECLARATION.match(formal_statement)
    return match.group("name") if match else None


def lean_rename_declaration(formal_statement: str, new_name: str) -> str:
    """The same Lean statement declaring ``new_name``; ValueError when it names nothing."""
    match = _LEAN_DECLARATION.match(formal_statement)
    if match is None:
        raise ValueError(f"not a named Lean declaration: {formal_statement[:60]!r}")
    return (
        formal_statement[: match.start("name")] + new_name + formal_statement[match.end("name") :]
    )


# The theorem an Isabelle formal statement opens, and its name.
_ISABELLE_THEOREM = re.compile(r"^\s*(?:theorem|lemma)\s+(?P<name>[A-Za-z_][\w'.]*)\s*:")


def isabelle_theorem_name(formal_statement: str) -> str | None:
    """The name an Isabelle formal statement gives its theorem (``theorem NAME: ...``); None
    when it names none."""
    match = _ISABELLE_THEOREM.match(formal_statement)
    return match.group("name") if match else None


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

LANGUAGES: dict[str, FormalLanguage] = {"rocq": ROCQ, "lean": LEAN, "isabelle": ISABELLE}


def language(name: str) -> FormalLanguage:
    """The formal language of a verifier backend name (``"rocq"``, ``"lean"``,
    ``"isabelle"``)."""
    try:
        return LANGUAGES[name]
    except KeyError:
        raise ValueError(
            f"no prompt format for {name!r}; formats exist for: {', '.join(LANGUAGES)}"
        ) from None
