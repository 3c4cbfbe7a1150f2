"""Stage markers: a stage's artifacts are trusted only when its marker says they are whole
and were made from the inputs the stage has now.

Every stage writes its artifacts atomically (``stp.artifacts``), then a marker
``<stage>.done.json`` listing each artifact with its size and sha256 (row counts for JSONL)
and a fingerprint of the stage's inputs (``fingerprint``: the settings it reads and the
digests of the artifacts it reads). A stage is skipped when its marker exists, every listed
file still matches and the fingerprint is the current one; otherwise it is redone. A run
killed at any moment therefore resumes at the first stage that is not whole, a corrupted or
truncated artifact is recomputed, never trusted, and a stage whose inputs changed (more
rounds to re-train on, another setting) runs again.

A stage that works in chunks (``stp.artifacts.write_chunk``) keeps its finished chunks across
a kill; ``.<stage>.inputs`` beside the marker says which inputs they were made from, so a
stage that starts over on changed inputs first removes what it wrote before.

Markers written before fingerprints existed (``inputs`` missing) are trusted as before,
so earlier run folders resume, unless the stage asks otherwise (``legacy_ok=False``).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stp.artifacts import atomic_write_json, atomic_write_text, file_sha256, rows_sha256

# Files larger than this (model weights) are checked by size only: hashing a 14 GB
# checkpoint on every resume would cost more than the check is worth.
HASH_LIMIT_BYTES = 256 * 1024 * 1024


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
    """What a finished stage left behind: its files, the inputs they were made from, how
    long it took and the figures it reported."""

    name: str
    seconds: float
    files: dict[str, dict[str, Any]]
    info: dict[str, Any]
    inputs: str | None = None  # fingerprint; None in markers of earlier versions

    def digest(self) -> str:
        """What a later stage that reads these files puts into its own fingerprint."""
        return rows_sha256([self.files, self.info])


def fingerprint(settings: dict[str, Any], upstream: Sequence[StageRecord | None]) -> str:
    """The inputs of a stage: the settings it reads (JSON-able) and the records of the
    stages whose artifacts it reads."""
    return rows_sha256(
        [settings, *(record.digest() if record is not None else None for record in upstream)]
    )


def marker_path(directory: Path, stage: str) -> Path:
    return directory / f"{stage}.done.json"


def _inputs_path(directory: Path, stage: str) -> Path:
    return directory / f".{stage}.inputs"


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
        return StageRecord(
            stage, float(data["seconds"]), files, dict(data.get("info", {})), data.get("inputs")
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_marker(
    directory: Path,
    stage: str,
    outputs: Sequence[Path],
    seconds: float,
    info: dict[str, Any] | None = None,
    inputs: str | None = None,
) -> StageRecord:
    files = {str(p.relative_to(directory)): _describe_file(p) for p in _files_under(outputs)}
    record = StageRecord(stage, seconds, files, dict(info or {}), inputs)
    body = {"stage": stage, "seconds": round(seconds, 3), "files": files, "info": record.info}
    if inputs is not None:
        body["inputs"] = inputs
    atomic_write_json(marker_path(directory, stage), body)
    return record


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def run_stage(
    directory: Path,
    stage: str,
    outputs: Sequence[Path] | Callable[[], Sequence[Path]],
    body: Callable[[], dict[str, Any] | None],
    log: Callable[[str], None] = print,
    inputs: str | None = None,
    legacy_ok: bool = True,
) -> StageRecord:
    """Run ``body`` unless the stage is already whole and made from ``inputs`` (a
    ``fingerprint``); ``body`` writes ``outputs`` (atomically) and may return figures to keep
    in the marker (``info``). ``outputs`` may be a function, asked after ``body`` ran, when
    what the stage writes depends on what it found."""
    done = read_stage(directory, stage)
    if done is not None:
        if done.inputs == inputs or (done.inputs is None and legacy_ok):
            log(f"  {stage}: done already ({done.seconds:.1f}s), skipped")
            return done
        log(f"  {stage}: its inputs changed since it ran; redoing it")
    marker_path(directory, stage).unlink(missing_ok=True)
    started_on = _inputs_path(directory, stage)
    if inputs is not None:
        previous = started_on.read_text().strip() if started_on.is_file() else None
        if (previous is not None and previous != inputs) or (previous is None and done is not None):
            # Partial output (kept chunks) of other inputs: not a head start, a wrong answer.
            _remove(outputs() if callable(outputs) else outputs)
        atomic_write_text(started_on, inputs + "\n")
    start = time.perf_counter()
    info = body()
    paths = outputs() if callable(outputs) else outputs
    return write_marker(directory, stage, paths, time.perf_counter() - start, info, inputs)
