"""scripts/setup_lean.sh against stand-ins (no Lean toolchain or GitHub here): its smoke test
must read the REPL's answers (a REPL that starts but accepts a false theorem fails it), it
installs git and curl where missing, and it skips Mathlib's cache when the cache is
unreachable. Every command it runs is a shim on an otherwise empty PATH."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "setup_lean.sh"

# Scripted REPLs: each reads the requests (blank-line separated JSON) and answers each one.
REPL = """
import json, sys
requests = [json.loads(r) for r in sys.stdin.read().split("\\n\\n") if r.strip()]
for n, request in enumerate(requests):
    print(json.dumps(answer(request["cmd"], n)), end="\\n\\n")
"""
ERROR = {"severity": "error", "pos": {"line": 1, "column": 0}, "data": "linarith failed"}
REPLS = {
    # What Lean's REPL answers: the header, the true theorem, an error for the false one.
    "checks": "def answer(cmd, n):\n"
    "    return {'env': n, 'messages': [ERROR] if '= 5' in cmd else []}\n",
    "accepts_everything": "def answer(cmd, n):\n    return {'env': n}\n",
    "no_mathlib": "def answer(cmd, n):\n"
    "    return {'message': 'unknown package Mathlib'} if 'import' in cmd else {'env': n}\n",
    "refuses_the_true_one": "def answer(cmd, n):\n"
    "    return {'env': n, 'messages': [ERROR] if 'theorem' in cmd else []}\n",
    "sorry": "def answer(cmd, n):\n"
    "    return {'env': n, 'sorries': [{'goal': '⊢ 2 + 2 = 4'}], "
    "'messages': [ERROR] if '= 5' in cmd else []}\n",
    "garbage": "def answer(cmd, n):\n    return 'oops' if n else {'env': 0}\n",
    "not_json": "def answer(cmd, n):\n    print('{oops')\n    return {'env': n}\n",
    "crashes": "def answer(cmd, n):\n    sys.exit(1)\n",
}


def repl(tmp_path: Path, kind: str) -> list[str]:
    path = tmp_path / f"repl_{kind}.py"
    path.write_text(f"ERROR = {ERROR!r}\nimport sys\n{REPLS[kind]}{REPL}")
    return [sys.executable, str(path)]


def shim(bin_dir: Path, name: str, body: str = "") -> None:
    """A command that logs its arguments to $SHIM_LOG, then runs ``body`` (sh)."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "$SHIM_LOG"\n{body}\n')
    path.chmod(0o755)


def bash(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``command`` in a bash that sourced the script (which then runs nothing by itself)."""
    return subprocess.run(
        ["/bin/bash", "-c", f"source {shlex.quote(str(SCRIPT))} && {command}"],
        env={"HOME": "/nonexistent", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def python_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has only ``python3`` (the smoke test reads answers with it)."""
    bin_dir = tmp_path / "python"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    return {"PATH": str(bin_dir)}


def test_the_script_parses() -> None:
    subprocess.run(["/bin/bash", "-n", str(SCRIPT)], check=True)


def test_smoke_test_passes_a_repl_that_checks(tmp_path: Path) -> None:
    done = bash(shlex.join(["smoke_test", *repl(tmp_path, "checks")]), python_path(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "proves 2 + 2 = 4 and refuses 2 + 2 = 5" in done.stdout


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("accepts_everything", "accepted a false theorem"),
        ("no_mathlib", "`import Mathlib` failed: unknown package Mathlib"),
        ("refuses_the_true_one", "a true theorem did not check"),
        ("sorry", "a true theorem did not check"),
        ("garbage", "not an object"),
        ("not_json", "not JSON"),
        ("crashes", "exited with an error"),
    ],
)
def test_smoke_test_fails_a_repl_that_does_not_check(tmp_path: Path, kind: str, says: str) -> None:
    done = bash(shlex.join(["smoke_test", *repl(tmp_path, kind)]), python_path(tmp_path))
    assert done.returncode != 0
    assert says in done.stderr


def test_missing_git_and_curl_are_installed(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    for name in ("apt-get", "dnf"):
        shim(bin_dir, name)
    shim(bin_dir, "sudo", 'exec "$@"')  # for a run that is not root
    env = {"PATH": str(bin_dir), "SHIM_LOG": str(tmp_path / "log")}
    done = bash("ensure_tools git curl", env)
    assert done.returncode == 0, done.stderr
    calls = [c for c in (tmp_path / "log").read_text().splitlines() if not c.startswith("sudo")]
    assert calls == ["apt-get update", "apt-get install -y git curl"]

    shim(bin_dir, "git")  # present now: only curl is missing
    (tmp_path / "log").unlink()
    (bin_dir / "apt-get").unlink()
    assert bash("ensure_tools git curl", env).returncode == 0
    assert "dnf install -y curl" in (tmp_path / "log").read_text().splitlines()


def test_no_packager_says_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    env = {"PATH": str(tmp_path / "empty"), "SHIM_LOG": str(tmp_path / "log")}
    done = bash("ensure_tools git curl", env)
    assert done.returncode != 0
    assert "need git curl" in done.stderr


def full_run(tmp_path: Path, cache_reachable: bool, kind: str = "checks") -> tuple[int, str, str]:
    """main() with every tool a shim: (exit status, output, the tools' calls)."""
    bin_dir = tmp_path / "bin"
    for name in ("git", "elan", "lean"):
        shim(bin_dir, name)
    shim(bin_dir, "curl", "" if cache_reachable else "exit 6")
    (bin_dir / "python3").symlink_to(sys.executable)
    for tool in ("mkdir", "cp"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    checker = shlex.join(repl(tmp_path, kind))
    shim(bin_dir, "lake", f'[ "$1 $2" = "exe repl" ] && exec {checker}\nexit 0')
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path / "home"),
        "SHIM_LOG": str(tmp_path / "log"),
        "LEAN_PROJECT": str(tmp_path / "project"),
    }
    done = subprocess.run(
        ["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout + done.stderr, (tmp_path / "log").read_text()


def test_an_unreachable_cache_is_skipped_and_the_build_is_timed(tmp_path: Path) -> None:
    status, output, calls = full_run(tmp_path, cache_reachable=False)
    assert status == 0, output
    assert "unreachable: skipping lake exe cache get" in output
    assert "lake exe cache get" not in calls
    assert "lake build Mathlib repl stp_check" in calls.splitlines()
    assert "expect hours" in output and "built in 0 h 0 min" in output
    assert "refuses 2 + 2 = 5" in output
    # The project got what stp_check is built from, beside the pins.
    project = tmp_path / "project"
    assert {p.name for p in project.iterdir()} >= {"lakefile.lean", "lean-toolchain"}
    assert (project / "StpCheck.lean").is_file()


def test_a_reachable_cache_is_tried(tmp_path: Path) -> None:
    status, output, calls = full_run(tmp_path, cache_reachable=True)
    assert status == 0, output
    assert "lake exe cache get" in calls.splitlines()


def test_the_install_fails_when_the_repl_does_not_check(tmp_path: Path) -> None:
    status, output, _ = full_run(tmp_path, cache_reachable=False, kind="accepts_everything")
    assert status != 0
    assert "accepted a false theorem" in output
    assert "Lean backend ready" not in output
