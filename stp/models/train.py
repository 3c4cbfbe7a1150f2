"""Weighted fine-tuning (the expert-iteration step), through accelerate.

The same function runs on the CPU, one GPU, many GPUs and many nodes; accelerate decides which
from its launch config (``configs/accelerate/``)::

    # CPU, or one GPU when there is one
    stp train --base-model artifacts/tiny-rocq-model --examples train.jsonl --out runs/m1
    # one GPU, bf16
    accelerate launch --config_file configs/accelerate/single_gpu.yaml -m stp train \\
        --base-model deepseek-ai/DeepSeek-Prover-V1.5-SFT --examples train.jsonl --out runs/m1 \\
        --training.mixed_precision bf16
    # all GPUs of a node (DDP); deepspeed_zero3.yaml or fsdp.yaml shard a 7B model instead
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml -m stp train ...
    # several nodes: the same line on every node, with --num_machines, --machine_rank,
    # --main_process_ip added (or set in the YAML)

A run's train stages launch the same command themselves with ``training.launcher:
accelerate`` (``stp.selfplay.training``); ``stp train --round N`` seeds as round N does.

Examples are JSONL rows ``{"prompt": str, "completion": str, "weight": float}`` (weight >= 0;
1 when absent). The loss is
the causal-LM cross-entropy on completion tokens only (prompt and padding tokens get label
-100); the completion is followed by the end-of-sequence token, which is trained too.

Normalisation, exactly: for one optimizer step over the set S of examples it draws (all
micro-batches of its gradient accumulation, on all processes),

    loss = sum_{i in S} w_i * sum_{t in completion(i)} CE(i, t)  /  sum_{i in S} w_i * n_i

where n_i is example i's number of completion tokens. Numerator and denominator are both sums
over examples, so an example with weight 2 contributes exactly what two copies of it with
weight 1 contribute, and an example with weight 0 contributes nothing. Each step therefore
learns at the same rate whatever the scale of the weights; what the weights set is each
example's share.

Batches: each optimizer step takes ``batch_size × processes × gradient_accumulation_steps``
examples from a seeded shuffle (one permutation per epoch; a fractional ``epochs`` stops part
way). Within a step the examples are sorted by length before being cut into micro-batches, so
padding is small. The last step is filled up with weight-0 copies of the shortest example
so every process runs the same number of micro-batches.

Output: a run in progress writes into ``.<out>.partial/`` beside ``<out>``: every
``save_every_steps`` steps the full state (model, optimizer, scheduler, RNG) is saved there with
``accelerator.save_state`` under ``checkpoints/``; a restarted run loads the latest one and goes
on from the next step, reaching the same final weights. The finished model (``save_pretrained``:
weights in ``training.save_dtype``, tokenizer), ``train_log.jsonl`` (each step's loss as defined
above, and learning rate) and last ``training.json`` (the run record: base model, sha256 of the
examples, seed, settings, process count, and each file's size) are written there, and the folder
is renamed to ``<out>``: ``<out>`` exists only as a whole model. A run whose record matches
``<out>``'s is skipped; another finished run there is refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedTokenizerBase,
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
)

from stp.artifacts import atomic_write_json, atomic_write_jsonl, file_sha256, read_jsonl
from stp.config import TrainingConfig
from stp.errors import DataError, MissingInput, TrainingOutputConflict

IGNORE_INDEX = -100
MARKER = "training.json"
LOG = "train_log.jsonl"  # per step: weighted mean loss (the docstring's), learning rate
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True, slots=True)
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX on prompt tokens
    weight: float


# ------------------------------------------------------------------------------ data


def load_examples(path: Path) -> list[dict[str, Any]]:
    """The rows of a training JSONL file, checked: prompt and completion strings, weight >= 0."""
    rows = []
    for line_number, row in enumerate(read_jsonl(path), start=1):
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("prompt"), str)
            or not isinstance(row.get("completion"), str)
            or isinstance(row.get("weight", 1.0), bool)
            or not isinstance(row.get("weight", 1.0), int | float)
            or row.get("weight", 1.0) < 0
        ):
            raise DataError(
                f"{path}:{line_number}: expected {{'prompt': str, 'completion': str, "
                f"'weight': number >= 0}}, got {str(row)[:120]}"
            )
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no training examples")
    return rows


def tokenize_example(
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    completion: str,
    weight: float,
    max_seq_len: int,
) -> TokenizedExample:
    """Prompt tokens (with the tokenizer's own special tokens, exactly as the sampler encodes a
    prompt) then completion tokens and end-of-sequence; the end is cut at ``max_seq_len``."""
    prompt_ids = tokenizer(prompt).input_ids
    completion_ids = [
        *tokenizer(completion, add_special_tokens=False).input_ids,
        tokenizer.eos_token_id,
    ]
    input_ids = (prompt_ids + completion_ids)[:max_seq_len]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + completion_ids)[:max_seq_len]
    return TokenizedExample(input_ids=input_ids, labels=labels, weight=float(weight))


def collate(examples: Sequence[TokenizedExample], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors; padding is masked out of attention and of the loss."""
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        length = len(example.input_ids)
        input_ids[row, :length] = torch.tensor(example.input_ids)
        labels[row, :length] = torch.tensor(example.labels)
        attention_mask[row, :length] = 1
    weights = torch.tensor([e.weight for e in examples], dtype=torch.float32)
    return {
        "input_ids": input_ids,
        "labels": labels,
        "attention_mask": attention_mask,
        "weights": weights,
    }


def completion_tokens(example: TokenizedExample) -> int:
    """Tokens that carry a loss: labels after the causal shift that are not ignored."""
    return sum(1 for label in example.labels[1:] if label != IGNORE_INDEX)


def plan_steps(
    examples: Sequence[TokenizedExample],
    epochs: float,
    micro_batch: int,
    micro_batches_per_step: int,
    seed: int,
) -> list[list[list[int]]]:
    """Example indices per optimizer step, per micro-batch (``micro_batches_per_step`` lists
    of ``micro_batch`` indices each). Index -1 marks a weight-0 filler in the last step."""
    count = len(examples)
    visits = math.ceil(epochs * count)
    order: list[int] = []
    for epoch in range(math.ceil(epochs)):
        permutation = list(range(count))
        random.Random(f"{seed}:{epoch}").shuffle(permutation)
        order.extend(permutation)
    order = order[:visits]
    per_step = micro_batch * micro_batches_per_step
    order.extend([-1] * (-len(order) % per_step))
    length = [len(e.input_ids) for e in examples]
    steps = []
    for start in range(0, len(order), per_step):
        chunk = sorted(order[start : start + per_step], key=lambda i: length[i] if i >= 0 else 0)
        steps.append([chunk[j : j + micro_batch] for j in range(0, per_step, micro_batch)])
    return steps


# -------------------------------------------------------------------------- training


def weighted_token_loss_sum(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum_i w_i * sum_t CE(i, t) over the completion tokens of one micro-batch."""
    shifted_logits = logits[:, :-1].float()
    shifted_labels = batch["labels"][:, 1:]
    per_token = F.cross_entropy(
        shifted_logits.reshape(-1, shifted_logits.shape[-1]),
        shifted_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(shifted_labels.shape)
    return (per_token.sum(dim=1) * batch["weights"]).sum()


def run_record(
    base_model: str, examples: Path, config: TrainingConfig, seed: int, processes: int
) -> dict[str, Any]:
    """What a run's result depends on, as ``training.json`` and checkpoints record it. A local
    base model is named by its absolute path, so ``runs/x/model`` and ``/abs/runs/x/model``
    are the same run."""
    local = Path(base_model)
    return {
        "base_model": str(local.resolve()) if local.is_dir() else base_model,
        "data_sha256": file_sha256(examples),
        "seed": seed,
        "processes": processes,  # each step takes batch_size x processes x accumulation
        "training": config.result_settings(),
    }


def partial_dir(out: Path) -> Path:
    """Where the run that will become ``out`` works until its model is whole."""
    return out.parent / f".{out.name}.partial"


def _same_run(record: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(record.get(key) == value for key, value in expected.items())


def _read_record(path: Path) -> dict[str, Any] | None:
    """A run record (``training.json``, a checkpoint's ``meta.json``); None when unreadable."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def is_finished(folder: Path, expected: dict[str, Any]) -> bool:
    """Whether ``folder`` holds the finished model of the run ``expected`` describes, with
    every file the size it had when the run finished."""
    record = _read_record(folder / MARKER)
    if record is None or not _same_run(record, expected):
        return False
    files = record.get("files", {})
    return bool(files) and all(
        (folder / name).is_file() and (folder / name).stat().st_size == size
        for name, size in files.items()
    )


def discard_other_runs(out: Path, expected: dict[str, Any]) -> list[Path]:
    """Make room for the run ``expected``: remove ``out`` unless it is that run's finished
    model, and its partial folder unless that holds checkpoints of that run (training then
    resumes from them). For callers that decided ``out`` must hold exactly this run (a run's
    train stages); ``train`` itself refuses to overwrite. Returns what was removed."""
    removed = []
    if out.exists() and not is_finished(out, expected):
        shutil.rmtree(out)
        removed.append(out)
    partial = partial_dir(out)
    if partial.exists():
        checkpoint = _latest_checkpoint(partial)
        meta = _read_record(checkpoint / "meta.json") if checkpoint is not None else None
        resumable = meta is not None and _same_run(meta, expected)
        if not (resumable or is_finished(partial, expected)):
            shutil.rmtree(partial)
            removed.append(partial)
    return removed


def _read_log(out: Path) -> list[dict[str, Any]]:
    return list(read_jsonl(out / LOG)) if (out / LOG).is_file() else []


def _latest_checkpoint(out: Path) -> Path | None:
    folder = out / CHECKPOINTS
    candidates = sorted(folder.glob("step-*")) if folder.is_dir() else []
    return candidates[-1] if candidates else None


def train(
    base_model: str,
    examples: str | Path,
    out_dir: str | Path,
    config: TrainingConfig,
    *,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Fine-tune ``base_model`` on the weighted ``examples``; returns ``out_dir``, which holds
    the finished model. ``progress(step, total)`` is called after every optimizer step."""
    examples_path = Path(examples)
    if not examples_path.is_file():
        raise MissingInput(f"training examples {examples_path} not found")
    out = Path(out_dir)
    work = partial_dir(out)
    accelerator = Accelerator(
        # Without a GPU, accelerate only forms a process group over CPUs when told to
        # (torchrun --nproc_per_node N -m stp train ... then trains data parallel on CPUs).
        cpu=not torch.cuda.is_available(),
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        # The schedule below counts optimizer steps of the whole job, so it is stepped once
        # per step (accelerate's default steps it once per process).
        step_scheduler_with_optimizer=False,
    )
    world = accelerator.num_processes
    expected = run_record(base_model, examples_path, config, seed, world)
    if out.exists():
        if is_finished(out, expected):
            return out
        raise TrainingOutputConflict(
            f"{out} holds a model trained on other data or settings, or not a whole model; "
            "choose another --out or delete that folder"
        )
    if is_finished(work, expected):  # killed between finishing and the rename
        _publish(accelerator, work, out)
        return out
    deepspeed = accelerator.state.deepspeed_plugin
    if deepspeed is not None:
        # No DataLoader goes through `prepare`, so DeepSpeed learns the batch shape here;
        # the training config, not the launch YAML, is the one source of these numbers.
        deepspeed.deepspeed_config["train_micro_batch_size_per_gpu"] = config.batch_size
        deepspeed.deepspeed_config["gradient_accumulation_steps"] = (
            config.gradient_accumulation_steps
        )
        deepspeed.deepspeed_config["gradient_clipping"] = config.max_grad_norm
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = load_examples(examples_path)
    data = [
        tokenize_example(
            tokenizer, r["prompt"], r["completion"], r.get("weight", 1.0), config.max_seq_len
        )
        for r in rows
    ]
    filler_source = min(range(len(data)), key=lambda i: len(data[i].input_ids))
    filler = dataclasses.replace(data[filler_source], weight=0.0)
    plan = plan_steps(
        data, config.epochs, config.batch_size, config.gradient_accumulation_steps * world, seed
    )
    total_steps = len(plan)

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    optimizer: torch.optim.Optimizer
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
    # The warmup's first step has rate 0: a job of one step must not warm up, or it learns nothing.
    warmup = min(math.ceil(config.warmup_ratio * total_steps), total_steps - 1)
    scheduler = (
        get_cosine_schedule_with_warmup(optimizer, warmup, total_steps)
        if config.lr_schedule == "cosine"
        else get_constant_schedule_with_warmup(optimizer, warmup)
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    start_step = 0
    checkpoint = _latest_checkpoint(work)
    if checkpoint is not None:
        meta = json.loads((checkpoint / "meta.json").read_text())
        if not _same_run(meta, expected):
            raise TrainingOutputConflict(
                f"{checkpoint} is a checkpoint of other data or settings (or another "
                "process count); choose another --out or delete that folder"
            )
        accelerator.load_state(str(checkpoint))
        start_step = int(meta["step"])
    # One row per optimizer step; rows past the checkpoint are recomputed, so dropped here.
    log = [row for row in _read_log(work) if row["step"] <= start_step]

    model.train()
    rank = accelerator.process_index
    for step in range(start_step, total_steps):
        # Process `rank` takes micro-batches rank, rank + world, ...: neighbours in length.
        mine = plan[step][rank::world]
        batches = [
            collate([data[i] if i >= 0 else filler for i in mb], tokenizer.pad_token_id)
            for mb in mine
        ]
        local_weight = sum(
            data[i].weight * completion_tokens(data[i]) for mb in mine for i in mb if i >= 0
        )
        step_weight = accelerator.reduce(
            torch.tensor(local_weight, dtype=torch.float64, device=accelerator.device), "sum"
        ).item()
        # Undo the averaging accelerate (over accumulation) and DDP (over processes) apply,
        # so the gradient is that of the docstring's sum over the whole step.
        scale = config.gradient_accumulation_steps * world / max(step_weight, 1e-12)
        loss_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)
        for batch in batches:
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            with accelerator.accumulate(model):
                logits = model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                ).logits
                micro_loss_sum = weighted_token_loss_sum(logits, batch)
                accelerator.backward(micro_loss_sum * scale)
            loss_sum += micro_loss_sum.detach().double()
        if config.max_grad_norm > 0:
            accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        rate = scheduler.get_last_lr()[0]  # the rate of this step (stepping moves to the next)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        done = step + 1
        loss = accelerator.reduce(loss_sum, "sum").item() / max(step_weight, 1e-12)
        log.append({"step": done, "loss": loss, "lr": rate})
        if done < total_steps and done % config.save_every_steps == 0:
            _save_checkpoint(accelerator, work, done, expected)
            if accelerator.is_main_process:
                atomic_write_jsonl(work / LOG, log)
        if progress is not None:
            progress(done, total_steps)

    accelerator.wait_for_everyone()
    dtype = saved_dtype(config)
    # Every rank takes part in gathering a sharded (ZeRO-3, FSDP) model; ZeRO-3 hands the
    # weights to the main process only (None elsewhere).
    state_dict = accelerator.get_state_dict(model)
    if state_dict is not None:
        state_dict = _cast(state_dict, dtype)
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.save_pretrained(
        work,
        is_main_process=accelerator.is_main_process,
        save_function=accelerator.save,
        state_dict=state_dict,
    )
    if accelerator.is_main_process:
        # save_pretrained names the dtype of the parameters in memory (float32 master weights)
        # in config.json; loaders (vLLM's dtype=auto) should see the dtype on disk.
        unwrapped.config.dtype = str(dtype).removeprefix("torch.")
        unwrapped.config.save_pretrained(work)
        tokenizer.save_pretrained(work)
        shutil.rmtree(work / CHECKPOINTS, ignore_errors=True)  # optimizer states are large
        atomic_write_jsonl(work / LOG, log)
        files = {p.name: p.stat().st_size for p in sorted(work.iterdir()) if p.is_file()}
        record = {**expected, "steps": total_steps, "examples": len(data), "files": files}
        atomic_write_json(work / MARKER, record)
    _publish(accelerator, work, out)
    return out


def saved_dtype(config: TrainingConfig) -> torch.dtype:
    if config.save_dtype == "auto":
        return torch.bfloat16 if config.mixed_precision == "bf16" else torch.float32
    return torch.bfloat16 if config.save_dtype == "bfloat16" else torch.float32


def _cast(state_dict: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Floating-point tensors in ``dtype``; tied weights (one tensor under two names) stay
    one tensor, which the save then stores once."""
    cast: dict[tuple[int, tuple[int, ...]], torch.Tensor] = {}
    result = {}
    for name, tensor in state_dict.items():
        if tensor.is_floating_point():
            key = (tensor.data_ptr(), tuple(tensor.shape))
            if key not in cast:
                cast[key] = tensor.to(dtype)
            tensor = cast[key]
        result[name] = tensor
    return result


def _publish(accelerator: Accelerator, work: Path, out: Path) -> None:
    """Rename the finished ``work`` folder to ``out``: one step, so ``out`` is whole or absent."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        work.rename(out)
    accelerator.wait_for_everyone()


def _save_checkpoint(
    accelerator: Accelerator, out: Path, step: int, record: dict[str, Any]
) -> None:
    """Save the full state to a temporary folder, then rename it into place, so a kill during
    the save leaves the previous checkpoint as the latest; older checkpoints are removed."""
    final = out / CHECKPOINTS / f"step-{step:08d}"
    partial = out / CHECKPOINTS / f".partial-step-{step:08d}"
    if accelerator.is_main_process and partial.exists():  # left by a kill during a save
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_write_json(partial / "meta.json", {**record, "step": step})
        partial.rename(final)
        for older in (out / CHECKPOINTS).glob("step-*"):
            if older != final:
                shutil.rmtree(older)
    accelerator.wait_for_everyone()
