"""``stp verify``: check a file of proofs; ``stp verify-workers``: serve as a verifier node.

    stp verify --backend rocq proofs.jsonl --out results.jsonl [--workers N] [--timeout S]
    stp verify --backend lean --repl-cmd 'lake exe repl' proofs.jsonl --out results.jsonl
    stp verify --backend isabelle --isabelle-cmd ~/Isabelle2024/bin/isabelle proofs.jsonl --out r.jsonl
    stp verify-workers --address HEAD:6379 --cpus 16      (on each CPU node of a Ray cluster)

Each input row has the benchmark schema plus ``id`` and ``proof`` (``id``, ``header``,
``formal_statement`` and ``proof`` are required; ``forbidden_names``, the names the proof may
not cite, is optional; other fields are ignored). The output holds
one ``VerifyResult.to_dict()`` row per input row, in input order. A malformed row does not
stop the run: it gets a ``verifier_error`` row naming its line, and a warning on stderr.
With ``--set verification.ray_address=HEAD:6379`` the proofs are checked on the cluster's
verifier nodes (see ``stp.verify.distributed``).

``verify-workers`` checks that the configured backend's proof assistant is installed here,
then joins the cluster as a node offering ``--cpus`` verifier slots (``ray start --block`` in
its own process group) until interrupted. The checkers it hosts run with the ``verification``
settings of the run that verifies, so the assistant must sit at the same path on every node.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from stp.artifacts import atomic_write_jsonl
from stp.assistants import NAMES as ASSISTANT_NAMES
from stp.config import add_config_arguments, config_from_args
from stp.errors import ConfigError, MissingInput
from stp.verify.backends import make_verifier
from stp.verify.distributed import RESOURCE, check_reachable, import_ray
from stp.verify.lean import path_with_lake
from stp.verify.local import check_installed
from stp.verify.process import kill_group
from stp.verify.types import Verdict, VerifyJob, VerifyResult

_REQUIRED = ("id", "header", "formal_statement", "proof")


def read_jobs(path: Path, backend: str) -> list[VerifyJob | VerifyResult]:
    """One entry per non-blank line: a job, or a ``verifier_error`` result saying what is wrong
    with the row (also warned about on stderr)."""
    entries: list[VerifyJob | VerifyResult] = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            problem = ""
            row = None
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problem = f"not valid JSON ({exc.msg})"
            if row is not None and not isinstance(row, dict):
                problem = f"expected a JSON object, got {type(row).__name__}"
            elif isinstance(row, dict):
                missing = [k for k in _REQUIRED if not isinstance(row.get(k), str)]
                forbidden = row.get("forbidden_names", [])
                if missing:
                    problem = f"missing or non-string field {missing[0]!r}"
                elif not isinstance(forbidden, list) or not all(
                    isinstance(name, str) for name in forbidden
                ):
                    problem = "field 'forbidden_names' must be a list of names"
            if problem:
                where = f"{path}:{lineno}"
                print(f"stp verify: warning: {where}: {problem}; row skipped", file=sys.stderr)
                row_id = row.get("id") if isinstance(row, dict) else None
                entries.append(
                    VerifyResult(
                        id=str(row_id) if row_id is not None else f"line-{lineno}",
                        verdict=Verdict.VERIFIER_ERROR,
                        backend=backend,
                        detail=f"{where}: {problem}",
                    )
                )
                continue
            assert isinstance(row, dict)
            entries.append(
                VerifyJob(
                    id=row["id"],
                    header=row["header"],
                    formal_statement=row["formal_statement"],
                    proof=row["proof"],
                    forbidden_names=tuple(row.get("forbidden_names", ())),
                )
            )
    return entries


def _verify(args: argparse.Namespace) -> int:
    overrides = [
        f"verification.{name}={value}"
        for name, value in (
            ("backend", args.backend),
            ("workers", args.workers),
            ("timeout_s", args.timeout),
            ("repl_cmd", args.repl_cmd),
            ("isabelle_cmd", args.isabelle_cmd),
        )
        if value is not None
    ]
    config = config_from_args(args, overrides).verification
    if not args.input.is_file():
        raise MissingInput(f"input file {args.input} not found")
    with make_verifier(config) as verifier:  # first: a missing backend fails before any work
        entries = read_jobs(args.input, config.backend)
        jobs = [e for e in entries if isinstance(e, VerifyJob)]
        start = time.perf_counter()
        with tqdm(total=len(jobs), desc=f"verify ({config.backend})", unit="proof") as bar:

            def advance(done: int) -> None:
                bar.update(done)

            checked = iter(verifier.verify(jobs, progress=advance))
        seconds = time.perf_counter() - start
    results = [next(checked) if isinstance(e, VerifyJob) else e for e in entries]
    atomic_write_jsonl(args.out, (r.to_dict() for r in results))

    counts = Counter(r.verdict for r in results)
    summary = ", ".join(f"{v.value} {counts[v]}" for v in Verdict if counts[v])
    rate = len(jobs) / seconds if seconds > 0 else 0.0
    print(
        f"{len(results)} rows: {summary or 'none'}; "
        f"{len(jobs)} proofs checked in {seconds:.1f} s ({rate:.1f} proofs/s) -> {args.out}"
    )
    return 0


def _verify_workers(args: argparse.Namespace) -> int:
    overrides = [f"verification.backend={args.backend}"] if args.backend else []
    config = config_from_args(args, overrides).verification
    if args.cpus < 1:
        raise ConfigError(f"--cpus: must be >= 1, got {args.cpus}")
    check_installed(config)
    import_ray()
    check_reachable(args.address)
    argv = [
        *(sys.executable, "-m", "ray.scripts.scripts", "start"),
        *("--address", args.address, "--num-cpus", str(args.cpus)),
        *("--resources", json.dumps({RESOURCE: args.cpus}), "--block"),
    ]
    print(
        f"stp verify-workers: offering {args.cpus} {config.backend} verifier slots to {args.address}"
    )
    # On SIGTERM Ray drains a node until it is idle, which a node holding verifier actors
    # never is: it would wait out the whole drain timeout (30 s). Stop at once instead; the
    # verifier re-runs the node's unfinished chunks on other nodes.
    env = {"RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0", **os.environ}
    if config.backend == "lean":  # the node's Ray workers inherit its PATH: elan's, if off it
        env["PATH"] = path_with_lake(config, env.get("PATH", ""))
    node: subprocess.Popen[bytes] | None = None
    stopped: list[int] = []

    def stop(signum: int, frame: object) -> None:  # `ray start --block` stops its processes
        stopped.append(signum)
        if node is not None:
            node.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        node = subprocess.Popen(argv, start_new_session=True, env=env)
        if stopped:  # a signal came while it was starting
            node.send_signal(signal.SIGTERM)
        returncode = node.wait()
    finally:
        if node is not None:
            kill_group(node)  # whatever the node left in its group
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # Ray exits 1 when told to stop; only a node that ended by itself is a failure.
    return 0 if stopped else returncode


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="Check proofs with a proof assistant.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, help="JSONL rows: id, header, formal_statement, proof.")
    parser.add_argument("--out", type=Path, required=True, help="Where to write result rows.")
    parser.add_argument("--backend", choices=ASSISTANT_NAMES, help="= verification.backend")
    parser.add_argument("--workers", type=int, help="= verification.workers (0: one per core)")
    parser.add_argument("--timeout", type=float, help="= verification.timeout_s")
    parser.add_argument(
        "--repl-cmd", help="= verification.repl_cmd: the command that starts a Lean REPL"
    )
    parser.add_argument("--isabelle-cmd", help="= verification.isabelle_cmd: the Isabelle launcher")
    add_config_arguments(parser, ("verification",))
    parser.set_defaults(func=_verify)

    workers = subparsers.add_parser(
        "verify-workers",
        help="Join a Ray cluster as a CPU node that checks proofs.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    workers.add_argument("--address", required=True, help="The Ray head node, HOST:PORT.")
    workers.add_argument("--cpus", type=int, required=True, help="Verifier slots to offer.")
    workers.add_argument("--backend", choices=ASSISTANT_NAMES, help="= verification.backend")
    add_config_arguments(workers, ("verification",))
    workers.set_defaults(func=_verify_workers)
