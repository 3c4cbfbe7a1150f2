"""Verification on a real local Ray cluster with real coqtop: one cluster for the whole file
(Ray takes seconds to start), joined by a second node through `stp verify-workers` to test a
node that dies mid-batch."""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stp.cli import main
from stp.config import VerificationConfig
from stp.errors import MissingExtraError
from stp.verify import (
    Verdict,
    VerifierUnavailableError,
    VerifyJob,
    VerifyResult,
    make_verifier,
)
from stp.verify.distributed import RESOURCE, RayVerifier

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.rocq, pytest.mark.slow]

HEADERS = ("Require Import Arith Lia.\n", "Require Import Lia.\n")
STATEMENT = "Theorem add_zero (n : nat) : n + 0 = n."
PROOFS = {  # proof -> verdict, under either header
    "lia.": Verdict.PROVED,
    "intros. lia.": Verdict.PROVED,
    "induction n; simpl; auto.": Verdict.PROVED,
    "reflexivity.": Verdict.FAILED,
    "intros. exact I.": Verdict.FAILED,
    "Admitted.": Verdict.INCOMPLETE,
}


def make_jobs(count: int) -> list[VerifyJob]:
    """``count`` jobs cycling through every proof under both headers (so with repeats)."""
    proofs = list(PROOFS)
    return [
        VerifyJob(f"job-{i}", HEADERS[i // len(proofs) % 2], STATEMENT, proofs[i % len(proofs)])
        for i in range(count)
    ]


def essence(result: VerifyResult) -> tuple[object, ...]:
    """What must not depend on where a proof was checked (not the timing)."""
    return (result.id, result.verdict, result.messages, result.axioms, result.backend)


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """A one-node local cluster offering two verifier slots."""
    ray.init(
        address="local",  # a new cluster, even where `ray start` left an address behind
        num_cpus=2,
        resources={RESOURCE: 2},
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def local_results() -> list[VerifyResult]:
    with make_verifier(VerificationConfig(workers=1, timeout_s=10.0)) as verifier:
        return verifier.verify(make_jobs(48))


def test_ray_results_match_the_local_verifier(
    address: str, local_results: list[VerifyResult]
) -> None:
    jobs = make_jobs(48)  # 12 distinct (header, proof) pairs, each four times
    done: list[int] = []
    config = VerificationConfig(ray_address=address, ray_chunk_size=4, timeout_s=10.0)
    with make_verifier(config) as verifier:
        start = time.perf_counter()
        results = verifier.verify(jobs, progress=done.append)
        seconds = time.perf_counter() - start

    assert [essence(r) for r in results] == [essence(r) for r in local_results]
    assert [r.verdict for r in results] == [PROOFS[j.proof] for j in jobs]
    assert sum(done) == len(jobs)
    # Duplicates were checked once: the copies carry the one check's exact timing.
    timings: dict[tuple[str, str, str], set[float]] = {}
    for job, result in zip(jobs, results, strict=True):
        timings.setdefault(job.key(), set()).add(result.check_seconds)
    assert len(timings) == 12 and all(len(t) == 1 for t in timings.values())
    print(f"ray: {len(jobs)} jobs in {seconds:.2f} s")


def test_cli_verifies_on_the_cluster(address: str, tmp_path: Path) -> None:
    jobs = make_jobs(12)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(dataclasses.asdict(job)) + "\n" for job in jobs))
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stp",
            "verify",
            str(source),
            "--out",
            str(out),
            "--set",
            f"verification.ray_address={address}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["verdict"]) for r in rows] == [(j.id, PROOFS[j.proof].value) for j in jobs]
    assert "12 proofs checked" in done.stdout


def test_jobs_of_a_dead_node_are_rerun_elsewhere(
    address: str, local_results: list[VerifyResult], caplog: pytest.LogCaptureFixture
) -> None:
    # `ray start` (under verify-workers) records the cluster's address for later `ray.init()`
    # calls on this machine; put back what was there before, as `ray stop` would.
    address_file = Path(ray._common.utils.get_ray_address_file(None))
    recorded = address_file.read_text() if address_file.exists() else None
    node = subprocess.Popen(
        [sys.executable, "-m", "stp", "verify-workers", "--address", address, "--cpus", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while ray.cluster_resources().get(RESOURCE, 0) < 3:
            assert node.poll() is None, node.stdout.read() if node.stdout else ""
            assert time.monotonic() < deadline, "the verifier node did not join"
            time.sleep(0.5)

        def stop_the_node_once(done: int) -> None:
            # Called when the first chunk is back: the other actors still have chunks in
            # flight, and none gets another until the node is gone.
            if not stopping:
                stopping.append(done)
                node.send_signal(signal.SIGTERM)  # stp stops `ray start`, which stops the node
                node.wait(timeout=60)

        stopping: list[int] = []
        jobs = make_jobs(48)
        config = VerificationConfig(ray_address=address, ray_chunk_size=2, timeout_s=10.0)
        with RayVerifier(config) as verifier, caplog.at_level(logging.WARNING):
            results = verifier.verify(jobs, progress=stop_the_node_once)
        assert node.returncode == 0, node.stdout.read() if node.stdout else ""
    finally:
        if node.poll() is None:  # the test failed early: let verify-workers stop its node
            node.send_signal(signal.SIGTERM)
            node.wait(timeout=60)
        if recorded is None:
            address_file.unlink(missing_ok=True)
        else:
            address_file.write_text(recorded)

    assert stopping, "the batch ended before the node was stopped"
    assert any("died" in r.getMessage() for r in caplog.records), caplog.text
    assert [essence(r) for r in results] == [essence(r) for r in local_results]


def test_a_relative_lean_project_means_the_drivers(
    address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The actors run in the cluster's working directory, not the one the driver has now.
    (tmp_path / "proj").mkdir()
    monkeypatch.chdir(tmp_path)
    fake = Path(__file__).with_name("fake_lean_repl.py")
    config = VerificationConfig(
        backend="lean",
        repl_cmd=f"{sys.executable} {fake}",
        lean_project="proj",
        lean_kernel_check="off",
        ray_address=address,
    )
    job = VerifyJob("p", "import Lean\n\n", "theorem bar : 1 = 1 := by", "  rfl")
    with make_verifier(config) as verifier:
        (result,) = verifier.verify([job])
    assert result.verdict is Verdict.PROVED, result


def test_nodes_without_the_assistant_are_a_one_line_error(address: str) -> None:
    config = VerificationConfig(ray_address=address, coqtop="no-such-coqtop")
    with pytest.raises(VerifierUnavailableError, match="'no-such-coqtop' not found on PATH"):
        make_verifier(config)


def test_an_unreachable_cluster_is_a_one_line_error(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(dataclasses.asdict(make_jobs(1)[0])) + "\n")
    argv = ["verify", str(source), "--out", str(tmp_path / "out")]
    done = subprocess.run(  # a fresh process: this one is connected to the test cluster
        [sys.executable, "-m", "stp", *argv, "--set", "verification.ray_address=127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "cannot reach the Ray cluster at '127.0.0.1:1'" in done.stderr


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'stp\[dist\]'"):
        make_verifier(VerificationConfig(ray_address="auto"))


def test_verify_workers_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["verify-workers", "--address", "127.0.0.1:1", "--cpus", "1"]
    assert main([*argv, "--verification.coqtop", "no-such-coqtop"]) == 2
    assert "'no-such-coqtop' not found on PATH" in capsys.readouterr().err
    assert main(argv) == 2
    assert "cannot reach the Ray cluster at '127.0.0.1:1'" in capsys.readouterr().err
