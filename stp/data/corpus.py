"""The self-play corpus: proved library theorems, the lemmas their proofs use, and the
conjecturer's initial examples, as frozen records read from one folder.

A corpus folder (written by ``stp data extract-rocq`` or ``stp data extract-lean``) holds::

    theorems.jsonl             ProvedTheorem records, every split (sft, selfplay, heldout)
    unproved.jsonl             selfplay targets with no known proof (benchmark schema; Lean only)
    lemmas.jsonl               Lemma records: the library lemmas proofs may cite
    conjecture_examples.jsonl  ConjectureExample records (the conjecturer's initial data)
    heldout.jsonl              the heldout split in the benchmark schema, for `stp eval`
    corpus.txt                 headers, statements and proofs as plain text (tokenizer data)
    summary.json               counts and timings of the extraction

    >>> corpus = load_corpus("artifacts/corpus-rocq")
    >>> theorem = corpus.selfplay[0]
    >>> lemmas_used("rewrite Nat.add_comm. reflexivity.", corpus.lemma_index)
    >>> cites_target("exact Nat.add_comm.", theorem)

Splits: ``sft`` proofs train the initial model and seed the conjecturer examples;
``selfplay`` statements are what the rounds try to prove (their reference proofs are never
trained on), together with ``unproved`` (statements without any known proof, e.g.
LeanWorkbook's); ``heldout`` is an in-distribution evaluation split.

The library's own copy of a target is loaded by its header (the statement needs the library's
definitions), so a proof could simply cite it. ``forbidden_names`` lists the names that would
do so and ``cites_target`` rejects such proofs; it reads names, so it cannot see a target
reached through a hint database (``auto with arith``) or an alias (``Notation``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args

from stp.artifacts import atomic_write_jsonl, read_jsonl, text_sha256
from stp.data.benchmarks import DataError, Statement, load_statements
from stp.languages import language

Split = Literal["sft", "selfplay", "heldout"]
SPLITS: tuple[str, ...] = get_args(Split)

THEOREMS_FILE = "theorems.jsonl"
LEMMAS_FILE = "lemmas.jsonl"
CONJECTURE_EXAMPLES_FILE = "conjecture_examples.jsonl"
HELDOUT_FILE = "heldout.jsonl"
UNPROVED_FILE = "unproved.jsonl"
CORPUS_TEXT_FILE = "corpus.txt"
SUMMARY_FILE = "summary.json"
# Conjecturer examples per sft seed and kind (with a lemma, with the trivial lemma).
CONJECTURE_TARGETS = 3


@dataclass(frozen=True, slots=True)
class Lemma:
    """A library lemma a proof can cite. ``name`` is how its own file names it (``Nat.add_comm``
    inside PeanoNat), ``module`` the library module that declares it (``Coq.Arith.PeanoNat``;
    empty when unknown) and ``statement`` the ``name : type`` text the conjecturer is shown."""

    name: str
    statement: str
    module: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.module}.{self.name}" if self.module else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "statement": self.statement, "module": self.module}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Lemma:
        return cls(name=row["name"], statement=row["statement"], module=row.get("module", ""))


@dataclass(frozen=True, slots=True)
class ProvedTheorem:
    """A dataset statement with a reference proof that checked in exactly the form
    ``language(statement.prover).assemble(header, formal_statement, proof)``.

    ``statement.split`` is one of ``SPLITS``; ``lemmas`` are the library lemmas the proof cites;
    ``statement.forbidden_names`` are the target's own library names (short and qualified)
    that a proof of it must not cite."""

    statement: Statement
    proof: str
    lemmas: tuple[Lemma, ...]

    @property
    def forbidden_names(self) -> tuple[str, ...]:
        return self.statement.forbidden_names

    @property
    def name(self) -> str:
        return self.statement.name

    @property
    def split(self) -> str:
        return self.statement.split

    def to_dict(self) -> dict[str, Any]:
        return {
            **_benchmark_row(self.statement),
            "prover": self.statement.prover,
            "proof": self.proof,
            "lemmas": [lemma.to_dict() for lemma in self.lemmas],
        }

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> ProvedTheorem:
        statement = Statement(
            name=row["name"],
            prover=row["prover"],
            split=row["split"],
            source=row["source"],
            header=row["header"],
            formal_statement=row["formal_statement"],
            informal_statement=row.get("informal_statement"),
            informal_proof=row.get("informal_proof"),
            forbidden_names=tuple(row["forbidden_names"]),
        )
        return cls(
            statement=statement,
            proof=row["proof"],
            lemmas=tuple(Lemma.from_dict(lemma) for lemma in row["lemmas"]),
        )


@dataclass(frozen=True, slots=True)
class ConjectureExample:
    """One initial conjecturer example: shown a seed theorem with its proof and a lemma (None:
    the trivial lemma), write ``target_statement``, a related statement from the seed's file
    whose proof uses the lemma."""

    prover: str
    header: str
    seed_statement: str
    seed_proof: str
    lemma: Lemma | None
    target_statement: str

    def prompt(self) -> str:
        return language(self.prover).conjecturer_prompt(
            self.header,
            self.seed_statement,
            self.seed_proof,
            None if self.lemma is None else self.lemma.statement,
        )

    def completion(self) -> str:
        return language(self.prover).conjecture_completion(self.target_statement)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prover": self.prover,
            "header": self.header,
            "seed_statement": self.seed_statement,
            "seed_proof": self.seed_proof,
            "lemma": None if self.lemma is None else self.lemma.to_dict(),
            "target_statement": self.target_statement,
        }

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> ConjectureExample:
        return cls(
            prover=row["prover"],
            header=row["header"],
            seed_statement=row["seed_statement"],
            seed_proof=row["seed_proof"],
            lemma=None if row["lemma"] is None else Lemma.from_dict(row["lemma"]),
            target_statement=row["target_statement"],
        )


# ------------------------------------------------------------------------- lemma names


def identifiers(text: str, prover: str = "rocq") -> tuple[str, ...]:
    """The identifiers a proof or statement names outside comments and strings, in order of
    first use (``language(prover).identifiers``)."""
    return language(prover).identifiers(text)


def qualified_names(full_name: str) -> tuple[str, ...]:
    """Every name a declaration can be cited by, shortest first:
    ``Coq.Arith.PeanoNat.Nat.add_comm`` -> ``add_comm``, ``Nat.add_comm``, ...,
    the full name."""
    parts = full_name.split(".")
    return tuple(".".join(parts[i:]) for i in range(len(parts) - 1, -1, -1))


def build_lemma_index(lemmas: Iterable[Lemma]) -> Mapping[str, Lemma]:
    """Name -> lemma for every name a lemma can be cited by (see ``qualified_names``). When
    two lemmas share a name, the one its own file calls by that name wins (``Nat.add_comm``
    over ``Nat.Private.add_comm`` for ``Nat.add_comm``), otherwise the first given."""
    index: dict[str, Lemma] = {}
    own: set[str] = set()
    for lemma in lemmas:
        for name in qualified_names(lemma.full_name):
            if name == lemma.name and name not in own:
                index[name] = lemma
                own.add(name)
            else:
                index.setdefault(name, lemma)
    return MappingProxyType(index)


def lemmas_used(proof: str, index: Mapping[str, Lemma], prover: str = "rocq") -> tuple[Lemma, ...]:
    """The library lemmas a proof cites, in order of first use: every identifier of the proof
    (outside comments and strings) that names a lemma of ``index``. Local names that shadow a
    library name (a hypothesis called like a lemma) are counted as the lemma."""
    found: dict[str, Lemma] = {}
    for name in identifiers(proof, prover):
        lemma = index.get(name)
        if lemma is not None:
            found.setdefault(lemma.full_name, lemma)
    return tuple(found.values())


def cites_target(proof: str, theorem: ProvedTheorem) -> bool:
    """Whether ``proof`` names the library's own copy of ``theorem`` (which its header loads)."""
    return language(theorem.statement.prover).cited(proof, theorem.forbidden_names) is not None


# ------------------------------------------------------------------------------ splits


def name_hash(name: str) -> bytes:
    return text_sha256(name)


def split_of(name: str, heldout: float, selfplay: float) -> str:
    """A deterministic split from a hash of the name: ``heldout`` with probability
    ``heldout``, ``selfplay`` with probability ``selfplay``, else ``sft``."""
    draw = int.from_bytes(name_hash(name)[:8], "big") / 2**64
    if draw < heldout:
        return "heldout"
    if draw < heldout + selfplay:
        return "selfplay"
    return "sft"


def check_fractions(heldout: float, selfplay: float) -> None:
    if min(heldout, selfplay) < 0 or heldout + selfplay > 1:
        raise DataError(
            "split fractions must be >= 0 and sum to at most 1, got "
            f"heldout {heldout} and selfplay {selfplay}"
        )


# ------------------------------------------------------------------------------ corpus


@dataclass(frozen=True, slots=True)
class Corpus:
    """Everything ``load_corpus`` reads from a corpus folder."""

    sft: tuple[ProvedTheorem, ...]
    selfplay: tuple[ProvedTheorem, ...]
    heldout: tuple[ProvedTheorem, ...]
    unproved: tuple[Statement, ...]  # selfplay targets without a known proof
    conjecture_examples: tuple[ConjectureExample, ...]
    lemmas: tuple[Lemma, ...]
    lemma_index: Mapping[str, Lemma]

    @property
    def theorems(self) -> tuple[ProvedTheorem, ...]:
        return self.sft + self.selfplay + self.heldout


def write_corpus(
    out_dir: str | Path,
    theorems: Iterable[ProvedTheorem],
    lemmas: Iterable[Lemma],
    conjecture_examples: Iterable[ConjectureExample],
    unproved: Iterable[Statement] = (),
) -> None:
    """Write the record files of a corpus folder (``theorems``, ``lemmas``, conjecture examples,
    unproved targets and the heldout benchmark file), each atomically."""
    out = Path(out_dir)
    theorems = list(theorems)
    for theorem in theorems:
        if theorem.split not in SPLITS:
            raise DataError(f"{theorem.name}: split {theorem.split!r} is not one of {SPLITS}")
    atomic_write_jsonl(out / THEOREMS_FILE, (t.to_dict() for t in theorems))
    atomic_write_jsonl(out / LEMMAS_FILE, (lemma.to_dict() for lemma in lemmas))
    atomic_write_jsonl(
        out / CONJECTURE_EXAMPLES_FILE, (example.to_dict() for example in conjecture_examples)
    )
    # Benchmark rows carry what a proof must not cite (its target's library copy); the
    # loader reads it and `stp eval` passes it to the verifier.
    atomic_write_jsonl(
        out / HELDOUT_FILE, (_benchmark_row(t.statement) for t in theorems if t.split == "heldout")
    )
    atomic_write_jsonl(out / UNPROVED_FILE, (_benchmark_row(s) for s in unproved))


def _benchmark_row(s: Statement) -> dict[str, Any]:
    """The benchmark schema ``stp.data.load_statements`` reads."""
    return {
        "name": s.name,
        "split": s.split,
        "source": s.source,
        "header": s.header,
        "formal_statement": s.formal_statement,
        "informal_statement": s.informal_statement,
        "informal_proof": s.informal_proof,
        "forbidden_names": list(s.forbidden_names),
    }


def _read(path: Path, parse: Any) -> list[Any]:
    if not path.is_file():
        raise DataError(
            f"{path} not found: make the corpus with `stp data extract-rocq --out {path.parent}`"
        )
    records = []
    for lineno, row in enumerate(read_jsonl(path), start=1):
        try:
            records.append(parse(row))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: record {lineno} is malformed ({exc!r})") from exc
    return records


def load_corpus(corpus_dir: str | Path) -> Corpus:
    """Read a corpus folder written by ``write_corpus``."""
    folder = Path(corpus_dir)
    theorems = _read(folder / THEOREMS_FILE, ProvedTheorem.from_dict)
    lemmas = tuple(_read(folder / LEMMAS_FILE, Lemma.from_dict))
    examples = tuple(_read(folder / CONJECTURE_EXAMPLES_FILE, ConjectureExample.from_dict))
    prover = theorems[0].statement.prover if theorems else "rocq"
    unproved = (
        load_statements(folder / UNPROVED_FILE, prover)
        if (folder / UNPROVED_FILE).is_file()
        else ()
    )
    by_split: dict[str, list[ProvedTheorem]] = {split: [] for split in SPLITS}
    for theorem in theorems:
        if theorem.split not in by_split:
            raise DataError(
                f"{folder / THEOREMS_FILE}: {theorem.name} has split {theorem.split!r}, "
                f"not one of {', '.join(SPLITS)}"
            )
        by_split[theorem.split].append(theorem)
    return Corpus(
        sft=tuple(by_split["sft"]),
        selfplay=tuple(by_split["selfplay"]),
        heldout=tuple(by_split["heldout"]),
        unproved=unproved,
        conjecture_examples=examples,
        lemmas=lemmas,
        lemma_index=build_lemma_index(lemmas),
    )


# ---------------------------------------------------------------- derived training data


def conjecture_examples(
    theorems: Sequence[tuple[str, ProvedTheorem]], targets_per_seed: int = CONJECTURE_TARGETS
) -> list[ConjectureExample]:
    """The conjecturer's initial examples from ``(file, theorem)`` pairs in file order: for
    each sft seed and each of the first ``targets_per_seed`` lemmas its proof uses that another
    sft theorem of the same file uses too, one example with that lemma whose target is the
    nearest such theorem; and trivial-lemma examples whose targets are the next
    ``targets_per_seed`` sft theorems of the file. Other splits are never targets."""
    by_file: dict[str, list[ProvedTheorem]] = {}
    for file, theorem in theorems:
        if theorem.split == "sft":
            by_file.setdefault(file, []).append(theorem)
    examples = []
    for group in by_file.values():
        for at, seed in enumerate(group):
            nearest = [group[j] for _, j in sorted((abs(j - at), j) for j in range(len(group)))]
            with_lemma = 0
            for lemma in seed.lemmas:
                if with_lemma == targets_per_seed:
                    break
                target = next((t for t in nearest[1:] if lemma in t.lemmas), None)
                if target is not None:
                    examples.append(_example(seed, lemma, target))
                    with_lemma += 1
            for target in group[at + 1 : at + 1 + targets_per_seed]:
                examples.append(_example(seed, None, target))
    return examples


def _example(seed: ProvedTheorem, lemma: Lemma | None, target: ProvedTheorem) -> ConjectureExample:
    s = seed.statement
    return ConjectureExample(
        s.prover, s.header, s.formal_statement, seed.proof, lemma, target.statement.formal_statement
    )


def corpus_text(
    theorems: Iterable[ProvedTheorem], lemmas: Iterable[Lemma], unproved: Iterable[Statement] = ()
) -> str:
    """Plain text to train a tokenizer on: sft files whole, selfplay and unproved statements
    without proofs, every lemma statement; nothing of the heldout split."""
    parts = []
    for theorem in theorems:
        s = theorem.statement
        if theorem.split == "sft":
            parts.append(language(s.prover).assemble(s.header, s.formal_statement, theorem.proof))
        elif theorem.split == "selfplay":
            parts.append(s.header + s.formal_statement)
    parts.extend(s.header + s.formal_statement for s in unproved)
    parts.extend(lemma.statement for lemma in lemmas)
    return "\n\n".join(parts) + "\n"
