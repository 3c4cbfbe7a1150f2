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


def test_select_and_train_on_real_verdicts(tmp_path):
    """Hand-written attempts (the sampler is the only part not run here), checked by coqtop,
    selected, embedded and trained on with the real tiny model."""
    from stp.models.tiny import TinyModelSpec, build_tiny_model
    from stp.selfplay.round import select_training_data, train_round_model

    text = tmp_path / "corpus.txt"
    text.write_text("Theorem t : 0 + 0 = 0. Proof. reflexivity. Qed.\n" * 50)
    model = build_tiny_model(
        [text], tmp_path / "model", TinyModelSpec(vocab_size=300, hidden_size=32, num_layers=1)
    )
    ctx = make_round(tmp_path)
    ctx = RoundContext(ctx.config, ctx.layout, 0, str(model), ctx.log)
    directory = ctx.directory
    conjectures = [
        {
            "id": f"c{i}",
            "header": HEADER,
            "formal_statement": f"Theorem c{i} : {i} * 1 = {i}.",
            "seed": "t0",
            "seed_statement": "Theorem t0 : 0 + 0 = 0.",
            "seed_proof": "reflexivity.",
            "lemma": lemma,
            "lemma_text": None if lemma is None else f"{lemma} : forall n, n * 1 = n",
            "key": f"{i:032x}",
        }
        for i, lemma in ((1, None), (2, "Nat.mul_1_r"))
    ]
    atomic_write_jsonl(directory / "conjectures.jsonl", conjectures)
    dataset = list(read_jsonl(directory / "targets.jsonl"))
    atomic_write_jsonl(
        ctx.layout.targets, [{k: v for k, v in t.items() if k != "kind"} for t in dataset]
    )
    targets = dataset[:2] + [
        {**c, "informal": None, "forbidden": [], "kind": "conjecture"} for c in conjectures
    ]
    atomic_write_jsonl(directory / "targets.jsonl", targets)
    write_marker(
        directory,
        "targets",
        [directory / "targets.jsonl"],
        0.0,
        {"k": 8, "chunk_targets": 2, "chunks": 2},
    )
    correct = {"t0": 1, "t1": 8, "c1": 2, "c2": 1}  # correct attempts out of 8
    for index in range(2):
        write_chunk(
            directory / "attempts",
            index,
            (
                {
                    "target": t["id"],
                    "proof": "reflexivity." if j < correct[t["id"]] else "lia.",
                    "tokens": 2,
                }
                for t in targets[2 * index : 2 * index + 2]
                for j in range(8)
            ),
        )
    for path in (directory / "verified").glob("*"):
        path.unlink()
    verify_attempts(ctx)
    info = select_training_data(ctx)

    stats = {r["target"]: r for r in read_jsonl(directory / "stats.jsonl")}
    assert {t: r["pass_rate"] for t, r in stats.items()} == {
        "t0": 1 / 8,
        "t1": 1.0,
        "c1": 2 / 8,
        "c2": 1 / 8,
    }
    # prover examples: pass rate in (0, 1/2]; t1 (always proved) teaches nothing
    prover = list(read_jsonl(directory / "prover.jsonl"))
    assert sorted(r["target"] for r in prover) == ["c1", "c2", "t0"]
    assert all(r["completion"].startswith("reflexivity.") for r in prover)
    # conjecturer examples: c1 (trivial lemma) is barely provable; c2's proof never uses its lemma
    conjecturer = list(read_jsonl(directory / "conjecturer.jsonl"))
    assert [r["target"] for r in conjecturer] == ["c1"]
    assert (
        conjecturer[0]["weight"] == 1.0
    )  # the only conjecture: every unproved statement's nearest
    assert (
        "Theorem c1" not in conjecturer[0]["prompt"]
        and "c1 : 1 * 1 = 1." in conjecturer[0]["completion"]
    )
    assert info["train_examples"] == 4 == len(list(read_jsonl(directory / "train.jsonl")))

    trained = train_round_model(ctx)
    assert trained["trained"] is True and (directory / "model" / "config.json").is_file()
