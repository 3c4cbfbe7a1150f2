"""The Lean proof screen: what a proof may not contain, read with a Lean 4 lexer.

    reason = screen(proof)      # None: the proof may go to Lean; else why it may not, in one line

A proof is the text after the dataset's statement (``theorem name ... := by``): tactics or a
term. Everything that could make Lean run code of the proof's own, change how later commands
are read, or add declarations is rejected wherever it stands outside comments and strings:
command and declaration keywords (``elab``, ``macro_rules``, ``theorem``, ``#eval``, ...),
their modifiers (``local``, ``scoped``, ``private``, a doc comment does not hide what follows
it), attributes (``@[...]``, ``attribute``), ``open``/``set_option`` except in their
``... in`` forms (and ``set_option`` only for options on an allow-list, never ``debug.*``),
``native_decide`` and ``Lean.ofReduceBool`` (compiled code as an axiom), and the library search
tactics (``apply?``, ``exact?``), which on Lean 4.9 can close a goal without any ``sorry``
message.

The lexer follows Lean's ``tokenFn``: nested ``/- -/`` comments, ``--`` comments, strings with
escapes, char literals, «guillemet» identifiers, dotted names, and
Lean's own identifier characters (ASCII letters, Greek, letter-like symbols; not every Unicode
letter: ``éelab`` is two tokens to Lean, so it is two here). A word is a keyword only when it
is a whole token, as Lean decides (``my_elab`` and ``Lean.Elab`` are names; ``h.1.elab`` ends
in the keyword).

After a syntax error Lean's parser resumes at the next token and runs every command it finds
from there on, so text the lexer cannot place with certainty is rejected rather than skipped:
unterminated comments and strings, unknown escapes, raw strings (not read alike by every Lean
version), tabs, a string with ``{`` (an interpolated string's braces hold code), a comment opener glued to a symbol (``<--``: Lean may read ``<-``
then ``-``), a char literal glued to a symbol. No benchmark proof needs any of these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ----------------------------------------------------------------------------- what is banned

# Words that begin a command or declaration, or modify one: any of them outside a comment or
# string means the proof ends the theorem and goes on with commands of its own.
_COMMANDS = frozenset(
    [
        "abbrev",
        "add_decl_doc",
        "alias",
        "assert_not_exists",
        "attribute",
        "axiom",
        "builtin_initialize",
        "class",
        "compile_inductive",
        "declare_simp_like_tactic",
        "declare_syntax_cat",
        "def",
        "deriving",
        "elab",
        "elab_rules",
        "end",
        "example",
        "export",
        "import",
        "include",
        "inductive",
        "infix",
        "infixl",
        "infixr",
        "initialize",
        "initialize_simps_projections",
        "instance",
        "irreducible_def",
        "lemma",
        "library_note",
        "local",
        "macro",
        "macro_rules",
        "mutual",
        "namespace",
        "noncomputable",
        "nonrec",
        "notation",
        "notation3",
        "omit",
        "opaque",
        "partial",
        "postfix",
        "prefix",
        "private",
        "protected",
        "register_builtin_option",
        "register_option",
        "register_simp_attr",
        "run_cmd",
        "run_elab",
        "run_meta",
        "scoped",
        "section",
        "seal",
        "structure",
        "suppress_compilation",
        "syntax",
        "theorem",
        "unif_hint",
        "universe",
        "unsafe",
        "unseal",
        "variable",
        "binder_predicate",
        # simprocs are code that simp runs; the rest change what later commands or tactics do
        "simproc",
        "dsimproc",
        "simproc_decl",
        "dsimproc_decl",
        "builtin_simproc",
        "builtin_dsimproc",
        "builtin_simproc_decl",
        "builtin_dsimproc_decl",
        "declare_config_elab",
        "variable?",
        "sudo",
        "register_hint",
        "register_label_attr",
        "declare_aesop_rule_sets",
        "add_aesop_rules",
        "erase_aesop_rules",
        "unsuppress_compilation",
        "init_quot",
    ]
)
# Terms and tactics that run code of the proof's own at elaboration time.
_CODE = frozenset({"run_tac", "by_elab", "dbg_trace"})
# Trusting compiled code: the kernel does not check what it computes.
_COMPILED = frozenset(
    {"native_decide", "ofReduceBool", "ofReduceNat", "reduceBool", "reduceNat", "implemented_by"}
)
# Library search: on Lean 4.9 `apply?` can close a goal with a sorry that no message reports.
_SEARCH = frozenset({"apply?", "exact?", "rw?", "library_search", "rw_search", "observe?"})

_KEYWORDS = _COMMANDS | _CODE | _COMPILED | _SEARCH | {"set_option", "open"}

# `set_option NAME VALUE in ...` is allowed for these options (and their sub-options) only.
_ALLOWED_OPTIONS = frozenset(
    {
        "maxHeartbeats",
        "maxRecDepth",
        "synthInstance",
        "pp",
        "linter",
        "trace",
        "profiler",
        "push_neg",
        "simprocs",
        "autoImplicit",
        "relaxedAutoImplicit",
        "exponentiation",
        "tactic",
        "backward",
        "maxSynthPendingDepth",
        "diagnostics",
    }
)

# ----------------------------------------------------------------------------- the lexer


class LexicalError(ValueError):
    """Text the lexer cannot place as Lean would (the screen rejects the proof)."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "ident" | "symbol" | "number" | "string" | "char"
    text: str  # as written
    start: int  # offset in the proof
    parts: tuple[str, ...] = ()  # an identifier's components, guillemets removed

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def word(self) -> str | None:
        """A one-component identifier's name: the only kind Lean may read as a keyword
        (a «guillemet» name never is; the screen treats it as one all the same)."""
        return self.parts[0] if self.kind == "ident" and len(self.parts) == 1 else None


def _letter_like(c: str) -> bool:
    """Lean 4.9's ``isLetterLike`` (newer Lean adds Latin-1 letters; leaving them out only
    splits a name Lean keeps whole, which rejects more, never less)."""
    v = ord(c)
    return (
        (0x3B1 <= v <= 0x3C9 and v != 0x3BB)
        or (0x391 <= v <= 0x3A9 and v not in (0x3A0, 0x3A3))
        or 0x3CA <= v <= 0x3FB
        or 0x1F00 <= v <= 0x1FFE
        or 0x2100 <= v <= 0x214F
        or 0x1D49C <= v <= 0x1D59F
    )


def _subscript(c: str) -> bool:
    v = ord(c)
    return 0x2080 <= v <= 0x2089 or 0x2090 <= v <= 0x209C or 0x1D62 <= v <= 0x1D6A


def _id_first(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or c == "_" or _letter_like(c)


def _id_rest(c: str) -> bool:
    return _id_first(c) or ("0" <= c <= "9") or c in "'!?" or _subscript(c)


_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
)
# Escapes every Lean 4 since 2022 reads: one Lean rejects would make it resume mid-string.
_ESCAPE = re.compile(r"\\(?:[\\\"'nt]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})")
# Mathlib tokens that end in a quote (`∑' i, f i`): the quote does not open a char literal.
_PRIMED_SYMBOLS = frozenset({"∑'", "∏'"})
# After these (or whitespace, or a name) a comment opener or a quote starts a token for sure.
_CLEAR_BEFORE = frozenset("()[]{}⟨⟩,;⊢·")


def _clear_boundary(text: str, at: int) -> bool:
    """Whether a token surely starts at ``at``: what precedes cannot be part of a longer
    Lean symbol token."""
    if at == 0:
        return True
    before = text[at - 1]
    return before.isspace() or _id_rest(before) or before in _CLEAR_BEFORE


def _block_comment_end(text: str, at: int) -> int:
    """Offset just after the ``-/`` that closes a comment whose body starts at ``at``."""
    depth = 1
    while at < len(text):
        if text.startswith("-/", at):
            depth -= 1
            at += 2
            if depth == 0:
                return at
        elif text.startswith("/-", at):
            depth += 1
            at += 2
        else:
            at += 1
    raise LexicalError("unterminated comment")


def _string_end(text: str, at: int) -> int:
    """Offset just after the closing quote of a string whose body starts at ``at``."""
    while at < len(text):
        c = text[at]
        if c == '"':
            return at + 1
        if c == "\\":
            escape = _ESCAPE.match(text, at)
            if escape is None:
                raise LexicalError(f"unknown escape {text[at : at + 2]!r} in a string")
            at = escape.end()
            continue
        if c == "{":
            raise LexicalError("a string with '{' (an interpolated string's braces hold code)")
        at += 1
    raise LexicalError("unterminated string")


def _raw_string_start(text: str, at: int) -> bool:
    """Whether a raw string ``r#*"`` starts at ``at`` (the ``r``)."""
    hashes = 0
    while at + 1 + hashes < len(text) and text[at + 1 + hashes] == "#":
        hashes += 1
    return at + 1 + hashes < len(text) and text[at + 1 + hashes] == '"'


def _char_end(text: str, at: int) -> int:
    """End of a char literal starting at ``at`` (the opening quote)."""
    if at + 1 >= len(text):
        raise LexicalError("a lone quote")
    if text[at + 1] == "\\":
        escape = _ESCAPE.match(text, at + 1)
        if escape is None:
            raise LexicalError(f"unknown escape {text[at + 1 : at + 3]!r} in a char literal")
        close = escape.end()
    else:
        close = at + 2
    if close >= len(text) or text[close] != "'":
        raise LexicalError("a quote that does not close a char literal")
    return close + 1


def _identifier(text: str, at: int) -> tuple[int, tuple[str, ...]]:
    """End and components of the (dotted) identifier starting at ``at``."""
    parts = []
    while True:
        if text[at] == "«":
            close = text.find("»", at + 1)
            if close == -1:
                raise LexicalError("unterminated «identifier»")
            parts.append(text[at + 1 : close])
            at = close + 1
        else:
            start = at
            at += 1
            while at < len(text) and _id_rest(text[at]):
                at += 1
            parts.append(text[start:at])
        nxt = text[at + 1] if at + 1 < len(text) else ""
        if at < len(text) and text[at] == "." and (nxt == "«" or (nxt and _id_first(nxt))):
            at += 1
            continue
        return at, tuple(parts)


def tokens(text: str) -> list[Token]:
    """The tokens of ``text`` outside comments, as Lean's lexer splits them (strings and char
    literals are tokens whose insides are not code). Raises ``LexicalError``."""
    out: list[Token] = []
    at = 0
    while at < len(text):
        c = text[at]
        if c in " \n\r":
            at += 1
        elif c == "\t":
            raise LexicalError("a tab (Lean rejects tabs)")
        elif text.startswith("--", at) or text.startswith("/-", at):
            if not _clear_boundary(text, at):
                raise LexicalError(f"comment opener glued to a symbol at offset {at}")
            if c == "-":
                newline = text.find("\n", at)
                at = len(text) if newline == -1 else newline
            else:
                at = _block_comment_end(text, at + 2)
        elif c == '"':
            end = _string_end(text, at + 1)
            out.append(Token("string", text[at:end], at))
            at = end
        elif c == "'":
            if not _clear_boundary(text, at):
                raise LexicalError(f"a quote glued to a symbol at offset {at}")
            end = _char_end(text, at)
            out.append(Token("char", text[at:end], at))
            at = end
        elif c == "r" and _raw_string_start(text, at):
            # Lean versions differ on raw strings (before them, `r` and a string): the two
            # readings end at different quotes.
            raise LexicalError("a raw string literal")
        elif "0" <= c <= "9":
            number = _NUMBER.match(text, at)
            assert number is not None
            out.append(Token("number", number.group(), at))
            at = number.end()
        elif c == "«" or _id_first(c):
            end, parts = _identifier(text, at)
            out.append(Token("ident", text[at:end], at, parts))
            at = end
        else:
            width = 2 if text[at : at + 2] in _PRIMED_SYMBOLS else 1
            out.append(Token("symbol", text[at : at + width], at))
            at += width
    return out


# ----------------------------------------------------------------------------- the screen


def _after_set_option(toks: list[Token], k: int) -> tuple[int, str | None]:
    """Check ``set_option NAME VALUE in`` at ``toks[k]``; the index after it, or why not."""
    if k + 3 >= len(toks) or toks[k + 1].kind != "ident":
        return k + 1, "set_option is allowed only as `set_option NAME VALUE in`"
    name, value, keyword = toks[k + 1], toks[k + 2], toks[k + 3]
    if name.parts[0] not in _ALLOWED_OPTIONS:
        return k + 1, f"set_option {'.'.join(name.parts)} is not allowed in a proof"
    if value.text not in ("true", "false") and value.kind not in ("number", "string"):
        return k + 1, "set_option is allowed only as `set_option NAME VALUE in`"
    if keyword.word != "in":
        return k + 1, "set_option is allowed only as `set_option NAME VALUE in`"
    return k + 4, None


_OPEN_SYMBOLS = frozenset({"(", ")", "→", "-", ">"})


def _after_open(toks: list[Token], k: int) -> tuple[int, str | None]:
    """Check ``open A B (x) hiding y renaming a → b in`` at ``toks[k]``."""
    j = k + 1
    while j < len(toks):
        tok = toks[j]
        if tok.word == "in":
            if j == k + 1:
                break
            return j + 1, None
        banned = tok.word in _KEYWORDS and tok.word != "scoped"
        if (tok.kind != "ident" or banned) and tok.text not in _OPEN_SYMBOLS:
            break
        j += 1
    return k + 1, "open is allowed only as `open NAMES in`"


def screen(proof: str) -> str | None:
    """Why ``proof`` may not go to Lean, in one line; None when it passes."""
    try:
        toks = tokens(proof)
    except LexicalError as exc:
        return f"proof text Lean could read otherwise: {exc}"
    k = 0
    while k < len(toks):
        tok = toks[k]
        nxt = toks[k + 1] if k + 1 < len(toks) else None
        glued = nxt is not None and nxt.start == tok.end
        word = tok.word
        reason = None
        if tok.kind == "symbol" and glued and nxt is not None:
            if tok.text == "#" and nxt.kind == "ident":
                reason = f"commands (#{nxt.text}) are not allowed in a proof"
            elif tok.text == "@" and nxt.text == "[":
                reason = "attributes (@[...]) are not allowed in a proof"
        elif word == "eval" and glued and nxt is not None and nxt.text == "%":
            reason = "metaprogramming (eval%) is not allowed in a proof"
        elif word == "set_option":
            k, reason = _after_set_option(toks, k)
            if reason is None:
                continue
        elif word == "open":
            k, reason = _after_open(toks, k)
            if reason is None:
                continue
        elif word in _COMMANDS:
            reason = f"commands and declarations ({word}) are not allowed in a proof"
        elif word in _CODE:
            reason = f"metaprogramming ({word}) is not allowed in a proof"
        elif word in _SEARCH:
            reason = f"library search tactics ({word}) are not allowed in a proof"
        elif tok.kind == "ident" and (trusted := _COMPILED.intersection(tok.parts)):
            reason = f"{min(trusted)} trusts compiled code (Lean.ofReduceBool)"
        if reason is not None:
            return reason
        k += 1
    return None
