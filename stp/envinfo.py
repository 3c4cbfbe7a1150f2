"""``stp env``: what a user pastes into a bug report."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
from importlib import metadata

from stp.assistants import ASSISTANTS

PACKAGES = ("stp", "torch", "transformers", "accelerate", "datasets", "tokenizers", "vllm", "ray")
# Tools whose first version line identifies the proof assistant a result was checked with.
TOOLS = tuple(command for a in ASSISTANTS.values() for command in a.version_commands)


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _tool_version(tool: str, flag: str) -> str:
    path = shutil.which(tool)
    if path is None:
        return "not found"
    try:
        out = subprocess.run([path, flag], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{path} (version unknown: {exc})"
    first = (out.stdout or out.stderr).strip().splitlines()
    return f"{first[0] if first else 'version unknown'} ({path})"


def _accelerators() -> str:
    try:
        import torch
    except ImportError:
        return "unknown (torch not installed)"
    if not torch.cuda.is_available():
        return "0 CUDA GPUs"
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return f"{len(names)} CUDA GPUs: {', '.join(names)}"


def load_average() -> str:
    """The 1, 5 and 15-minute load averages: printed beside every measurement, since a
    shared machine's figures mean little without them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def collect_environment() -> dict[str, str]:
    info = {
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "load average": load_average(),
    }
    info |= {name: _package_version(name) for name in PACKAGES}
    info |= {tool: _tool_version(tool, flag) for tool, flag in TOOLS}
    info["gpus"] = _accelerators()
    return info


def _run(args: argparse.Namespace) -> int:
    info = collect_environment()
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("env", help="Print versions and hardware for bug reports.")
    parser.set_defaults(func=_run)
