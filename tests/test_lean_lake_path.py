"""Finding Lean's ``lake`` where PATH lacks it: verifier workers started over ssh or by a Ray
raylet run without the PATH elan's installer set up in a login shell. The stand-in lake
(tests/fake_lake.py, and tests/fake_lean_repl.py for ``lake exe repl``) sits where elan puts
the real one, ``~/.elan/bin/lake``, and PATH holds nothing but an empty folder."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from test_lean_pool import PROVED, job

import stp.verify.cli as verify_cli
from stp.cli import main
from stp.config import VerificationConfig
from stp.errors import ConfigError
from stp.verify import VerifierUnavailableError, make_verifier
from stp.verify.lean import find_lake
from stp.verify.lean_check import CHECKER
from stp.verify.types import Verdict

TESTS = Path(__file__).parent
REPO = TESTS.parent


def fake_lake(path: Path) -> Path:
    """A stand-in lake at ``path``: ``lake exe repl`` starts the stand-in REPL, everything else
    goes to tests/fake_lake.py. Its shebang needs no PATH."""
    path.parent.mkdir(parents=True, exist_ok=True)
    python = shlex.quote(sys.executable)
    path.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = exe ] && [ "$2" = repl ]; then\n'
        f"  exec {python} {shlex.quote(str(TESTS / 'fake_lean_repl.py'))}\n"
        "fi\n"
        f'exec {python} {shlex.quote(str(TESTS / "fake_lake.py"))} "$@"\n'
    )
    path.chmod(0o755)
    return path


@pytest.fixture
def stripped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment like a raylet's: HOME with elan's lake in it, PATH without it, no
    ELAN_HOME; a Lean project with a built checker. Returns that environment."""
    home = tmp_path / "home"
    fake_lake(home / ".elan" / "bin" / "lake")
    project = tmp_path / "project"
    (project / CHECKER).parent.mkdir(parents=True)
    (project / CHECKER).touch()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("ELAN_HOME", raising=False)
    monkeypatch.setenv("FAKE_REPL_LOG", str(tmp_path / "repl.log"))
    monkeypatch.setenv("FAKE_LAKE_LOG", str(tmp_path / "lake.log"))
    monkeypatch.chdir(project)
    return dict(os.environ)


def lean_config(**fields: object) -> VerificationConfig:
    settings: dict[str, object] = {
        "backend": "lean",
        "workers": 1,
        "timeout_s": 10.0,
        "header_timeout_s": 10.0,
        "memory_limit_mb": 1024,
        "lean_project": str(Path.cwd()),
    }
    settings.update(fields)
    config = VerificationConfig(**settings)  # type: ignore[arg-type]
    config.validate()
    return config


def test_lake_off_path_is_found_where_elan_installs_it(stripped: dict[str, str]) -> None:
    home = Path(stripped["HOME"])
    assert find_lake() == home / ".elan" / "bin" / "lake"
    with make_verifier(lean_config()) as verifier:
        [result] = verifier.verify([job("p", PROVED)])
    assert result.verdict is Verdict.PROVED, result.detail
    assert "second check: kernel replay" in result.assistant_version
    # Both the REPL and the second line ran elan's lake, by its absolute path.
    lake_runs = [json.loads(line)["argv"] for line in Path("../lake.log").read_text().splitlines()]
    assert [run[:2] for run in lake_runs] == [["env", "lean"], ["env", "lean"], ["env", CHECKER]]


def test_elan_home_and_the_configured_lake_win(
    stripped: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elan_home = tmp_path / "elan"
    monkeypatch.setenv("ELAN_HOME", str(elan_home))
    fake_lake(elan_home / "bin" / "lake")
    assert find_lake() == elan_home / "bin" / "lake"
    configured = fake_lake(tmp_path / "opt" / "lean" / "lake")
    assert find_lake(str(configured)) == configured
    assert find_lake(str(tmp_path / "nowhere" / "lake")) is None  # no fallback past a setting


def test_a_configured_lake_must_exist_and_be_absolute(stripped: dict[str, str]) -> None:
    with pytest.raises(VerifierUnavailableError, match=r"verification\.lean_lake_path"):
        make_verifier(lean_config(lean_lake_path="/nowhere/lake"))
    with pytest.raises(ConfigError, match="must be an absolute path"):
        lean_config(lean_lake_path="bin/lake")
    lean_config(lean_lake_path="~/.elan/bin/lake")  # `~` is each node's own home


def test_no_lake_anywhere_says_where_it_looked(
    stripped: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "empty"))
    with pytest.raises(VerifierUnavailableError, match=r"~/\.elan/bin.*lean_lake_path"):
        make_verifier(lean_config())


def test_verify_workers_in_a_path_stripped_shell_finds_lake(stripped: dict[str, str]) -> None:
    """`stp verify-workers` as ssh or a raylet starts it: its installation check passes and it
    gets as far as the Ray head (unreachable here), where before it stopped at 'not found'."""
    argv = ["verify-workers", "--address", "127.0.0.1:1", "--cpus", "1", "--backend", "lean"]
    done = subprocess.run(
        [sys.executable, "-m", "stp", *argv, "--verification.lean_project", str(Path.cwd())],
        env={**stripped, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "cannot reach the Ray cluster at '127.0.0.1:1'" in done.stderr
    assert "not found" not in done.stderr


def test_verify_workers_puts_elan_on_the_nodes_path(
    stripped: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node `verify-workers` starts (whose Ray workers inherit its environment) has elan's
    bin folder first on PATH."""
    started: list[dict[str, str]] = []

    class Node:
        def __init__(self, argv: list[str], start_new_session: bool, env: dict[str, str]):
            started.append(env)
            self.pid = os.getpid()

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(verify_cli, "import_ray", lambda: None)
    monkeypatch.setattr(verify_cli, "check_reachable", lambda address: None)
    monkeypatch.setattr(verify_cli.subprocess, "Popen", Node)
    monkeypatch.setattr(verify_cli, "kill_group", lambda node: None)
    argv = ["verify-workers", "--address", "head:6379", "--cpus", "2", "--backend", "lean"]
    assert main([*argv, "--verification.lean_project", str(Path.cwd())]) == 0
    [env] = started
    elan_bin = str(Path(stripped["HOME"]) / ".elan" / "bin")
    assert env["PATH"].split(os.pathsep) == [elan_bin, stripped["PATH"]]
