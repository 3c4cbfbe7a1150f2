import subprocess
import sys

import pytest

from stp.cli import main
from stp.envinfo import collect_environment


def test_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "stp", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("config", "env", "data"):
        assert command in out


def test_env_reports_versions_and_tools(capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    info = collect_environment()
    assert info["python"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}")
    assert info["torch"] != "not installed"
    for key in (
        "python",
        "torch",
        "transformers",
        "accelerate",
        "datasets",
        "coqtop",
        "lake",
        "gpus",
        "cpus",
    ):
        assert key in out
    # coqtop is installed wherever the tests run (make test installs it)
    assert "Coq Proof Assistant" in info["coqtop"] or "Rocq" in info["coqtop"]


def test_artifacts_are_written_atomically(tmp_path):
    from stp.artifacts import atomic_write_jsonl, read_jsonl

    path = tmp_path / "sub" / "rows.jsonl"
    assert atomic_write_jsonl(path, ({"i": i} for i in range(3))) == 3
    assert list(read_jsonl(path)) == [{"i": 0}, {"i": 1}, {"i": 2}]

    def failing():
        yield {"i": 9}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write_jsonl(path, failing())
    assert list(read_jsonl(path)) == [{"i": 0}, {"i": 1}, {"i": 2}]  # old file intact
    assert [p.name for p in path.parent.iterdir()] == ["rows.jsonl"]  # no temp left behind
