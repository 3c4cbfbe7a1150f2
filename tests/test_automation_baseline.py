"""The automation baseline prover: `stp eval --model automation` evaluates a fixed list of
tactics, one attempt each, like any model."""

from __future__ import annotations

import json

import pytest

from stp.cli import main
from stp.config import load_config
from stp.errors import ConfigError
from stp.eval.runner import read_manifest
from stp.languages.lean import LEAN
from stp.languages.rocq import ROCQ
from stp.models.automation import AutomationSampler, automation_prover


def sample(sampler: AutomationSampler, prompts: list[str], n: int) -> list[list[str]]:
    out = sampler.generate(prompts, n, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=0)
    return [[c.text for c in row] for row in out]


def test_each_prompt_gets_every_tactic_once_as_a_proof() -> None:
    rocq = AutomationSampler(["auto.", "intros; congruence."], ROCQ)
    rows = sample(rocq, ["p1", "p2"], 2)
    assert len(rows) == 2 and rows[0] == rows[1]
    assert [ROCQ.parse_proof(text) for text in rows[0]] == ["auto.", "intros; congruence."]
    # a Lean tactic block is indented, or Lean reads the tactic as a command
    (lean_row,) = sample(AutomationSampler(["simp", "omega"], LEAN), ["p"], 2)
    assert [LEAN.parse_proof(text) for text in lean_row] == ["  simp", "  omega"]
    with pytest.raises(ConfigError, match="one attempt per tactic"):
        sample(rocq, ["p"], 8)


def test_the_baseline_is_named_by_its_tactics_and_asks_one_sample_each() -> None:
    config = load_config(None, ["verification.backend=rocq", "evaluation.samples=64"])
    name, _ = automation_prover(config)
    assert config.evaluation.samples == 8 and name.startswith("automation-8-")
    other = load_config(
        None, ["verification.backend=rocq", "evaluation.rocq_automation_tactics=[auto.]"]
    )
    other_name, _ = automation_prover(other)
    assert other.evaluation.samples == 1 and other_name != name


STATEMENTS = [
    ("t_refl", "Theorem t_refl (n : nat) : n = n."),  # every tactic but two proves it
    ("t_split", "Theorem t_split (A B : Prop) : A -> B -> A /\\ B."),
    ("t_hard", "Theorem t_hard (n : nat) : n * (n + 1) = n * n + n."),  # no tactic of the list
]


@pytest.mark.rocq
def test_stp_eval_evaluates_the_automation_baseline(tmp_path, capsys) -> None:
    bench = tmp_path / "bench.jsonl"
    bench.write_text(
        "".join(
            json.dumps(
                {
                    "name": name,
                    "split": "test",
                    "source": "test",
                    "header": "Require Import Arith.\n",
                    "formal_statement": statement,
                }
            )
            + "\n"
            for name, statement in STATEMENTS
        )
    )
    out = tmp_path / "eval"
    args = ["eval", "--model", "automation", "--benchmark", str(bench), "--prover", "rocq"]
    args += ["--output", str(out), "--k", "1,8", "--set", "verification.workers=2"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["solved"] == 2 and report["problems_evaluated"] == 3
    manifest = read_manifest(out)
    assert manifest["samples"] == 8 and manifest["model"]["name"].startswith("automation-8-")
    attempts = [json.loads(line) for line in (out / "attempts.jsonl").read_text().splitlines()]
    proofs = {a["proof"] for a in attempts}
    assert "intros; split; intros; auto." in proofs and len(proofs) == 8
    assert "pass@8" in capsys.readouterr().out
