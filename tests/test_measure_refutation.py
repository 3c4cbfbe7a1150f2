"""scripts/measure_refutation.py on a constructed run: the refutation check refutes the
false conjecture nobody proved and neither the proved one nor a true one nobody proved; the
same statement in two runs (whose ids repeat) is one conjecture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stp.selfplay.records import CONJECTURES_FILE, STATS_FILE, Conjecture, write_records

pytestmark = pytest.mark.rocq

REPO = Path(__file__).resolve().parents[1]
HEADER = "Require Import Arith.\n"


def write_round(run: Path, rows: list[tuple[str, str, int]]) -> None:
    """One round of ``run`` whose conjectures (id, statement, correct proofs) got 4 attempts."""
    folder = run / "round_000"
    folder.mkdir(parents=True)
    write_records(
        folder / CONJECTURES_FILE,
        [
            Conjecture(cid, HEADER, f"Theorem {cid} {body}", "s", "", "", None, None, body)
            for cid, body, _ in rows
        ],
    )
    stats = [
        {"target": cid, "kind": "conjecture", "attempts": 4, "correct": n, "pass_rate": n / 4}
        for cid, _, n in rows
    ]
    (folder / STATS_FILE).write_text("".join(json.dumps(row) + "\n" for row in stats))


def test_it_counts_refuted_conjectures_by_whether_they_were_proved(tmp_path, load_script) -> None:
    false = ": forall n m : nat, n <= m -> n = m."
    true_hard = ": forall n : nat, n * (n + 1) = n * n + n."
    write_round(tmp_path / "a", [("c0", false, 0), ("c1", true_hard, 0)])
    # run b reuses the id c0 for a true statement it proved, and repeats run a's c1
    write_round(tmp_path / "b", [("c0", ": forall n : nat, n + 0 = n.", 3), ("c1", true_hard, 1)])
    figures = load_script("measure_refutation").main(
        [
            "--config",
            str(REPO / "configs" / "tiny-rocq.yaml"),
            str(tmp_path / "a"),
            str(tmp_path / "b"),
        ]
    )
    assert figures == {"proved at least once": (2, 0), "never proved": (1, 1)}
