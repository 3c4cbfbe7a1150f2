"""End to end: `stp round` with real coqtop, a real corpus and the real tiny model.

One module-scoped run bootstraps (corpus extraction from a slice of the stdlib, tiny model,
a few steps of initial fine-tune) and plays two rounds; the other tests reuse its bootstrap.
Settings are tiny (a handful of targets, k=4, short completions) so the module takes about a
minute or two on 2 cores.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stp.artifacts import chunk_path, read_jsonl
from stp.cli import main
from stp.config import load_config
from stp.runs import RunLayout, current_model
from stp.selfplay.round import advance
from stp.stages import read_stage

pytestmark = [pytest.mark.rocq, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]


def overrides(root: Path, name: str) -> list[str]:
    return [
        f"run.name={name}",
        f"run.output_dir={root / 'runs'}",
        f"run.corpus={root / 'corpus'}",
        "run.corpus_modules=[Arith]",
        "run.corpus_max_theorems=60",
        f"run.base_model={root / 'model'}",
        "run.init_model=true",
        # A few steps of pre-training on a small stdlib folder: the path a fresh run takes.
        "tiny_model.pretrain_sources=[coq:theories/Bool]",
        "tiny_model.pretrain_epochs=0.1",
        "tiny_model.pretrain_batch_size=8",
        "tiny_model.pretrain_block_tokens=128",
        "run.initial_sft=true",
        # A few steps of fine-tune: the model proves nothing yet (selection and training on
        # real verdicts are tested in test_selfplay_verify.py), this tests the plumbing.
        "run.initial_sft_epochs=0.2",
        "run.target_limit=6",
        "run.chunk_targets=2",
        "sampling.max_new_tokens=24",
        "sampling.batch_size=8",
        "verification.workers=2",
        "verification.timeout_s=10",
        "selection.proofs_per_statement=3",
        "selection.proofs_per_statement_round0=4",
        "selection.max_seeds=4",
        "selection.conjectures_per_seed=2",
        "selection.conjectures_per_corpus_seed=2",
        "training.batch_size=8",
        "training.max_seq_len=256",
    ]


def config_args(root: Path, name: str) -> list[str]:
    args = ["--config", str(REPO / "configs" / "tiny-rocq.yaml")]
    for item in overrides(root, name):
        args += ["--set", item]
    return args


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    """A run with bootstrap + two finished rounds (through the CLI)."""
    root = tmp_path_factory.mktemp("selfplay")
    assert main(["round", *config_args(root, "a"), "--rounds", "2"]) == 0
    return root


def test_two_rounds_write_every_artifact_and_the_run_table(played, capsys):
    layout = RunLayout(played / "runs" / "a")
    assert layout.finished_rounds() == [0, 1]
    rows = list(read_jsonl(layout.rounds_table))
    assert [r["round"] for r in rows] == [0, 1]
    first, second = rows
    assert first["k"] == 4 and second["k"] == 3
    assert first["model"].endswith("bootstrap/sft_model")
    # the base model was pre-trained on the stdlib folder
    built = json.loads((played / "model" / "pretraining.json").read_text())
    assert built["sources"] > 0 and (played / "model" / "train_log.jsonl").is_file()
    # round 1 samples from what round 0 trained, or from the same model when nothing was learned
    train0 = read_stage(layout.round_dir(0), "train")
    assert train0 is not None and second["model"] == train0.info["model"]
    # `stp eval` (and `make eval`) evaluate the model the next round would sample from
    train1 = read_stage(layout.round_dir(1), "train")
    assert train1 is not None
    assert (
        current_model(load_config(REPO / "configs" / "tiny-rocq.yaml", overrides(played, "a")))
        == (train1.info["model"])
    )
    for row in rows:
        targets = row["targets"]["dataset"] + row["targets"]["conjectures"]
        assert row["proofs_sampled"] == targets * row["k"]
        assert row["distinct_proofs_checked"] <= row["proofs_sampled"]
        assert sum(row["pass_rate_histogram"]["dataset"].values()) == row["targets"]["dataset"]
        assert row["conjectures"]["parsed"] <= row["conjectures"]["sampled"]
        assert row["conjectures"]["new"] <= row["conjectures"]["parsed"]
        funnel = [row["conjectures"][step] for step in ("new", "well_typed", "past_gate")]
        funnel += [row["conjectures"][step] for step in ("targeted", "proved", "in_window")]
        assert funnel == sorted(funnel, reverse=True)  # each step keeps a part of the last
        assert row["conjectures"]["targeted"] == row["targets"]["conjectures"]
        typed = row["conjectures"]["well_typed_samples"]  # repeats of a well-typed one count
        assert row["conjectures"]["well_typed"] <= typed <= row["conjectures"]["sampled"]
        assert row["tokens_generated"] > 0
        assert set(row["stage_seconds"]) >= {"seeds", "generate", "verify", "select", "train"}
    seeds = list(read_jsonl(layout.round_dir(0) / "seeds.jsonl"))
    assert 0 < len(seeds) <= 4  # round 0 seeds from the corpus' sft proofs
    stats = list(read_jsonl(layout.round_dir(0) / "stats.jsonl"))
    assert sum(r["attempts"] for r in stats) == first["proofs_sampled"]
    # every verified row is one distinct proof of a round target with its multiplicity
    targets = {t["id"] for t in read_jsonl(layout.round_dir(0) / "targets.jsonl")}
    verified = list(read_jsonl(chunk_path(layout.round_dir(0) / "verified", 0)))
    assert verified and {r["target"] for r in verified} <= targets
    assert len({(r["target"], r["proof"]) for r in verified}) == len(verified)

    assert main(["run", "report", str(layout.root)]) == 0
    out = capsys.readouterr().out
    assert "proved" in out and (layout.root / "curves.png").stat().st_size > 1000


def test_a_third_invocation_runs_the_next_round_on_the_last_rounds_model(played):
    config = load_config(REPO / "configs" / "tiny-rocq.yaml", overrides(played, "a"))
    layout = RunLayout.of(config)
    train1 = read_stage(layout.round_dir(1), "train")
    summary = advance(config, log=lambda _: None)
    assert summary["round"] == 2 and layout.finished_rounds() == [0, 1, 2]
    assert train1 is not None and summary["model"] == train1.info["model"]
    # (final re-training, with and without proofs, runs on real verdicts in
    # test_selfplay_verify.py: what this barely trained model proves is up to chance)


def comparable(directory: Path) -> dict[str, object]:
    """A round's artifacts, without timings (markers, summary, check seconds) and weights."""
    out: dict[str, object] = {}
    for path in sorted(directory.rglob("*.jsonl")):
        rows = list(read_jsonl(path))
        for row in rows:
            row.pop("seconds", None)
        out[str(path.relative_to(directory))] = rows
    return out


def copy_bootstrap(played: Path, name: str) -> None:
    source, target = played / "runs" / "a", played / "runs" / name
    target.mkdir(parents=True)
    shutil.copytree(source / "bootstrap", target / "bootstrap")
    for item in ("targets.jsonl", "targets.done.json"):
        shutil.copy(source / item, target / item)


# `stp` with write_chunk wrapped to stop the process after the first verified chunk.
STOP_AFTER_FIRST_VERIFIED_CHUNK = """
import os, signal, sys
import stp.artifacts as artifacts
write_chunk = artifacts.write_chunk
def stop_after(directory, index, rows):
    count = write_chunk(directory, index, rows)
    if directory.name == "verified":
        os.kill(os.getpid(), signal.SIGSTOP)
    return count
artifacts.write_chunk = stop_after
from stp.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_and_damaged_round_resumes_to_the_same_artifacts(played):
    copy_bootstrap(played, "b")
    layout = RunLayout(played / "runs" / "b")
    verified = layout.round_dir(0) / "verified"
    # a real kill at a fixed point: the round stops itself (SIGSTOP) right after writing its
    # first verified chunk, however fast its stages run, and is then killed
    proc = subprocess.Popen(
        [sys.executable, "-c", STOP_AFTER_FIRST_VERIFIED_CHUNK, "round", *config_args(played, "b")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not chunk_path(verified, 0).with_suffix(".sha256").exists():
        assert proc.poll() is None, "the round ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert read_stage(layout.round_dir(0), "verify") is None
    # damage what the killed run left: a generated chunk corrupted, a verified chunk deleted
    attempts = chunk_path(layout.round_dir(0) / "attempts", 1)
    attempts.write_text(attempts.read_text().replace("\n", "\n ", 1))
    chunk_path(verified, 0).unlink()

    config = load_config(REPO / "configs" / "tiny-rocq.yaml", overrides(played, "b"))
    assert advance(config, log=lambda _: None)["round"] == 0
    expected = comparable(played / "runs" / "a" / "round_000")
    assert comparable(layout.round_dir(0)) == expected

    # a finished stage corrupted afterwards is redone, never trusted
    stats = layout.round_dir(0) / "stats.jsonl"
    stats.write_text(stats.read_text() + "\n")
    assert layout.finished_rounds() == []
    assert advance(config, log=lambda _: None)["round"] == 0
    assert comparable(layout.round_dir(0)) == expected
    assert layout.finished_rounds() == [0]


def test_second_invocation_on_a_busy_run_exits_at_once(played):
    layout = RunLayout(played / "runs" / "a")
    from stp.selfplay.lock import run_lock

    with run_lock(layout.root):
        proc = subprocess.run(
            [sys.executable, "-m", "stp", "round", *config_args(played, "a")],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert f"pid {os.getpid()}" in proc.stderr and "in use" in proc.stderr


def test_the_lean_config_runs_its_stages_with_cpu_stand_ins(played):
    """configs/stp-lean-7b.yaml, with model, sampler, verifier and data swapped for the tiny
    stand-ins, plays a round in expert-iteration mode and in parallel-sampling mode."""
    base = played / "runs" / "a" / "bootstrap" / "sft_model"
    for mode in ("expert_iteration", "parallel_sampling"):
        config = load_config(
            REPO / "configs" / "stp-lean-7b.yaml",
            [
                f"run.name=lean-{mode}",
                f"run.output_dir={played / 'runs'}",
                f"run.mode={mode}",
                f"run.corpus={played / 'corpus'}",
                "run.targets=[corpus:selfplay]",
                "run.target_limit=4",
                "run.chunk_targets=2",
                f"run.base_model={base}",
                "sampling.backend=hf",
                "sampling.dtype=auto",
                "sampling.max_new_tokens=16",
                "verification.backend=rocq",
                "verification.ray_address=null",
                "verification.workers=2",
                "selection.proofs_per_statement_round0=2",
                "training.mixed_precision=no",
                "training.gradient_checkpointing=false",
                f"training.accelerate_config={REPO / 'configs' / 'accelerate' / 'cpu_ddp.yaml'}",
            ],
        )
        summary = advance(config, log=lambda _: None)
        assert summary["mode"] == mode
        assert summary["conjectures"]["sampled"] == 0  # no conjectures in the baselines
        assert summary["proofs_sampled"] == summary["targets"]["dataset"] * 2
        train = read_stage(RunLayout.of(config).round_dir(0), "train")
        assert train is not None
        if mode == "parallel_sampling":
            assert train.info == {"model": str(base), "trained": False}
    assert json.loads((played / "runs" / "a" / "round_000" / "summary.json").read_text())
