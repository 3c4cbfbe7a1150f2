"""scripts/compare_selfplay.py on a tiny set-up: one round, two seeds, both arms, the
automation baseline; the table and the plot; a rerun resumes instead of redoing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.rocq, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]


def test_a_short_comparison_writes_mean_and_std_per_round_and_resumes(
    tmp_path, capsys, load_script
):
    corpus = tmp_path / "corpus"
    settings = [
        "run.name=c",
        f"run.output_dir={tmp_path / 'runs'}",
        f"run.corpus={corpus}",
        "run.corpus_modules=[Arith]",
        "run.corpus_max_theorems=60",
        f"run.base_model={tmp_path / 'model'}",
        "tiny_model.pretrain_sources=[]",  # pre-training has its own tests; here it only costs time
        "run.initial_sft_epochs=0.2",
        "run.target_limit=3",
        "run.chunk_targets=4",
        "sampling.max_new_tokens=24",
        "selection.proofs_per_statement_round0=2",
        "selection.max_seeds=2",
        "selection.conjectures_per_seed=2",
        "selection.conjectures_per_corpus_seed=2",
        "training.batch_size=8",
        "training.max_seq_len=256",
        f"evaluation.benchmark={corpus / 'heldout.jsonl'}",
        "evaluation.limit=2",
        "evaluation.samples=2",
        "evaluation.k=[1,2]",
    ]
    args = ["--config", str(REPO / "configs" / "tiny-rocq.yaml"), "--rounds", "1"]
    args += ["--seeds", "2", "--out", str(tmp_path / "cmp")]
    for item in settings:
        args += ["--set", item]
    script = load_script("compare_selfplay")
    assert script.main(args) == 0

    out = tmp_path / "cmp"
    body = json.loads((out / "compare.json").read_text())
    assert [row["after_round"] for row in body["heldout"]] == ["start", "0"]
    for row in body["heldout"]:
        for key in ("stp_pass@1", "stp_pass@2", "ei_pass@1", "ei_pass@2"):
            mean, std = row[key]
            assert 0.0 <= mean <= 1.0 and std >= 0.0
    # the same start for every arm and seed: its pass rates are the same for both arms
    assert body["heldout"][0]["stp_pass@1"] == body["heldout"][0]["ei_pass@1"]
    assert set(body["automation_baseline"]) == {"1", "2"}
    budget = body["rounds"]
    assert [(b["round"], b["seed"]) for b in budget] == [(0, 0), (0, 1)]
    for b in budget:  # equal proof-sample budget, up to spreading it over whole statements
        assert 0 < b["ei_proofs"] <= b["stp_proofs"]
        assert b["conj_sampled"] == 4 and b["conj_well_typed"] is not None
        assert b["conj_well_typed"] <= b["conj_new"] <= b["conj_sampled"]
        assert 0.0 <= b["conj_typed_share"] <= 100.0
        assert b["conj_selected"] <= b["conj_in_window"] <= b["conj_proved"]
    assert {p.name for p in (out / "runs").iterdir()} == {"stp-s0", "stp-s1", "ei-s0", "ei-s1"}
    markdown = (out / "compare.md").read_text()
    assert "mean ± std" in markdown and "| well-typed % of samples |" in markdown
    selected = sum(b["conj_selected"] for b in budget) / 2
    assert f"STP conjectures selected per round: {selected:.1f} on average over 2" in markdown
    assert (out / "compare.png").stat().st_size > 1000

    # rerun: nothing is played or sampled again
    marker = (out / "runs" / "stp-s0" / "round_000" / "summary.json").stat().st_mtime_ns
    capsys.readouterr()
    assert script.main(args) == 0
    assert (out / "runs" / "stp-s0" / "round_000" / "summary.json").stat().st_mtime_ns == marker
    assert "=== round 0, seed 0: STP" in capsys.readouterr().out
    assert json.loads((out / "compare.json").read_text()) == body
