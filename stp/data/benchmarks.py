"""Bundled benchmarks as typed, immutable ``Statement`` records.

    >>> from stp.data import load_benchmark
    >>> test = load_benchmark("minif2f", prover="lean", split="test")
    >>> len(test), test[0].name

The files under ``stp/data/benchmarks/`` are copied unchanged from the project's shared data;
``SOURCES.md`` beside them gives origin, commit and licence of each. LeanWorkbook is not
bundled: ``load_leanworkbook`` reads it through ``datasets`` from its public hub id.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from stp.assistants import NAMES as PROVERS
from stp.errors import DataError

__all__ = ["BENCHMARKS", "DataError", "Statement", "load_benchmark", "load_statements"]


@dataclass(frozen=True, slots=True)
class Statement:
    """One formal statement to prove. The model writes only the proof that follows it."""

    name: str
    prover: str
    split: str
    source: str
    header: str
    formal_statement: str
    informal_statement: str | None = None
    informal_proof: str | None = None
    # Names a proof of it may not cite (a corpus theorem's own library copy); see VerifyJob.
    forbidden_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BenchmarkFile:
    """A bundled benchmark: a JSONL file of the benchmark schema, or, where ``base`` names
    one, a JSON list of statement corrections applied to that file (``load_corrected``)."""

    benchmark: str
    prover: str
    filename: str
    splits: tuple[str, ...]
    base: str = ""


BENCHMARKS: tuple[BenchmarkFile, ...] = (
    BenchmarkFile("minif2f", "lean", "minif2f.jsonl", ("valid", "test")),
    # docs/minif2f-lean-corrections.md lists each correction with its source.
    BenchmarkFile(
        "minif2f-corrected",
        "lean",
        "minif2f_lean_corrections.json",
        ("valid", "test"),
        base="minif2f.jsonl",
    ),
    BenchmarkFile("minif2f", "rocq", "minif2f_coq.jsonl", ("valid", "test")),
    BenchmarkFile("minif2f", "isabelle", "minif2f_isabelle.jsonl", ("valid", "test")),
    BenchmarkFile("proofnet", "lean", "proofnet.jsonl", ("valid", "test")),
    BenchmarkFile("putnambench", "lean", "putnambench.jsonl", ("test",)),
)

_REQUIRED = ("name", "split", "source", "header", "formal_statement")
_OPTIONAL = ("informal_statement", "informal_proof")


def bundled_path(filename: str) -> Path:
    return Path(str(resources.files("stp.data") / "benchmarks" / filename))


def _find(benchmark: str, prover: str) -> BenchmarkFile:
    for entry in BENCHMARKS:
        if entry.benchmark == benchmark and entry.prover == prover:
            return entry
    known = ", ".join(f"{b.benchmark}/{b.prover}" for b in BENCHMARKS)
    raise DataError(f"no bundled benchmark {benchmark!r} for prover {prover!r}; bundled: {known}")


def _statement_from_row(row: Any, prover: str, where: str) -> Statement:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key in _REQUIRED:
        if key not in row:
            raise DataError(f"{where}: missing field {key!r}")
        if not isinstance(row[key], str):
            raise DataError(f"{where}: field {key!r} must be a string, got {row[key]!r}")
    if not row["name"] or not row["formal_statement"].strip():
        raise DataError(f"{where}: fields 'name' and 'formal_statement' must not be empty")
    for key in _OPTIONAL:
        if row.get(key) is not None and not isinstance(row[key], str):
            raise DataError(f"{where}: field {key!r} must be a string or null, got {row[key]!r}")
    forbidden = row.get("forbidden_names", [])
    if not isinstance(forbidden, list) or not all(isinstance(n, str) for n in forbidden):
        raise DataError(
            f"{where}: field 'forbidden_names' must be a list of names, got {forbidden!r}"
        )
    return Statement(
        name=row["name"],
        prover=prover,
        split=row["split"],
        source=row["source"],
        header=row["header"],
        formal_statement=row["formal_statement"],
        informal_statement=row.get("informal_statement"),
        informal_proof=row.get("informal_proof"),
        forbidden_names=tuple(forbidden),
    )


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) for each non-blank line; a bad line raises ``DataError``."""
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc


def load_statements(
    path: str | Path, prover: str, split: str | None = None
) -> tuple[Statement, ...]:
    """Read a JSONL file of the benchmark schema (see SOURCES.md); optionally keep one split."""
    if prover not in PROVERS:
        raise DataError(f"unknown prover {prover!r}; provers are: {', '.join(PROVERS)}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"statement file {path} not found")
    statements = [
        _statement_from_row(row, prover, f"{path}:{lineno}") for lineno, row in iter_jsonl(path)
    ]
    if split is not None:
        statements = [s for s in statements if s.split == split]
    return tuple(statements)


def load_benchmark(
    benchmark: str, prover: str = "lean", split: str | None = None
) -> tuple[Statement, ...]:
    """A bundled benchmark, e.g. ``load_benchmark("minif2f", prover="rocq", split="valid")``."""
    entry = _find(benchmark, prover)
    if split is not None and split not in entry.splits:
        raise DataError(
            f"{benchmark}/{prover} has no split {split!r}; splits: {', '.join(entry.splits)}"
        )
    if entry.base:
        return load_corrected(bundled_path(entry.base), bundled_path(entry.filename), prover, split)
    return load_statements(bundled_path(entry.filename), prover, split)


def load_corrected(
    base: Path, corrections: Path, prover: str, split: str | None = None
) -> tuple[Statement, ...]:
    """The statements of ``base`` with the corrections of ``corrections`` applied: a JSON list
    of ``{"name", "original", "corrected", "defect", "source"}``. Each ``original`` must be the
    base's statement word for word, so a changed base file cannot be corrected by mistake."""
    try:
        listed = json.loads(corrections.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{corrections}: not a readable JSON list of corrections ({exc})") from exc
    fixes = {row["name"]: row for row in listed}
    statements = load_statements(base, prover, split)
    found = {s.name: s for s in load_statements(base, prover)}
    for name, row in fixes.items():
        if name not in found or found[name].formal_statement != row["original"]:
            raise DataError(
                f"{corrections}: the correction of {name!r} does not apply to {base.name} (its "
                "statement there is not the one corrected)"
            )
    return tuple(
        dataclasses.replace(s, formal_statement=fixes[s.name]["corrected"])
        if s.name in fixes
        else s
        for s in statements
    )


# ------------------------------------------------------------------------ LeanWorkbook

LEANWORKBOOK_HUB_ID = "internlm/Lean-Workbook"
# The header LeanWorkbook statements were checked with (InternLM-Math's `header.lean`).
LEANWORKBOOK_HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)


def _strip_sorry(statement: str) -> str:
    """LeanWorkbook ships ``theorem ... := by sorry``; the model writes what follows ``:= by``."""
    text = statement.rstrip()
    if text.endswith("sorry"):
        text = text[: -len("sorry")].rstrip()
    return text


def leanworkbook_statements(rows: Iterable[dict[str, Any]], where: str) -> tuple[Statement, ...]:
    """Turn LeanWorkbook rows (``id``, ``formal_statement``, ``natural_language_statement``)
    into statements. Rows whose statement is missing raise; nothing is skipped silently."""
    out = []
    for index, row in enumerate(rows):
        here = f"{where} row {index}"
        for key in ("id", "formal_statement"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise DataError(f"{here}: missing or empty field {key!r}")
        informal = row.get("natural_language_statement")
        out.append(
            Statement(
                name=row["id"],
                prover="lean",
                split=str(row.get("split") or "train"),
                source="leanworkbook",
                header=LEANWORKBOOK_HEADER,
                formal_statement=_strip_sorry(row["formal_statement"]),
                informal_statement=informal if isinstance(informal, str) else None,
                informal_proof=None,
            )
        )
    return tuple(out)


def load_leanworkbook(
    hub_id: str = LEANWORKBOOK_HUB_ID, data_files: str | None = None, split: str = "train"
) -> tuple[Statement, ...]:
    """LeanWorkbook through ``datasets``: from the hub id (needs internet) or, with
    ``data_files``, from a local JSON/JSONL/Parquet copy."""
    import datasets  # heavy import, only here

    if data_files is not None:
        suffix = Path(data_files).suffix.lstrip(".")
        loader = {"jsonl": "json", "json": "json", "parquet": "parquet"}.get(suffix)
        if loader is None:
            raise DataError(f"{data_files}: expected a .json, .jsonl or .parquet file")
        ds = datasets.load_dataset(loader, data_files=data_files, split=split)
        where = data_files
    else:
        ds = datasets.load_dataset(hub_id, split=split)
        where = hub_id
    return leanworkbook_statements(ds, where)
