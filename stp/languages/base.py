"""The shared prompt format of every proof assistant: how a file is assembled, how prompts
look, how completions are parsed. One module per assistant (``stp.languages.rocq``, ``.lean``,
``.isabelle``) supplies its syntax: a ``FormalLanguage`` instance and its lexer.

Everything that depends on the proof assistant's syntax lives in this package, so that the
prompts used for training and for sampling can never drift apart (the original STP's did),
and the verifier checks exactly the text the prompt showed the model.

Prover prompt (Lean 4 shown; DeepSeek-Prover-V1.5's format, which STP also uses)::

    Complete the following Lean 4 code:

    ```lean4
    <header><informal statement as a comment><formal statement>
    <-- the model writes the proof here, then closes the fence

Rocq is the same with a ```coq fence and ``Proof.`` after the statement; the model writes the
tactics and ``Qed.``. Isabelle has an ```isabelle fence; the model writes the Isar proof. The
model supplies only the proof: the statement is the dataset's.

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
        """The training target for a proof: what the model should write after the prompt.
        Only blank lines are trimmed: a Lean tactic block's indentation is syntax (a tactic
        at column 0 after ``by`` ends the declaration)."""
        body = proof.strip("\n").rstrip()
        return f"{body}{self.proof_close}\n{FENCE}"

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

    def theorem_name(self, formal_statement: str) -> str | None:
        """The name of the theorem ``formal_statement`` declares (``Theorem foo ...`` ->
        ``foo``); None when it declares no named theorem."""
        raise NotImplementedError

    def statement_body(self, formal_statement: str) -> str:
        """The statement without its keyword and name (``Theorem foo (n : nat) : P`` ->
        ``(n : nat) : P``): statements that differ only in their names are the same."""
        raise NotImplementedError
