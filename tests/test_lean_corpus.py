"""The Lean corpus from files the tests write in the real formats (no Lean toolchain here)."""

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stp.cli import main
from stp.data import DataError
from stp.data.corpus import cites_target, lemmas_used, load_corpus
from stp.data.lean_corpus import extract_lean, load_traced_theorems, theorems_from_trace
from stp.languages.lean import LEAN

HEADER = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n\n"


def prover_prompt(statement: str, informal: str | None = None) -> str:
    # The STP release stores DeepSeek-Prover-V1.5's prover prompt, which LEAN reproduces.
    return LEAN.prover_prompt(HEADER, statement, informal)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path


@pytest.fixture
def stp_rows(tmp_path):
    s1 = "theorem mathd_algebra_10 : (2 : ℕ) + 2 = 4 := by"
    s2 = "theorem conj_1 (x : ℝ) (h : 0 < x) : 0 < x ^ 2 := by"
    return write_jsonl(
        tmp_path / "stp.jsonl",
        [
            {
                "prompt": prover_prompt(s1, "Show that 2 + 2 = 4."),
                "target": "  norm_num\n```",
                "iteration": 0,
                "tag": "['statement']",
            },
            {
                "prompt": prover_prompt(s1),
                "target": "  simp only [Nat.reduceAdd]\n```",
                "iteration": 1,
                "tag": "['statement']",
            },
            {
                "prompt": prover_prompt(s2),
                "target": "  positivity\n```",
                "iteration": 3,
                "tag": ["conjecture"],
            },
            {
                "prompt": "Complete the following Lean 4 code with a new theorem ...",
                "target": "foo",
                "iteration": 3,
                "tag": "['conjecture']",
            },
        ],
    )


def test_stp_release_rows_become_sft_theorems(tmp_path, stp_rows):
    summary = extract_lean(tmp_path / "out", stp_data=str(stp_rows))
    corpus = load_corpus(tmp_path / "out")
    assert summary.rows_read == 4 and summary.kept["sft"] == 2
    assert summary.rejected == {
        "another proof of a kept statement": 1,
        "not a Lean 4 prover prompt": 1,
    }
    by_source = {t.statement.source: t for t in corpus.sft}
    mathd = by_source["stp-statement"]
    assert mathd.proof == "  norm_num"  # the shorter of its two proofs
    assert (
        mathd.statement.header == HEADER
        and mathd.statement.informal_statement == "Show that 2 + 2 = 4."
    )
    assert mathd.statement.formal_statement == "theorem mathd_algebra_10 : (2 : ℕ) + 2 = 4 := by"
    # The prompt the corpus yields is the prompt STP trained on.
    rows = [json.loads(line) for line in stp_rows.read_text().splitlines()]
    s = mathd.statement
    assert (
        LEAN.prover_prompt(s.header, s.formal_statement, s.informal_statement) == rows[0]["prompt"]
    )
    assert by_source["stp-conjecture"].proof == "  positivity"
    assert cites_target("  exact mathd_algebra_10", mathd)
    assert "norm_num" in (tmp_path / "out" / "corpus.txt").read_text()


def test_leanworkbook_statements_are_unproved_selfplay_targets(tmp_path):
    lwb = write_jsonl(
        tmp_path / "lwb.jsonl",
        [
            {
                "id": "lean_workbook_7",
                "formal_statement": "theorem lean_workbook_7 (a : ℝ) : a ^ 2 ≥ 0 := by sorry",
                "natural_language_statement": "Squares are nonnegative.",
            }
        ],
    )
    extract_lean(tmp_path / "out", leanworkbook_file=str(lwb))
    corpus = load_corpus(tmp_path / "out")
    (target,) = corpus.unproved
    assert (
        target.split == "selfplay"
        and target.formal_statement == "theorem lean_workbook_7 (a : ℝ) : a ^ 2 ≥ 0 := by"
    )
    assert corpus.theorems == ()


@dataclass
class _Theorem:
    full_name: str
    file_path: Path


@dataclass
class TracedTheorem:
    """The part of ``lean_dojo.TracedTheorem`` the extraction reads (LeanDojo needs Lean)."""

    theorem: _Theorem
    statement: str
    proof: str | None
    premises: list[str] = field(default_factory=list)
    namespaces: tuple[list[str], list[str]] = ([], [])

    def get_theorem_statement(self) -> str:
        return self.statement

    def get_tactic_proof(self) -> str | None:
        return self.proof

    def get_premise_full_names(self) -> list[str]:
        return self.premises

    def get_namespaces(self) -> tuple[list[str], list[str]]:
        return self.namespaces


def test_traced_mathlib_theorems_with_premises():
    path = Path("Mathlib/Algebra/Group/Basic.lean")
    traced = [
        TracedTheorem(
            _Theorem("mul_one'", path),
            "theorem mul_one' (a : M) : a * 1 = a :=",
            "by\n  rw [mul_comm]\n  exact one_mul a",
            ["mul_comm", "one_mul"],
            (["Monoid"], ["Function"]),
        ),
        TracedTheorem(
            _Theorem("one_mul", path),
            "@[simp] theorem one_mul (a : M) : 1 * a = a :=",
            "by simp",
            [],
        ),
        TracedTheorem(
            _Theorem("mul_comm", path), "lemma mul_comm (a b : M) : a * b = b * a :=", None
        ),
        TracedTheorem(
            _Theorem("two_one_mul", path),
            "theorem two_one_mul (a : M) : 1 * (1 * a) = a :=",
            "by\n  rw [one_mul, one_mul]",
            ["one_mul"],
        ),
    ]
    pairs, lemmas, rejected = theorems_from_trace(traced, heldout=0.0, selfplay=0.0)
    assert rejected == {"term proof": 1}
    by_name = {t.name: t for _, t in pairs}
    first = by_name["stp_mul_one'"]
    assert first.statement.formal_statement == "theorem stp_mul_one' (a : M) : a * 1 = a := by"
    assert first.statement.header.endswith("open Monoid Function\n\n")
    assert first.proof == "  rw [mul_comm]\n  exact one_mul a"
    assert [lemma.name for lemma in first.lemmas] == ["mul_comm", "one_mul"]
    assert {lemma.name: lemma.statement for lemma in lemmas}[
        "mul_comm"
    ] == "mul_comm (a b : M) : a * b = b * a"
    index = {lemma.name: lemma for lemma in lemmas}
    assert [lemma.name for lemma in lemmas_used(first.proof, index, "lean")] == [
        "mul_comm",
        "one_mul",
    ]
    assert cites_target("  simp [one_mul]", by_name["stp_one_mul"])


@pytest.mark.skipif(
    importlib.util.find_spec("lean_dojo") is not None, reason="lean_dojo is installed"
)
def test_trace_without_the_lean_extra_names_it(tmp_path):
    with pytest.raises(DataError, match=r"`lean` extra"):
        load_traced_theorems(tmp_path)


def test_nothing_to_extract_is_an_error(tmp_path):
    with pytest.raises(DataError, match="nothing to extract"):
        extract_lean(tmp_path)


def test_cli_extract_lean(tmp_path, stp_rows, capsys):
    out = tmp_path / "out"
    assert main(["data", "extract-lean", "--out", str(out), "--stp-data", str(stp_rows)]) == 0
    printed = capsys.readouterr().out
    assert "kept               2 (sft 2, selfplay 0, heldout 0)" in printed
    assert json.loads((out / "summary.json").read_text())["rows_read"] == 4
    bad = ["data", "extract-lean", "--out", str(out), "--stp-data", str(stp_rows)]
    assert main([*bad, "--heldout", "0.8", "--selfplay", "0.5"]) == 2
    assert "split fractions" in capsys.readouterr().err
