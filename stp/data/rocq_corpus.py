"""The Rocq corpus: statement/proof pairs and lemmas from the Coq standard library sources.

    stp data extract-rocq --out artifacts/corpus-rocq                  # default modules
    stp data extract-rocq --out DIR --modules Arith,Lists --max-theorems 500
    stp data extract-rocq --out DIR --modules all                      # the whole stdlib

The stdlib sources ship with Debian's ``coq`` (``$(coqc -where)/theories``). Each
``Theorem|Lemma|Fact|Remark|Corollary|Proposition`` proved with ``Qed`` becomes a dataset
statement, renamed ``stp_<module path>_<name>`` so it does not clash with the library's copy,
under a header that ``Require``s the library module and replays the directives its file had
in force (``Require``, ``Import``, ``Open Scope``, ``Implicit Types``, section-local ``Ltac``).
Section variables and hypotheses the theorem uses become binders in front of its own, as
Rocq itself generalises them at ``End``. What cannot be made self-contained is skipped with a
reason: ``Defined``/``Admitted`` proofs, vernacular inside proofs, ``Program``, functor and
module-type bodies, section ``Let``s and unnamed section contexts. A definition made inside a
section takes the section variables it uses as first arguments after ``End``: statements that
use it are given them explicitly (``map l`` becomes ``(@map A B f) l``).

Every candidate is checked by the Rocq verifier in exactly the form it will be used
(``ROCQ.assemble(header, formal_statement, proof)``); only ``proved`` pairs whose proof does
not cite the target's library copy are kept. Verdicts are cached in ``DIR/verify_cache.jsonl``
as they arrive, so a killed extraction continues where it stopped.

The lemma index holds every stdlib theorem a file states, by every name it can be cited by,
plus the lemmas kept proofs cite that only a functor states (``Nat.add_comm`` comes from
``NAddProp``), located and typed by ``coqc``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from stp.artifacts import atomic_write_json, atomic_write_text, text_sha256
from stp.data.benchmarks import DataError, Statement
from stp.data.corpus import (
    CONJECTURE_TARGETS,
    CORPUS_TEXT_FILE,
    SPLITS,
    SUMMARY_FILE,
    Lemma,
    ProvedTheorem,
    build_lemma_index,
    check_fractions,
    conjecture_examples,
    corpus_text,
    lemmas_used,
    name_hash,
    qualified_names,
    split_of,
    write_corpus,
)
from stp.languages.rocq import ROCQ, THEOREM_HEAD, rocq_sentences, rocq_strip_comments
from stp.verify.process import kill_group, spawn
from stp.verify.types import Verdict, Verifier, VerifyJob, VerifyResult

# The CPU default favours arithmetic, lists and logic: closest to miniF2F-Rocq's statements.
DEFAULT_MODULES: tuple[str, ...] = (
    "Init",
    "Logic",
    "Bool",
    "Arith",
    "Lists",
    "PArith",
    "NArith",
    "ZArith",
)
SOURCE = "coq-stdlib"

_THEOREM = re.compile(
    r"^(?:#\[[^\]]*\]\s*)*(?P<prefix>(?:(?:Local|Global|Program|Polymorphic|Monomorphic)\s+)*)"
    rf"{THEOREM_HEAD}(?P<rest>.*)\.$",
    re.DOTALL,
)
_LET = re.compile(r"\blet\b")  # ``let x := ... in``: a ``:=`` inside a type
_ATTRIBUTES = re.compile(r"^(?:#\[[^\]]*\]\s*)*(?:(?:Local|Global)\s+(?=\S))?")
_LOCAL = re.compile(r"^(?:#\[[^\]]*\blocal\b[^\]]*\]|Local\s)")
# Directives a header replays as the file had them (scopes, imports, implicit types).
_REPLAYED = ("Import", "Export", "Implicit", "Generalizable")
_PROOF_ENDINGS = {"Qed": None, "Defined": "defined", "Admitted": "admitted", "Abort": "aborted"}
_PROOF_LEADERS = re.compile(r"^(?:[-+*{}]|\d+\s*:|all\s*:|\s)*")


@dataclass(frozen=True, slots=True)
class SectionVariable:
    """One variable of a section (``Variables (A B : Type)`` gives two)."""

    name: str
    binder: str  # "(A : Type)", "{A : Type}", "(H : forall x, P x)"


@dataclass(frozen=True, slots=True)
class Declaration:
    """A theorem as the parser found it, before checking."""

    module: str  # logical path of its file: "Coq.Arith.PeanoNat"
    inner: str  # enclosing modules inside the file: "Nat" ("" at top level)
    name: str
    binders: str  # the theorem's own binders, before the colon ("n m", "(l : list A)")
    type: str
    proof: str  # tactics between ``Proof.`` and ``Qed.``, comments removed
    section_binders: tuple[str, ...]  # section variables the theorem uses, as binders
    directives: tuple[str, ...]  # the file's context the header replays
    skip: str | None = None  # why it cannot be a dataset statement; None when it can

    @property
    def local_name(self) -> str:
        """How its own file names it: ``Nat.add_0_r``."""
        return f"{self.inner}.{self.name}" if self.inner else self.name

    @property
    def full_name(self) -> str:
        return f"{self.module}.{self.local_name}"

    @property
    def fresh_name(self) -> str:
        """The dataset statement's name: ``stp_Arith_PeanoNat_Nat_add_0_r``."""
        return "stp_" + self.full_name.removeprefix("Coq.").replace(".", "_")

    def closed_type(self) -> str:
        """``forall <section binders> <binders>, type`` (just ``type`` without binders)."""
        binders = " ".join((*self.section_binders, self.binders)).strip()
        return f"forall {binders}, {self.type}" if binders else self.type

    def formal_statement(self) -> str:
        binders = " ".join((*self.section_binders, self.binders)).strip()
        return f"Theorem {self.fresh_name}{' ' + binders if binders else ''} : {self.type}."

    def header(self) -> str:
        return "".join(f"{line}\n" for line in self.directives) + "\n"


@dataclass
class _Scope:
    kind: str  # "section", "module", "functor" (functor body or module type)
    name: str
    variables: list[SectionVariable] = field(default_factory=list)
    # Names defined inside a section (Definition, Inductive and its constructors...) -> the
    # section variables they take as first arguments once the section is closed.
    locals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lets: set[str] = field(default_factory=set)  # ``Let``s vanish at ``End``
    import_on_end: bool = False  # ``Module Import M.``: M's names stay visible after ``End M``
    unnamed_context: bool = False
    directives: list[str] = field(default_factory=list)


def logical_path(theories: Path, file: Path) -> str:
    """``theories/Arith/PeanoNat.v`` -> ``Coq.Arith.PeanoNat``."""
    return ".".join(("Coq", *file.relative_to(theories).with_suffix("").parts))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _top_level(text: str) -> Iterator[int]:
    """Indices of ``text``'s characters outside brackets and strings (comment-free text)."""
    depth = 0
    in_string = False
    for i, c in enumerate(text):
        if c == '"':
            in_string = not in_string  # "" (an escaped quote) toggles twice
        elif in_string:
            continue
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            yield i


def _split_binders(statement: str) -> int | None:
    """Index of the colon that separates a theorem's binders from its type in comment-free
    text: the first ``:`` outside brackets and strings that is not part of ``:=``, ``::`` or
    ``:>``."""
    for i in _top_level(statement):
        if statement[i] == ":" and not (
            statement[i + 1 : i + 2] in ("=", ":", ">") or statement[i - 1 : i] == ":"
        ):
            return i
    return None


def _defined_by_term(rest: str) -> bool:
    """Whether a statement (``rest``: what follows its name) ends in ``:= term``: an
    ``Example`` with its body, a definition and not a theorem with a proof to read."""
    colon = _split_binders(rest)
    if colon is None:
        return False
    body = rest[colon + 1 :]
    return any(body.startswith(":=", i) and not _LET.search(body[:i]) for i in _top_level(body))


def _section_variables(keyword: str, body: str) -> tuple[list[SectionVariable], bool]:
    """One binder per name of ``Variable(s)/Hypothesis/Hypotheses/Context <body>``; the flag
    says an unnamed binder (a ``\\`{...}`` instance) was found."""
    body = body.strip()
    if keyword != "Context" and body[:1] not in "({[":  # "Variables A B : Type"
        names, sep, typ = body.partition(":")
        if not sep:
            return [], True
        return [SectionVariable(n, f"({n} : {_one_line(typ)})") for n in names.split()], False
    found: list[SectionVariable] = []
    unnamed = False
    depth = 0
    start = 0
    for i, c in enumerate(body):
        if c in "({[":
            if depth == 0:
                start = i
            depth += 1
        elif c in ")}]":
            depth -= 1
            if depth == 0:
                names, sep, typ = body[start + 1 : i].partition(":")
                if (start > 0 and body[start - 1] in "`!") or not sep:
                    unnamed = True
                    continue
                opener, closer = body[start], body[i]
                found.extend(
                    SectionVariable(n, f"{opener}{n} : {_one_line(typ)}{closer}")
                    for n in names.split()
                )
    return found, unnamed


def _section_closure(scopes: Sequence[_Scope], used: Iterable[str]) -> list[SectionVariable]:
    """The section variables ``used`` names, and those their types name in turn, in the order
    the sections declare them: the variables Rocq generalises a declaration over at ``End``."""
    variables = [v for scope in scopes for v in scope.variables]
    wanted = set(used)
    chosen: set[int] = set()
    changed = True
    while changed:
        changed = False
        for i, variable in enumerate(variables):
            if i not in chosen and variable.name in wanted:
                chosen.add(i)
                wanted |= set(ROCQ.identifiers(variable.binder))
                changed = True
    return [variables[i] for i in sorted(chosen)]


def _apply_section_arguments(text: str, scopes: Sequence[_Scope]) -> str:
    """``map l`` -> ``(@map A B f) l`` for every section-local definition ``map`` of ``text``:
    outside its section it takes the section variables it uses as its first arguments."""
    for scope in scopes:
        for name, arguments in scope.locals.items():
            if arguments:
                pattern = rf"(?<![\w'.@]){re.escape(name)}(?![\w'])"
                text = re.sub(pattern, f"(@{name} {' '.join(arguments)})", text)
    return text


_DEFINITIONS = (
    "Definition",
    "Fixpoint",
    "CoFixpoint",
    "Inductive",
    "CoInductive",
    "Variant",
    "Record",
    "Structure",
    "Class",
    "Instance",
    "Function",
)
_CONSTRUCTOR = re.compile(r"(?:\||:=)\s*([A-Za-z_][\w']*)\s*[:(\[{]")


def _defined_names(sentence: str) -> set[str]:
    """The names a definition sentence makes: its own and, for an inductive type, its
    constructors (a record's fields are missed)."""
    words = sentence.split()
    names = {words[1].rstrip(".:")}
    if words[0] in ("Inductive", "CoInductive", "Variant"):
        names |= set(_CONSTRUCTOR.findall(sentence))
    return names


def _proof_vernacular(code: str) -> bool:
    """A capitalised command inside a proof (``Opaque``, ``Hint``, a nested ``Lemma``); a
    qualified tactic name such as ``Z.le_elim`` is not one."""
    words = _PROOF_LEADERS.sub("", code, count=1).split()
    return bool(words) and words[0][:1].isupper() and "." not in words[0].rstrip(".")


def parse_file(theories: Path, file: Path) -> list[Declaration]:
    """The theorem declarations of one stdlib file, in order, each with a skip reason when it
    cannot be made a self-contained dataset statement."""
    text = file.read_text(encoding="utf-8")
    module = logical_path(theories, file)
    spans, _ = rocq_sentences(text)
    requires: list[str] = []
    scopes: list[_Scope] = [_Scope("file", module)]
    found: list[Declaration] = []
    i = 0
    while i < len(spans):
        start, end = spans[i]
        source = text[start:end]
        code = _one_line(ROCQ.code(source))
        i += 1
        match = _THEOREM.match(_one_line(rocq_strip_comments(source)))
        if match is not None and not _defined_by_term(match.group("rest")):
            i = _read_theorem(text, spans, i, match, module, requires, scopes, found)
            continue
        _read_context(code, source, requires, scopes)
    return found


def _read_context(code: str, source: str, requires: list[str], scopes: list[_Scope]) -> None:
    """Track sections, modules, section variables and the directives a header must replay."""
    bare = _ATTRIBUTES.sub("", code, count=1)
    words = bare.rstrip(".").split()
    if not words:
        return
    head = words[0]
    scope = scopes[-1]
    if head == "Section" and len(words) == 2:
        scopes.append(_Scope("section", words[1]))
    elif head == "Module" and ":=" not in bare:
        rest = words[1:]
        imported = bool(rest) and rest[0] in ("Import", "Export")
        rest = rest[1:] if imported else rest
        if (rest and rest[0] == "Type") or "(" in bare.split("<:")[0]:
            scopes.append(_Scope("functor", rest[-1] if rest else "?"))
        elif rest:
            scopes.append(_Scope("module", rest[0], import_on_end=imported))
    elif head == "End" and len(scopes) > 1:
        closed = scopes.pop()
        if closed.import_on_end:
            path = ".".join(s.name for s in [*scopes[1:], closed] if s.kind == "module")
            scopes[-1].directives.append(f"Import {scopes[0].name}.{path}.")
    elif (
        head in ("Variable", "Variables", "Hypothesis", "Hypotheses", "Context")
        and scope.kind == "section"
    ):
        groups, unnamed = _section_variables(head, bare[len(head) :].rstrip("."))
        scope.variables.extend(groups)
        scope.unnamed_context |= unnamed
    elif head == "Let" and scope.kind == "section" and len(words) > 1:
        scope.lets.add(words[1].rstrip(".:"))
    elif head in _DEFINITIONS and scope.kind == "section" and len(words) > 1:
        mentioned = set(ROCQ.identifiers(bare))
        used = set(mentioned)
        for s in scopes:
            for name, arguments in s.locals.items():
                if name in mentioned:
                    used |= set(arguments)
        arguments = tuple(v.name for v in _section_closure(scopes, used))
        scope.locals.update(dict.fromkeys(_defined_names(bare), arguments))
    elif head == "Require" or (head == "From" and "Require" in words):
        requires.append(_one_line(rocq_strip_comments(source)))
    elif _sectional(scopes) & set(ROCQ.identifiers(bare)):
        return  # a directive about what only exists inside a section cannot be replayed
    elif head in _REPLAYED or bare.startswith(("Open Scope", "Close Scope")):
        scope.directives.append(bare)
    elif head in ("Ltac", "Tactic", "Hint") and (scope.kind == "section" or _LOCAL.match(code)):
        # Local tactics and hints are not exported with the library: the header makes them again.
        text = _one_line(rocq_strip_comments(source)) if head == "Hint" else source
        local = "#[local] " if head == "Hint" else ""
        body = _ATTRIBUTES.sub("", textwrap.dedent(rocq_strip_comments(text)).strip(), count=1)
        scope.directives.append(local + body)


def _sectional(scopes: Sequence[_Scope]) -> set[str]:
    """Names that exist only inside the enclosing sections: variables, lets, local definitions."""
    return {n for s in scopes for n in (*s.locals, *s.lets, *(v.name for v in s.variables))}


def _read_theorem(
    text: str,
    spans: list[tuple[int, int]],
    i: int,
    match: re.Match[str],
    module: str,
    requires: list[str],
    scopes: list[_Scope],
    found: list[Declaration],
) -> int:
    """Read the proof after a theorem sentence (``spans[i-1]``); append the declaration and
    return the index of the sentence after the proof."""
    name, rest = match.group("name"), match.group("rest")
    skip: str | None = None
    proof_start: int | None = None
    proof_end: int | None = None
    using: set[str] = set()
    while i < len(spans):
        start, end = spans[i]
        sentence = _one_line(ROCQ.code(text[start:end]))
        i += 1
        word = sentence.rstrip(".").split()[0] if sentence.rstrip(".").split() else ""
        if proof_start is None:
            proof_start = end if word == "Proof" else start
            if word == "Proof":
                if sentence.startswith("Proof with"):
                    skip = skip or "proof with"
                elif sentence.startswith("Proof using"):
                    using = set(ROCQ.identifiers(sentence[len("Proof using") :]))
                elif sentence != "Proof.":  # ``Proof <term>.`` is the whole proof
                    skip = skip or "proof term"
                    proof_end = end
                    break
                continue
        if word in _PROOF_ENDINGS or word == "Save":
            proof_end = start
            skip = skip or _PROOF_ENDINGS.get(word, "save")
            break
        if _proof_vernacular(sentence):
            skip = skip or "nested vernacular"
    if proof_end is None:
        return i  # no ending: the file is not what we expect here; nothing to keep
    prefix = match.group("prefix")
    if "Program" in prefix:
        skip = skip or "program"
    if any(scope.kind == "functor" for scope in scopes):
        skip = skip or "functor or module type"
    split_at = _split_binders(rest)
    if split_at is None:
        skip = skip or "unparsed statement"
        binders, typ = rest, ""
    else:
        binders = _apply_section_arguments(rest[:split_at], scopes)
        typ = _apply_section_arguments(rest[split_at + 1 :], scopes)
    proof_text = text[proof_start:proof_end] if proof_start is not None else ""
    proof = _dedent_proof(rocq_strip_comments(proof_text))
    if not proof:
        skip = skip or "empty proof"
    used = set(ROCQ.identifiers(proof)) | set(ROCQ.identifiers(binders + " " + typ)) | using
    section_binders = tuple(v.binder for v in _section_closure(scopes, used))
    if used & {name for scope in scopes for name in scope.lets}:
        skip = skip or "section let"
    if any(scope.unnamed_context for scope in scopes):
        skip = skip or "unnamed section context"
    inner = ".".join(scope.name for scope in scopes if scope.kind in ("module", "functor"))
    opened = [f"Import {module}.{'.'.join(p)}." for p in _module_prefixes(scopes)]
    directives = (
        *requires,
        f"Require Import {module}.",
        *opened,
        *(d for s in scopes for d in s.directives),
    )
    found.append(
        Declaration(
            module=module,
            inner=inner,
            name=name,
            binders=_one_line(binders),
            type=_one_line(typ),
            proof=proof,
            section_binders=section_binders,
            directives=tuple(dict.fromkeys(directives)),
            skip=skip,
        )
    )
    return i


def _dedent_proof(text: str) -> str:
    """Proof lines without their common indentation and blank lines; a first line that shared
    its line with ``Proof.`` is not counted in the common indentation."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines() if line.strip()]
    if not lines:
        return ""
    rest = textwrap.dedent("\n".join(lines[1:]))
    return f"{lines[0].strip()}\n{rest}" if rest else lines[0].strip()


def _module_prefixes(scopes: Sequence[_Scope]) -> list[tuple[str, ...]]:
    """``[("Z",), ("Z", "Inner")]`` for a theorem in module ``Inner`` of module ``Z``: the
    modules to import, outermost first, so their names resolve as inside them."""
    names: list[str] = []
    out = []
    for scope in scopes:
        if scope.kind == "module":
            names.append(scope.name)
            out.append(tuple(names))
    return out


def coq_where() -> Path:
    """The library folder of the installed Rocq/Coq (``coqc -where``)."""
    coqc = shutil.which("coqc")
    if coqc is None:
        raise DataError("coqc not found: install Rocq/Coq (`apt-get install coq`)")
    where = subprocess.run([coqc, "-where"], capture_output=True, text=True, check=True).stdout
    return Path(where.strip())


def stdlib_theories() -> Path:
    """The stdlib sources of the installed Rocq/Coq (``$(coqc -where)/theories``)."""
    theories = coq_where() / "theories"
    if not any(theories.glob("*/*.v")):
        raise DataError(
            f"{theories} holds no .v sources: install the `coq` package with its sources"
        )
    return theories


def source_files(sources: Iterable[str]) -> list[Path]:
    """The ``.v`` files ``sources`` name, in a fixed order: a file, a folder (every ``.v``
    file below it) or ``coq:<folder>``, a folder of the installed Coq (``coq:theories`` is the
    standard library, ``coq:user-contrib`` the installed packages such as mathcomp)."""
    files: list[Path] = []
    for source in sources:
        path = coq_where() / source[len("coq:") :] if source.startswith("coq:") else Path(source)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found = sorted(path.rglob("*.v"))
            if not found:
                raise DataError(f"{source}: no .v files below {path}")
            files.extend(found)
        else:
            raise DataError(f"{source}: {path} is neither a .v file nor a folder")
    return files


def stdlib_files(theories: Path, modules: Iterable[str] | None) -> list[Path]:
    """The ``.v`` files of the given top-level stdlib folders (all of them for None), Init first."""
    folders = sorted(p.name for p in theories.iterdir() if p.is_dir())
    wanted = folders if modules is None else list(modules)
    unknown = sorted(set(wanted) - set(folders))
    if unknown:
        raise DataError(
            f"no stdlib folder {unknown[0]!r} in {theories}; folders: {', '.join(folders)}"
        )
    order = sorted(wanted, key=lambda m: (m != "Init", m))
    return [f for m in order for f in sorted((theories / m).rglob("*.v"))]


# ------------------------------------------------------------ lemmas the parser cannot see

_MARK = "stp_corpus_mark_"  # a name nothing has: ``Locate`` of it prints a separator line
_NO_MARK = re.compile(rf"^No object of basename {_MARK}(\d+)\s*$", re.MULTILINE)


def _run_coqc(script: str, timeout_s: float, memory_limit_mb: int) -> str:
    """coqc's output for a script, run in a scratch folder in its own process group."""
    coqc = shutil.which("coqc")
    if coqc is None:
        raise DataError("coqc not found: install Rocq/Coq (`apt-get install coq`)")
    with tempfile.TemporaryDirectory(prefix="stp-lemmas-") as scratch:
        Path(scratch, "lemmas.v").write_text(script, encoding="utf-8")
        proc = spawn([coqc, "-q", "lemmas.v"], scratch, memory_limit_mb)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise DataError(
                f"coqc took over {timeout_s:.0f}s to type library lemmas; extract fewer --modules"
            ) from None
        finally:
            kill_group(proc)
    return out.decode("utf-8", errors="replace")


def _answers(output: str) -> dict[int, str]:
    """What coqc printed after each marker, by marker number."""
    marks = list(_NO_MARK.finditer(output))
    return {
        int(m.group(1)): output[m.end() : marks[k + 1].start() if k + 1 < len(marks) else None]
        for k, m in enumerate(marks)
    }


def library_lemmas(
    names: Iterable[str],
    modules: Sequence[str],
    timeout_s: float = 600.0,
    memory_limit_mb: int = 4096,
) -> list[Lemma]:
    """Lemmas for qualified names proofs cite that no stdlib file states in its text (those a
    functor gives ``Nat``, ``N`` and ``Z``, such as ``Nat.add_comm``): located and typed by
    coqc with ``modules`` imported. Names that are not opaque constants (tactics,
    definitions) are dropped."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    preamble = f"Require Import {' '.join(modules)}.\nSet Printing Width 100000.\n"
    located = _answers(
        _run_coqc(
            preamble + "".join(f"Locate {_MARK}{i}.\nLocate {n}.\n" for i, n in enumerate(wanted)),
            timeout_s,
            memory_limit_mb,
        )
    )
    full_names = {}
    for i, name in enumerate(wanted):
        constant = re.search(r"^Constant (\S+)", located.get(i, ""), re.MULTILINE)
        if constant is not None and constant.group(1).endswith("." + name):
            full_names[name] = constant.group(1)
    about = _answers(
        _run_coqc(
            preamble
            + "".join(
                f"Locate {_MARK}{i}.\nAbout {full}.\n" for i, full in enumerate(full_names.values())
            ),
            timeout_s,
            memory_limit_mb,
        )
    )
    lemmas: dict[str, Lemma] = {}
    for i, (name, full) in enumerate(full_names.items()):
        answer = about.get(i, "").strip()
        typ = re.match(r"\S+ : (.+)", answer)
        # Proved lemmas are opaque (Qed); definitions and Defined terms are transparent.
        if typ is not None and re.search(r" is opaque$", answer, re.MULTILINE):
            lemmas.setdefault(full, Lemma(name, f"{name} : {typ.group(1)}", full[: -len(name) - 1]))
    return list(lemmas.values())


# ----------------------------------------------------------------------------- extraction


@dataclass(frozen=True, slots=True)
class ExtractionSummary:
    files_parsed: int
    theorems_found: int
    rejected: dict[str, int]  # reason -> count (parser skips, "cites target", verdicts)
    kept: dict[str, int]  # split -> count
    lemmas: int
    conjecture_examples: int
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {
            "files_parsed": self.files_parsed,
            "theorems_found": self.theorems_found,
            "rejected": self.rejected,
            "kept": self.kept,
            "lemmas": self.lemmas,
            "conjecture_examples": self.conjecture_examples,
            "seconds": round(self.seconds, 1),
        }

    def lines(self) -> list[str]:
        kept = ", ".join(f"{split} {n}" for split, n in self.kept.items())
        rejected = ", ".join(
            f"{why} {n}" for why, n in sorted(self.rejected.items(), key=lambda kv: -kv[1])
        )
        return [
            f"files parsed      {self.files_parsed}",
            f"theorems found    {self.theorems_found}",
            f"kept              {sum(self.kept.values())} ({kept})",
            f"rejected          {sum(self.rejected.values())} ({rejected or 'none'})",
            f"lemmas indexed    {self.lemmas}",
            f"conjecture exs    {self.conjecture_examples}",
            f"seconds           {self.seconds:.1f}",
        ]


CACHE_FILE = "verify_cache.jsonl"


class VerdictCache:
    """Verdicts of checked jobs, appended to a JSONL file as they arrive, keyed by a hash of
    what was checked (header, statement, proof). A killed run loses at most the batch in
    flight; a torn last line is ignored on reading."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.verdicts: dict[str, str] = {}
        if path.is_file():
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # the line a kill cut short
                    self.verdicts[row["key"]] = row["verdict"]

    @staticmethod
    def key(job: VerifyJob) -> str:
        header, statement, proof, forbidden = job.key()
        return text_sha256(header, statement, proof, *forbidden).hex()

    def get(self, job: VerifyJob) -> str | None:
        return self.verdicts.get(self.key(job))

    def add(self, results: Iterable[tuple[VerifyJob, VerifyResult]]) -> None:
        rows = []
        for job, result in results:
            key = self.key(job)
            self.verdicts[key] = result.verdict.value
            rows.append(
                {"key": key, "id": job.id, "verdict": result.verdict.value, "detail": result.detail}
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
            handle.flush()
            os.fsync(handle.fileno())


def check_all(
    jobs: Sequence[VerifyJob], verifier: Verifier, cache: VerdictCache, batch_size: int = 256
) -> dict[str, str]:
    """Verdict of every job (by id): cached ones read back, the rest checked in batches
    whose results are cached as each batch finishes."""
    todo = [job for job in jobs if cache.get(job) is None]
    with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="checking", unit="proof") as bar:

        def advance(done: int) -> None:
            bar.update(done)

        for at in range(0, len(todo), batch_size):
            batch = todo[at : at + batch_size]
            results = verifier.verify(batch, progress=advance)
            cache.add(zip(batch, results, strict=True))
    return {job.id: cache.get(job) or "" for job in jobs}


def _lemma(decl: Declaration) -> Lemma:
    return Lemma(decl.local_name, f"{decl.local_name} : {decl.closed_type()}", decl.module)


def extract_rocq(
    out_dir: str | Path,
    verifier: Verifier,
    modules: Sequence[str] | None = DEFAULT_MODULES,
    max_theorems: int | None = None,
    heldout_fraction: float = 0.1,
    selfplay_fraction: float = 0.2,
    theories: Path | None = None,
    memory_limit_mb: int = 4096,
    conjecture_targets: int = CONJECTURE_TARGETS,
) -> ExtractionSummary:
    """Parse, check and split the stdlib theorems of ``modules`` (every folder for None) and
    write the corpus folder (see ``stp.data.corpus``). ``max_theorems`` caps the candidates
    checked, chosen by a hash of their names so that every module keeps its share. The lemma
    index is every stdlib theorem stated in a file, plus the lemmas kept proofs cite that only
    a functor states (typed by coqc, under ``memory_limit_mb``). Each sft seed gets up to
    ``conjecture_targets`` conjecturer examples with a lemma and as many with the trivial one
    (``stp.data.corpus.conjecture_examples``)."""
    started = time.monotonic()
    check_fractions(heldout_fraction, selfplay_fraction)
    out = Path(out_dir)
    theories = theories or stdlib_theories()
    target_files = stdlib_files(theories, modules)
    parsed = {f: parse_file(theories, f) for f in stdlib_files(theories, None)}
    lemmas = [_lemma(d) for found in parsed.values() for d in found if d.skip not in _NOT_LEMMAS]
    index = build_lemma_index(lemmas)
    found = [d for f in target_files for d in parsed[f]]
    rejected: Counter[str] = Counter(d.skip for d in found if d.skip is not None)
    candidates: dict[str, Declaration] = {}
    for decl in found:
        if decl.skip is not None:
            continue
        if set(qualified_names(decl.full_name)) & set(ROCQ.identifiers(decl.proof)):
            rejected["cites target"] += 1
        elif decl.fresh_name in candidates:
            rejected["duplicate name"] += 1
        else:
            candidates[decl.fresh_name] = decl
    chosen = list(candidates.values())
    if max_theorems is not None and len(chosen) > max_theorems:
        keep = set(sorted(candidates, key=name_hash)[:max_theorems])
        rejected["over --max-theorems"] += len(chosen) - max_theorems
        chosen = [d for d in chosen if d.fresh_name in keep]
    jobs = [VerifyJob(d.fresh_name, d.header(), d.formal_statement(), d.proof) for d in chosen]
    verdicts = check_all(jobs, verifier, VerdictCache(out / CACHE_FILE))
    proved = []
    for decl, job in zip(chosen, jobs, strict=True):
        if verdicts[job.id] == Verdict.PROVED.value:
            proved.append(decl)
        else:
            rejected[verdicts[job.id]] += 1
    cited = {name for decl in proved for name in ROCQ.identifiers(decl.proof) if "." in name}
    lemmas += library_lemmas(
        cited - set(index),
        sorted({decl.module for decl in proved}),
        memory_limit_mb=memory_limit_mb,
    )
    index = build_lemma_index(lemmas)
    kept: list[tuple[Declaration, ProvedTheorem]] = []
    for decl in proved:
        statement = Statement(
            name=decl.fresh_name,
            prover="rocq",
            split=split_of(decl.full_name, heldout_fraction, selfplay_fraction),
            source=SOURCE,
            header=decl.header(),
            formal_statement=decl.formal_statement(),
            forbidden_names=qualified_names(decl.full_name),
        )
        used = tuple(
            lemma for lemma in lemmas_used(decl.proof, index) if lemma.full_name != decl.full_name
        )
        kept.append((decl, ProvedTheorem(statement, decl.proof, used)))
    theorems = [theorem for _, theorem in kept]
    examples = conjecture_examples(
        [(decl.module, theorem) for decl, theorem in kept], conjecture_targets
    )
    write_corpus(out, theorems, lemmas, examples)
    atomic_write_text(out / CORPUS_TEXT_FILE, corpus_text(theorems, lemmas))
    summary = ExtractionSummary(
        files_parsed=len(target_files),
        theorems_found=len(found),
        rejected=dict(rejected),
        kept={split: sum(t.split == split for t in theorems) for split in SPLITS},
        lemmas=len(lemmas),
        conjecture_examples=len(examples),
        seconds=time.monotonic() - started,
    )
    atomic_write_json(out / SUMMARY_FILE, summary.to_dict())
    return summary


# Declarations whose names or statements do not exist outside their file's context.
_NOT_LEMMAS = (
    "functor or module type",
    "section let",
    "unnamed section context",
    "unparsed statement",
)
