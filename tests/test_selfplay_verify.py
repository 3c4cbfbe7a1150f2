"""The verify stage on real coqtop, without a model: dedup with multiplicity, forbidden
names, and chunk-level resume after a failure (a full disk) mid-stage."""

import dataclasses
import errno

import pytest

from stp import prove
from stp.artifacts import atomic_write_jsonl, chunk_done, chunk_path, read_jsonl, write_chunk
from stp.config import load_config
from stp.errors import DataError
from stp.runs import RunLayout
from stp.selfplay.context import Round
from stp.selfplay.final import final_retrain
from stp.selfplay.history import RunHistory
from stp.selfplay.records import DATASET, Target
from stp.selfplay.round import select, summary, train, verify
from stp.stages import read_stage, write_marker

pytestmark = pytest.mark.rocq  # every test here runs coqtop

HEADER = "Require Import Arith.\n"


def make_round(tmp_path, model: str = "unused") -> Round:
    config = load_config(
        None,
        [
            f"run.output_dir={tmp_path}",
            "run.name=v",
            "run.corpus=null",
            "run.targets=[minif2f:valid]",
            f"run.base_model={model}",
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
    return Round(
        config=config,
        layout=layout,
        index=0,
        model=model,
        dataset=[Target.from_dict(t) for t in targets],
        history=RunHistory(),
        log=lambda _: None,
    )


def test_verify_counts_multiplicity_rejects_forbidden_names_and_resumes_by_chunk(
    tmp_path, monkeypatch
):
    ctx = make_round(tmp_path)
    verified = ctx.directory / "verified"
    real_write_chunk = prove.write_chunk

    def disk_full_on_second_chunk(directory, index, rows):
        if index == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_chunk(directory, index, rows)

    monkeypatch.setattr(prove, "write_chunk", disk_full_on_second_chunk)
    with pytest.raises(OSError, match="No space"):
        verify(ctx)
    assert chunk_done(verified, 0) and not chunk_done(verified, 1)
    first_chunk = chunk_path(verified, 0).read_bytes()

    monkeypatch.setattr(prove, "write_chunk", real_write_chunk)
    info = verify(ctx)
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


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> str:
    """A one-layer model built offline in about a second (untrained: it is only fine-tuned
    and embedded here, never sampled)."""
    from stp.models.tiny import TinyModelSpec, build_tiny_model

    folder = tmp_path_factory.mktemp("small")
    text = folder / "corpus.txt"
    text.write_text("Theorem t : 0 + 0 = 0. Proof. reflexivity. Qed.\n" * 50)
    spec = TinyModelSpec(vocab_size=300, hidden_size=32, num_layers=1)
    return str(build_tiny_model([text], folder / "model", spec))


def play_round(ctx: Round, correct: dict[str, int], proof: str = "reflexivity.") -> dict:
    """Round ``ctx`` with hand-written attempts (the sampler is the only part not run):
    ``correct[target]`` of 8 attempts are ``proof``, the rest fail. Checked by coqtop,
    selected and trained on with the real tiny model; returns the select stage's figures."""
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
        for i, lemma in ((1, None), (2, "Nat.mul_1_r"), (3, None))
    ]
    atomic_write_jsonl(directory / "conjectures.jsonl", conjectures)
    # c3 was closed by `auto` at the gate: no proof attempts, never a training example
    gate = [{"conjecture": c, "outcome": "passed", "check": "", "detail": ""} for c in ("c1", "c2")]
    gate.append({"conjecture": "c3", "outcome": "trivial", "check": "auto.", "detail": ""})
    atomic_write_jsonl(directory / "gate.jsonl", gate)
    conjectures = conjectures[:2]
    dataset = [t.to_dict() for t in ctx.dataset]
    atomic_write_jsonl(ctx.layout.targets, dataset)
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
    for index in range(2):
        write_chunk(
            directory / "attempts",
            index,
            (
                {"target": t["id"], "proof": proof if j < correct[t["id"]] else "lia.", "tokens": 2}
                for t in targets[2 * index : 2 * index + 2]
                for j in range(8)
            ),
        )
    for path in (directory / "verified").glob("*"):
        path.unlink()
    verify(ctx)
    return select(ctx)


def finish(ctx: Round, selected: dict) -> None:
    """Markers of the stages a later round (and the final re-training) reads."""
    directory = ctx.directory
    write_marker(directory, "conjectures", [directory / "conjectures.jsonl"], 0.0)
    selected_files = ("stats.jsonl", "prover.jsonl", "conjecturer.jsonl", "train.jsonl")
    write_marker(directory, "select", [directory / f for f in selected_files], 0.0, selected)
    # The round's own fine-tune is tested above; what later rounds read is its record.
    write_marker(directory, "train", [], 0.0, {"model": ctx.model, "trained": False})
    summary(ctx)
    write_marker(directory, "summary", [directory / "summary.json"], 0.0)


def test_select_and_train_on_real_verdicts(tmp_path, small_model):
    ctx = make_round(tmp_path, small_model)
    directory = ctx.directory
    info = play_round(ctx, {"t0": 1, "t1": 8, "c1": 2, "c2": 1})

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

    trained = train(ctx)
    assert trained["trained"] is True and (directory / "model" / "config.json").is_file()


def test_conjectures_past_the_gate_train_the_conjecturer_at_their_own_weight(tmp_path, small_model):
    ctx = make_round(tmp_path, small_model)
    ctx.config.selection.gate_passed_weight = 0.25
    info = play_round(ctx, {"t0": 1, "t1": 8, "c1": 2, "c2": 0})
    conjecturer = {r["target"]: r for r in read_jsonl(ctx.directory / "conjecturer.jsonl")}
    # c1 is selected (weight 1), c2 passed the gate and was never proved, c3 failed the gate
    assert {t: r["weight"] for t, r in conjecturer.items()} == {"c1": 1.0, "c2": 0.25}
    assert "c2 : 2 * 1 = 2." in conjecturer["c2"]["completion"]
    assert info["conjecturer_examples"] == 1 and info["gate_passed_examples"] == 1
    trained = [r for r in read_jsonl(ctx.directory / "train.jsonl") if r["weight"] == 0.25]
    assert [r["completion"] for r in trained] == [conjecturer["c2"]["completion"]]


@pytest.mark.parametrize(("ceiling", "examples"), [(None, {"c1", "c2"}), (0.5, {"c1"})])
def test_a_conjecture_the_prover_finds_easy_trains_the_conjecturer_only_without_a_ceiling(
    tmp_path, small_model, ceiling, examples
):
    ctx = make_round(tmp_path, small_model)
    ctx.config.selection.gate_passed_weight = 0.25
    ctx.config.selection.gate_passed_max_pass_rate = ceiling
    info = play_round(ctx, {"t0": 1, "t1": 8, "c1": 2, "c2": 8})  # c2: pass rate 1
    conjecturer = {r["target"] for r in read_jsonl(ctx.directory / "conjecturer.jsonl")}
    assert conjecturer == examples
    assert info["gate_passed_examples"] == len(examples) - 1


@pytest.mark.parametrize(
    ("until", "well_typed_samples", "examples"),
    [(None, 9, {"c1", "c2"}), (0.5, 4, {"c1", "c2"}), (0.5, 5, {"c1"})],
)
def test_conjectures_past_the_gate_stop_training_the_conjecturer_once_the_form_is_learned(
    tmp_path, small_model, until, well_typed_samples, examples
):
    """With ``gate_passed_until_well_typed``, a round in which that share of the conjecturer's
    samples (here of 10) is well-typed makes no past-gate examples; the selected one stays."""
    ctx = make_round(tmp_path, small_model)
    ctx.config.selection.gate_passed_weight = 0.25
    ctx.config.selection.gate_passed_until_well_typed = until
    ctx.directory.mkdir(parents=True, exist_ok=True)
    write_marker(ctx.directory, "conjectures", [], 0.0, {"generated": 10, "new": 3})
    write_marker(
        ctx.directory, "gate", [], 0.0, {"checked": True, "well_typed_samples": well_typed_samples}
    )
    info = play_round(ctx, {"t0": 1, "t1": 8, "c1": 2, "c2": 0})
    conjecturer = {r["target"] for r in read_jsonl(ctx.directory / "conjecturer.jsonl")}
    assert conjecturer == examples
    assert info["gate_passed_examples"] == len(examples) - 1


def test_final_retrain_needs_a_correct_proof(tmp_path, small_model):
    ctx = make_round(tmp_path, small_model)
    finish(ctx, play_round(ctx, {"t0": 0, "t1": 0, "c1": 0, "c2": 0}))
    assert ctx.layout.finished_rounds() == [0]
    with pytest.raises(DataError, match="no correct proof yet"):
        final_retrain(ctx.config, log=lambda _: None)


def test_final_retrain_trains_on_every_round_and_again_after_more_rounds(tmp_path, small_model):
    first = make_round(tmp_path, small_model)
    finish(first, play_round(first, {"t0": 1, "t1": 8, "c1": 2, "c2": 0}))
    lines: list[str] = []
    out = final_retrain(first.config, log=lines.append)
    examples = list(read_jsonl(out.parent / "train.jsonl"))
    assert sorted(e["completion"][:12] for e in examples) == ["reflexivity."] * 3
    assert (out / "config.json").is_file()

    lines.clear()
    final_retrain(first.config, log=lines.append)  # nothing new: both steps skipped
    assert sum("done already" in line for line in lines) == 2

    # One more round, with other proofs: the final model must be trained again on both.
    second = dataclasses.replace(first, index=1)
    finish(second, play_round(second, {"t0": 2, "t1": 0, "c1": 0, "c2": 1}, "simpl. reflexivity."))
    assert first.layout.finished_rounds() == [0, 1]
    before = read_stage(out.parent, "train")
    lines.clear()
    final_retrain(first.config, log=lines.append)
    assert not any("done already" in line for line in lines)
    examples = list(read_jsonl(out.parent / "train.jsonl"))
    assert len(examples) == 5  # t0 twice, t1, c1, c2
    after = read_stage(out.parent, "train")
    assert before is not None and after is not None and after.inputs != before.inputs
    assert read_stage(out.parent, "collect").info["rounds"] == 2
