"""Stage markers, chunked outputs, the run lock and config pre-flight checks."""

import json
import subprocess
import sys
import textwrap
import time

import pytest

from stp.artifacts import atomic_write_jsonl, chunk_done, chunk_path, read_jsonl, write_chunk
from stp.cli import main
from stp.config import ConfigError, load_config
from stp.errors import VerifierUnavailableError
from stp.selfplay.lock import RunLockedError, run_lock
from stp.selfplay.targets import preflight
from stp.stages import fingerprint, read_stage, run_stage


def counting_stage(directory, calls, rows=3, inputs=None, legacy_ok=True):
    out = directory / "rows.jsonl"

    def body():
        calls.append(1)
        return {"rows": atomic_write_jsonl(out, ({"i": i} for i in range(rows)))}

    return run_stage(
        directory, "demo", [out], body, log=lambda _: None, inputs=inputs, legacy_ok=legacy_ok
    )


def test_a_stage_is_redone_when_its_inputs_change(tmp_path):
    calls = []
    first = fingerprint({"window_high": 0.25}, [])
    counting_stage(tmp_path, calls, inputs=first)
    counting_stage(tmp_path, calls, inputs=first)
    assert len(calls) == 1
    upstream = counting_stage(tmp_path / "up", [])
    second = fingerprint({"window_high": 0.25}, [upstream])  # now it reads another stage
    counting_stage(tmp_path, calls, rows=2, inputs=second)
    assert len(calls) == 2 and read_stage(tmp_path, "demo").info == {"rows": 2}
    assert read_stage(tmp_path, "demo").inputs == second


def test_markers_of_earlier_versions_are_trusted_unless_the_stage_says_otherwise(tmp_path):
    calls = []
    counting_stage(tmp_path, calls)  # a marker without a fingerprint, as earlier versions wrote
    assert read_stage(tmp_path, "demo").inputs is None
    counting_stage(tmp_path, calls, inputs=fingerprint({"a": 1}, []))
    assert len(calls) == 1
    counting_stage(tmp_path, calls, inputs=fingerprint({"a": 1}, []), legacy_ok=False)
    assert len(calls) == 2


def test_chunks_made_from_other_inputs_are_not_kept(tmp_path):
    """A chunked stage killed midway keeps its chunks for a rerun on the same inputs only."""
    out = tmp_path / "chunks"

    def chunked(inputs, fail_after):
        def body():
            for index in range(3):
                if not chunk_done(out, index):
                    write_chunk(out, index, [{"inputs": inputs, "chunk": index}])
                if index == fail_after:
                    raise OSError("killed")
            return {}

        return run_stage(tmp_path, "gen", [out], body, log=lambda _: None, inputs=inputs)

    with pytest.raises(OSError):
        chunked("a", fail_after=0)
    chunked("a", fail_after=None)  # resumes: chunk 0 kept
    assert [json.loads(chunk_path(out, i).read_text())["inputs"] for i in range(3)] == ["a"] * 3
    with pytest.raises(OSError):
        chunked("b", fail_after=1)  # inputs changed: everything of "a" is gone
    assert [json.loads(chunk_path(out, i).read_text())["inputs"] for i in range(2)] == ["b"] * 2
    assert not chunk_path(out, 2).exists()


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


# Missing tools are named by absolute paths that exist nowhere, so the checks fail the same
# way on a machine that has Lean or Isabelle installed.
@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (
            ["verification.coqtop=/nonexistent/coqtop"],
            VerifierUnavailableError,
            r"'/nonexistent/coqtop' not found.*apt-get install -y coq",
        ),
        (
            ["verification.backend=isabelle", "verification.isabelle_cmd=/nonexistent/isabelle"],
            VerifierUnavailableError,
            r"Isabelle launcher '/nonexistent/isabelle' not found: install Isabelle",
        ),
        (
            ["verification.backend=lean", "verification.repl_cmd=/nonexistent/lake exe repl"],
            VerifierUnavailableError,
            r"Lean REPL command '/nonexistent/lake exe repl' not found: install Lean",
        ),
        pytest.param(
            ["run.base_model=/nonexistent/model"],
            ConfigError,
            r"run\.base_model: model folder .* not found",
            marks=pytest.mark.rocq,  # the local coqtop is checked first
        ),
        pytest.param(
            ["run.targets=nosuchset:valid"],
            ConfigError,
            r"run\.targets: unknown data set 'nosuchset:valid'",
            marks=pytest.mark.rocq,  # the local coqtop is checked first
        ),
        pytest.param(
            ["run.targets=/nonexistent/x.jsonl"],
            ConfigError,
            r"run\.targets: statement file .* not found",
            marks=pytest.mark.rocq,  # the local coqtop is checked first
        ),
    ],
)
def test_preflight_names_what_is_missing(tmp_path, overrides, error, message):
    model = tmp_path / "model"
    model.mkdir()
    config = load_config(
        None, [f"run.base_model={model}", f"verification.lean_project={tmp_path}", *overrides]
    )
    with pytest.raises(error, match=message):
        preflight(config)


def test_preflight_leaves_the_proof_assistant_to_the_cluster_when_verification_runs_there(
    tmp_path,
):
    """A GPU head node without Lean starts a round whose proofs are checked on the cluster's
    CPU nodes (each checks its own installation when it joins)."""
    model = tmp_path / "model"
    model.mkdir()
    lean_without_lake = [
        f"run.base_model={model}",
        "verification.backend=lean",
        "verification.repl_cmd=/nonexistent/lake exe repl",
        f"verification.lean_project={tmp_path}",
        "run.corpus=null",
        "run.targets=[minif2f:valid]",
    ]
    with pytest.raises(VerifierUnavailableError):
        preflight(load_config(None, lean_without_lake))
    preflight(load_config(None, [*lean_without_lake, "verification.ray_address=HEAD:6379"]))


@pytest.mark.rocq
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
    assert target.forbidden == ("Nat.add_0_r",)
