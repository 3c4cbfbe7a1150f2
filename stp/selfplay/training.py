"""Fine-tuning inside a run (the initial fine-tune, each round's, the final re-training):
``stp.models.train.train`` in this process (``training.launcher: inline``) or as an
``accelerate launch ... -m stp train`` job of its own (``launcher: accelerate``), and the rule
for a model folder an earlier attempt, or a person, left there.

The job is the command a person would run by hand (the round prints it), with the stage's
own seed, so a model trained by hand with the same inputs is the one the stage would train:
the stage keeps it. Any other model in the folder is removed and trained again; checkpoints
of the same run are kept, so a killed job resumes from them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

import stp
from stp.config import STPConfig, TrainingConfig
from stp.errors import ConfigError, TrainingJobFailed
from stp.verify.process import kill_group

# How long a launcher stopped with SIGTERM may take to stop its workers (torchrun gives them
# 30 s, then SIGKILL) before its process group is killed.
STOP_GRACE_S = 60.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def apply_torch_threads(config: STPConfig) -> None:
    if config.run.torch_threads is not None:
        import torch

        torch.set_num_threads(config.run.torch_threads)


def train_model(
    base: str,
    examples: Path,
    out: Path,
    settings: TrainingConfig,
    seed: int,
    log: Callable[[str], None] = print,
) -> Path:
    """Fine-tune ``base`` on the weighted ``examples`` into ``out``, in this process or as a
    job (``settings.launcher``); returns the model folder. A finished model of exactly this
    run already in ``out`` is kept as it is."""
    from stp.models.train import discard_other_runs, is_finished, run_record  # loads torch

    processes = planned_processes(settings)
    expected = run_record(base, examples, settings, seed, processes)
    for path in discard_other_runs(out, expected):
        log(f"  train: removed {path}: it was made from other inputs")
    if is_finished(out, expected):
        log(f"  train: {out} already holds the model of these inputs; kept")
        return out
    if settings.launcher == "inline":
        return _train_here(base, examples, out, settings, seed)
    command = job_command(base, examples, out, settings, seed)
    log(f"  train: {shlex.join(command)}")
    _release_cached_gpu_memory()
    run_job(command)
    if not is_finished(out, expected):
        raise TrainingJobFailed(
            f"the training job finished, but {out} does not hold the model of these inputs "
            f"({processes} processes, seed {seed}): compare its training.json with the config"
        )
    return out


def _release_cached_gpu_memory() -> None:
    """Give the job the GPU memory this process's allocator still caches (the select stage's
    embedding model ran here)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _train_here(base: str, examples: Path, out: Path, settings: TrainingConfig, seed: int) -> Path:
    from stp.models.train import train

    bar = tqdm(total=0, desc="  train", unit="step", leave=False, dynamic_ncols=True)

    def progress(step: int, total: int) -> None:
        bar.total = total
        bar.update(step - bar.n)

    try:
        return Path(train(base, examples, out, settings, seed=seed, progress=progress))
    finally:
        bar.close()


# ------------------------------------------------------------------- the accelerate job


def planned_processes(settings: TrainingConfig) -> int:
    """The job's process count over all nodes: 1 inline; else ``num_processes`` or the
    accelerate config's."""
    if settings.launcher == "inline":
        return 1
    if settings.num_processes is not None:
        return settings.num_processes
    launch = _accelerate_config(settings)
    try:
        return int(yaml.safe_load(launch.read_text()).get("num_processes", 1))
    except (OSError, AttributeError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"training.accelerate_config: cannot read {launch}: {exc}") from exc


def _accelerate_config(settings: TrainingConfig) -> Path:
    path = Path(settings.accelerate_config).resolve()
    if not path.is_file():
        raise ConfigError(
            f"training.accelerate_config: {settings.accelerate_config} not found (paths are "
            "relative to where stp runs; the repository's are in configs/accelerate/)"
        )
    return path


def _flag_value(value: Any) -> str:
    """A setting as the text ``--section.field`` parses back to it (YAML for non-strings)."""
    if isinstance(value, str):
        return value
    return (
        yaml.safe_dump(value, default_flow_style=True, width=1 << 16)
        .removesuffix("\n...\n")
        .strip()
    )


def job_command(
    base: str, examples: Path, out: Path, settings: TrainingConfig, seed: int
) -> list[str]:
    """``accelerate launch ... -m stp train ...`` with every setting the model depends on."""
    command = [*settings.launch_prefix, sys.executable, "-m", "accelerate.commands.launch"]
    command += ["--config_file", str(_accelerate_config(settings))]
    if settings.num_processes is not None:
        command += ["--num_processes", str(settings.num_processes)]
    command += [*settings.accelerate_args, "-m", "stp", "train"]
    command += ["--base-model", base, "--examples", str(examples), "--out", str(out)]
    command += ["--run.seed", str(seed)]
    for name, value in settings.result_settings().items():
        command += [f"--training.{name}", _flag_value(value)]
    return command


def run_job(command: list[str]) -> None:
    """Run the training job in its own process group, its output on this one's; on any
    interruption stop it with SIGTERM (torchrun and DeepSpeed's launcher then stop their
    workers, which run in sessions of their own) and kill what is left of its group. The
    job's launcher also gets SIGTERM when this process dies without that chance (SIGTERM,
    SIGKILL), so no job outlives its round to race the next one."""
    # The job imports the stp this process runs, also from a source checkout.
    source = str(Path(stp.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
    job = subprocess.Popen(
        command,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": path},
        preexec_fn=_stop_with_parent(),
    )
    try:
        code = job.wait()
    except BaseException:
        stop_job(job)
        raise
    if code != 0:
        raise TrainingJobFailed(
            f"the training job exited with status {code} (its output is above); "
            "once the cause is fixed, the next `stp round` resumes it from its last checkpoint"
        )


def _stop_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to send the child SIGTERM when this process dies
    (``PR_SET_PDEATHSIG``); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    parent = os.getpid()

    def apply() -> None:  # runs in the child between fork and exec
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return apply


def stop_job(job: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(job.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        job.wait(timeout=STOP_GRACE_S)
    kill_group(job)


def discard_model(out: Path) -> None:
    """Remove a model folder (and a partial run of it) a stage that now trains nothing left."""
    from stp.models.train import partial_dir

    for path in (out, partial_dir(out)):
        if path.exists():
            shutil.rmtree(path)
