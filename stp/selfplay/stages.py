"""Stage markers: a stage's artifacts are trusted only when its marker says they are whole.

Every stage of a round writes its artifacts atomically (``stp.artifacts``), then a marker
``<stage>.done.json`` listing each artifact with its size and sha256 (row counts for JSONL).
A stage is skipped when its marker exists and every listed file still matches; otherwise it
is redone. A run killed at any moment therefore resumes at the first stage that is not whole,
and a corrupted or truncated artifact is recomputed, never trusted.

Long stages (generation, verification) write their output in chunks, each with a small
sha256 sidecar, so a rerun keeps the finished chunks and redoes only the rest.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stp.artifacts import atomic_write_json, atomic_write_jsonl, read_jsonl

# Files larger than this (model weights) are checked by size only: hashing a 14 GB
# checkpoint on every resume would cost more than the check is worth.
HASH_LIMIT_BYTES = 256 * 1024 * 1024


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe_file(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    entry: dict[str, Any] = {"bytes": size}
    if size <= HASH_LIMIT_BYTES:
        entry["sha256"] = file_sha256(path)
    if path.suffix == ".jsonl":
        with path.open("rb") as handle:
            entry["rows"] = sum(1 for line in handle if line.strip())
    return entry


def _files_under(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            # Hidden files are the temporaries of atomic writes a kill left behind: not output.
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
        elif path.is_file():
            yield path
        else:
            raise FileNotFoundError(f"stage output {path} was not written")


@dataclass(frozen=True, slots=True)
class StageRecord:
    """What a finished stage left behind: its files and how long it took."""

    name: str
    seconds: float
    files: dict[str, dict[str, Any]]
    info: dict[str, Any]


def marker_path(directory: Path, stage: str) -> Path:
    return directory / f"{stage}.done.json"


def read_stage(directory: Path, stage: str) -> StageRecord | None:
    """The stage's record when its marker exists and every file matches it; else None."""
    marker = marker_path(directory, stage)
    try:
        data = json.loads(marker.read_text())
        files: dict[str, dict[str, Any]] = data["files"]
        for rel, expected in files.items():
            path = directory / rel
            if not path.is_file() or path.stat().st_size != expected["bytes"]:
                return None
            if "sha256" in expected and file_sha256(path) != expected["sha256"]:
                return None
        return StageRecord(stage, float(data["seconds"]), files, dict(data.get("info", {})))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_marker(
    directory: Path,
    stage: str,
    outputs: Sequence[Path],
    seconds: float,
    info: dict[str, Any] | None = None,
) -> StageRecord:
    files = {str(p.relative_to(directory)): _describe_file(p) for p in _files_under(outputs)}
    record = StageRecord(stage, seconds, files, dict(info or {}))
    atomic_write_json(
        marker_path(directory, stage),
        {"stage": stage, "seconds": round(seconds, 3), "files": files, "info": record.info},
    )
    return record


def run_stage(
    directory: Path,
    stage: str,
    outputs: Sequence[Path] | Callable[[], Sequence[Path]],
    body: Callable[[], dict[str, Any] | None],
    log: Callable[[str], None] = print,
) -> StageRecord:
    """Run ``body`` unless the stage is already whole; ``body`` writes ``outputs`` (atomically)
    and may return figures to keep in the marker (``info``). ``outputs`` may be a function,
    asked after ``body`` ran, when what the stage writes depends on what it found."""
    done = read_stage(directory, stage)
    if done is not None:
        log(f"  {stage}: done already ({done.seconds:.1f}s), skipped")
        return done
    marker_path(directory, stage).unlink(missing_ok=True)
    start = time.perf_counter()
    info = body()
    paths = outputs() if callable(outputs) else outputs
    return write_marker(directory, stage, paths, time.perf_counter() - start, info)


# --------------------------------------------------------------------- chunked outputs


def chunk_path(directory: Path, index: int) -> Path:
    return directory / f"chunk_{index:05d}.jsonl"


def _chunk_sidecar(path: Path) -> Path:
    return path.with_suffix(".sha256")


def write_chunk(directory: Path, index: int, rows: Iterable[Any]) -> int:
    """Write one chunk atomically, then its sha256 sidecar; returns the row count."""
    path = chunk_path(directory, index)
    count = atomic_write_jsonl(path, rows)
    _chunk_sidecar(path).write_text(file_sha256(path) + "\n")
    return count


def chunk_done(directory: Path, index: int) -> bool:
    path = chunk_path(directory, index)
    sidecar = _chunk_sidecar(path)
    try:
        return sidecar.read_text().strip() == file_sha256(path)
    except OSError:
        return False


def read_chunks(directory: Path, count: int) -> Iterable[dict[str, Any]]:
    """Rows of chunks 0..count-1 in order."""
    for index in range(count):
        yield from read_jsonl(chunk_path(directory, index))
