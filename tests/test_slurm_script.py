"""scripts/slurm_stp.sbatch run as bash with the environment Slurm gives a heterogeneous job,
and shims for ``srun``, ``scontrol``, ``ray``, ``stp`` and ``sleep`` that record their
arguments: every ``srun`` step must name its nodes, tasks, cores and GPUs (since Slurm 22.05 a
step does not inherit the job's ``--cpus-per-task``)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "slurm_stp.sbatch"

SHIMS = {
    # One JSON line per call: the shim's name and its arguments.
    "record": f"""#!{sys.executable}
import json, os, sys
with open(os.environ["SHIM_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
""",
    # `scontrol show hostnames a,b` (the tests' node lists are plain comma lists).
    "scontrol": f"""#!{sys.executable}
import sys
assert sys.argv[1:3] == ["show", "hostnames"], sys.argv
print("\\n".join(sys.argv[3].split(",")))
""",
}


def slurm_env(tmp_path: Path, gpu_hosts: list[str], cpu_hosts: list[str]) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in SHIMS.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    for name in ("srun", "ray", "stp", "sleep"):
        (bin_dir / name).symlink_to(bin_dir / "record")
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "activate").write_text(f"export PATH={shlex.quote(str(bin_dir))}:$PATH\n")
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "SHIM_LOG": str(tmp_path / "calls.jsonl"),
        "SLURM_JOB_NODELIST_HET_GROUP_0": ",".join(gpu_hosts),
        "SLURM_JOB_NODELIST_HET_GROUP_1": ",".join(cpu_hosts),
        "SLURM_CPUS_PER_TASK_HET_GROUP_0": "64",
        "SLURM_GPUS_PER_NODE_HET_GROUP_0": "h100:8",
        "SLURM_CPUS_PER_TASK_HET_GROUP_1": "128",
    }


def run_script(tmp_path: Path, env: dict[str, str]) -> list[list[str]]:
    done = subprocess.run(
        ["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    return calls


def srun_steps(calls: list[list[str]]) -> dict[str, tuple[list[str], list[str]]]:
    """Each srun call's flags and the command it starts, keyed by that command's first words."""
    steps = {}
    for call in calls:
        if call[0] != "srun":
            continue
        start = next(i for i, arg in enumerate(call[1:], 1) if not arg.startswith("-"))
        key = " ".join(call[start : start + 3])
        assert key not in steps, f"two steps start {key}"
        steps[key] = (call[1:start], call[start:])
    return steps


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_every_srun_step_names_its_nodes_tasks_cores_and_gpus(tmp_path: Path) -> None:
    calls = run_script(tmp_path, slurm_env(tmp_path, ["g1", "g2", "g3"], ["c1", "c2"]))
    steps = srun_steps(calls)
    assert {key: flags for key, (flags, _) in steps.items()} == {
        "ray start --head": [
            *("--het-group=0", "--nodes=1", "--ntasks=1", "--nodelist=g1"),
            *("--cpus-per-task=64", "--gpus-per-node=8"),
        ],
        "ray start --address": [
            *("--het-group=0", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1"),
            *("--nodelist=g2,g3", "--cpus-per-task=64", "--gpus-per-node=8"),
        ],
        "stp verify-workers --address": [
            *("--het-group=1", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1"),
            *("--nodelist=c1,c2", "--cpus-per-task=128"),
        ],
    }
    for key in ("ray start --head", "ray start --address"):  # Ray offers what Slurm granted
        command = steps[key][1]
        assert (option(command, "--num-cpus"), option(command, "--num-gpus")) == ("64", "8")
    workers = steps["stp verify-workers --address"][1]
    assert (option(workers, "--address"), option(workers, "--cpus")) == ("g1:6379", "128")
    [rounds] = [c for c in calls if c[:2] == ["stp", "round"]]
    assert "verification.ray_address=g1:6379" in rounds


def test_one_gpu_node_starts_no_gpu_workers(tmp_path: Path) -> None:
    steps = srun_steps(run_script(tmp_path, slurm_env(tmp_path, ["g1"], ["c1"])))
    assert sorted(steps) == ["ray start --head", "stp verify-workers --address"]


@pytest.mark.parametrize(
    "unset", ["SLURM_CPUS_PER_TASK_HET_GROUP_0", "SLURM_GPUS_PER_NODE_HET_GROUP_0"]
)
def test_a_missing_grant_stops_the_job_with_what_to_set(tmp_path: Path, unset: str) -> None:
    env = slurm_env(tmp_path, ["g1"], ["c1"])
    del env[unset]
    done = subprocess.run(
        ["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "give the GPU group --" in done.stderr
    assert not (tmp_path / "calls.jsonl").exists()  # nothing started
