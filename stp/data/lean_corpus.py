"""The Lean corpus: the same records as the Rocq corpus, from Lean sources.

    stp data extract-lean --out DIR --stp-data kfdong/STP_Lean_0320 --max-rows 200000 \\
        --leanworkbook internlm/Lean-Workbook
    stp data extract-lean --out DIR --traced-repo PATH/TO/TRACED/mathlib4      # extra `lean`
    stp data extract-lean --out DIR --stp-data rows.parquet --leanworkbook-file lwb.json

Three sources, any combination:

- ``--stp-data``: the STP release (hub id ``kfdong/STP_Lean_0320``, or a local JSON/JSONL/
  Parquet copy): rows with ``prompt`` (DeepSeek-Prover's prover prompt ending in the header and
  statement), ``target`` (the proof and the closing fence) and ``tag`` (``statement``,
  ``conjecture``, ...). Every row was a correct proof when STP released it; one proof (the
  shortest) is kept per statement.
- ``--traced-repo``: a LeanDojo trace of Mathlib (``lean_dojo.TracedRepo``, extra ``lean``):
  theorems with tactic proofs, their premises (the lemmas) and files (for conjecturer
  examples). Statements are re-headed with ``import Mathlib`` and the theorem's namespaces
  opened; ``variable`` binders of the source file are not recovered, so check them with the
  Lean backend before relying on them.
- ``--leanworkbook``: LeanWorkbook statements (no proofs): the selfplay targets, written to
  ``unproved.jsonl``.

Nothing is re-checked here: there is no Lean toolchain on the machines that build this
project. The rounds check every proof they produce.
"""

from __future__ import annotations

import itertools
import re
import textwrap
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from stp.artifacts import atomic_write_json, atomic_write_text
from stp.data.benchmarks import (
    LEANWORKBOOK_HEADER,
    LEANWORKBOOK_HUB_ID,
    DataError,
    Statement,
    load_leanworkbook,
)
from stp.data.corpus import (
    CORPUS_TEXT_FILE,
    SPLITS,
    SUMMARY_FILE,
    Lemma,
    ProvedTheorem,
    check_fractions,
    conjecture_examples,
    corpus_text,
    name_hash,
    qualified_names,
    split_of,
    write_corpus,
)
from stp.languages.base import FENCE
from stp.languages.lean import LEAN

STP_HUB_ID = "kfdong/STP_Lean_0320"
MATHLIB_HEADER = LEANWORKBOOK_HEADER  # import Mathlib, Aesop; heartbeats; common namespaces

_PROMPT_CODE = f"{FENCE}{LEAN.fence}\n"
_DECLARATION = re.compile(r"^(?:theorem|lemma)\s", re.MULTILINE)
_NAMED = re.compile(
    r"^(?:@\[[^\]]*\]\s*)?(?:(?:protected|private|nonrec)\s+)*(?:theorem|lemma)\s+(?P<name>\S+)"
    r"(?P<rest>.*?)\s*:=\s*(?:by)?\s*$",
    re.DOTALL,
)
_TAG_WORD = re.compile(r"[A-Za-z_]+")


@dataclass(frozen=True, slots=True)
class LeanExtractionSummary:
    rows_read: int
    theorems_found: int
    rejected: dict[str, int]
    kept: dict[str, int]
    unproved: int
    lemmas: int
    conjecture_examples: int
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {
            "rows_read": self.rows_read,
            "theorems_found": self.theorems_found,
            "rejected": self.rejected,
            "kept": self.kept,
            "unproved": self.unproved,
            "lemmas": self.lemmas,
            "conjecture_examples": self.conjecture_examples,
            "seconds": round(self.seconds, 1),
        }

    def lines(self) -> list[str]:
        kept = ", ".join(f"{split} {n}" for split, n in self.kept.items())
        ranked = sorted(self.rejected.items(), key=lambda kv: -kv[1])
        rejected = ", ".join(f"{why} {n}" for why, n in ranked)
        return [
            f"STP rows read      {self.rows_read}",
            f"traced theorems    {self.theorems_found}",
            f"kept               {sum(self.kept.values())} ({kept})",
            f"rejected           {sum(self.rejected.values())} ({rejected or 'none'})",
            f"unproved targets   {self.unproved}",
            f"lemmas indexed     {self.lemmas}",
            f"conjecture exs     {self.conjecture_examples}",
            f"seconds            {self.seconds:.1f}",
        ]


# ------------------------------------------------------------------------- STP release


def _tags(value: Any) -> list[str]:
    """``['conjecture']`` whether stored as a list or as its string form."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return _TAG_WORD.findall(str(value or ""))


def _split_prompt(prompt: str) -> tuple[str, str | None, str] | None:
    """(header, informal statement, formal statement) of a DeepSeek-Prover prover prompt."""
    at = prompt.find(_PROMPT_CODE)
    if at == -1:
        return None
    code = prompt[at + len(_PROMPT_CODE) :]
    match = _DECLARATION.search(code)
    if match is None:
        return None
    header, statement = code[: match.start()], code[match.start() :].rstrip()
    informal = None
    tail = header.rstrip()
    if tail.endswith(LEAN.comment_close) and LEAN.comment_open in tail:
        opened = tail.rindex(LEAN.comment_open)
        informal = tail[opened + len(LEAN.comment_open) : -len(LEAN.comment_close)].strip()
        header = tail[:opened]
    return header, informal or None, statement


def theorems_from_stp_rows(
    rows: Iterable[Mapping[str, Any]], heldout: float = 0.0, selfplay: float = 0.0
) -> tuple[list[ProvedTheorem], Counter[str], int]:
    """Proved theorems from rows of the STP release, one per (header, statement): the one
    with the shortest proof. Returns the theorems, the rejected rows per reason and the number
    of rows read."""
    best: dict[tuple[str, str], ProvedTheorem] = {}
    rejected: Counter[str] = Counter()
    read = 0
    for row in rows:
        read += 1
        parts = _split_prompt(str(row.get("prompt") or ""))
        if parts is None:
            rejected["not a Lean 4 prover prompt"] += 1
            continue
        header, informal, formal = parts
        named = _NAMED.match(formal)
        if named is None or not formal.endswith(":= by"):
            rejected["statement does not end in ':= by'"] += 1
            continue
        proof = LEAN.parse_proof(str(row.get("target") or ""), formal)
        if not proof.strip():
            rejected["empty proof"] += 1
            continue
        key = (header, formal)
        previous = best.get(key)
        if previous is not None:
            rejected["another proof of a kept statement"] += 1
            if len(previous.proof) <= len(proof):
                continue
        name = named.group("name")
        unique = f"{name}_{name_hash(header + formal).hex()[:8]}"
        statement = Statement(
            name=unique,
            prover="lean",
            split=split_of(unique, heldout, selfplay),
            source="-".join(["stp", *_tags(row.get("tag"))]),
            header=header,
            formal_statement=formal,
            informal_statement=informal,
            forbidden_names=qualified_names(name),
        )
        best[key] = ProvedTheorem(statement, proof, ())
    return list(best.values()), rejected, read


def _rows(source: str, max_rows: int | None) -> Iterable[Mapping[str, Any]]:
    """Rows of a hub dataset (streamed, so ``max_rows`` reads only that many) or a local
    JSON/JSONL/Parquet file."""
    import datasets  # heavy import, only here

    path = Path(source)
    if path.is_file():
        loader = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}.get(path.suffix)
        if loader is None:
            raise DataError(f"{source}: expected a .json, .jsonl or .parquet file")
        rows: Iterable[Mapping[str, Any]] = datasets.load_dataset(
            loader, data_files=str(path), split="train"
        )
    else:
        rows = datasets.load_dataset(source, split="train", streaming=True)
    return rows if max_rows is None else itertools.islice(rows, max_rows)


# ---------------------------------------------------------------------- LeanDojo trace


class TracedTheoremLike(Protocol):
    """What is read from a ``lean_dojo.TracedTheorem``."""

    @property
    def theorem(self) -> Any: ...  # .full_name, .file_path

    def get_theorem_statement(self) -> str: ...

    def get_tactic_proof(self) -> str | None: ...

    def get_premise_full_names(self) -> list[str]: ...

    def get_namespaces(self) -> tuple[list[str], list[str]]: ...


def load_traced_theorems(traced_repo: str | Path) -> list[TracedTheoremLike]:
    """The traced theorems of a LeanDojo trace saved on disk (``TracedRepo.save_to_disk``)."""
    try:
        from lean_dojo import TracedRepo
    except ImportError as exc:
        raise DataError(
            "reading a LeanDojo trace needs the `lean` extra: pip install 'stp[lean]'"
        ) from exc
    return list(TracedRepo.load_from_disk(traced_repo).get_traced_theorems())


def _lean_proof(tactic_proof: str) -> str:
    """``by\\n  simp\\n  ring`` -> the tactic block indented as the benchmarks write proofs."""
    body = tactic_proof.strip()
    body = body[2:] if body.startswith("by") else body
    lines = textwrap.dedent(body.strip("\n")).strip().splitlines()
    return "\n".join(f"  {line}" if line.strip() else "" for line in lines)


def theorems_from_trace(
    traced: Sequence[TracedTheoremLike], heldout: float = 0.1, selfplay: float = 0.2
) -> tuple[list[tuple[str, ProvedTheorem]], list[Lemma], Counter[str]]:
    """(file, theorem) pairs with tactic proofs, the lemma index (every traced theorem, by its
    full name) and rejections per reason."""
    rejected: Counter[str] = Counter()
    parsed = []
    for thm in traced:
        named = _NAMED.match(thm.get_theorem_statement().strip())
        if named is None:
            rejected["unparsed statement"] += 1
            continue
        parsed.append((thm, named.group("rest").strip()))
    lemmas = {
        thm.theorem.full_name: Lemma(thm.theorem.full_name, f"{thm.theorem.full_name} {rest}")
        for thm, rest in parsed
    }
    out = []
    for thm, rest in parsed:
        full_name = thm.theorem.full_name
        tactics = thm.get_tactic_proof()
        if tactics is None:
            rejected["term proof"] += 1
            continue
        inside, opened = thm.get_namespaces()
        namespaces = " ".join(dict.fromkeys([*inside, *opened]))
        fresh = "stp_" + full_name.replace(".", "_")
        premises = dict.fromkeys(thm.get_premise_full_names())
        statement = Statement(
            name=fresh,
            prover="lean",
            split=split_of(full_name, heldout, selfplay),
            source="mathlib",
            header=MATHLIB_HEADER + (f"open {namespaces}\n\n" if namespaces else ""),
            formal_statement=f"theorem {fresh} {rest} := by",
            forbidden_names=qualified_names(full_name),
        )
        used = tuple(lemmas[p] for p in premises if p in lemmas and p != full_name)
        theorem = ProvedTheorem(statement, _lean_proof(tactics), used)
        out.append((str(thm.theorem.file_path), theorem))
    return out, list(lemmas.values()), rejected


# -------------------------------------------------------------------------- extraction


def extract_lean(
    out_dir: str | Path,
    stp_data: str | None = None,
    traced_repo: str | Path | None = None,
    leanworkbook: str | None = None,
    leanworkbook_file: str | None = None,
    max_rows: int | None = None,
    heldout_fraction: float = 0.1,
    selfplay_fraction: float = 0.2,
) -> LeanExtractionSummary:
    """Write a Lean corpus folder (see ``stp.data.corpus``) from the given sources. The STP
    release's proofs all go to ``sft`` (they are training data already); traced Mathlib
    theorems are split by the fractions."""
    if stp_data is None and traced_repo is None and leanworkbook is None and not leanworkbook_file:
        raise DataError(
            "nothing to extract: give --stp-data, --traced-repo, --leanworkbook or "
            "--leanworkbook-file"
        )
    check_fractions(heldout_fraction, selfplay_fraction)
    started = time.monotonic()
    rejected: Counter[str] = Counter()
    pairs: list[tuple[str, ProvedTheorem]] = []
    lemmas: list[Lemma] = []
    traced_count = 0
    if traced_repo is not None:
        traced = load_traced_theorems(traced_repo)
        traced_count = len(traced)
        found, lemmas, why = theorems_from_trace(traced, heldout_fraction, selfplay_fraction)
        pairs.extend(found)
        rejected.update(why)
    # Conjecturer examples pair theorems of one file: only the trace knows files and premises.
    examples = conjecture_examples(pairs)
    theorems = [theorem for _, theorem in pairs]
    rows_read = 0
    if stp_data is not None:
        found_rows, why, rows_read = theorems_from_stp_rows(_rows(stp_data, max_rows))
        theorems.extend(found_rows)
        rejected.update(why)
    unproved: tuple[Statement, ...] = ()
    if leanworkbook is not None or leanworkbook_file:
        statements = load_leanworkbook(
            leanworkbook or LEANWORKBOOK_HUB_ID, data_files=leanworkbook_file
        )
        unproved = tuple(replace(s, split="selfplay") for s in statements)
    out = Path(out_dir)
    write_corpus(out, theorems, lemmas, examples, unproved)
    atomic_write_text(out / CORPUS_TEXT_FILE, corpus_text(theorems, lemmas, unproved))
    summary = LeanExtractionSummary(
        rows_read=rows_read,
        theorems_found=traced_count,
        rejected=dict(rejected),
        kept={split: sum(t.split == split for t in theorems) for split in SPLITS},
        unproved=len(unproved),
        lemmas=len(lemmas),
        conjecture_examples=len(examples),
        seconds=time.monotonic() - started,
    )
    atomic_write_json(out / SUMMARY_FILE, summary.to_dict())
    return summary
