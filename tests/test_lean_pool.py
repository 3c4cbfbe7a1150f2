"""The Lean backend's REPL pool, against tests/fake_lean_repl.py (a stand-in that replays
recorded real REPL transcripts and misbehaves on demand), launched through ``repl_cmd``."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

import pytest

from stp.cli import main
from stp.config import VerificationConfig
from stp.verify import VerifierUnavailableError, make_verifier
from stp.verify.pool import Deduplicated
from stp.verify.types import Verdict, VerifyJob

FAKE = Path(__file__).with_name("fake_lean_repl.py")
HEADER = "import Lean\n\n"  # recorded: {"cmd" : "import Lean"} -> {"env": 0}

# Statement + proof pairs whose assembled command was recorded (line_breaks.in, Lean 4.33).
PROVED = ("theorem bar : 1 = 1 := by", "/- Some long comment here -/\n  rfl")
INCOMPLETE = ("theorem foo : 1 = 1 := by", "  sorry")
FAILED = ("theorem foo : 1 = 1 := by", "sorry")  # "unexpected token 'sorry'; expected command"


def job(id: str, statement_proof: tuple[str, str], header: str = HEADER) -> VerifyJob:
    statement, proof = statement_proof
    return VerifyJob(id=id, header=header, formal_statement=statement, proof=proof)


def marked(id: str, marker: str, header: str = HEADER) -> VerifyJob:
    """A proof the fake answers cleanly unless ``marker`` tells it to misbehave."""
    return job(id, ("theorem t : True := by", f"  trivial -- {marker}"), header)


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "repl.log"
    monkeypatch.setenv("FAKE_REPL_LOG", str(path))
    monkeypatch.setenv("FAKE_REPL_STATE", str(tmp_path))
    return path


def make(tmp_path: Path, **fields: object) -> Deduplicated:
    settings: dict[str, object] = {
        "backend": "lean",
        "repl_cmd": f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE))}",
        "lean_project": str(tmp_path),
        "workers": 1,
        "timeout_s": 5.0,
        "header_timeout_s": 10.0,
        "memory_limit_mb": 1024,
        "jobs_per_worker": 100,
    }
    settings.update(fields)
    config = VerificationConfig(**settings)  # type: ignore[arg-type]
    config.validate()
    return make_verifier(config)


def entries(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def requests(log: Path) -> list[dict]:
    return [e for e in entries(log) if e["event"] == "request"]


def headers_run(log: Path) -> list[str]:
    return [e["request"]["cmd"] for e in requests(log) if "env" not in e["request"]]


def starts(log: Path) -> list[int]:
    return [e["pid"] for e in entries(log) if e["event"] == "start"]


def gone(pid: int) -> bool:
    """The process no longer exists (or is a zombie waiting for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_recorded_responses_give_verdicts_messages_and_axioms(tmp_path: Path, log: Path) -> None:
    with make(tmp_path) as verifier:
        proved, incomplete, failed = verifier.verify(
            [job("p", PROVED), job("i", INCOMPLETE), job("f", FAILED)]
        )
    assert (proved.verdict, proved.axioms, proved.detail) == (Verdict.PROVED, (), "")
    assert incomplete.verdict is Verdict.INCOMPLETE
    assert failed.verdict is Verdict.FAILED
    assert failed.detail == "unsolved goals"
    # "unsolved goals" sits on the statement's line; the parse error on the proof's first line.
    assert [(m.line, m.column) for m in failed.messages] == [(1, 23), (1, 0)]
    assert "expected command" in failed.messages[1].text
    for result in (proved, incomplete, failed):
        assert result.backend == "lean" and result.check_seconds > 0
        assert result.assistant_version.startswith("unpinned (")
    # The proved proof went on to the follow-up check, in its own environment.
    follow_up = requests(log)[-3]["request"]  # the proof commands ran in job order
    assert "#print axioms _root_.bar\n\n#print axioms _root_.bar_stp_" in follow_up["cmd"]
    assert follow_up["env"] == 1


def test_header_once_per_distinct_header_and_every_proof_against_env_0(
    tmp_path: Path, log: Path
) -> None:
    other = "import Mathlib\nopen Real\n"
    jobs = [
        job("a1", PROVED),
        job("b1", INCOMPLETE, header=other),
        job("a2", INCOMPLETE),
        job("b2", PROVED, header=other),
        job("a3", FAILED),
    ]
    with make(tmp_path) as verifier:
        results = verifier.verify(jobs)
    assert [r.verdict for r in results] == [
        Verdict.PROVED, Verdict.INCOMPLETE, Verdict.INCOMPLETE, Verdict.PROVED, Verdict.FAILED
    ]  # fmt: skip
    assert sorted(headers_run(log)) == ["import Lean", "import Mathlib\nopen Real"]
    assert len(starts(log)) == 2  # one worker: its REPL is replaced once, for the other header
    proofs = [e["request"] for e in requests(log) if "env" in e["request"]]
    proof_commands = [r for r in proofs if "#print axioms" not in r["cmd"]]
    assert len(proof_commands) == 5 and all(r["env"] == 0 for r in proof_commands)
    # Every request went out as a single line: no raw newline ever reached the REPL.
    assert all(e["lines"] == 1 for e in requests(log))


def test_headers_differing_in_blank_lines_share_a_repl(tmp_path: Path, log: Path) -> None:
    with make(tmp_path) as verifier:
        verifier.verify([job("a", PROVED, header="import Lean\n\n")])
        verifier.verify([job("b", PROVED, header="  \nimport Lean  \n")])
    assert headers_run(log) == ["import Lean"] and len(starts(log)) == 1


def test_lru_eviction_keeps_the_recently_used_header(tmp_path: Path, log: Path) -> None:
    a, b, c = "import Lean", "import A", "import C"
    with make(tmp_path, workers=2) as verifier:  # two warm REPLs at most
        for header in (a, b, a, c, b):  # one job per batch: one worker runs it
            (result,) = verifier.verify([job(header, PROVED, header=header)])
            assert result.verdict is Verdict.PROVED
    # a stays warm for its second job; c evicts b (least recent), then b evicts a.
    assert headers_run(log) == [a, b, c, b]
    served_by: dict[str, set[int]] = {}
    for entry in requests(log):
        if "env" not in entry["request"]:
            served_by.setdefault(entry["request"]["cmd"], set()).add(entry["pid"])
    assert len(served_by[a]) == 1 and len(served_by[b]) == 2


def test_retire_after_jobs_per_worker(tmp_path: Path, log: Path) -> None:
    with make(tmp_path, jobs_per_worker=2) as verifier:
        results = verifier.verify([marked(str(i), f"proof {i}") for i in range(5)])
    assert all(r.verdict is Verdict.PROVED for r in results)
    pids = starts(log)
    assert len(pids) == 3
    for pid in pids:
        proofs = [
            e
            for e in requests(log)
            if e["pid"] == pid and e["request"]["cmd"].startswith("theorem t ")
        ]
        assert 1 <= len(proofs) <= 2


def test_timeout_kills_the_process_group_and_the_next_job_works(tmp_path: Path, log: Path) -> None:
    with make(tmp_path, timeout_s=2.0) as verifier:
        hung, after = verifier.verify([marked("hang", "FAKE_HANG"), job("next", PROVED)])
        assert hung.verdict is Verdict.TIMEOUT
        assert after.verdict is Verdict.PROVED
        (hang,) = [e for e in entries(log) if e["event"] == "hang"]
        deadline = time.monotonic() + 5
        while not (gone(hang["pid"]) and gone(hang["grandchild"])) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(hang["pid"]), "the REPL survived its timeout"
        assert gone(hang["grandchild"]), "a process the REPL started survived: group not killed"
        assert len(starts(log)) == 2


def test_crash_is_retried_once_then_verifier_error(tmp_path: Path, log: Path) -> None:
    with make(tmp_path) as verifier:
        (crashed,) = verifier.verify([marked("crash", "FAKE_CRASH")])
        assert crashed.verdict is Verdict.VERIFIER_ERROR
        assert "ended its output" in crashed.detail
        assert len(starts(log)) == 2  # the first REPL and the one the retry started
        (recovered,) = verifier.verify([marked("once", "FAKE_CRASH_ONCE")])
        assert recovered.verdict is Verdict.PROVED
        assert len(starts(log)) == 4


def test_garbage_is_a_crash(tmp_path: Path, log: Path) -> None:
    with make(tmp_path) as verifier:
        noisy, clean = verifier.verify([marked("noisy", "FAKE_GARBAGE"), job("clean", PROVED)])
    assert noisy.verdict is Verdict.VERIFIER_ERROR and "not JSON" in noisy.detail
    assert clean.verdict is Verdict.PROVED
    assert len(starts(log)) == 3  # crash, retry crash, then a fresh REPL for the clean job


def test_lake_warnings_on_stderr_do_not_decide_an_answer(tmp_path: Path, log: Path) -> None:
    warned = "import Lean -- FAKE_STDERR"  # Lake warns while the header loads, too
    with make(tmp_path) as verifier:
        results = verifier.verify(
            [
                marked("clean", "FAKE_STDERR", header=warned),
                marked("wrong", "FAKE_STDERR FAKE_WRONG", header=warned),
                marked("sorry", "FAKE_STDERR\n  -- fake-axioms: sorryAx", header=warned),
            ]
        )
    assert [r.verdict for r in results] == [Verdict.PROVED, Verdict.FAILED, Verdict.INCOMPLETE]
    assert len(starts(log)) == 1


@pytest.mark.parametrize("kind", ["THREAD", "BAD_ALLOC", "ENOMEM", "KILLED", "ANSWER"])
def test_out_of_memory_once_is_retried_on_a_fresh_repl(
    tmp_path: Path, log: Path, kind: str
) -> None:
    # Lake warns on every request, as `lake exe repl` does with a stale manifest: neither the
    # warnings nor one out-of-memory death may cost the proof its verdict.
    with make(tmp_path) as verifier:
        (result,) = verifier.verify([marked("p", f"FAKE_STDERR FAKE_OOM_ONCE_{kind}")])
    assert (result.verdict, result.detail) == (Verdict.PROVED, "")
    assert len(starts(log)) == 2
    assert [e["kind"] for e in entries(log) if e["event"] == "oom"] == [kind]


def test_out_of_memory_does_not_use_up_the_crash_retry(tmp_path: Path, log: Path) -> None:
    with make(tmp_path) as verifier:
        (result,) = verifier.verify([marked("p", "FAKE_OOM_ONCE_THREAD FAKE_CRASH_ONCE")])
    assert result.verdict is Verdict.PROVED
    assert len(starts(log)) == 3  # out of memory, then the crash, then the answer


@pytest.mark.parametrize("retries", [0, 3])
def test_out_of_memory_every_time_is_resource_limit(
    tmp_path: Path, log: Path, retries: int
) -> None:
    with make(tmp_path, resource_retries=retries) as verifier:
        hungry, clean = verifier.verify(
            [marked("hungry", "FAKE_OOM_BAD_ALLOC"), job("clean", PROVED)]
        )
    assert hungry.verdict is Verdict.RESOURCE_LIMIT
    assert "std::bad_alloc" in hungry.detail and f"on {retries + 1} tries" in hungry.detail
    assert clean.verdict is Verdict.PROVED
    assert len(starts(log)) == retries + 2


def test_a_header_out_of_memory_is_not_remembered_as_bad(tmp_path: Path, log: Path) -> None:
    header = "import Lean -- FAKE_OOM_ONCE_ANSWER"
    with make(tmp_path) as verifier:
        results = verifier.verify([job("a", PROVED, header=header), job("b", PROVED, header)])
    assert [r.verdict for r in results] == [Verdict.PROVED, Verdict.PROVED]
    assert headers_run(log) == [header, header]


def test_axioms_decide_the_verdict_of_a_clean_proof(tmp_path: Path, log: Path) -> None:
    with make(tmp_path) as verifier:
        classical, sorry, cheat = verifier.verify(
            [
                marked("classical", "fake-axioms: propext, Classical.choice"),
                marked("sorry", "fake-axioms: sorryAx"),
                marked("cheat", "fake-axioms: propext, cheat"),
            ]
        )
    assert (classical.verdict, classical.axioms) == (
        Verdict.PROVED,
        ("Classical.choice", "propext"),
    )
    assert sorry.verdict is Verdict.INCOMPLETE
    assert cheat.verdict is Verdict.UNSOUND and "cheat" in cheat.detail


def test_a_header_that_does_not_check_fails_its_jobs_once(tmp_path: Path, log: Path) -> None:
    bad = "import Mathlb -- FAKE_BAD_HEADER"
    with make(tmp_path) as verifier:
        results = verifier.verify([job("x", PROVED, header=bad), job("y", PROVED, header=bad)])
    assert all(r.verdict is Verdict.VERIFIER_ERROR for r in results)
    assert all("header does not check: unknown package" in r.detail for r in results)
    assert headers_run(log) == [bad]  # the failure is remembered, not re-run


def test_exactly_one_result_per_job_in_job_order(tmp_path: Path, log: Path) -> None:
    jobs = [
        job("p1", PROVED),
        marked("crash", "FAKE_CRASH"),
        job("i", INCOMPLETE, header="import Other"),
        job("native", ("theorem t : 2 = 2 := by", "  native_decide")),
        marked("garbage", "FAKE_GARBAGE", header="import Other"),
        job("f", FAILED),
        job("p2", PROVED, header="import Other"),
        job("p1", PROVED),  # a repeated id is still its own job
    ]
    done: list[int] = []
    with make(tmp_path, workers=2) as verifier:
        results = verifier.verify(jobs, progress=done.append)
    assert [r.id for r in results] == [j.id for j in jobs]
    assert [r.verdict for r in results] == [
        Verdict.PROVED, Verdict.VERIFIER_ERROR, Verdict.INCOMPLETE, Verdict.UNSOUND,
        Verdict.VERIFIER_ERROR, Verdict.FAILED, Verdict.PROVED, Verdict.PROVED,
    ]  # fmt: skip
    assert sum(done) == len(jobs)


def test_close_kills_warm_repls(tmp_path: Path, log: Path) -> None:
    verifier = make(tmp_path, workers=2)
    verifier.verify([job("a", PROVED), job("b", PROVED, header="import B")])
    pids = starts(log)
    assert len(pids) == 2 and not any(gone(pid) for pid in pids)
    verifier.close()
    assert all(gone(pid) for pid in pids)


def test_missing_repl_command_or_project_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(VerifierUnavailableError, match=r"setup_lean\.sh"):
        make(tmp_path, repl_cmd="no-such-lake exe repl")
    with pytest.raises(VerifierUnavailableError, match="Lean project"):
        make(tmp_path, lean_project=str(tmp_path / "missing"))
    with pytest.raises(VerifierUnavailableError, match="not found"):
        make(tmp_path, repl_cmd="./repl")  # a path is relative to the Lean project


def test_repl_given_by_a_path_relative_to_the_lean_project(tmp_path: Path, log: Path) -> None:
    launcher = tmp_path / "repl"
    launcher.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(FAKE))}\n")
    launcher.chmod(0o755)
    with make(tmp_path, repl_cmd="./repl") as verifier:
        (result,) = verifier.verify([job("p", PROVED)])
    assert result.verdict is Verdict.PROVED


def test_pins_are_the_assistant_version(log: Path) -> None:
    project = Path(__file__).parents[1] / "lean_project"
    with make(project) as verifier:
        (result,) = verifier.verify([job("p", PROVED)])
    assert "toolchain leanprover/lean4:v4.9.0-rc1" in result.assistant_version
    assert "mathlib xinhjBrant/mathlib4@2f65ba7f1a9144b20c8e7358513548e317d26de1" in (
        result.assistant_version
    )
    assert os.path.isdir(project)


def test_stp_verify_cli_with_repl_cmd(tmp_path: Path, log: Path) -> None:
    rows = [
        {"id": "p", "header": HEADER, "formal_statement": PROVED[0], "proof": PROVED[1]},
        {"id": "i", "header": HEADER, "formal_statement": INCOMPLETE[0], "proof": INCOMPLETE[1]},
    ]
    proofs = tmp_path / "proofs.jsonl"
    proofs.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "results.jsonl"
    fake = f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE))}"
    status = main(
        ["verify", "--backend", "lean", "--repl-cmd", fake, str(proofs), "--out", str(out),
         "--workers", "1", "--verification.lean_project", str(tmp_path)]
    )  # fmt: skip
    assert status == 0
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["verdict"]) for r in results] == [("p", "proved"), ("i", "incomplete")]
    assert headers_run(log) == ["import Lean"]


def test_stp_verify_counts_resource_limits_apart(
    tmp_path: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    row = {"id": "m", "header": HEADER, "formal_statement": "theorem t : True := by"}
    proofs = tmp_path / "proofs.jsonl"
    proofs.write_text(json.dumps({**row, "proof": "  trivial -- FAKE_OOM_KILLED"}) + "\n")
    fake = f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE))}"
    argv = ["verify", "--backend", "lean", "--repl-cmd", fake, str(proofs), "--out",
            str(tmp_path / "r.jsonl"), "--workers", "1", "--verification.lean_project",
            str(tmp_path), "--verification.resource_retries", "1"]  # fmt: skip
    assert main(argv) == 0
    assert "resource_limit 1" in capsys.readouterr().out
    assert len(starts(log)) == 2


def test_stp_verify_with_repl_cmd_runs_outside_the_repository(
    tmp_path: Path, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A REPL command that speaks the protocol needs no Lean project, so the default
    # `lean_project` missing from the current directory is no error.
    proofs = tmp_path / "proofs.jsonl"
    row = {"id": "p", "header": HEADER, "formal_statement": PROVED[0], "proof": PROVED[1]}
    proofs.write_text(json.dumps(row) + "\n")
    monkeypatch.chdir(tmp_path)
    fake = f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE))}"
    argv = ["verify", "--backend", "lean", "--repl-cmd", fake, "proofs.jsonl", "--out", "r.jsonl"]
    assert main([*argv, "--workers", "1", "--verification.lean_kernel_check", "off"]) == 0
    (result,) = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert result["verdict"] == "proved"
    # lake, and the second check, do need the project.
    with pytest.raises(VerifierUnavailableError, match="Lean project"):
        make(tmp_path, lean_project="lean_project", repl_cmd="lake exe repl")
    with pytest.raises(VerifierUnavailableError, match="Lean project"):
        make(tmp_path, lean_project="lean_project", lean_kernel_check="on")


def test_long_requests_and_characters_outside_the_bmp_arrive_intact(
    tmp_path: Path, log: Path
) -> None:
    proof = "  trivial -- " + "𝓝ℝ∑" * 40_000  # about 400 KB: many pipe buffers' worth
    with make(tmp_path) as verifier:
        (result,) = verifier.verify([job("long", ("theorem t : True := by", proof))])
    assert result.verdict is Verdict.PROVED
    sent = [e for e in requests(log) if e["request"]["cmd"].startswith("theorem t ")]
    assert sent[0]["request"]["cmd"] == "theorem t : True := by\n" + proof
    assert sent[0]["lines"] == 1


def test_a_statement_without_a_name_is_ill_typed(tmp_path: Path, log: Path) -> None:
    with make(tmp_path) as verifier:
        (result,) = verifier.verify([job("e", ("example : 1 = 1 := by", "  rfl"))])
    assert result.verdict is Verdict.ILL_TYPED and "no named theorem" in result.detail
