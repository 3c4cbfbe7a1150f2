"""The statements a run targets, and the checks a config must pass before a round starts.

``run.targets`` names sets of statements: ``corpus:<split>`` (a split of the extracted
corpus; its rows carry the library names a proof must not cite), ``<benchmark>:<split>``
(bundled, e.g. ``minif2f:valid``), ``leanworkbook`` (from the hub) or a ``.jsonl`` file of
the benchmark schema. Each statement becomes a ``Target`` (``stp.selfplay.records``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from stp.config import STPConfig
from stp.data.benchmarks import (
    BENCHMARKS,
    Statement,
    load_benchmark,
    load_leanworkbook,
    load_statements,
)
from stp.errors import ConfigError, DataError
from stp.selfplay.records import Target
from stp.verify.local import check_installed


def _statements_of(spec: str, config: STPConfig) -> Iterator[Statement]:
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
                yield statement
            return
        if split not in theorems:
            raise ConfigError(
                f"run.targets: {spec!r}: corpus splits are sft, selfplay, heldout, unproved"
            )
        for theorem in theorems[split]:
            yield theorem.statement
    elif name == "leanworkbook":
        for statement in load_leanworkbook():
            yield statement
    elif spec.endswith(".jsonl"):
        for statement in load_statements(spec, backend):
            yield statement
    else:
        for statement in load_benchmark(name, backend, split or None):
            yield statement


def dataset_targets(config: STPConfig) -> list[Target]:
    """The run's target statements, in config order, the first ``run.target_limit`` kept."""
    rows: list[Target] = []
    seen: set[str] = set()
    for spec in config.run.targets:
        for statement in _statements_of(spec, config):
            if statement.name in seen:
                raise DataError(f"run.targets: statement name {statement.name!r} occurs twice")
            seen.add(statement.name)
            rows.append(Target.from_statement(statement))
    if config.run.target_limit is not None:
        rows = rows[: config.run.target_limit]
    if not rows:
        raise DataError(f"run.targets {config.run.targets} hold no statements")
    return rows


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not Path(parts[0]).exists()


def preflight(config: STPConfig) -> None:
    """Fail before any work, in one line, when the config names a proof assistant, model or
    data set that is not there. The proof assistant is checked by its backend, here, unless
    verification runs on a Ray cluster (``verification.ray_address``): then the cluster's
    verifier nodes check it when they join (``stp verify-workers``)."""
    if not config.verification.ray_address:
        check_installed(config.verification)
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
    if (
        config.run.corpus is not None
        and not Path(config.run.corpus).is_dir()
        and config.verification.backend != "rocq"
    ):
        raise ConfigError(
            f"run.corpus: folder {config.run.corpus} not found; make it with "
            f"`stp data extract-{config.verification.backend} --out {config.run.corpus}` (only Rocq corpora are "
            "extracted on first use)"
        )
