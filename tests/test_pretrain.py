"""The pre-trained tiny model: built once, reused while its inputs are unchanged, rebuilt when
a source file or a setting changes (bootstrap's ``ensure_base_model`` on tiny settings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stp.config import STPConfig, load_config
from stp.data.rocq_corpus import source_files
from stp.errors import DataError
from stp.models.pretrain import MARKER, built_digest, text_blocks
from stp.selfplay.bootstrap import ensure_base_model

SOURCE = """Require Import Arith.

Theorem plus_zero : forall n : nat, n + 0 = n.
Proof. intros n. induction n; simpl; auto. Qed.

Lemma mult_one (n : nat) : n * 1 = n.
Proof. now rewrite Nat.mul_1_r. Qed.
"""


def make_sources(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        (folder / f"F{i}.v").write_text(SOURCE.replace("plus_zero", f"plus_zero_{i}") * 3)
    (folder / "notes.txt").write_text("not a Rocq source")
    return folder


def tiny_config(tmp_path: Path, sources: Path, *extra: str) -> STPConfig:
    return load_config(
        None,
        [
            f"run.corpus={tmp_path / 'corpus'}",
            f"run.base_model={tmp_path / 'model'}",
            "run.init_model=true",
            f"tiny_model.pretrain_sources=[{sources}]",
            "tiny_model.vocab_size=300",
            "tiny_model.hidden_size=16",
            "tiny_model.num_layers=1",
            "tiny_model.num_heads=2",
            "tiny_model.intermediate_size=32",
            "tiny_model.pretrain_batch_size=4",
            "tiny_model.pretrain_block_tokens=64",
            *extra,
        ],
    )


def build(config: STPConfig) -> list[str]:
    lines: list[str] = []
    ensure_base_model(config, lines.append)
    return lines


def test_pretrained_model_is_reused_and_rebuilt_when_its_inputs_change(tmp_path: Path) -> None:
    sources = make_sources(tmp_path / "src")
    config = tiny_config(tmp_path, sources)
    model = tmp_path / "model"

    first = build(config)
    assert any("pre-training on 4 source files" in line for line in first)
    digest = built_digest(model)
    assert digest is not None
    steps = [json.loads(line) for line in (model / "train_log.jsonl").read_text().splitlines()]
    assert steps and all(row["loss"] > 0 for row in steps)
    assert not list(tmp_path.glob(".model.*"))  # no work folder left behind
    weights = (model / "model.safetensors").read_bytes()

    assert build(config) == []  # unchanged inputs: nothing built
    assert (model / "model.safetensors").read_bytes() == weights

    (sources / "F2.v").write_text(SOURCE + "\n(* edited *)\n")
    assert any("pre-training" in line for line in build(config))
    assert built_digest(model) not in (None, digest)
    after_edit = built_digest(model)

    longer = tiny_config(tmp_path, sources, "tiny_model.pretrain_epochs=2")
    assert any("pre-training" in line for line in build(longer))
    assert built_digest(model) not in (None, digest, after_edit)
    record = json.loads((model / MARKER).read_text())
    assert record["training"]["epochs"] == 2.0 and record["sources"] == 4


def test_killed_build_leaves_the_previous_model_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = make_sources(tmp_path / "src")
    config = tiny_config(tmp_path, sources)
    build(config)
    digest = built_digest(tmp_path / "model")

    def killed(*args: object) -> Path:
        raise KeyboardInterrupt

    from stp.selfplay import bootstrap

    changed = tiny_config(tmp_path, sources, "tiny_model.pretrain_learning_rate=0.01")
    with monkeypatch.context() as patch:
        patch.setattr(bootstrap, "train_model", killed)
        with pytest.raises(KeyboardInterrupt):
            build(changed)
    assert built_digest(tmp_path / "model") == digest  # the old model, whole
    partial = tmp_path / ".model.partial"
    assert (partial / "init" / "config.json").is_file()
    assert built_digest(partial) not in (None, digest)
    build(changed)  # resumes from the partial folder and replaces the model
    assert built_digest(tmp_path / "model") not in (None, digest)
    assert not partial.exists()


def test_without_sources_the_model_is_only_initialised_on_the_corpus_text(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "corpus.txt").write_text(SOURCE * 20)
    config = load_config(
        None,
        [
            f"run.corpus={tmp_path / 'corpus'}",
            f"run.base_model={tmp_path / 'model'}",
            "run.init_model=true",
            "tiny_model.vocab_size=300",
            "tiny_model.hidden_size=16",
            "tiny_model.num_layers=1",
        ],
    )
    assert build(config) and not (tmp_path / "model" / "train_log.jsonl").exists()
    assert json.loads((tmp_path / "model" / MARKER).read_text())["sources"] == 0
    assert build(config) == []


def test_text_blocks_cut_at_line_ends_within_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "A.v"
    path.write_text("a" * 25 + "\n" + "short line\n\n\n" + "b" * 9 + "\n")
    blocks = list(text_blocks([path], 12))
    assert all(len(b) <= 12 for b in blocks)
    assert "".join(blocks) == path.read_text()
    assert "short line\n" in blocks[-2]


def test_source_files_expand_folders_and_refuse_missing_paths(tmp_path: Path) -> None:
    sources = make_sources(tmp_path / "src")
    files = source_files([str(sources), str(sources / "F0.v")])
    assert [f.name for f in files] == ["F0.v", "F1.v", "F2.v", "F3.v", "F0.v"]
    with pytest.raises(DataError, match="neither"):
        source_files([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no \.v files"):
        source_files([str(tmp_path / "empty")])


def test_initial_fine_tune_is_redone_when_the_base_model_is_rebuilt(tmp_path: Path) -> None:
    from stp.data.benchmarks import Statement
    from stp.data.corpus import ProvedTheorem, write_corpus
    from stp.runs import RunLayout
    from stp.selfplay.bootstrap import bootstrap

    def theorem(name: str, split: str) -> ProvedTheorem:
        statement = Statement(
            name=name,
            prover="rocq",
            split=split,
            source="test",
            header="Require Import Arith.\n\n",
            formal_statement=f"Theorem {name} : forall n : nat, n + 0 = n.",
        )
        return ProvedTheorem(statement, "intros. lia.", ())

    corpus = tmp_path / "corpus"
    write_corpus(corpus, [theorem("a", "sft"), theorem("b", "selfplay")], [], [])
    sources = make_sources(tmp_path / "src")
    extra = [
        f"run.output_dir={tmp_path / 'runs'}",
        "run.initial_sft=true",
        "run.initial_sft_epochs=1",
        "training.batch_size=2",
    ]
    config = tiny_config(tmp_path, sources, *extra)
    layout = RunLayout.of(config)
    lines: list[str] = []
    bootstrap(config, layout, lines.append)
    assert any("initial fine-tune" in line for line in lines)
    lines.clear()
    bootstrap(config, layout, lines.append)
    assert not any("initial fine-tune" in line for line in lines)  # nothing changed
    (sources / "F1.v").write_text(SOURCE + "\n(* edited *)\n")
    bootstrap(config, layout, lines.append)
    assert any("pre-training" in line for line in lines)
    assert any("initial fine-tune" in line for line in lines)  # on the rebuilt base model
