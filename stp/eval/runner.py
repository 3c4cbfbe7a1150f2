"""Sample N proofs per statement, verify them, and record every attempt, resumably.

An evaluation folder holds::

    manifest.json                what is evaluated: model (with a digest of its files), data
                                 (sha256 of the statements), sampling and checking settings
    timing.json                  wall seconds of each `evaluate` call on this folder
    generations/part-NNNNN.json  the sampled completions of one batch of problems
    attempts/part-NNNNN.json     the verified attempts of that batch, with its timings

Each part is written atomically once its batch is sampled (generations) or checked
(attempts). A killed evaluation, run again with the same command, keeps every finished
attempts part, verifies the generations parts that have none (no re-sampling), and samples
only the problems no part holds. Batches are cut the same way on every run and each is
seeded from ``run.seed`` and its first problem's position, so a resumed evaluation samples
what an uninterrupted one would. Checking a batch overlaps with sampling the next. The manifest is checked first: a folder that holds another
model's or another benchmark's attempts is refused rather than mixed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stp import __version__
from stp.artifacts import atomic_write_json, folder_sha256, rows_sha256
from stp.config import STPConfig
from stp.data.benchmarks import BENCHMARKS, Statement, load_benchmark
from stp.data.benchmarks import load_statements as load_statement_file
from stp.errors import DataError, EvaluationMismatch, MissingInput
from stp.languages import language
from stp.languages.base import FormalLanguage
from stp.models.sampler import Sampler
from stp.prove import ModelSampler, Problem
from stp.verify.types import Verdict, Verifier

MANIFEST = "manifest.json"
TIMING = "timing.json"
GENERATIONS = "generations"
ATTEMPTS = "attempts"
# Fields of the manifest that must match for a run to continue an existing folder.
IDENTITY = ("model", "benchmark", "split", "prover", "problems", "data_sha256", "samples")
IDENTITY_SETTINGS = ("sampling", "verification")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One sampled proof of one problem and the proof assistant's verdict on it."""

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

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Attempt:
        return cls(**{**row, "verdict": Verdict(row["verdict"])})


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


def _parts(out_dir: Path, kind: str) -> dict[int, Path]:
    folder = out_dir / kind
    if not folder.is_dir():
        return {}
    parts = {}
    for path in folder.glob("part-*.json"):
        parts[int(path.stem.removeprefix("part-"))] = path
    return parts


def _part_path(out_dir: Path, kind: str, index: int) -> Path:
    return out_dir / kind / f"part-{index:05d}.json"


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise MissingInput(f"{path} not found: {out_dir} is not an evaluation folder")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """The verified attempts of one batch of problems, with what they cost."""

    problems: tuple[str, ...]
    attempts: tuple[Attempt, ...]
    generation_seconds: float
    verification_seconds: float


def read_wall_seconds(out_dir: str | Path) -> float:
    """Wall time of every ``evaluate`` call on the folder, up to its last finished part."""
    path = Path(out_dir) / TIMING
    if not path.is_file():
        return 0.0
    calls = json.loads(path.read_text(encoding="utf-8"))["calls"]
    return float(sum(call["wall_seconds"] for call in calls))


class _WallClock:
    """Records this call's wall time in ``timing.json`` beside the earlier calls' times."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / TIMING
        self.calls = (
            json.loads(self.path.read_text(encoding="utf-8"))["calls"]
            if self.path.is_file()
            else []
        )
        self.started = time.monotonic()
        self.start_time = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    def save(self) -> None:
        this_call = {"started": self.start_time, "wall_seconds": time.monotonic() - self.started}
        atomic_write_json(self.path, {"calls": [*self.calls, this_call]})


def read_batches(out_dir: str | Path) -> list[BatchRecord]:
    """Every finished batch of an evaluation folder, in part order."""
    records = []
    for _, path in sorted(_parts(Path(out_dir), ATTEMPTS).items()):
        body = json.loads(path.read_text(encoding="utf-8"))
        records.append(
            BatchRecord(
                problems=tuple(body["problems"]),
                attempts=tuple(Attempt.from_dict(a) for a in body["attempts"]),
                generation_seconds=float(body["generation_seconds"]),
                verification_seconds=float(body["verification_seconds"]),
            )
        )
    return records


# ------------------------------------------------------------------------------ running


def _batches(statements: Sequence[Statement], size: int) -> Iterator[list[Statement]]:
    for start in range(0, len(statements), size):
        yield list(statements[start : start + size])


class _Lazy:
    """Builds the verifier on first use, so a finished evaluation starts no checker."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self.value: Any = None

    def get(self) -> Any:
        if self.value is None:
            self.value = self._factory()
        return self.value

    def close(self) -> None:
        if self.value is not None:
            self.value.close()


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
    manifest = build_manifest(config, model, benchmark)
    # A folder with no parts yet (e.g. the model failed to load) holds nothing to mix up.
    has_parts = bool(_parts(out_dir, GENERATIONS) or _parts(out_dir, ATTEMPTS))
    if has_parts:
        _check_manifest(read_manifest(out_dir), manifest, out_dir)
    else:
        atomic_write_json(out_dir / MANIFEST, manifest)

    clock = _WallClock(out_dir)
    lang = language(benchmark.prover)
    by_name = {s.name: s for s in benchmark.statements}
    position = {s.name: i for i, s in enumerate(benchmark.statements)}
    sampler, verifier = ModelSampler(sampler_factory, config.sampling), _Lazy(verifier_factory)
    generated, verified = _parts(out_dir, GENERATIONS), _parts(out_dir, ATTEMPTS)
    done = {name for record in read_batches(out_dir) for name in record.problems}
    try:
        # Batches sampled before a kill but not verified: verify them, do not re-sample.
        for index in sorted(set(generated) - set(verified)):
            body = json.loads(generated[index].read_text(encoding="utf-8"))
            batch = [by_name[name] for name in body["problems"]]
            log(f"part {index}: verifying {len(batch)} problems sampled before a restart")
            _verify_batch(out_dir, index, batch, body, lang, verifier.get(), log)
            clock.save()
            done.update(body["problems"])

        remaining = [s for s in benchmark.statements if s.name not in done]
        if done:
            log(f"resuming: {len(done)} problems done, {len(remaining)} to go")
        next_index = max([*generated, *verified], default=-1) + 1
        size = config.evaluation.batch_problems
        # Batch i is checked on a thread while batch i+1 is sampled: the accelerator does not
        # wait for the proof assistant. At most one batch is being checked at a time.
        with ThreadPoolExecutor(max_workers=1) as checker:
            checking: Future[None] | None = None
            for offset, batch in enumerate(_batches(remaining, size)):
                index = next_index + offset
                seed = config.run.seed + position[batch[0].name]
                body = _sample_batch(config.evaluation.samples, batch, lang, sampler, seed)
                atomic_write_json(_part_path(out_dir, GENERATIONS, index), body)
                if checking is not None:
                    checking.result()  # raises what the check raised
                    clock.save()
                checking = checker.submit(
                    _verify_batch, out_dir, index, batch, body, lang, verifier.get(), log
                )
            if checking is not None:
                checking.result()
                clock.save()
    finally:
        sampler.close()
        verifier.close()
    return out_dir


def _sample_batch(
    samples: int, batch: list[Statement], lang: FormalLanguage, sampler: ModelSampler, seed: int
) -> dict[str, Any]:
    prompts = [Problem.from_statement(s).prompt(lang) for s in batch]
    started = time.monotonic()
    completions = sampler.generate(prompts, samples, seed)
    return {
        "problems": [s.name for s in batch],
        "seed": seed,
        "seconds": time.monotonic() - started,
        "completions": [
            [{"text": c.text, "num_tokens": c.num_tokens} for c in per_problem]
            for per_problem in completions
        ],
    }


def _verify_batch(
    out_dir: Path,
    index: int,
    batch: list[Statement],
    generations: dict[str, Any],
    lang: FormalLanguage,
    verifier: Verifier,
    log: Callable[[str], None],
) -> None:
    jobs, meta = [], []
    for statement, completions in zip(batch, generations["completions"], strict=True):
        problem = Problem.from_statement(statement)
        for sample, completion in enumerate(completions):
            proof = lang.parse_proof(completion["text"], statement.formal_statement)
            attempt_id = f"{statement.name}#{sample}"
            jobs.append(problem.job(attempt_id, proof))
            meta.append((statement.name, sample, completion["num_tokens"]))
    started = time.monotonic()
    results = verifier.verify(jobs)
    seconds = time.monotonic() - started
    attempts = [
        Attempt(
            id=job.id,
            problem=problem,
            sample=sample,
            proof=job.proof,
            num_tokens=num_tokens,
            verdict=result.verdict,
            check_seconds=result.check_seconds,
            assistant_version=result.assistant_version,
            detail=result.detail,
        )
        for job, (problem, sample, num_tokens), result in zip(jobs, meta, results, strict=True)
    ]
    atomic_write_json(
        _part_path(out_dir, ATTEMPTS, index),
        {
            "problems": [s.name for s in batch],
            "generation_seconds": generations["seconds"],
            "verification_seconds": seconds,
            "attempts": [a.to_dict() for a in attempts],
        },
    )
    proved = sum(a.proved for a in attempts)
    solved = len({a.problem for a in attempts if a.proved})
    log(
        f"part {index}: {len(batch)} problems, {len(attempts)} attempts, {proved} proved "
        f"({solved} problems solved); sampling {generations['seconds']:.1f}s, "
        f"checking {seconds:.1f}s"
    )
