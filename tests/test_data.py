import dataclasses
import json

import pytest

from stp.cli import main
from stp.data import DataError, Statement, load_benchmark, load_statements
from stp.data.benchmarks import LEANWORKBOOK_HEADER, load_leanworkbook

# Counts from stp/data/benchmarks/SOURCES.md.
EXPECTED = {
    ("minif2f", "lean"): {"valid": 244, "test": 244},
    ("minif2f", "rocq"): {"valid": 244, "test": 244},
    ("minif2f", "isabelle"): {"valid": 244, "test": 244},
    ("proofnet", "lean"): {"valid": 185, "test": 186},
    ("putnambench", "lean"): {"test": 644},
}


@pytest.mark.parametrize(("benchmark", "prover"), list(EXPECTED))
def test_bundled_counts_match_sources(benchmark, prover):
    everything = load_benchmark(benchmark, prover)
    assert len(everything) == sum(EXPECTED[benchmark, prover].values())
    for split, count in EXPECTED[benchmark, prover].items():
        part = load_benchmark(benchmark, prover, split)
        assert len(part) == count
        assert {s.split for s in part} == {split}
    assert len({s.name for s in everything}) == len(everything)
    assert all(s.prover == prover for s in everything)


def test_statements_are_immutable_and_typed():
    s = load_benchmark("minif2f", "lean", "test")[0]
    assert isinstance(s, Statement)
    assert s.formal_statement.startswith("theorem ") and "import Mathlib" in s.header
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "x"  # type: ignore[misc]


def test_rocq_statements_assemble_as_documented():
    s = load_benchmark("minif2f", "rocq", "valid")[0]
    assert s.formal_statement.startswith("Theorem ") and s.formal_statement.endswith(".")


def test_unknown_benchmark_split_and_prover():
    with pytest.raises(DataError, match="no bundled benchmark 'proofnet' for prover 'rocq'"):
        load_benchmark("proofnet", "rocq")
    with pytest.raises(DataError, match="has no split 'valid'"):
        load_benchmark("putnambench", "lean", "valid")
    with pytest.raises(DataError, match="unknown prover"):
        load_statements("x.jsonl", "coq")


def _row(**over):
    row = {
        "name": "t",
        "split": "valid",
        "source": "x",
        "header": "",
        "formal_statement": "Theorem t : True.",
    }
    row.update(over)
    return row


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("{not json", r"bad\.jsonl:2: not valid JSON"),
        (json.dumps({"name": "t"}), r"bad\.jsonl:2: missing field 'split'"),
        (json.dumps(_row(header=3)), r"bad\.jsonl:2: field 'header' must be a string"),
        (
            json.dumps(_row(informal_proof=[1])),
            r"bad\.jsonl:2: field 'informal_proof' must be a string or null",
        ),
        (json.dumps([1, 2]), r"bad\.jsonl:2: expected a JSON object"),
        (
            json.dumps(_row(forbidden_names="x")),
            r"bad\.jsonl:2: field 'forbidden_names' must be a list",
        ),
    ],
)
def test_malformed_rows_name_file_line_and_field(tmp_path, line, pattern):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_row()) + "\n" + line + "\n")
    with pytest.raises(DataError, match=pattern):
        load_statements(path, "rocq")


def test_forbidden_names_are_read_when_present(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text(
        json.dumps(_row(forbidden_names=["Nat.add_0_r"])) + "\n" + json.dumps(_row(name="u")) + "\n"
    )
    first, second = load_statements(path, "rocq")
    assert first.forbidden_names == ("Nat.add_0_r",) and second.forbidden_names == ()


def test_leanworkbook_loader_on_local_file(tmp_path):
    rows = [
        {
            "id": "lean_workbook_1",
            "formal_statement": "theorem lean_workbook_1 (x : ℝ) : x ^ 2 ≥ 0 := by sorry",
            "natural_language_statement": "Squares are non-negative.",
            "split": "lean_workbook",
            "status": "proved",
        },
        {
            "id": "lean_workbook_2",
            "formal_statement": "theorem lean_workbook_2 : 1 + 1 = 2 := by\n  sorry",
            "natural_language_statement": None,
        },
    ]
    path = tmp_path / "lw.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    stmts = load_leanworkbook(data_files=str(path))
    assert [s.name for s in stmts] == ["lean_workbook_1", "lean_workbook_2"]
    assert stmts[0].formal_statement == "theorem lean_workbook_1 (x : ℝ) : x ^ 2 ≥ 0 := by"
    assert stmts[1].formal_statement.endswith(":= by")
    assert stmts[0].header == LEANWORKBOOK_HEADER and stmts[0].source == "leanworkbook"
    assert stmts[1].informal_statement is None


def test_leanworkbook_loader_rejects_rows_without_statement(tmp_path):
    path = tmp_path / "lw.jsonl"
    path.write_text(json.dumps({"id": "a", "formal_statement": ""}) + "\n")
    with pytest.raises(DataError, match="row 0: missing or empty field 'formal_statement'"):
        load_leanworkbook(data_files=str(path))


def test_data_list_cli(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "putnambench" in out and "test 644" in out and "valid 185, test 186" in out
