"""`stp eval`: sampling, real coqtop verification, resumable attempts, reports, comparison."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from stp.cli import build_parser, main
from stp.config import load_config
from stp.errors import IncompatibleRun
from stp.eval.cli import eval_config_from_args
from stp.eval.report import compare_markdown, load_report, write_report
from stp.eval.runner import EvaluationMismatch, evaluate, load_benchmark_for_eval
from stp.models.sampler import Completion
from stp.verify import make_verifier

HEADER = "Require Import Arith Lia.\n"
STATEMENTS = [
    ("eval_one_plus_one", "Theorem eval_one_plus_one : 1 + 1 = 2."),
    ("eval_add_zero", "Theorem eval_add_zero : forall n : nat, n + 0 = n."),
    ("eval_false", "Theorem eval_false : 2 + 2 = 5."),
]
# The prover's k-th sample for every statement; the verdicts are worked out in the test.
SCRIPT = ["reflexivity.", "intros n. lia.", "exact I.", "reflexivity."]


def _write_statements(path: Path, split: str = "heldout") -> Path:
    rows = [
        {"name": n, "split": split, "source": "test", "header": HEADER, "formal_statement": s}
        for n, s in STATEMENTS
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


class ScriptedProver:
    """Writes ``script``'s proofs, sample j the (j mod len)-th, in the model's completion
    format (proof, proof closer, closing fence). The tiny model's output cannot be steered,
    and these tests check exact figures; the real model runs in the end-to-end test below."""

    def __init__(self, script: Sequence[str] = SCRIPT, closer: str = "\nQed.\n```") -> None:
        self.script, self.closer = script, closer
        self.prompts: list[str] = []

    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        *,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        seed: int,
        stop: Sequence[str] = (),
        progress: Callable[[int], None] | None = None,
    ) -> list[list[Completion]]:
        self.prompts += prompts
        script = self.script
        return [
            [Completion(f"{script[j % len(script)]}{self.closer}", 5) for j in range(n)]
            for _ in prompts
        ]

    def close(self) -> None:
        pass


def _must_not_sample() -> ScriptedProver:
    raise AssertionError("a finished chunk was sampled again")


def _config(*overrides: str):
    return load_config(
        None,
        [
            "evaluation.samples=4",
            "evaluation.k=[1,2,4,8]",
            "evaluation.batch_problems=2",
            "verification.workers=1",
            *overrides,
        ],
    )


def _run(config, benchmark, out, sampler_factory=ScriptedProver):
    evaluate(
        config,
        "scripted",
        benchmark,
        out,
        sampler_factory,
        lambda: make_verifier(config.verification),
        log=lambda line: None,
    )
    return write_report(out, config.evaluation.k)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """One real evaluation (scripted prover, coqtop) that the tests below read or copy."""
    root = tmp_path_factory.mktemp("eval")
    config = _config()
    benchmark = load_benchmark_for_eval(
        str(_write_statements(root / "heldout.jsonl")), "heldout", "rocq"
    )
    report = _run(config, benchmark, root / "out")
    return config, benchmark, root / "out", report


@pytest.fixture
def setup(evaluated, tmp_path):
    """A copy of the finished evaluation folder the test may change."""
    config, benchmark, out, _ = evaluated
    shutil.copytree(out, tmp_path / "out")
    return config, benchmark, tmp_path / "out"


@pytest.mark.rocq
def test_evaluation_reports_exact_figures_with_real_coqtop(evaluated):
    _, _, out, report = evaluated

    # one_plus_one: reflexivity proves it (samples 0, 3); add_zero: only lia (sample 1)
    assert [(p["name"], p["proved"]) for p in report["problems"]] == [
        ("eval_one_plus_one", 2),
        ("eval_add_zero", 1),
        ("eval_false", 0),
    ]
    assert report["verdicts"]["proved"] == 3 and report["verdicts"]["failed"] == 9
    assert report["attempts"] == 12 and report["tokens"] == 60 and report["solved"] == 2
    figures = {(e["k"], e["estimator"]): e for e in report["pass_at_k"]}
    assert figures[(1, "unbiased")]["value"] == pytest.approx((2 / 4 + 1 / 4) / 3)
    assert figures[(2, "unbiased")]["value"] == pytest.approx((5 / 6 + 1 / 2) / 3)
    # blocks of 2: (s0, s1) solves both provable statements, (s2, s3) only one_plus_one
    assert figures[(2, "block")]["value"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert figures[(2, "block")]["blocks"] == 2 and figures[(2, "block")]["std"] is None
    assert figures[(1, "block")]["std"] is not None  # 4 blocks of 1
    assert (8, "unbiased") not in figures and (8, "block") not in figures  # 4 samples < 8
    assert report["assistant_versions"] and "8." in report["assistant_versions"][0]
    assert report["wall_seconds"] >= report["checking_seconds"] > 0
    assert report["verifier_seconds"] > 0
    assert report["quoted"] == []  # nothing published for this split

    text = (out / "report.md").read_text()
    assert "pass@k, unbiased (Chen et al. 2021)" in text and "block mean ± std (STP)" in text
    assert "| 8 | n/a (needs 8 samples) | n/a (needs 8 samples) |" in text
    assert "- eval_one_plus_one: 2/4" in text and "Unsolved (1): eval_false" in text
    assert report["data_sha256"] in text
    assert (out / "passk.png").read_bytes().startswith(b"\x89PNG")
    rows = [json.loads(line) for line in (out / "attempts.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and rows[1]["proof"] == "intros n. lia."


def _figures(report):
    """What a resumed evaluation must reproduce exactly (timings differ from run to run)."""
    return {key: report[key] for key in ("pass_at_k", "verdicts", "problems", "tokens")}


def _must_not_check():
    raise AssertionError("a finished chunk was checked again")


@pytest.mark.rocq
def test_killed_evaluation_resumes_without_resampling_finished_chunks(evaluated, setup):
    first = _figures(evaluated[3])
    config, benchmark, out = setup
    verified = sorted((out / "verified").glob("chunk_*.jsonl"))
    attempts = sorted((out / "attempts").glob("chunk_*.jsonl"))
    assert len(verified) == len(attempts) == 2  # chunks of 2 problems: 2 + 1
    # identical samples are checked once: sample 3 repeats sample 0 for every problem
    rows = [json.loads(line) for line in verified[0].read_text().splitlines()]
    assert len(rows) == 2 * 3 and rows[0]["count"] == 2

    # killed after sampling the last chunk, before its verdicts were written
    verified[-1].unlink()
    assert _figures(_run(config, benchmark, out, sampler_factory=_must_not_sample)) == first

    # killed before sampling the last chunk: only that chunk is sampled again
    verified[-1].unlink()
    attempts[-1].unlink()
    prover = ScriptedProver()
    assert _figures(_run(config, benchmark, out, sampler_factory=lambda: prover)) == first
    assert len(prover.prompts) == 1 and "eval_false" in prover.prompts[0]

    # everything done: the report is rebuilt from the chunks, nothing is sampled or checked
    evaluate(config, "scripted", benchmark, out, _must_not_sample, _must_not_check, log=print)
    done = write_report(out, config.evaluation.k)
    assert _figures(done) == first and done["attempts"] == 12

    # a damaged chunk (its sidecar no longer matches) is sampled and checked again
    attempts[0].write_text(attempts[0].read_text().replace("reflexivity.", "lia.", 1))
    prover = ScriptedProver(["exact I."])
    again = _run(config, benchmark, out, sampler_factory=lambda: prover)
    assert len(prover.prompts) == 2
    assert again["verdicts"]["proved"] == 0 and again["attempts"] == 12


@pytest.mark.rocq
def test_folder_of_an_earlier_version_is_refused_in_one_line(setup, capsys):
    config, benchmark, out = setup
    shutil.rmtree(out / "attempts")
    (out / "generations").mkdir()
    (out / "generations" / "part-00000.json").write_text("{}")
    with pytest.raises(IncompatibleRun):
        _run(config, benchmark, out, sampler_factory=_must_not_sample)
    argv = ["eval", "--benchmark", benchmark.source, "--split", "heldout", "--prover", "rocq"]
    assert main([*argv, "--output", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"stp eval: error: {out} holds an evaluation written by an earlier version of stp "
        "(generations/, attempts/part-*.json), which this one cannot continue: delete the "
        "folder or pass another --output"
    ]


@pytest.mark.rocq
def test_folder_of_another_evaluation_is_refused(setup):
    config, benchmark, out = setup
    with pytest.raises(EvaluationMismatch, match="different samples"):
        _run(_config("evaluation.samples=8"), benchmark, out, sampler_factory=_must_not_sample)
    fewer = load_benchmark_for_eval(str(benchmark.source), "heldout", "rocq", limit=2)
    with pytest.raises(EvaluationMismatch, match="problems"):
        _run(config, fewer, out, sampler_factory=_must_not_sample)
    with pytest.raises(EvaluationMismatch, match="different sampling"):
        _run(_config("sampling.temperature=0.5"), benchmark, out, sampler_factory=_must_not_sample)


@pytest.mark.rocq
def test_compare_sets_two_reports_side_by_side(setup, capsys):
    _, _, out = setup
    other = out.parent / "other"
    shutil.copytree(out, other)
    report = json.loads((other / "report.json").read_text())
    report["model"]["name"] = "other-model"
    report["problems"][2]["solved"] = True  # as if B had also solved eval_false
    (other / "report.json").write_text(json.dumps(report))

    text = compare_markdown(load_report(out), load_report(other))
    assert "| model | scripted | other-model |  |" in text
    assert "| pass@1, unbiased (Chen et al. 2021) | 25.0% | 25.0% | +0.0 pts |" in text
    assert "Only B (1): eval_false" in text
    assert main(["eval", "compare", str(out), str(other)]) == 0
    assert "Only B (1): eval_false" in capsys.readouterr().out


def test_cli_flags_map_onto_config_fields(tmp_path):
    args = build_parser().parse_args(
        [
            "eval",
            "--set",
            "evaluation.samples=2",
            "--model",
            "m/x",
            "--benchmark",
            "proofnet",
            "--split",
            "test",
            "--prover",
            "lean",
            "--samples",
            "16",
            "--k",
            "1,8",
            "--limit",
            "5",
            "--output",
            str(tmp_path),
        ]
    )
    config = eval_config_from_args(args)
    evaluation = config.evaluation
    assert (evaluation.model, evaluation.benchmark, evaluation.split) == ("m/x", "proofnet", "test")
    assert (evaluation.samples, evaluation.k, evaluation.limit) == (16, [1, 8], 5)
    assert evaluation.output == str(tmp_path) and config.verification.backend == "lean"
    one_k = eval_config_from_args(build_parser().parse_args(["eval", "--k", "4"]))
    assert one_k.evaluation.k == [4]


def test_unknown_benchmark_and_split_are_one_line_errors(tmp_path, capsys):
    assert main(["eval", "--benchmark", "nope", "--prover", "rocq"]) == 2
    assert "neither a bundled benchmark" in capsys.readouterr().err
    path = _write_statements(tmp_path / "b.jsonl")
    assert main(["eval", "--benchmark", str(path), "--split", "valid", "--prover", "rocq"]) == 2
    assert "splits: ['heldout']" in capsys.readouterr().err
    # Isabelle has prompts but is not installed here: the run stops before any sampling.
    isabelle = ["--set", "verification.isabelle_cmd=no-such-isabelle"]
    assert main(["eval", "--benchmark", "minif2f", "--prover", "isabelle", *isabelle]) == 2
    assert "Isabelle launcher 'no-such-isabelle' not found" in capsys.readouterr().err


@pytest.mark.rocq
@pytest.mark.slow
def test_stp_eval_end_to_end_with_tiny_model_and_coqtop(tmp_path):
    """The command a user runs: a tiny model built with `stp model init`, miniF2F-Rocq valid
    and a held-out JSONL split, real coqtop; then a kill simulated on a partial folder."""
    theories = (
        Path(
            subprocess.run(
                ["coqc", "-where"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        / "theories"
    )
    model = tmp_path / "model"

    def stp(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "stp", *args], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    stp(
        "model", "init", "--corpus", str(theories / "Arith" / "PeanoNat.v"),
        "--out", str(model), "--vocab-size", "400", "--hidden-size", "32", "--layers", "1",
        "--heads", "2", "--intermediate-size", "64",
    )  # fmt: skip
    common = [
        "--model", str(model), "--prover", "rocq", "--samples", "4", "--k", "1,2,4",
        "--set", "sampling.max_new_tokens=24", "--set", "evaluation.batch_problems=1",
        "--set", "verification.workers=1",
    ]  # fmt: skip
    minif2f = tmp_path / "minif2f"
    out = stp("eval", *common, "--benchmark", "minif2f", "--split", "valid", "--limit", "2",
              "--output", str(minif2f))  # fmt: skip
    assert "pass@4 [block mean ± std (STP)]" in out and "report:" in out
    first = load_report(minif2f)
    assert first["problems_evaluated"] == 2 and first["attempts"] == 8
    assert first["complete"] and first["model"]["sha256"]
    assert sum(first["verdicts"].values()) == 8
    for name in ("report.md", "report.json", "passk.png", "attempts.jsonl", "manifest.json"):
        assert (minif2f / name).is_file()

    # a kill after sampling the second problem: its verdicts are missing, its samples are not
    (minif2f / "verified" / "chunk_00001.jsonl").unlink()
    (minif2f / "report.json").unlink()
    out = stp("eval", *common, "--benchmark", "minif2f", "--split", "valid", "--limit", "2",
              "--output", str(minif2f))  # fmt: skip
    assert "chunk 1: checking 1 problems sampled before a restart" in out
    assert "resuming: 1 problems done, 1 to go" in out
    assert _figures(load_report(minif2f)) == _figures(first)

    heldout = _write_statements(tmp_path / "heldout.jsonl")
    stp("eval", *common, "--benchmark", str(heldout), "--split", "heldout",
        "--output", str(tmp_path / "heldout"))  # fmt: skip
    report = load_report(tmp_path / "heldout")
    assert report["benchmark"] == "heldout" and report["problems_evaluated"] == 3


def test_default_split_is_a_bundled_benchmarks_first_or_a_files_every_statement(tmp_path):
    assert load_benchmark_for_eval("minif2f", None, "rocq").split == "valid"
    putnam = load_benchmark_for_eval("putnambench", None, "lean", limit=3)
    assert (putnam.split, len(putnam.statements)) == ("test", 3)
    path = _write_statements(tmp_path / "b.jsonl")
    whole = load_benchmark_for_eval(str(path), None, "rocq")
    assert (whole.name, whole.split, len(whole.statements)) == ("b", "heldout", 3)


@pytest.mark.rocq
def test_model_that_cannot_load_is_a_one_line_error_and_leaves_the_folder_usable(
    evaluated, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config, benchmark, _, report = evaluated
    out = tmp_path / "out"
    args = ["eval", "--benchmark", benchmark.source, "--split", "heldout", "--prover", "rocq"]
    assert main([*args, "--model", str(tmp_path / "missing"), "--output", str(out)]) == 2
    assert "cannot load model" in capsys.readouterr().err
    # the same folder then takes the right model: nothing was recorded for the wrong one
    assert _figures(_run(config, benchmark, out)) == _figures(report)


@pytest.mark.rocq
def test_lean_report_shows_quoted_figures_marked_as_quoted(setup):
    _, _, out = setup
    manifest = json.loads((out / "manifest.json").read_text())
    manifest |= {"benchmark": "minif2f", "split": "test", "prover": "lean"}
    (out / "manifest.json").write_text(json.dumps(manifest))
    report = write_report(out, [1, 2])
    assert {q["model"] for q in report["quoted"]} >= {
        "DeepSeek-Prover-V1.5-RL",
        "Goedel-Prover-SFT",
    }
    assert all(q["quoted"] and q["source"] for q in report["quoted"])
    text = (out / "report.md").read_text()
    quoted = text.split("## Quoted from the literature (not measured here)")[1].split("##")[0]
    assert "| STP (7B, from DeepSeek-Prover-V1.5-SFT) | 128 | 61.2% | Dong & Ma 2025" in quoted
    assert "65.0% ± 0.5%" in quoted


def test_lean_minif2f_through_the_lean_backend_on_recorded_repl(tmp_path, monkeypatch):
    """miniF2F-test (Lean) through the real Lean backend, with tests/fake_lean_repl.py in place
    of the REPL (no Lean here): prompts, proof assembly and the backend's own checks."""
    log = tmp_path / "repl.log"
    monkeypatch.setenv("FAKE_REPL_LOG", str(log))
    fake = Path(__file__).with_name("fake_lean_repl.py")
    config = _config(
        "verification.backend=lean",
        f"verification.repl_cmd={sys.executable} {fake}",
        f"verification.lean_project={tmp_path}",
    )
    benchmark = load_benchmark_for_eval("minif2f", "test", "lean", limit=2)
    prover = ScriptedProver(["  norm_num", "  exact?"], closer="\n```")
    report = _run(config, benchmark, tmp_path / "out", sampler_factory=lambda: prover)

    assert prover.prompts[0].startswith("Complete the following Lean 4 code:")
    # the backend refuses library search on Lean 4.9 before the REPL sees it
    assert (report["verdicts"]["unsound"], report["attempts"]) == (4, 8)
    commands = [json.loads(line)["request"]["cmd"] for line in log.read_text().splitlines()
                if '"request"' in line]  # fmt: skip
    first = benchmark.statements[0].formal_statement
    assert any(cmd.startswith(first) and cmd.endswith("\n  norm_num") for cmd in commands)
    assert not any("exact?" in cmd for cmd in commands)
    quoted = {(q["model"], q["k"]) for q in report["quoted"]}
    assert ("STP (7B, from DeepSeek-Prover-V1.5-SFT)", 3200) in quoted


@pytest.mark.lean
@pytest.mark.slow
def test_stp_eval_on_lean_minif2f_where_lean_is_installed(tmp_path):
    """miniF2F-test through the Lean REPL (verification.lean_project must hold a built
    Mathlib project); the tiny model proves nothing, so this checks the plumbing."""
    model = tmp_path / "model"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("theorem foo : 1 + 1 = 2 := by norm_num\n" * 200)
    assert main(["model", "init", "--corpus", str(corpus), "--out", str(model),
                 "--vocab-size", "300", "--hidden-size", "32", "--layers", "1", "--heads", "2",
                 "--intermediate-size", "64"]) == 0  # fmt: skip
    out = tmp_path / "out"
    assert main(["eval", "--model", str(model), "--benchmark", "minif2f", "--split", "test",
                 "--prover", "lean", "--samples", "2", "--k", "1,2", "--limit", "1",
                 "--output", str(out), "--set", "sampling.max_new_tokens=16"]) == 0  # fmt: skip
    report = load_report(out)
    assert report["attempts"] == 2 and report["quoted"] and report["assistant_versions"]


@pytest.mark.rocq
def test_proofs_citing_the_targets_own_library_copy_do_not_count(tmp_path):
    """Held-out corpus rows name the library copy the header loads; citing it is unsound."""
    row = {
        "name": "stp_add_0_r",
        "split": "heldout",
        "source": "coq-stdlib",
        "header": HEADER,
        "formal_statement": "Theorem stp_add_0_r : forall n : nat, n + 0 = n.",
        "forbidden_names": ["add_0_r", "Nat.add_0_r", "Coq.Arith.PeanoNat.Nat.add_0_r"],
    }
    path = tmp_path / "heldout.jsonl"
    path.write_text(json.dumps(row) + "\n")
    config = _config("evaluation.samples=2", "evaluation.k=[1]")
    benchmark = load_benchmark_for_eval(str(path), None, "rocq")
    prover = ScriptedProver(["exact Nat.add_0_r.", "intros n. lia."])
    report = _run(config, benchmark, tmp_path / "out", lambda: prover)
    assert report["verdicts"]["unsound"] == 1 and report["verdicts"]["proved"] == 1
