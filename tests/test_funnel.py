"""The conjecture funnel of a constructed round, from the figures its stages report to the
summary, the closing lines, the run table, `stp run report` and the plot."""

from __future__ import annotations

import json

from stp.cli import main
from stp.config import SelectionConfig
from stp.runs import RunLayout
from stp.selfplay import report
from stp.selfplay.history import RunHistory
from stp.selfplay.records import StatementStats
from stp.stages import StageRecord


def stage(name: str, info: dict) -> StageRecord:
    return StageRecord(name=name, seconds=1.0, files={}, info=info)


def stats(target: str, kind: str, correct: int, attempts: int = 8) -> StatementStats:
    proof = "auto." if correct else None
    return StatementStats(target, kind, attempts, correct, correct / attempts, proof)


# 5 conjectures proved: pass rates 1/8, 2/8 (in the window (0, 1/4]), 3/8, 8/8 and 1/8.
ROUND_STATS = [
    stats("d1", "dataset", 1),
    stats("d2", "dataset", 0),
    *(stats(f"c{i}", "conjecture", n) for i, n in enumerate((1, 2, 3, 8, 1, 0, 0))),
]


def constructed_summary(index: int = 0) -> dict:
    proved = report.conjectures_proved(ROUND_STATS, SelectionConfig())
    records = {
        "conjectures": stage(
            "conjectures",
            {"generated": 96, "valid": 80, "duplicates": 10, "known_well_typed": 4, "new": 70},
        ),
        "gate": stage(
            "gate",
            {
                "checked": True,
                "well_typed_samples": 20,  # the 19 well-typed, one of them sampled twice
                "passed": 7,
                "ill_typed": 50,
                "unchecked": 1,
                "trivial": 6,
                "restatement": 3,
                "vacuous": 1,
                "refuted": 2,
            },
        ),
        "targets": stage("targets", {"k": 8, "dataset": 2, "conjectures": 7}),
        "generate": stage("generate", {"attempts": 72, "tokens": 900}),
        "verify": stage("verify", {"distinct_proofs": 40, "verifier_seconds": 3.0}),
        "select": stage("select", {**proved, "candidates": 3, "conjecturer_examples": 2}),
        "train": stage("train", {"trained": True}),
    }
    return report.summarize(
        round_index=index,
        mode="stp",
        model="m",
        dataset_statements=2,
        before=RunHistory(),
        stats=ROUND_STATS,
        records=records,
        wall_seconds=1.0,
    )


def test_the_funnel_counts_of_a_constructed_round() -> None:
    funnel = constructed_summary()["conjectures"]
    assert funnel == {
        "sampled": 96,
        "parsed": 80,
        "new": 70,
        "well_typed": 19,  # 70 new - 50 ill-typed - 1 the probe could not decide
        "well_typed_samples": 24,  # 20 + 4 repeats of statements known to elaborate
        "past_gate": 7,
        "rejected": {
            "ill_typed": 50,
            "unchecked": 1,
            "trivial": 6,
            "restatement": 3,
            "vacuous": 1,
            "refuted": 2,
        },
        "targeted": 7,
        "proved": 5,
        "in_window": 3,  # 1/8, 2/8 and 1/8
        "selected": 2,
    }
    line = report.funnel_line(funnel)
    assert line.startswith("96 sampled -> 80 parsed -> 70 new -> 19 well-typed -> 7 past the gate")
    assert line.endswith(
        "(gate rejected 50 ill_typed, 1 unchecked, 6 trivial, 3 restatement, 1 vacuous, "
        "2 refuted); "
        "24 of 96 samples well-typed (25.0%)"
    )


def test_the_run_table_report_and_plot_show_the_funnel(tmp_path, capsys) -> None:
    layout = RunLayout(tmp_path / "run")
    old = constructed_summary(0)
    # a round written before the gate existed: two steps named otherwise, no gate
    old["conjectures"] = {"generated": 10, "valid": 4, "new": 3, "selected": 1}
    rows = [old, constructed_summary(1)]
    flat = [report.flat_row(r) for r in rows]
    assert flat[0]["conj_sampled"] == 10 and flat[0]["conj_well_typed"] == "-"
    assert flat[1]["conj_well_typed"] == 19 and flat[1]["conj_in_window"] == 3
    assert flat[0]["conj_typed_share"] == "-" and flat[1]["conj_typed_share"] == "25.0"
    assert flat[1]["conj_rejected"] == (
        "50 ill-typed 1 unchecked 6 trivial 3 restatement 1 vacuous 2 refuted"
    )
    table = report.format_table(rows)
    assert "well-typed" in table.splitlines()[0] and "in window" in table.splitlines()[0]
    lines = report.closing_lines(rows)
    assert "19 well-typed" in lines[1] and "selected conjectures 1 -> 2" in lines[-1]

    layout.root.mkdir()
    (layout.root / "rounds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["run", "report", str(layout.root)]) == 0
    out = capsys.readouterr().out
    assert "past gate" in out and "50 ill-typed" in out
    assert (layout.root / "curves.png").stat().st_size > 1000
