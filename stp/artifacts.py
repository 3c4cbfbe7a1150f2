"""Artifact files: atomic writes, content hashes and the chunk store.

Every artifact is written to a temporary file, then renamed into place: a reader never sees
a half-written artifact, either the old file (or none) or the whole new one. Stages that are
skipped when their output exists rely on this to resume after a kill. The content hashes
here are the only ones in the project (stage markers, evaluation manifests, fingerprints,
derived seeds, statement keys).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> int:
    """Stream rows to a temporary file, then rename; returns the number of rows written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def read_jsonl(path: str | Path) -> Iterator[Any]:
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


# ----------------------------------------------------------------------- content hashes


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_sha256(path: str | Path) -> str:
    """sha256 over the names and contents of a folder's top-level files (hidden files, the
    temporaries of atomic writes, left out): what identifies a saved model."""
    digest = hashlib.sha256()
    for file in sorted(
        p for p in Path(path).iterdir() if p.is_file() and not p.name.startswith(".")
    ):
        digest.update(file.name.encode("utf-8") + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def text_sha256(*parts: str) -> bytes:
    """sha256 of strings joined by NUL (which no statement, proof or name contains): the key
    of a statement, a proof or a name wherever one is needed."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()


def derive_seed(*parts: object) -> int:
    """A 31-bit seed drawn from ``parts`` (joined by ``:``): seeds derived from one seed
    with different parts share no stream, and the same parts give the same seed anywhere."""
    digest = text_sha256(":".join(map(str, parts)))
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def rows_sha256(rows: Iterable[Any]) -> str:
    """sha256 of JSON-able rows as canonical JSON, one line each, in order."""
    digest = hashlib.sha256()
    for row in rows:
        line = json.dumps(row, sort_keys=True, ensure_ascii=False)
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


# -------------------------------------------------------------------------- chunk store
#
# Long stages write their output in chunks, each followed by a sha256 sidecar: a rerun keeps
# the chunks whose sidecar matches and redoes only the rest.


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


def drop_chunk(directory: Path, index: int) -> None:
    """Remove a chunk and its sidecar (when what it was made from is made again)."""
    path = chunk_path(directory, index)
    _chunk_sidecar(path).unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def chunk_done(directory: Path, index: int) -> bool:
    path = chunk_path(directory, index)
    try:
        return _chunk_sidecar(path).read_text().strip() == file_sha256(path)
    except OSError:
        return False
