"""The statements a run targets, and the checks a config must pass before a round starts.

``run.targets`` names sets of statements: ``corpus:<split>`` (a split of the extracted
corpus; its rows carry the library names a proof must not cite), ``<benchmark>:<split>``
(bundled, e.g. ``minif2f:valid``), ``leanworkbook`` (from the hub) or a ``.jsonl`` file of
the benchmark schema. Each becomes a target row::

    {"id", "header", "formal_statement", "informal", "forbidden": [names]}
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stp.config import ConfigError, STPConfig
from stp.data.benchmarks import (
    BENCHMARKS,
    DataError,
    Statement,
    load_benchmark,
    load_leanworkbook,
    load_statements,
)


def _row(statement: Statement) -> dict[str, Any]:
    return {
        "id": statement.name,
        "header": statement.header,
        "formal_statement": statement.formal_statement,
        "informal": statement.informal_statement,
        "forbidden": list(statement.forbidden_names),
    }


def _rows_of(spec: str, config: STPConfig) -> Iterator[dict[str, Any]]:
    backend = config.verification.backend
    name, _, split = spec.partition(":")
    if name == "corpus":
        from stp.data.corpus import load_corpus

        if config.run.corpus is None:
            raise ConfigError(f"run.targets: {spec!r} needs run.corpus (a corpus folder)")
        corpus = load_corpus(config.run.corpus)
        theorems = {"sft": corpus.sft, "selfplay": corpus.selfplay, "heldout": corpus.heldout}
        if split == "unproved":  # statements without a known proof (LeanWorkbook's)
            for statement in corpus.unproved:
                yield _row(statement)
            return
        if split not in theorems:
            raise ConfigError(
                f"run.targets: {spec!r}: corpus splits are sft, selfplay, heldout, unproved"
            )
        for theorem in theorems[split]:
            yield _row(theorem.statement)
    elif name == "leanworkbook":
        for statement in load_leanworkbook():
            yield _row(statement)
    elif spec.endswith(".jsonl"):
        for statement in load_statements(spec, backend):
            yield _row(statement)
    else:
        for statement in load_benchmark(name, backend, split or None):
            yield _row(statement)


def dataset_targets(config: STPConfig) -> list[dict[str, Any]]:
    """The run's target statements, in config order, the first ``run.target_limit`` kept."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for spec in config.run.targets:
        for row in _rows_of(spec, config):
            if row["id"] in seen:
                raise DataError(f"run.targets: statement name {row['id']!r} occurs twice")
            seen.add(row["id"])
            rows.append(row)
    if config.run.target_limit is not None:
        rows = rows[: config.run.target_limit]
    if not rows:
        raise DataError(f"run.targets {config.run.targets} hold no statements")
    return rows


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not Path(parts[0]).exists()


def preflight(config: STPConfig) -> None:
    """Fail before any work, in one line, when the config names a backend, model or data set
    that is not there."""
    backend = config.verification.backend
    if backend == "rocq" and shutil.which(config.verification.coqtop) is None:
        raise ConfigError(
            f"verification.coqtop: {config.verification.coqtop!r} not found; install Coq "
            "(apt-get install coq) or point verification.coqtop at coqtop"
        )
    if backend == "lean":
        program = shlex.split(config.verification.repl_cmd)[0]
        if shutil.which(program) is None:
            raise ConfigError(
                f"verification.repl_cmd: {program!r} not found; install the Lean toolchain "
                "(elan) and build the REPL, or verify on a Ray cluster that has it"
            )
        if not Path(config.verification.lean_project).is_dir():
            raise ConfigError(
                f"verification.lean_project: folder {config.verification.lean_project} not found"
            )
    if backend == "isabelle":
        program = shlex.split(config.verification.isabelle_cmd)[0]
        if shutil.which(program) is None:
            raise ConfigError(
                f"verification.isabelle_cmd: {program!r} not found; install Isabelle "
                "(scripts/setup_isabelle.sh), or verify on a Ray cluster that has it"
            )
    model = config.run.base_model
    if not (config.run.init_model or Path(model).is_dir() or _looks_like_hub_id(model)):
        raise ConfigError(
            f"run.base_model: model folder {model} not found; build it with `stp model init` "
            "or set run.init_model: true"
        )
    known = {b.benchmark for b in BENCHMARKS} | {"corpus", "leanworkbook"}
    for spec in config.run.targets:
        name = spec.partition(":")[0]
        if name == "corpus" and config.run.corpus is None:
            raise ConfigError(f"run.targets: {spec!r} needs run.corpus (a corpus folder)")
        if spec.endswith(".jsonl"):
            if not Path(spec).is_file():
                raise ConfigError(f"run.targets: statement file {spec} not found")
        elif name not in known:
            raise ConfigError(
                f"run.targets: unknown data set {spec!r}; use corpus:<split>, "
                f"{', '.join(sorted(known - {'corpus'}))} or a .jsonl file"
            )
    if config.run.corpus is not None and not Path(config.run.corpus).is_dir() and backend != "rocq":
        raise ConfigError(
            f"run.corpus: folder {config.run.corpus} not found; make it with "
            f"`stp data extract-{backend} --out {config.run.corpus}` (only Rocq corpora are "
            "extracted on first use)"
        )
