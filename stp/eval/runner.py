"""Sample N proofs per statement, verify them, and record every attempt, resumably.

An evaluation runs the proving pipeline of the rounds (``stp.prove``) over the benchmark's
statements, in chunks of ``evaluation.batch_problems``. Its folder holds::

    manifest.json              what is evaluated: model (with a digest of its files), data
                               (sha256 of the statements), sampling and checking settings,
                               the chunk size
    timing.json                wall seconds of each `evaluate` call on this folder, and the
                               sampling and checking seconds of each chunk
    attempts/chunk_NNNNN.jsonl the sampled proofs of one chunk of problems, in sampling order
    verified/chunk_NNNNN.jsonl each distinct proof of that chunk, its multiplicity and verdict

A killed evaluation, run again with the same command, keeps every finished chunk, checks
sampled chunks that have no verdicts (no re-sampling), and samples only the rest; chunk i is
seeded from ``run.seed`` and i, so a resumed evaluation samples what an uninterrupted one
would. Checking a chunk overlaps with sampling the next. The manifest is checked first: a
folder that holds another model's or another benchmark's attempts is refused rather than
mixed, and so is a folder of an earlier version's layout (``generations/``,
``attempts/part-*.json``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stp import __version__, prove
from stp.artifacts import atomic_write_json, folder_sha256, rows_sha256
from stp.config import STPConfig
from stp.data.benchmarks import BENCHMARKS, Statement, load_benchmark
from stp.data.benchmarks import load_statements as load_statement_file
from stp.errors import DataError, EvaluationMismatch, IncompatibleRun, MissingInput
from stp.languages import language
from stp.models.sampler import Sampler
from stp.prove import ModelSampler, Problem, VerifiedAttempt
from stp.verify.types import Verdict, Verifier

MANIFEST = "manifest.json"
TIMING = "timing.json"
# Fields of the manifest that must match for a run to continue an existing folder.
IDENTITY = ("model", "benchmark", "split", "prover", "problems", "data_sha256", "samples")
IDENTITY_SETTINGS = ("sampling", "verification")


@dataclass(frozen=True, slots=True)
class CheckedSample:
    """One sampled proof of one problem and the proof assistant's verdict on it: a row of
    the report's ``attempts.jsonl``. Identical samples of a problem were checked once;
    ``check_seconds`` is that one check's time."""

    id: str  # "<problem>#<sample>"
    problem: str
    sample: int  # 0-based position in the problem's samples, in sampling order
    proof: str
    num_tokens: int
    verdict: Verdict
    check_seconds: float
    assistant_version: str
    detail: str

    @property
    def proved(self) -> bool:
        return self.verdict is Verdict.PROVED

    def to_dict(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row["verdict"] = self.verdict.value
        return row


@dataclass(frozen=True, slots=True)
class Benchmark:
    """The statements to evaluate and where they came from."""

    name: str  # bundled name, or the JSONL file's stem
    source: str  # the file read
    split: str
    prover: str
    statements: tuple[Statement, ...]


def load_benchmark_for_eval(
    benchmark: str, split: str | None, prover: str, limit: int | None = None
) -> Benchmark:
    """A bundled benchmark by name, or a JSONL file of the benchmark schema by path; the
    first ``limit`` statements of ``split``. Without a split: a bundled benchmark's first
    split (valid; test for PutnamBench), or every statement of a JSONL file."""
    bundled = {entry.benchmark: entry for entry in BENCHMARKS if entry.prover == prover}
    if benchmark in bundled:
        entry = bundled[benchmark]
        split = split or entry.splits[0]
        statements = load_benchmark(benchmark, prover=prover, split=split)
        source, name = f"bundled {entry.filename}", benchmark
    else:
        path = Path(benchmark)
        if not path.is_file():
            known = sorted({f"{e.benchmark} ({e.prover})" for e in BENCHMARKS})
            raise DataError(
                f"--benchmark {benchmark!r} is neither a bundled benchmark for {prover} "
                f"(bundled: {', '.join(known)}) nor a JSONL file"
            )
        statements = load_statement_file(path, prover)
        splits = sorted({s.split for s in statements})
        if split is not None:
            statements = tuple(s for s in statements if s.split == split)
        if not statements:
            raise DataError(f"{path} has no statements in split {split!r}; splits: {splits}")
        split = split or "+".join(splits)
        source, name = str(path.resolve()), path.stem
    names = [s.name for s in statements]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise DataError(f"{source}: statement name {duplicate!r} appears twice in {split}")
    if limit is not None:
        statements = statements[:limit]
    return Benchmark(name, source, split, prover, tuple(statements))


def data_digest(statements: Sequence[Statement]) -> str:
    """sha256 of the statements as evaluated (canonical JSON, one line each, in order)."""
    return rows_sha256(dataclasses.asdict(statement) for statement in statements)


def describe_model(model: str) -> dict[str, str | None]:
    """The model as given, and for a local folder its absolute path and a sha256 over its
    files (names and contents of the top-level files ``save_pretrained`` writes)."""
    path = Path(model)
    if not path.is_dir():
        return {"name": model, "path": None, "sha256": None}
    return {"name": model, "path": str(path.resolve()), "sha256": folder_sha256(path)}


def default_output_dir(config: STPConfig, model: str, benchmark: Benchmark) -> Path:
    """``<run.output_dir>/<run.name>/eval/<model>/<benchmark>-<split>-<prover>[-first<N>]``."""
    model_slug = re.sub(r"[^\w.-]+", "--", model.strip("./")) or "model"
    name = f"{benchmark.name}-{benchmark.split}-{benchmark.prover}"
    if config.evaluation.limit is not None:
        name += f"-first{config.evaluation.limit}"
    return Path(config.run.output_dir) / config.run.name / "eval" / model_slug / name


def build_manifest(config: STPConfig, model: str, benchmark: Benchmark) -> dict[str, Any]:
    return {
        "model": describe_model(model),
        "benchmark": benchmark.name,
        "benchmark_source": benchmark.source,
        "split": benchmark.split,
        "prover": benchmark.prover,
        "problems": [s.name for s in benchmark.statements],
        "data_sha256": data_digest(benchmark.statements),
        "samples": config.evaluation.samples,
        "sampling": {
            "temperature": config.sampling.temperature,
            "top_p": config.sampling.top_p,
            "max_new_tokens": config.sampling.max_new_tokens,
            "seed": config.run.seed,
        },
        "verification": {
            "backend": config.verification.backend,
            "timeout_s": config.verification.timeout_s,
        },
        "chunk_problems": config.evaluation.batch_problems,
        "stp_version": __version__,
        "config": dataclasses.asdict(config),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _identity(manifest: dict[str, Any], key: str) -> Any:
    value = manifest.get(key)
    if key == "model" and isinstance(value, dict):
        # A local model is its files (wherever the folder is reached from); a hub id its name.
        return value.get("sha256") or value.get("name")
    return value


def _check_manifest(existing: dict[str, Any], wanted: dict[str, Any], out_dir: Path) -> None:
    for key in (*IDENTITY, *IDENTITY_SETTINGS):
        if _identity(existing, key) != _identity(wanted, key):
            shown = key if key != "problems" else "problems (benchmark, split or --limit)"
            raise EvaluationMismatch(
                f"{out_dir} holds an evaluation with a different {shown}: continue it with "
                "the same settings, or pass another --output (or delete the folder)"
            )


# -------------------------------------------------------------------------- folder layout


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise MissingInput(f"{path} not found: {out_dir} is not an evaluation folder")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def _refuse_earlier_layout(out_dir: Path) -> None:
    if (out_dir / "generations").is_dir() or any(
        (out_dir / prove.ATTEMPTS_DIR).glob("part-*.json")
    ):
        raise IncompatibleRun(
            f"{out_dir} holds an evaluation written by an earlier version of stp "
            "(generations/, attempts/part-*.json), which this one cannot continue: delete "
            "the folder or pass another --output"
        )


def _has_chunks(out_dir: Path) -> bool:
    return any(
        any((out_dir / folder).glob("chunk_*"))
        for folder in (prove.ATTEMPTS_DIR, prove.VERIFIED_DIR)
    )


def _problem_chunks(manifest: dict[str, Any]) -> list[list[str]]:
    """The folder's chunks (problem names), as its manifest fixed them."""
    return prove.cut(manifest["problems"], int(manifest["chunk_problems"]))


class _Timing:
    """``timing.json``: this call's wall time beside the earlier calls' times, and the
    sampling and checking seconds of each chunk (a redone chunk's replace the old)."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / TIMING
        body = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        self.calls: list[dict[str, Any]] = body.get("calls", [])
        self.sampling: dict[str, float] = body.get("sampling_seconds", {})
        self.checking: dict[str, float] = body.get("checking_seconds", {})
        self.started = time.monotonic()
        self.start_time = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    def sampled(self, index: int, seconds: float) -> None:
        self.sampling[str(index)] = seconds
        self.save()

    def checked(self, index: int, seconds: float) -> None:
        self.checking[str(index)] = seconds
        self.save()

    def save(self) -> None:
        this_call = {"started": self.start_time, "wall_seconds": time.monotonic() - self.started}
        body = {
            "calls": [*self.calls, this_call],
            "sampling_seconds": self.sampling,
            "checking_seconds": self.checking,
        }
        atomic_write_json(self.path, body)


@dataclass(frozen=True, slots=True)
class Evaluated:
    """What an evaluation folder holds: the checked samples of its finished chunks, in
    problem and sampling order, and what they cost."""

    samples: tuple[CheckedSample, ...]
    verifier_seconds: float  # per-proof check times, each distinct proof once
    sampling_seconds: float
    checking_seconds: float
    wall_seconds: float  # of every `evaluate` call on the folder


def read_evaluation(out_dir: str | Path) -> Evaluated:
    """The finished chunks of an evaluation folder (a chunk counts once it is checked)."""
    out_dir = Path(out_dir)
    _refuse_earlier_layout(out_dir)
    chunks = _problem_chunks(read_manifest(out_dir))
    _, checked = prove.chunks_done(out_dir, len(chunks))
    samples: list[CheckedSample] = []
    verifier_seconds = 0.0
    for index in checked:
        verdicts: dict[tuple[str, str], VerifiedAttempt] = {}
        for row in prove.read_verified(out_dir, [index]):
            verdicts[(row.target, row.proof)] = row
            verifier_seconds += row.seconds
        numbers: dict[str, int] = {}
        for attempt in prove.read_attempts(out_dir, [index]):
            number = numbers[attempt.target] = numbers.get(attempt.target, -1) + 1
            verified = verdicts[(attempt.target, attempt.proof)]
            samples.append(
                CheckedSample(
                    id=f"{attempt.target}#{number}",
                    problem=attempt.target,
                    sample=number,
                    proof=attempt.proof,
                    num_tokens=attempt.tokens,
                    verdict=Verdict(verified.verdict),
                    check_seconds=verified.seconds,
                    assistant_version=verified.assistant_version,
                    detail=verified.detail,
                )
            )
    timing = _Timing(out_dir)
    return Evaluated(
        samples=tuple(samples),
        verifier_seconds=verifier_seconds,
        sampling_seconds=sum(timing.sampling.values()),
        checking_seconds=sum(timing.checking.values()),
        wall_seconds=sum(call["wall_seconds"] for call in timing.calls),
    )


# ------------------------------------------------------------------------------ running


def evaluate(
    config: STPConfig,
    model: str,
    benchmark: Benchmark,
    out_dir: str | Path,
    sampler_factory: Callable[[], Sampler],
    verifier_factory: Callable[[], Verifier],
    log: Callable[[str], None] = print,
) -> Path:
    """Sample ``evaluation.samples`` proofs of every statement, verify them and record the
    attempts under ``out_dir``; continues a killed evaluation of the same settings."""
    out_dir = Path(out_dir)
    _refuse_earlier_layout(out_dir)
    manifest = build_manifest(config, model, benchmark)
    # A folder with no chunks yet (e.g. the model failed to load) holds nothing to mix up.
    if _has_chunks(out_dir):
        existing = read_manifest(out_dir)
        _check_manifest(existing, manifest, out_dir)
        manifest = existing  # its chunk size, whatever evaluation.batch_problems says now
    else:
        atomic_write_json(out_dir / MANIFEST, manifest)

    problems = {s.name: Problem.from_statement(s) for s in benchmark.statements}
    chunks = [[problems[name] for name in names] for names in _problem_chunks(manifest)]
    sampled, checked = prove.chunks_done(out_dir, len(chunks))
    if checked:
        done = sum(len(chunks[i]) for i in checked)
        log(f"resuming: {done} problems done, {len(problems) - done} to go")
    for index in sorted(set(sampled) - set(checked)):
        log(f"chunk {index}: checking {len(chunks[index])} problems sampled before a restart")

    timing = _Timing(out_dir)

    def report_chunk(index: int, seconds: float, rows: list[VerifiedAttempt]) -> None:
        timing.checked(index, seconds)
        attempts = sum(row.count for row in rows)
        proved = sum(row.count for row in rows if row.verdict == Verdict.PROVED.value)
        solved = len({row.target for row in rows if row.verdict == Verdict.PROVED.value})
        sampling = timing.sampling.get(str(index), 0.0)
        log(
            f"chunk {index}: {len(chunks[index])} problems, {attempts} attempts "
            f"({len(rows)} distinct), {proved} proved ({solved} problems solved); "
            f"sampling {sampling:.1f}s, checking {seconds:.1f}s"
        )

    sampler = ModelSampler(sampler_factory, config.sampling)
    try:
        prove.prove(
            out_dir,
            chunks,
            config.evaluation.samples,
            sampler,
            language(benchmark.prover),
            verifier_factory,
            config.run.seed,
            on_sampled=timing.sampled,
            on_checked=report_chunk,
        )
    finally:
        sampler.close()
        timing.save()
    return out_dir
