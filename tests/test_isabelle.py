"""The Isabelle backend: the pre-filter, the theory a job runs as, verdicts from server results,
and the worker pool against tests/fake_isabelle.py (a stand-in server speaking the protocol
of the Isabelle system manual over real TCP; no Isabelle can be installed here). Live tests
marked ``isabelle`` run where an ``isabelle`` launcher is found."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from stp.cli import main
from stp.config import VerificationConfig
from stp.data import load_benchmark
from stp.languages.isabelle import ISABELLE, isabelle_code
from stp.verify import VerifierUnavailableError, make_verifier
from stp.verify.isabelle import JobTheory, banned_text, job_theory, judge, rename_theory
from stp.verify.pool import Deduplicated
from stp.verify.types import Verdict, VerifyJob

FAKE = Path(__file__).with_name("fake_isabelle.py")
HEADER = "theory mathd_test imports\n  Complex_Main\nbegin\n\n"
STATEMENT = 'theorem mathd_test:\n  fixes n :: nat\n  assumes h0: "n = 2"\n  shows "n + n = 4"'


def job(id: str, proof: str, header: str = HEADER, **fields: Any) -> VerifyJob:
    return VerifyJob(id=id, header=header, formal_statement=STATEMENT, proof=proof, **fields)


# ------------------------------------------------------------------------- pre-filter


@pytest.mark.parametrize(
    ("proof", "verdict"),
    [
        ("using h0 by simp", None),
        (
            'proof -\n  have "n + n = 2 * n" by simp\n  then show ?thesis using h0 by simp\nqed',
            None,
        ),
        ("by (simp add: h0) (* no sorry here, nor ML *)", None),
        ('using h0 by (metis "lemma" add_2_eq_Suc)', None),  # a string is a term, not a command
        ("by (simp add: h0 \\<comment> \\<open>end of ML\\<close>)", None),
        ("sorry", Verdict.INCOMPLETE),
        ("apply simp\n  oops", Verdict.INCOMPLETE),
        ('using h0 by simp\nlemma foo: "False" sorry', Verdict.INCOMPLETE),
        ('by simp\n\naxiomatization where ax: "False"', Verdict.UNSOUND),
        ("ML_prf \\<open>Thm.assume\\<close>\n  by simp", Verdict.UNSOUND),
        ("by simp\nML \\<open>structure Thm_Deps = struct end\\<close>", Verdict.UNSOUND),
        ("by simp\nend\ntheory Other imports Main begin", Verdict.UNSOUND),
        ("by simp\n\ndeclare [[quick_and_dirty]]", Verdict.UNSOUND),
        ("by simp\nmethod_setup cheat = \\<open>x\\<close>", Verdict.UNSOUND),
    ],
)
def test_pre_filter(proof: str, verdict: Verdict | None) -> None:
    screened = banned_text(proof)
    assert (screened[0] if screened else None) is verdict


def test_isabelle_code_keeps_only_outer_syntax() -> None:
    text = 'by (simp add: foo) (* sorry (* nested *) oops *) "lemma x" \\<open>end \\<open>ML\\<close> oops\\<close> ‹ML› `alt` {* ML *} done'
    assert isabelle_code(text).split() == [
        "by",
        "(simp",
        "add:",
        "foo)",
        '""',
        '""',
        '""',
        '""',
        '""',
        "done",
    ]


# ------------------------------------------------------------------------- the theory


def test_job_theory_parts_are_where_the_lines_say() -> None:
    theory = job_theory(HEADER, STATEMENT, "using h0\n  by simp", "mathd_test")
    lines = theory.text.splitlines()
    assert lines[0] == f"theory {theory.name} imports"
    assert theory.name.startswith("Stp_Job_") and theory.nonce in theory.name
    assert lines[theory.statement_line - 1] == "theorem mathd_test:"
    assert lines[theory.proof_line - 1] == "using h0"
    assert lines[theory.sentinel_line - 1] == "ML \\<open>\\<close>"
    assert lines[theory.check_line - 1] == "ML_val \\<open>"
    assert 'get_thms @{theory} "mathd_test"' in theory.text
    assert theory.text.count(f"stp_axioms_{theory.nonce}") == 2  # counted before, compared after
    assert theory.text.endswith("\nend\n")
    assert job_theory(HEADER, STATEMENT, "by simp", "mathd_test").nonce != theory.nonce


def test_rename_theory() -> None:
    assert (
        rename_theory('theory "odd name" imports Main begin', "T") == "theory T imports Main begin"
    )
    assert rename_theory("theory aime_1983_p1 \n imports Main", "T") == "theory T \n imports Main"
    with pytest.raises(ValueError, match="declares no theory"):
        rename_theory("imports Main begin", "T")


def test_every_bundled_minif2f_statement_names_its_theorem_and_header_its_theory() -> None:
    statements = list(load_benchmark("minif2f", "isabelle", split="valid"))
    statements += list(load_benchmark("minif2f", "isabelle", split="test"))
    assert len(statements) == 488
    for s in statements:
        assert ISABELLE.theorem_name(s.formal_statement) == s.name
        assert rename_theory(s.header, "T").lstrip().startswith("theory T")


# ------------------------------------------------------------------------- verdicts


def _result(theory: JobTheory, messages: list[dict[str, Any]], **status: Any) -> dict[str, Any]:
    errors = [m for m in messages if m["kind"] == "error"]
    node_status = {"ok": not errors, "failed": len(errors), "canceled": False,
                   "consolidated": True, "percentage": 100, **status}  # fmt: skip
    node = {"node_name": "/x", "theory_name": f"Draft.{theory.name}", "status": node_status,
            "messages": messages, "exports": []}  # fmt: skip
    return {"ok": not errors, "errors": errors, "nodes": [node], "task": "t"}


def _message(kind: str, text: str, line: int | None) -> dict[str, Any]:
    return {"kind": kind, "message": text, **({"pos": {"line": line}} if line else {})}


@pytest.fixture
def theory() -> JobTheory:
    return job_theory(HEADER, STATEMENT, "using h0\n  by simp", "mathd_test")


def test_judge_reads_the_check_reply(theory: JobTheory) -> None:
    def reply(text: str, line: int | None = None) -> dict[str, Any]:
        return _message("writeln", text, line or theory.check_line)

    ok = reply(f"STP_CHECK {theory.nonce} OK")
    assert judge(_result(theory, [ok]), theory)[0] is Verdict.PROVED
    skip = reply(f"STP_CHECK {theory.nonce} ORACLES oracles:\n  Pure.skip_proof")
    assert judge(_result(theory, [skip]), theory)[:1] == (Verdict.INCOMPLETE,)
    assert judge(_result(theory, [skip]), theory)[2] == ("Pure.skip_proof",)
    evaluation = reply(f"STP_CHECK {theory.nonce} ORACLES oracles:\n  Code_Evaluation.eval")
    assert judge(_result(theory, [evaluation]), theory)[0] is Verdict.UNSOUND
    axioms = reply(f"STP_CHECK {theory.nonce} AXIOMS")
    assert judge(_result(theory, [axioms]), theory)[0] is Verdict.UNSOUND
    # A reply the proof printed itself: wrong nonce, or the right text on a proof line.
    forged = reply("STP_CHECK 0123456789abcdef OK")
    assert judge(_result(theory, [forged]), theory)[0] is Verdict.VERIFIER_ERROR
    echoed = reply(f"STP_CHECK {theory.nonce} OK", line=theory.proof_line)
    assert judge(_result(theory, [echoed]), theory)[0] is Verdict.VERIFIER_ERROR
    inside = reply(f"STP_CHECK {theory.nonce} OK", line=theory.check_line + 8)  # in the ML text
    assert judge(_result(theory, [inside]), theory)[0] is Verdict.PROVED
    assert judge(_result(theory, [ok, ok]), theory)[0] is Verdict.VERIFIER_ERROR
    assert judge(_result(theory, []), theory)[0] is Verdict.VERIFIER_ERROR


def test_judge_blames_the_part_where_the_first_error_is(theory: JobTheory) -> None:
    def first_error_at(line: int | None) -> tuple[Verdict, str]:
        later = _message("error", "later error", theory.check_line + 1)
        verdict, detail, _ = judge(_result(theory, [later, _message("error", "E", line)]), theory)
        return verdict, detail

    assert first_error_at(1) == (Verdict.VERIFIER_ERROR, "header does not check: E")
    assert first_error_at(theory.statement_line) == (Verdict.FAILED, "E")
    assert first_error_at(theory.proof_line + 1) == (Verdict.FAILED, "E")
    assert first_error_at(None) == (Verdict.FAILED, "E")  # no position: the proof's
    assert first_error_at(theory.sentinel_line) == (
        Verdict.FAILED,
        "the proof does not finish: E",
    )
    assert first_error_at(theory.check_line) == (
        Verdict.VERIFIER_ERROR,
        "the soundness check failed: E",
    )


def test_judge_on_unfinished_or_missing_nodes(theory: JobTheory) -> None:
    ok = _message("writeln", f"STP_CHECK {theory.nonce} OK", theory.check_line)
    canceled = _result(theory, [ok], canceled=True)
    assert judge(canceled, theory)[0] is Verdict.VERIFIER_ERROR
    assert judge(_result(theory, [ok], consolidated=False), theory)[0] is Verdict.VERIFIER_ERROR
    other = job_theory(HEADER, STATEMENT, "by simp", "mathd_test")
    assert judge(_result(other, [ok]), theory)[0] is Verdict.VERIFIER_ERROR


# ------------------------------------------------------------------------- the pool


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "server.log"
    monkeypatch.setenv("FAKE_ISABELLE_LOG", str(path))
    return path


def make(**fields: object) -> Deduplicated:
    settings: dict[str, object] = {
        "backend": "isabelle",
        "isabelle_cmd": f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE))}",
        "isabelle_dir": "",
        "workers": 1,
        "timeout_s": 3.0,
        "header_timeout_s": 20.0,
        "memory_limit_mb": 1024,
    }
    settings.update(fields)
    return make_verifier(VerificationConfig(**settings))  # type: ignore[arg-type]


def _events(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_pool_verdicts_on_a_mixed_batch(log: Path) -> None:
    jobs = [
        job("ok", "using h0 by simp"),
        job("fail", "by fake_fail"),
        job("open", "apply fake_open"),
        job("sorry", "sorry"),
        job("skip", "by fake_skip"),
        job("eval", "by fake_oracle"),
        job("axiom", "by fake_axiom"),
        job("ml", "by simp\nML \\<open>\\<close>"),
        job(
            "cites", "by (simp add: mathd_test_original)", forbidden_names=("mathd_test_original",)
        ),
        job("ok-again", "using h0 by simp"),
    ]
    with make() as verifier:
        results = {r.id: r for r in verifier.verify(jobs)}
    verdicts = {id: r.verdict for id, r in results.items()}
    assert verdicts == {
        "ok": Verdict.PROVED,
        "fail": Verdict.FAILED,
        "open": Verdict.FAILED,
        "sorry": Verdict.INCOMPLETE,
        "skip": Verdict.INCOMPLETE,
        "eval": Verdict.UNSOUND,
        "axiom": Verdict.UNSOUND,
        "ml": Verdict.UNSOUND,
        "cites": Verdict.UNSOUND,
        "ok-again": Verdict.PROVED,
    }
    assert results["ok"].backend == "isabelle"
    assert results["ok"].assistant_version == "Isabelle2024 (stand-in)"
    assert results["fail"].detail == "Failed to finish proof"
    assert [(m.severity, m.line) for m in results["fail"].messages] == [("error", 1)]
    assert results["open"].detail.startswith("the proof does not finish")
    assert results["eval"].axioms == ("Code_Evaluation.evaluation",)
    # One server; the header loaded once; every job that reached Isabelle ran as its own theory.
    events = _events(log)
    assert events.count("start") == 1
    assert sum(e.startswith("use Stp_Header_") for e in events) == 1
    assert sum(e.startswith("use Stp_Job_") for e in events) == 6


def test_timeout_kills_the_server_and_the_next_job_gets_a_fresh_one(log: Path) -> None:
    with make(timeout_s=1.0) as verifier:
        results = verifier.verify([job("hang", "by fake_hang"), job("ok", "using h0 by simp")])
    assert [r.verdict for r in results] == [Verdict.TIMEOUT, Verdict.PROVED]
    assert 1.0 <= results[0].check_seconds < 5
    assert _events(log).count("start") == 2


def test_a_crash_is_retried_once_then_is_a_verifier_error(log: Path) -> None:
    with make() as verifier:
        results = verifier.verify(
            [job("crash", "by fake_crash"), job("garbage", "by fake_garbage"), job("ok", "by simp")]
        )
    assert [r.verdict for r in results] == [
        Verdict.VERIFIER_ERROR,
        Verdict.VERIFIER_ERROR,
        Verdict.PROVED,
    ]
    assert "the server closed the connection" in results[0].detail
    assert "server reply without a name" in results[1].detail
    assert _events(log).count("start") == 5  # crash twice, garbage twice, then a fresh one


def test_out_of_memory_is_retried_on_fresh_servers_then_is_a_resource_limit(log: Path) -> None:
    jobs = [job("once", "by fake_oom_once"), job("always", "by fake_oom"), job("ok", "by simp")]
    with make() as verifier:
        results = verifier.verify(jobs)
    assert [r.verdict for r in results] == [
        Verdict.PROVED,
        Verdict.RESOURCE_LIMIT,
        Verdict.PROVED,
    ]
    assert "OutOfMemoryError" in results[1].detail and "on 3 tries" in results[1].detail
    # once: out of memory, then a fresh server; always: two more; ok: a fresh one
    assert _events(log).count("start") == 5


def test_a_broken_header_fails_its_jobs_once_and_others_go_on(log: Path) -> None:
    broken = "theory broken imports Broken\nbegin\n\n"
    jobs = [job("b1", "by simp", broken), job("ok", "by simp"), job("b2", "by auto", broken)]
    with make() as verifier:
        results = {r.id: r for r in verifier.verify(jobs)}
    assert results["ok"].verdict is Verdict.PROVED
    for id in ("b1", "b2"):
        assert results[id].verdict is Verdict.VERIFIER_ERROR
        assert results[id].detail == 'header does not check: Bad theory import "Broken"'
    assert sum(e.startswith("use Stp_Header_") for e in _events(log)) == 2  # one per header


def test_a_session_that_does_not_start_is_a_verifier_error(log: Path) -> None:
    with make(isabelle_session="Broken") as verifier:
        (result,) = verifier.verify([job("ok", "by simp")])
    assert result.verdict is Verdict.VERIFIER_ERROR
    assert "session Broken did not start" in result.detail and "Bad session" in result.detail


def test_a_server_that_cannot_start_says_to_raise_the_memory_limit(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_ISABELLE_NO_VM", "1")
    with make() as verifier:
        (result,) = verifier.verify([job("ok", "by simp")])
    assert result.verdict is Verdict.VERIFIER_ERROR
    assert "Could not reserve enough space" in result.detail
    assert "raise verification.memory_limit_mb (now 1024" in result.detail


def test_close_kills_every_server(log: Path) -> None:
    verifier = make(workers=2)
    verifier.verify([job("a", "by simp"), job("b", "by auto")])
    pool = verifier.inner
    pids = [slot.worker._server.pid for slot in pool._slots if slot.worker is not None]  # type: ignore[attr-defined]
    assert pids
    verifier.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


def test_missing_isabelle_says_what_to_install() -> None:
    with pytest.raises(VerifierUnavailableError, match=r"setup_isabelle\.sh"):
        make(isabelle_cmd="no-such-isabelle")
    with pytest.raises(VerifierUnavailableError, match="no ROOT file"):
        make(isabelle_dir="/nonexistent")


def test_stp_verify_cli_with_the_isabelle_backend(tmp_path: Path, log: Path) -> None:
    rows = [
        {"id": "p", "header": HEADER, "formal_statement": STATEMENT, "proof": "by simp"},
        {"id": "f", "header": HEADER, "formal_statement": STATEMENT, "proof": "by fake_fail"},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE))}"
    argv = ["verify", "--backend", "isabelle", "--isabelle-cmd", command, str(source)]
    argv += ["--out", str(out), "--set", "verification.isabelle_dir=", "--workers", "1"]
    assert main(argv) == 0
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["verdict"]) for r in results] == [("p", "proved"), ("f", "failed")]


# ------------------------------------------------------------------------- prompts


def test_isabelle_prompt_and_parsing() -> None:
    prompt = ISABELLE.prover_prompt(HEADER, STATEMENT, "Show that 2 + 2 = 4.")
    assert prompt.startswith("Complete the following Isabelle code:\n\n```isabelle\ntheory")
    assert prompt.endswith(STATEMENT + "\n") and "(* Show that 2 + 2 = 4. *)" in prompt
    assert ISABELLE.parse_proof("  using h0 by simp\n```\nmore") == "  using h0 by simp"
    assert ISABELLE.statement_body(STATEMENT).startswith("fixes n :: nat")
    conjecture = ISABELLE.parse_conjecture('foo: fixes m :: nat shows "m * 1 = m"\n```', "c7")
    assert conjecture == 'theorem c7:\n  fixes m :: nat shows "m * 1 = m"'
    assert ISABELLE.theorem_name(conjecture) == "c7"
    assert ISABELLE.parse_conjecture('foo: "m = m" by simp', "c7") is None
    assert ISABELLE.parse_conjecture("no statement here", "c7") is None


# ------------------------------------------------------------------------- live


@pytest.mark.isabelle
def test_live_isabelle_checks_real_proofs(tmp_path: Path) -> None:
    """Where an ``isabelle`` launcher is on PATH: real verdicts from a real HOL session."""
    assert shutil.which("isabelle") is not None
    jobs = [
        job("proved", "using h0 by simp"),
        job("failed", "by (rule refl)"),
        job("open", "apply (simp only:)"),
        job("sorry", "sorry"),
    ]
    with make(isabelle_cmd="isabelle", memory_limit_mb=32768, timeout_s=120,
              header_timeout_s=1800) as verifier:  # fmt: skip
        verdicts = [r.verdict for r in verifier.verify(jobs)]
    assert verdicts == [Verdict.PROVED, Verdict.FAILED, Verdict.FAILED, Verdict.INCOMPLETE]
