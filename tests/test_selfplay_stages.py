"""Stage markers, chunked outputs, the run lock and config pre-flight checks."""

import json
import subprocess
import sys
import textwrap
import time

import pytest

from stp.artifacts import atomic_write_jsonl, read_jsonl
from stp.cli import main
from stp.config import ConfigError, load_config
from stp.selfplay.lock import RunLockedError, run_lock
from stp.selfplay.stages import chunk_done, chunk_path, read_stage, run_stage, write_chunk
from stp.selfplay.targets import preflight


def counting_stage(directory, calls, rows=3):
    out = directory / "rows.jsonl"

    def body():
        calls.append(1)
        return {"rows": atomic_write_jsonl(out, ({"i": i} for i in range(rows)))}

    return run_stage(directory, "demo", [out], body, log=lambda _: None)


def test_a_whole_stage_is_skipped_and_its_record_kept(tmp_path):
    calls = []
    first = counting_stage(tmp_path, calls)
    second = counting_stage(tmp_path, calls)
    assert len(calls) == 1
    assert first.files == second.files and second.info == {"rows": 3}
    assert first.files["rows.jsonl"]["rows"] == 3


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.unlink(),  # artifact deleted
        lambda p: p.write_text(p.read_text()[:-3]),  # truncated
        lambda p: p.write_text(p.read_text().replace("1", "7")),  # same size, other bytes
        lambda p: (p.parent / "demo.done.json").unlink(),  # killed before the marker
        lambda p: (p.parent / "demo.done.json").write_text("{not json"),  # marker torn
    ],
)
def test_a_damaged_stage_is_redone_not_trusted(tmp_path, damage):
    calls = []
    counting_stage(tmp_path, calls)
    damage(tmp_path / "rows.jsonl")
    assert read_stage(tmp_path, "demo") is None
    counting_stage(tmp_path, calls)
    assert len(calls) == 2
    assert [r["i"] for r in read_jsonl(tmp_path / "rows.jsonl")] == [0, 1, 2]
    assert read_stage(tmp_path, "demo") is not None


def test_a_stage_that_fails_leaves_no_marker(tmp_path):
    def body():
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        run_stage(tmp_path, "demo", [tmp_path / "x.jsonl"], body, log=lambda _: None)
    assert read_stage(tmp_path, "demo") is None
    assert not (tmp_path / "demo.done.json").exists()


def test_chunks_are_trusted_only_when_their_checksum_matches(tmp_path):
    assert not chunk_done(tmp_path, 0)
    assert write_chunk(tmp_path, 0, [{"a": 1}, {"a": 2}]) == 2
    assert chunk_done(tmp_path, 0)
    path = chunk_path(tmp_path, 0)
    path.write_text(path.read_text().replace("2", "3"))
    assert not chunk_done(tmp_path, 0)
    write_chunk(tmp_path, 0, [{"a": 1}])
    assert chunk_done(tmp_path, 0)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from stp.selfplay.lock import run_lock
    with run_lock(Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(60)
    """
)


def test_a_second_invocation_on_a_locked_run_fails_at_once_naming_the_holder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "run")],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        start = time.perf_counter()
        with (
            pytest.raises(RunLockedError, match=rf"pid {holder.pid} on "),
            run_lock(tmp_path / "run"),
        ):
            pass
        assert time.perf_counter() - start < 2
        owner = json.loads((tmp_path / "run" / "run.lock.owner").read_text())
        assert owner["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path / "run"):  # the dead holder's OS lock is gone with it
        pass


def test_lock_is_released_after_use(tmp_path):
    with run_lock(tmp_path):
        pass
    with run_lock(tmp_path):
        assert (tmp_path / "run.lock.owner").is_file()
    assert not (tmp_path / "run.lock.owner").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["verification.coqtop=/nonexistent/coqtop"], r"verification\.coqtop: .*not found"),
        (["verification.backend=isabelle"], r"verification\.isabelle_cmd: 'isabelle' not found"),
        (["verification.backend=lean"], r"verification\.repl_cmd: 'lake' not found"),
        (["run.base_model=/nonexistent/model"], r"run\.base_model: model folder .* not found"),
        (["run.targets=nosuchset:valid"], r"run\.targets: unknown data set 'nosuchset:valid'"),
        (["run.targets=/nonexistent/x.jsonl"], r"run\.targets: statement file .* not found"),
    ],
)
def test_preflight_names_what_is_missing(tmp_path, overrides, message):
    model = tmp_path / "model"
    model.mkdir()
    config = load_config(None, [f"run.base_model={model}", *overrides])
    with pytest.raises(ConfigError, match=message):
        preflight(config)


def test_stp_round_with_a_missing_model_fails_with_one_line(tmp_path, capsys):
    code = main(
        [
            "round",
            "--set",
            f"run.output_dir={tmp_path}",
            "--set",
            "run.base_model=/nonexistent/model",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "run.base_model" in err and "stp model init" in err
    assert not (tmp_path / "tiny-rocq").exists()  # nothing was started


def test_targets_from_a_statement_file_keep_their_forbidden_names(tmp_path):
    from stp.config import load_config
    from stp.selfplay.targets import dataset_targets

    row = {
        "name": "stp_add_0_r",
        "split": "heldout",
        "source": "coq-stdlib",
        "header": "Require Import Arith.\n",
        "formal_statement": "Theorem stp_add_0_r : forall n : nat, n + 0 = n.",
        "forbidden_names": ["Nat.add_0_r"],
    }
    path = tmp_path / "heldout.jsonl"
    path.write_text(json.dumps(row) + "\n")
    config = load_config(None, [f"run.targets=[{path}]", "run.corpus=null"])
    (target,) = dataset_targets(config)
    assert target["forbidden"] == ["Nat.add_0_r"]
