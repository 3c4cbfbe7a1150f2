"""The corrected Lean miniF2F statement set (``minif2f-corrected``): it differs from the bundled
set exactly in the documented corrections, a correction that no longer applies is an error, and
an evaluation report names the set and the digest of its statements."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from stp.config import STPConfig
from stp.data.benchmarks import DataError, bundled_path, load_benchmark, load_corrected
from stp.eval.report import Report, compare_markdown, render_markdown
from stp.eval.runner import build_manifest, data_digest, load_benchmark_for_eval
from stp.languages.lean import LEAN

CORRECTIONS = json.loads(bundled_path("minif2f_lean_corrections.json").read_text())
DOC = Path(__file__).parents[1] / "docs" / "minif2f-lean-corrections.md"


def test_the_corrected_set_differs_exactly_in_the_listed_statements() -> None:
    original = load_benchmark("minif2f", prover="lean")
    corrected = load_benchmark("minif2f-corrected", prover="lean")
    assert [s.name for s in corrected] == [s.name for s in original]
    changed = {b.name: (a, b) for a, b in zip(original, corrected, strict=True) if a != b}
    assert sorted(changed) == sorted(c["name"] for c in CORRECTIONS)
    assert {"mathd_algebra_158", "mathd_algebra_314"} <= set(changed)
    for fix in CORRECTIONS:
        before, after = changed[fix["name"]]
        assert before.formal_statement == fix["original"]
        assert after.formal_statement == fix["corrected"]
        assert after == dataclasses.replace(before, formal_statement=fix["corrected"])
        assert LEAN.theorem_name(after.formal_statement) == fix["name"]
        assert after.formal_statement.endswith(":= by") and after.split == fix["split"] == "test"


def test_a_split_of_the_corrected_set() -> None:
    valid = load_benchmark("minif2f-corrected", prover="lean", split="valid")
    assert valid == load_benchmark("minif2f", prover="lean", split="valid")  # all fixes: test
    assert len(load_benchmark("minif2f-corrected", prover="lean", split="test")) == 244


def test_every_correction_is_documented_with_its_source() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for fix in CORRECTIONS:
        assert fix["defect"] and fix["source"]
        assert f"### `{fix['name']}`" in doc
        assert fix["source"] in doc and fix["corrected"] in doc


def test_a_correction_that_no_longer_applies_is_an_error(tmp_path: Path) -> None:
    stale = [{**CORRECTIONS[0], "original": CORRECTIONS[0]["original"] + " "}]
    corrections = tmp_path / "corrections.json"
    corrections.write_text(json.dumps(stale))
    with pytest.raises(DataError, match=r"does not apply to minif2f\.jsonl"):
        load_corrected(bundled_path("minif2f.jsonl"), corrections, "lean")


def report_of(benchmark: str) -> dict[str, object]:
    """The report of an evaluation of ``benchmark`` (test split) that has no attempts yet."""
    statements = load_benchmark_for_eval(benchmark, "test", "lean")
    return Report(
        manifest=build_manifest(STPConfig(), "some-model", statements),
        problems=(),
        estimates=(),
        verdicts={},
        attempts=0,
        tokens=0,
        wall_seconds=0.0,
        generation_seconds=0.0,
        verification_seconds=0.0,
        verifier_seconds=0.0,
        assistant_versions=(),
        quoted=(),
        ks=(1,),
    ).to_dict()


def test_the_report_names_the_statement_set_and_its_digest() -> None:
    original, corrected = report_of("minif2f"), report_of("minif2f-corrected")
    digest = data_digest(load_benchmark("minif2f-corrected", prover="lean", split="test"))
    assert corrected["benchmark"] == "minif2f-corrected" and corrected["data_sha256"] == digest
    assert original["data_sha256"] != digest
    assert (
        "- statements: minif2f-corrected (bundled minif2f_lean_corrections.json), split test, "
        f"sha256 of the statements `{digest}`"
    ) in render_markdown(corrected)
    comparison = compare_markdown(original, corrected)
    assert "evaluate different statements" in comparison
    assert digest[:16] in comparison and str(original["data_sha256"])[:16] in comparison
