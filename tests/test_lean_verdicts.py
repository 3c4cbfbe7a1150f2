"""Lean backend without Lean: verdicts of recorded real REPL responses, the soundness rules."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from fake_lean_repl import VERSION_DIRS, load_transcripts

from stp.languages.lean import LEAN
from stp.verify.lean import (
    ALLOWED_AXIOMS,
    MessagesRewritten,
    follow_up_command,
    judge_follow_up,
    pinned_versions,
    restated_name,
    verdict_of,
)
from stp.verify.pool import normalise_header
from stp.verify.types import Verdict

P, F, INC, E = Verdict.PROVED, Verdict.FAILED, Verdict.INCOMPLETE, Verdict.VERIFIER_ERROR

# The verdict of every response in every transcript, in order (see MANIFEST.md for what each
# transcript shows). Tactic-mode responses are included: the REPL speaks them too.
EXPECTED: dict[tuple[str, str], list[Verdict]] = {
    ("4.33", "all_tactics"): [P],
    ("4.33", "dup_msg"): [P, P, F],  # an info message is not a failure
    ("4.33", "import_lean"): [P],
    ("4.33", "incomplete"): [F, F],  # "unsolved goals" errors
    ("4.33", "invalid_line_break"): [F, F],  # Unknown identifier `bysorry`
    ("4.33", "invalid_tactic"): [INC, F],  # the tactic error wins over "contains sorry"
    ("4.33", "line_breaks"): [F, INC, P],
    ("4.33", "proof_branching"): [INC, INC, INC, INC, P],
    ("4.33", "readme"): [INC, INC, P],
    ("4.33", "tactic_mode_sorry"): [INC, INC],
    ("4.33", "tactic_sorry"): [INC],
    ("4.33", "unknown_environment"): [E],  # {"message": "Unknown environment."}
    ("4.33", "unknown_tactic"): [INC, F],  # {"message": "Lean error: ..."}
    ("4.9", "readme"): [INC, INC, P],  # 'sorry' quoting, no proofStatus: open goals -> incomplete
    ("4.9", "tactic_sorry"): [INC],
}


def _all_transcripts() -> dict[tuple[str, str], list[dict]]:
    return {
        (version, name): [response for _, response in pairs]
        for version, directory in VERSION_DIRS.items()
        for name, pairs in load_transcripts(directory).items()
    }


def test_every_transcript_has_expected_verdicts() -> None:
    transcripts = _all_transcripts()
    assert set(transcripts) == set(EXPECTED), "a fixture was added or removed: update EXPECTED"
    for key, responses in transcripts.items():
        assert [verdict_of(r) for r in responses] == EXPECTED[key], key


@pytest.mark.parametrize("version", ["4.33", "4.9"])
def test_term_mode_sorry_shows_only_as_the_warning(version: str) -> None:
    # The REPL drops term-mode sorries without a goal from `sorries`; the warning remains.
    response = copy.deepcopy(_all_transcripts()[(version, "tactic_sorry")][0])
    del response["sorries"]
    assert verdict_of(response) is Verdict.INCOMPLETE


def test_both_wordings_of_sorry_and_unknown_identifier() -> None:
    for wording in ("declaration uses 'sorry'", "declaration uses `sorry`"):
        warning = {"severity": "warning", "pos": {"line": 1, "column": 8}, "data": wording}
        assert verdict_of({"messages": [warning], "env": 3}) is Verdict.INCOMPLETE
    for wording in ("unknown identifier 'g'", "Unknown identifier `g`"):
        error = {"severity": "error", "pos": {"line": 1, "column": 7}, "data": wording}
        assert verdict_of({"messages": [error], "env": 3}) is Verdict.FAILED


def _info(text: str) -> dict:
    return {"severity": "info", "pos": {"line": 7, "column": 0}, "data": text}


COPY = "t_stp_0123456789abcdef"  # the restated copy's random name
COPY_REPORT = _info(f"'{COPY}' depends on axioms: [sorryAx]")


CANARY_ERROR = {
    "severity": "error",
    "pos": {"line": 9, "column": 7},
    "data": f"unknown identifier '_root_.{COPY}_absent'",
}


def _follow_up(*reports: str) -> dict:
    return {"messages": [*map(_info, reports), COPY_REPORT, CANARY_ERROR], "env": 5}


def test_follow_up_axioms() -> None:
    clean = _follow_up("'t' depends on axioms: [propext, Classical.choice, Quot.sound]")
    assert judge_follow_up(clean, "t", COPY) == (P, "", tuple(sorted(ALLOWED_AXIOMS)))
    none = _follow_up("'t' does not depend on any axioms")
    assert judge_follow_up(none, "t", COPY)[0] is P
    sorry = _follow_up("'t' depends on axioms: [propext, sorryAx]")
    assert judge_follow_up(sorry, "t", COPY)[0] is INC
    native = _follow_up("'t' depends on axioms: [propext, Lean.ofReduceBool]")
    verdict, detail, axioms = judge_follow_up(native, "t", COPY)
    assert verdict is Verdict.UNSOUND and "Lean.ofReduceBool" in detail
    assert axioms == ("Lean.ofReduceBool", "propext")
    # A report for another name (say, printed by the proof itself) does not count.
    assert judge_follow_up(_follow_up("'u' does not depend on any axioms"), "t", COPY)[0] is E


def test_an_extra_report_is_unsound() -> None:
    # The real report says sorryAx; a second one, forged, says nothing: never proved.
    forged = _follow_up("'t' does not depend on any axioms", "'t' depends on axioms: [sorryAx]")
    verdict, detail, _ = judge_follow_up(forged, "t", COPY)
    assert verdict is Verdict.UNSOUND and "2 #print axioms reports" in detail


@pytest.mark.parametrize(
    "copy_reports",
    [
        [],  # an answer printed before the follow-up was sent cannot know the random name
        [COPY_REPORT, COPY_REPORT],
        [_info("'t_stp_ffffffffffffffff' depends on axioms: [sorryAx]")],  # another job's
    ],
)
def test_the_answer_must_report_this_jobs_random_name_once(copy_reports: list[dict]) -> None:
    response = {
        "messages": [_info("'t' does not depend on any axioms"), *copy_reports, CANARY_ERROR],
        "env": 5,
    }
    verdict, detail, _ = judge_follow_up(response, "t", COPY)
    assert verdict is Verdict.UNSOUND and "random name" in detail


@pytest.mark.parametrize(
    "error", ["unknown identifier 't'", "Unknown identifier `t`", "type mismatch\n  rfl"]
)
def test_follow_up_statement_recheck_failure_is_unsound(error: str) -> None:
    response = _follow_up("'t' does not depend on any axioms")
    response["messages"].insert(
        0, {"severity": "error", "pos": {"line": 4, "column": 22}, "data": error}
    )
    assert judge_follow_up(response, "t", COPY)[0] is Verdict.UNSOUND


def test_follow_up_command_restates_the_statement_under_a_random_name() -> None:
    statement = "theorem mathd_algebra_10 (x : ℝ) (h₀ : x = 2) :\n  x ^ 2 = 4 := by"
    copy = restated_name("mathd_algebra_10")
    assert re.fullmatch(r"mathd_algebra_10_stp_[0-9a-f]{16}", copy)
    assert copy != restated_name("mathd_algebra_10")
    command = follow_up_command(statement, "mathd_algebra_10", copy)
    assert command.startswith(
        f"theorem _root_.{copy} (x : ℝ) (h₀ : x = 2) :\n  x ^ 2 = 4 := by\nsorry"
    )
    assert (
        f"#check (rfl : type_of% @_root_.mathd_algebra_10 = type_of% @_root_.{copy})"
    ) in command
    assert command.endswith(
        f"#print axioms _root_.mathd_algebra_10\n\n#print axioms _root_.{copy}\n\n"
        f"#check _root_.{copy}_absent"
    )


@pytest.mark.parametrize("errors", [[], [CANARY_ERROR, CANARY_ERROR]])
def test_an_answer_without_exactly_its_canary_error_was_rewritten(errors: list[dict]) -> None:
    response = _follow_up("'t' does not depend on any axioms")
    response["messages"] = [m for m in response["messages"] if m is not CANARY_ERROR] + errors
    with pytest.raises(MessagesRewritten):
        judge_follow_up(response, "t", COPY)


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ("theorem amc12a_2019_p21 (z : ℂ) : z = z := by", "amc12a_2019_p21"),
        ("noncomputable def exercise_1_2 : Group ℤ :=", "exercise_1_2"),
        ("theorem Nat.foo {n : ℕ} : n = n := by", "Nat.foo"),
        ("lemma bar: True := by", "bar"),
    ],
)
def test_declared_name(statement: str, name: str) -> None:
    assert LEAN.theorem_name(statement) == name


def test_normalise_header() -> None:
    assert normalise_header("import Mathlib\n\n  \nopen Real  \n\n") == "import Mathlib\nopen Real"


def test_pins_are_read_from_the_lean_project() -> None:
    pins = pinned_versions(Path(__file__).parents[1] / "lean_project")
    assert pins["toolchain"] == "leanprover/lean4:v4.9.0-rc1"
    assert pins["mathlib"] == "xinhjBrant/mathlib4@2f65ba7f1a9144b20c8e7358513548e317d26de1"
    assert pins["REPL"].startswith("xinhjBrant/repl@")


def test_a_statement_without_a_name_cannot_be_checked() -> None:
    assert LEAN.theorem_name("example : 1 = 1 := by") is None
