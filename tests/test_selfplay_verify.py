"""The verify stage on real coqtop, without a model: dedup with multiplicity, forbidden
names, and chunk-level resume after a failure (a full disk) mid-stage."""

import errno

import pytest

from stp.artifacts import atomic_write_jsonl, read_jsonl
from stp.config import load_config
from stp.selfplay import round as round_module
from stp.selfplay.layout import DATASET, RunLayout
from stp.selfplay.round import RoundContext, verify_attempts
from stp.selfplay.stages import chunk_done, chunk_path, write_chunk, write_marker

HEADER = "Require Import Arith.\n"


def make_round(tmp_path) -> RoundContext:
    config = load_config(
        None,
        [
            f"run.output_dir={tmp_path}",
            "run.name=v",
            "run.corpus=null",
            "run.targets=[minif2f:valid]",
            "verification.workers=1",
        ],
    )
    layout = RunLayout.of(config)
    directory = layout.round_dir(0)
    targets = [
        {
            "id": f"t{i}",
            "header": HEADER,
            "formal_statement": f"Theorem t{i} : {i} + 0 = {i}.",
            "informal": None,
            "forbidden": ["Nat.add_0_r"],
            "kind": DATASET,
        }
        for i in range(4)
    ]
    atomic_write_jsonl(directory / "targets.jsonl", targets)
    write_marker(
        directory,
        "targets",
        [directory / "targets.jsonl"],
        0.0,
        {"k": 4, "chunk_targets": 2, "chunks": 2},
    )
    proofs = ["reflexivity.", "reflexivity.", "apply Nat.add_0_r.", "discriminate."]
    for index in range(2):
        write_chunk(
            directory / "attempts",
            index,
            (
                {"target": t["id"], "proof": p, "tokens": 3}
                for t in targets[2 * index : 2 * index + 2]
                for p in proofs
            ),
        )
    return RoundContext(config=config, layout=layout, index=0, model="unused", log=lambda _: None)


def test_verify_counts_multiplicity_rejects_forbidden_names_and_resumes_by_chunk(
    tmp_path, monkeypatch
):
    ctx = make_round(tmp_path)
    verified = ctx.directory / "verified"
    real_write_chunk = round_module.write_chunk

    def disk_full_on_second_chunk(directory, index, rows):
        if index == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_chunk(directory, index, rows)

    monkeypatch.setattr(round_module, "write_chunk", disk_full_on_second_chunk)
    with pytest.raises(OSError, match="No space"):
        verify_attempts(ctx)
    assert chunk_done(verified, 0) and not chunk_done(verified, 1)
    first_chunk = chunk_path(verified, 0).read_bytes()

    monkeypatch.setattr(round_module, "write_chunk", real_write_chunk)
    info = verify_attempts(ctx)
    assert chunk_path(verified, 0).read_bytes() == first_chunk  # finished work kept as is
    rows = [r for i in range(2) for r in read_jsonl(chunk_path(verified, i))]
    by_proof = {(r["target"], r["proof"]): r for r in rows}
    assert len(rows) == 4 * 3  # three distinct proofs per target
    for i in range(4):
        assert by_proof[(f"t{i}", "reflexivity.")]["count"] == 2
        assert by_proof[(f"t{i}", "reflexivity.")]["verdict"] == "proved"
        # the target's own library lemma is forbidden: unsound without running the checker
        assert by_proof[(f"t{i}", "apply Nat.add_0_r.")]["verdict"] == "unsound"
        assert by_proof[(f"t{i}", "discriminate.")]["verdict"] == "failed"
    assert info["distinct_proofs"] == 12 and info["proved_attempts"] == 8
