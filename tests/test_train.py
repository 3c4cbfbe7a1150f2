"""Weighted fine-tuning on the real tiny model: masking, weighting, resume, skip."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from stp.artifacts import read_jsonl
from stp.cli import main
from stp.config import TrainingConfig
from stp.data import DataError, load_benchmark
from stp.errors import TrainingOutputConflict
from stp.languages.rocq import ROCQ
from stp.models.train import CHECKPOINTS, IGNORE_INDEX, partial_dir, tokenize_example, train

REPO = Path(__file__).resolve().parents[1]

# One optimizer step of plain SGD over the whole file: the update is exactly -lr * gradient,
# so equal gradients give equal parameters.
ONE_SGD_STEP = TrainingConfig(
    learning_rate=1.0,
    epochs=1.0,
    batch_size=8,
    optimizer="sgd",
    lr_schedule="constant",
    warmup_ratio=0.0,
    max_grad_norm=0.0,
    max_seq_len=512,
)


def example(index: int, weight: float = 1.0) -> dict[str, object]:
    statement = load_benchmark("minif2f", "rocq", "valid")[index]
    proofs = ["intros. lia.", "nia.", "intros x y. reflexivity.", "simpl. ring."]
    return {
        "prompt": ROCQ.prover_prompt(statement.header, statement.formal_statement),
        "completion": ROCQ.prover_completion(proofs[index % len(proofs)]),
        "weight": weight,
    }


def write_examples(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def weights_of(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(model_dir / "model.safetensors")


def assert_same_weights(a: Path, b: Path, atol: float = 1e-6) -> None:
    left, right = weights_of(a), weights_of(b)
    assert left.keys() == right.keys()
    for name in left:
        torch.testing.assert_close(left[name], right[name], atol=atol, rtol=1e-5, msg=name)


def max_difference(a: Path, b: Path) -> float:
    left, right = weights_of(a), weights_of(b)
    return max((left[name] - right[name]).abs().max().item() for name in left)


def run(tiny_model: Path, tmp_path: Path, name: str, rows: list[dict[str, object]]) -> Path:
    data = write_examples(tmp_path / f"{name}.jsonl", rows)
    return train(str(tiny_model), data, tmp_path / name, ONE_SGD_STEP)


def test_prompt_tokens_are_masked(tiny_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    row = example(0)
    tokenized = tokenize_example(tokenizer, row["prompt"], row["completion"], 1.0, 1024)
    prompt_ids = tokenizer(row["prompt"]).input_ids
    completion_ids = tokenizer(row["completion"], add_special_tokens=False).input_ids
    assert tokenized.input_ids == prompt_ids + completion_ids + [tokenizer.eos_token_id]
    assert tokenized.labels[: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
    assert tokenized.labels[len(prompt_ids) :] == [*completion_ids, tokenizer.eos_token_id]
    cut = tokenize_example(tokenizer, row["prompt"], row["completion"], 1.0, len(prompt_ids) + 2)
    assert cut.labels == [IGNORE_INDEX] * len(prompt_ids) + completion_ids[:2]


def test_zero_weight_example_changes_nothing(tiny_model: Path, tmp_path: Path) -> None:
    with_zero = run(tiny_model, tmp_path, "with_zero", [example(0), example(1, weight=0.0)])
    without = run(tiny_model, tmp_path, "without", [example(0)])
    assert_same_weights(with_zero, without)
    only_zero = run(tiny_model, tmp_path, "only_zero", [example(1, weight=0.0)])
    assert_same_weights(only_zero, tiny_model, atol=0.0)  # no gradient at all: bit-identical
    # ... and the same example with weight 1 does change the model.
    with_one = run(tiny_model, tmp_path, "with_one", [example(0), example(1, weight=1.0)])
    assert max_difference(with_one, without) > 1e-3


def test_a_one_step_job_learns_and_logs_the_rate_it_used(tiny_model: Path, tmp_path: Path) -> None:
    # The rounds' settings (warmup 5%, cosine) on a set that fits one step: a train stage of
    # expert iteration late in a run, when it proved one new statement.
    config = TrainingConfig(learning_rate=2e-4, epochs=4.0, batch_size=16, max_seq_len=512)
    data = write_examples(tmp_path / "one.jsonl", [example(0)])
    out = train(str(tiny_model), data, tmp_path / "one", config)
    assert max_difference(out, tiny_model) > 1e-5
    assert [row["lr"] for row in read_jsonl(out / "train_log.jsonl")] == [2e-4]
    # Longer jobs warm up from 0: the log shows the first step's rate as used.
    data = write_examples(tmp_path / "more.jsonl", [example(i) for i in range(4)] * 20)
    out = train(str(tiny_model), data, tmp_path / "more", replace(config, epochs=1.0))
    rates = [row["lr"] for row in read_jsonl(out / "train_log.jsonl")]
    assert len(rates) == 5 and rates[0] == 0.0 and rates[1] == pytest.approx(2e-4)


def test_doubled_weight_equals_duplicated_example(tiny_model: Path, tmp_path: Path) -> None:
    doubled = run(tiny_model, tmp_path, "doubled", [example(0, weight=2.0), example(1)])
    duplicated = run(tiny_model, tmp_path, "duplicated", [example(0), example(0), example(1)])
    assert_same_weights(doubled, duplicated)
    plain = run(tiny_model, tmp_path, "plain", [example(0), example(1)])
    assert max_difference(doubled, plain) > 1e-3
    # Scaling every weight leaves the normalised loss, hence the step, unchanged.
    scaled = run(tiny_model, tmp_path, "scaled", [example(0, weight=4.0), example(1, weight=2.0)])
    assert_same_weights(scaled, doubled)


def four_examples() -> list[dict[str, object]]:
    return [example(0, 1.0), example(1, 2.0), example(2, 0.5), example(3, 1.0)]


def test_gradient_accumulation_equals_one_big_batch(tiny_model: Path, tmp_path: Path) -> None:
    data = write_examples(tmp_path / "train.jsonl", four_examples())
    big = train(str(tiny_model), data, tmp_path / "big", replace(ONE_SGD_STEP, batch_size=4))
    accumulated_config = replace(ONE_SGD_STEP, batch_size=1, gradient_accumulation_steps=4)
    accumulated = train(str(tiny_model), data, tmp_path / "accumulated", accumulated_config)
    assert json.loads((accumulated / "training.json").read_text())["steps"] == 1
    assert_same_weights(big, accumulated)


def test_loss_goes_down(tiny_model: Path, tmp_path: Path) -> None:
    data = write_examples(tmp_path / "train.jsonl", [example(0), example(1)])
    config = TrainingConfig(learning_rate=3e-3, batch_size=2, epochs=12, max_seq_len=512)
    log = list(
        read_jsonl(train(str(tiny_model), data, tmp_path / "out", config) / "train_log.jsonl")
    )
    assert len(log) == 12
    assert log[-1]["loss"] < 0.7 * log[0]["loss"]


class Killed(Exception):
    pass


def test_resume_after_kill_reaches_the_same_weights(tiny_model: Path, tmp_path: Path) -> None:
    data = write_examples(tmp_path / "train.jsonl", [example(i) for i in range(12)])
    config = TrainingConfig(
        learning_rate=1e-3, batch_size=2, epochs=1.5, save_every_steps=3, max_seq_len=512
    )
    straight = train(str(tiny_model), data, tmp_path / "straight", config)

    def kill_at_step_5(step: int, total: int) -> None:
        assert total == 9  # 18 visits, 2 per step
        if step == 5:
            raise Killed

    with pytest.raises(Killed):
        train(str(tiny_model), data, tmp_path / "resumed", config, progress=kill_at_step_5)
    assert not (tmp_path / "resumed").exists()  # the model folder appears only when whole
    work = partial_dir(tmp_path / "resumed")
    assert [p.name for p in (work / CHECKPOINTS).iterdir()] == ["step-00000003"]
    steps: list[int] = []
    train(
        str(tiny_model), data, tmp_path / "resumed", config, progress=lambda s, t: steps.append(s)
    )
    assert steps == [4, 5, 6, 7, 8, 9]  # went on from the checkpoint of step 3
    assert_same_weights(straight, tmp_path / "resumed")
    straight_log = list(read_jsonl(straight / "train_log.jsonl"))
    resumed_log = list(read_jsonl(tmp_path / "resumed" / "train_log.jsonl"))
    assert [row["step"] for row in resumed_log] == list(range(1, 10))
    for a, b in zip(straight_log, resumed_log, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["lr"] == b["lr"]
    assert not (tmp_path / "resumed" / CHECKPOINTS).exists() and not work.exists()
    assert max_difference(straight, tiny_model) > 1e-4


def test_finished_run_is_skipped_and_conflicts_refused(tiny_model: Path, tmp_path: Path) -> None:
    data = write_examples(tmp_path / "train.jsonl", [example(0), example(1)])
    out = train(str(tiny_model), data, tmp_path / "out", ONE_SGD_STEP)
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 1 and len(record["data_sha256"]) == 64
    before = (out / "model.safetensors").stat().st_mtime_ns
    calls: list[int] = []
    train(str(tiny_model), data, out, ONE_SGD_STEP, progress=lambda s, t: calls.append(s))
    assert calls == [] and (out / "model.safetensors").stat().st_mtime_ns == before
    write_examples(data, [example(0), example(2)])
    with pytest.raises(TrainingOutputConflict, match="other data or settings"):
        train(str(tiny_model), data, out, ONE_SGD_STEP)
    with pytest.raises(TrainingOutputConflict):
        train(str(tiny_model), data, out, replace(ONE_SGD_STEP, learning_rate=0.5))


def test_bad_examples_are_reported(tiny_model: Path, tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"prompt": "p", "completion": "c", "weight": -1}) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:1"):
        train(str(tiny_model), data, tmp_path / "out", ONE_SGD_STEP)


def test_train_cli(tiny_model: Path, tmp_path: Path) -> None:
    data = write_examples(tmp_path / "train.jsonl", [example(0), example(1), example(2)])
    out = tmp_path / "cli"
    argv = ["train", "--base-model", str(tiny_model), "--examples", str(data), "--out", str(out)]
    argv += ["--training.batch_size", "2", "--training.max_seq_len", "512"]
    argv += ["--training.mixed_precision", "no"]  # "no" stays a string, not YAML's false
    assert main(argv) == 0
    assert json.loads((out / "training.json").read_text())["training"]["batch_size"] == 2
    assert (out / "tokenizer.json").is_file()


@pytest.mark.parametrize(
    "path", sorted(Path(__file__).parents[1].glob("configs/accelerate/*.yaml")), ids=str
)
def test_accelerate_configs_parse(path: Path) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    launch = load_config_from_file(str(path))
    if path.stem.startswith("cpu"):
        assert launch.mixed_precision == "no" and launch.use_cpu
    else:
        assert launch.mixed_precision == "bf16" and not launch.use_cpu
