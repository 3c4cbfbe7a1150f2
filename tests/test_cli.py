import json
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


@pytest.mark.rocq
def test_env_reports_versions_and_tools(capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    info = collect_environment()
    assert info["python"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}")
    assert info["torch"] != "not installed"
    assert [float(x) >= 0 for x in info["load average"].split()] == [True] * 3
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


def test_each_command_offers_only_the_config_sections_it_reads(capsys):
    def flags(*command):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        return capsys.readouterr().out

    verify = flags("verify")
    assert "--verification.timeout_s" in verify
    assert "--training." not in verify and "--selection." not in verify
    assert "--sampling." not in verify
    round_help = flags("round")
    assert "--selection.window_high" in round_help and "--training.epochs" in round_help
    assert "--evaluation." not in round_help
    evaluation = flags("eval")
    assert "--evaluation.samples" in evaluation and "--training." not in evaluation
    assert "--training.epochs" in flags("config", "show")


@pytest.mark.rocq
def test_stp_verify_keeps_forbidden_names(tmp_path):
    """A proof citing the statement's own library copy is unsound through the CLI too."""
    rows = [
        {
            "id": id_,
            "header": "Require Import Arith.\n",
            "formal_statement": "Theorem add_0_r' (n : nat) : n + 0 = n.",
            "proof": proof,
            "forbidden_names": ["Nat.add_0_r"],
        }
        for id_, proof in (("cites", "apply Nat.add_0_r."), ("own", "induction n; auto."))
    ]
    source = tmp_path / "proofs.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "results.jsonl"
    assert main(["verify", str(source), "--out", str(out), "--workers", "1"]) == 0
    verdicts = {r["id"]: r["verdict"] for r in map(json.loads, out.read_text().splitlines())}
    assert verdicts == {"cites": "unsound", "own": "proved"}


@pytest.mark.rocq
def test_a_user_error_is_one_line_and_an_internal_failure_keeps_its_traceback(
    tmp_path, monkeypatch, capsys
):
    assert main(["verify", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing.jsonl not found" in err

    from stp.verify import cli as verify_cli

    def broken(path, backend):
        raise FileNotFoundError("an internal bug, not the user's doing")

    monkeypatch.setattr(verify_cli, "read_jobs", broken)
    source = tmp_path / "proofs.jsonl"
    source.write_text("")
    with pytest.raises(FileNotFoundError, match="internal bug"):
        main(["verify", str(source), "--out", str(tmp_path / "o"), "--workers", "1"])
