"""A run's train stage as an `accelerate launch` job (two CPU processes, gloo) and inline: the
same model either way, the round going on with it, a model trained by hand with the same
inputs kept, and weights saved in the dtype asked for."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from test_train import (
    ONE_SGD_STEP,
    assert_same_weights,
    example,
    four_examples,
    max_difference,
    weights_of,
    write_examples,
)
from transformers import AutoModelForCausalLM

from stp.cli import build_parser, main
from stp.config import TrainingConfig, config_from_args, load_config
from stp.errors import TrainingJobFailed
from stp.models.train import MARKER, partial_dir, saved_dtype, train
from stp.runs import RunLayout, model_for_round
from stp.selfplay import training
from stp.selfplay.context import Round
from stp.selfplay.history import RunHistory
from stp.selfplay.records import MODEL_DIR, TRAIN_FILE
from stp.selfplay.round import STAGES, settings_of
from stp.selfplay.round import train as train_stage
from stp.stages import StageRecord, fingerprint, run_stage

REPO = Path(__file__).resolve().parents[1]
CPU_DDP = REPO / "configs" / "accelerate" / "cpu_ddp.yaml"

# Two SGD steps of one example per process: with two processes each step averages two
# gradients across processes, exactly as one process accumulating both does.
TWO_SGD_STEPS = dataclasses.replace(ONE_SGD_STEP, batch_size=1)


def make_round(tmp_path: Path, model: Path, settings: TrainingConfig) -> Round:
    overrides = [f"run.output_dir={tmp_path / 'runs'}", "run.name=t", "run.corpus=null"]
    overrides += ["run.mode=expert_iteration", f"run.base_model={model}"]
    config = dataclasses.replace(load_config(None, overrides), training=settings)
    layout = RunLayout.of(config)
    layout.round_dir(0).mkdir(parents=True)
    write_examples(layout.round_dir(0) / TRAIN_FILE, four_examples())
    return Round(
        config=config,
        layout=layout,
        index=0,
        model=str(model),
        dataset=[],
        history=RunHistory(),
        log=print,
    )


def run_train_stage(r: Round) -> StageRecord:
    """The round's train stage as ``run_round`` runs it: marker, fingerprint and all."""
    stage = next(s for s in STAGES if s.name == "train")
    settings = settings_of(r.config, stage.settings) | {"model": r.model, "round": r.index}
    out = r.path(MODEL_DIR)
    return run_stage(
        r.directory,
        "train",
        lambda: [out] if out.exists() else [],
        functools.partial(train_stage, r),
        r.log,
        inputs=fingerprint(settings, []),
    )


def test_the_train_stage_as_a_two_process_accelerate_job_equals_one_process(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = dataclasses.replace(
        TWO_SGD_STEPS, launcher="accelerate", accelerate_config=str(CPU_DDP)
    )
    r = make_round(tmp_path, tiny_model, settings)
    record = run_train_stage(r)
    out = r.path(MODEL_DIR)
    assert record.info == {"model": str(out), "trained": True}
    assert "accelerate.commands.launch --config_file" in capsys.readouterr().out
    trained = json.loads((out / MARKER).read_text())
    assert trained["processes"] == 2 and trained["steps"] == 2
    assert trained["seed"] == r.seed("train")
    assert not partial_dir(out).exists()

    # One process accumulating the two halves of each step, same data, same seed. One step
    # of SGD is -lr * gradient: the two differ only in the order float32 sums the gradient
    # (all-reduce over processes vs accumulation), ~1e-7 relative, far below the 1e-6
    # absolute + 1e-5 relative allowed; a different example order or a missed half moves
    # weights by > 1e-3 (test_train.py).
    one = tmp_path / "one"
    reference = dataclasses.replace(TWO_SGD_STEPS, gradient_accumulation_steps=2)
    train(str(tiny_model), r.path(TRAIN_FILE), one, reference, seed=r.seed("train"))
    assert json.loads((one / MARKER).read_text())["steps"] == 2
    assert_same_weights(out, one)
    assert max_difference(out, tiny_model) > 1e-3

    # The round goes on with that model: the next round samples from (and trains) it.
    assert model_for_round(r.config, r.layout, 1) == str(out)
    # A finished stage is skipped, launching nothing.
    assert run_train_stage(r).info == record.info
    assert "done already" in capsys.readouterr().out


def test_a_model_trained_by_hand_with_the_rounds_inputs_is_kept_by_the_round(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = make_round(tmp_path, tiny_model, TWO_SGD_STEPS)
    out, examples = r.path(MODEL_DIR), r.path(TRAIN_FILE)

    def by_hand(round_index: int) -> None:
        argv = ["train", "--base-model", str(tiny_model), "--examples", str(examples)]
        argv += ["--out", str(out), "--round", str(round_index)]
        argv += [f"--training.{k}={v}" for k, v in TWO_SGD_STEPS.result_settings().items()]
        assert main(argv) == 0

    by_hand(0)
    written = (out / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    assert run_train_stage(r).info["trained"] is True
    assert "already holds the model of these inputs; kept" in capsys.readouterr().out
    assert (out / "model.safetensors").stat().st_mtime_ns == written

    # It is the model the stage trains itself: the stage redone from scratch makes it again.
    kept = tmp_path / "kept"
    out.rename(kept)
    (r.directory / "train.done.json").unlink()
    run_train_stage(r)
    assert_same_weights(out, kept, atol=0.0)

    # A model of other inputs (round 7's seed) is not kept: the stage trains its own.
    shutil.rmtree(out)
    by_hand(7)
    (r.directory / "train.done.json").unlink()
    capsys.readouterr()
    run_train_stage(r)
    assert f"removed {out}: it was made from other inputs" in capsys.readouterr().out
    assert_same_weights(out, kept, atol=0.0)


class Killed(Exception):
    pass


def kill_after_step_1(step: int, total: int) -> None:
    if step == 1:
        raise Killed


def test_a_killed_train_stage_resumes_and_a_partial_run_of_other_inputs_is_dropped(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = dataclasses.replace(TWO_SGD_STEPS, save_every_steps=1)
    r = make_round(tmp_path, tiny_model, settings)
    out, examples, seed = r.path(MODEL_DIR), r.path(TRAIN_FILE), r.seed("train")
    straight = train(str(tiny_model), examples, tmp_path / "straight", settings, seed=seed)

    for other_seed, dropped in ((seed, False), (seed + 1, True)):
        with pytest.raises(Killed):  # the stage's training, killed after its first step
            train(
                str(tiny_model),
                examples,
                out,
                settings,
                seed=other_seed,
                progress=kill_after_step_1,
            )
        assert (partial_dir(out) / "checkpoints").is_dir() and not out.exists()
        capsys.readouterr()
        run_train_stage(r)
        assert (f"removed {partial_dir(out)}" in capsys.readouterr().out) is dropped
        assert_same_weights(out, straight, atol=0.0)
        shutil.rmtree(out)
        (r.directory / "train.done.json").unlink()


def test_the_job_command_carries_every_setting_the_model_depends_on(tmp_path: Path) -> None:
    settings = dataclasses.replace(
        TrainingConfig(),
        learning_rate=1e-5,
        epochs=0.5,
        mixed_precision="no",
        gradient_checkpointing=True,
        save_dtype="bfloat16",
        launcher="accelerate",
        accelerate_config=str(CPU_DDP),
        num_processes=3,
        launch_prefix=["srun", "--nodes=2"],
        accelerate_args=["--main_process_ip", "node001"],
    )
    command = training.job_command("base", tmp_path / "e.jsonl", tmp_path / "m", settings, 1234)
    assert command[:2] == ["srun", "--nodes=2"]
    launch = command[command.index("accelerate.commands.launch") + 1 : command.index("stp")]
    expected = ["--config_file", str(CPU_DDP), "--num_processes", "3"]
    assert launch == [*expected, "--main_process_ip", "node001", "-m"]
    args = build_parser().parse_args(command[command.index("stp") + 1 :])
    parsed = config_from_args(args)
    assert parsed.training.result_settings() == settings.result_settings()
    assert parsed.run.seed == 1234 and args.base_model == "base"
    assert training.planned_processes(settings) == 3
    assert training.planned_processes(dataclasses.replace(settings, num_processes=None)) == 2
    assert training.planned_processes(dataclasses.replace(settings, launcher="inline")) == 1


@pytest.mark.parametrize(
    ("save_dtype", "mixed_precision", "expected"),
    [
        ("auto", "no", torch.float32),
        ("auto", "bf16", torch.bfloat16),
        ("auto", "fp16", torch.float32),
        ("bfloat16", "no", torch.bfloat16),
        ("float32", "bf16", torch.float32),
    ],
)
def test_saved_dtype(save_dtype: str, mixed_precision: str, expected: torch.dtype) -> None:
    config = TrainingConfig(save_dtype=save_dtype, mixed_precision=mixed_precision)  # type: ignore[arg-type]
    assert saved_dtype(config) == expected


def test_bfloat16_saves_are_the_float32_weights_rounded(tiny_model: Path, tmp_path: Path) -> None:
    data = write_examples(tmp_path / "train.jsonl", [example(0), example(1)])
    wide = train(str(tiny_model), data, tmp_path / "fp32", ONE_SGD_STEP)
    bf16 = dataclasses.replace(ONE_SGD_STEP, save_dtype="bfloat16")
    narrow = train(str(tiny_model), data, tmp_path / "bf16", bf16)
    left, right = weights_of(wide), weights_of(narrow)
    assert left.keys() == right.keys()  # tied weights still stored once
    for name, tensor in right.items():
        assert tensor.dtype == torch.bfloat16
        assert torch.equal(tensor, left[name].to(torch.bfloat16)), name
    assert json.loads((narrow / "config.json").read_text())["dtype"] == "bfloat16"
    assert json.loads((wide / "config.json").read_text())["dtype"] == "float32"
    size = (narrow / "model.safetensors").stat().st_size
    assert size < 0.6 * (wide / "model.safetensors").stat().st_size
    # It loads, and trains on from there (the next round loads it in float32).
    assert AutoModelForCausalLM.from_pretrained(narrow).dtype == torch.bfloat16
    train(str(narrow), data, tmp_path / "next", ONE_SGD_STEP)
    with safe_open(str(tmp_path / "next" / "model.safetensors"), "pt") as handle:
        assert handle.get_tensor(next(iter(handle.keys()))).dtype == torch.float32


def test_a_failed_job_is_reported() -> None:
    with pytest.raises(TrainingJobFailed, match="exited with status 3"):
        training.run_job(["python3", "-c", "raise SystemExit(3)"])


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["interrupted", "killed"])
def test_the_job_and_its_workers_stop_with_the_round(tmp_path: Path, how: signal.Signals) -> None:
    """A round running a job is interrupted (Ctrl-C: it stops the job) or killed outright (the
    job's launcher gets SIGTERM from the kernel). The launcher, like torchrun, runs its worker
    in a session of its own and stops it on SIGTERM: nothing is left either way."""
    pids = tmp_path / "pids"
    launcher = (
        "import os, signal, subprocess, sys, time\n"
        "worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
        " start_new_session=True)\n"
        "signal.signal(signal.SIGTERM, lambda *_: (worker.terminate(), sys.exit(0)))\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{worker.pid}} ')\n"
        "time.sleep(600)\n"
    )
    round_process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            # Python's own SIGINT handler, as in a terminal: a test run started in the
            # background (`make test &`, nohup) passes SIGINT on ignored
            "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from stp.selfplay.training import run_job; run_job(sys.argv[1:])",
            "python3",
            "-c",
            launcher,
        ],
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    deadline = time.monotonic() + 60
    while not pids.exists() or len(pids.read_text().split()) < 2:
        assert time.monotonic() < deadline and round_process.poll() is None
        time.sleep(0.05)
    started = [int(pid) for pid in pids.read_text().split()]
    round_process.send_signal(how)
    assert round_process.wait(timeout=60) != 0
    deadline = time.monotonic() + 30
    while any(map(alive, started)):
        assert time.monotonic() < deadline, [pid for pid in started if alive(pid)]
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")
