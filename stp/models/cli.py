"""Commands ``stp model init`` (build the offline tiny model) and ``stp train`` (weighted
fine-tuning; run it under ``accelerate launch`` for GPUs, see stp/models/train.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from stp.config import add_config_arguments, config_from_args
from stp.runs import stage_seed


def _init(args: argparse.Namespace) -> int:
    from stp.models.tiny import TinyModelSpec, build_tiny_model

    spec = TinyModelSpec(
        vocab_size=args.vocab_size,
        hidden_size=args.hidden_size,
        num_layers=args.layers,
        num_heads=args.heads,
        intermediate_size=args.intermediate_size,
        max_positions=args.max_positions,
        seed=args.seed,
    )
    out = build_tiny_model(args.corpus, args.out, spec)
    print(f"tiny model written to {out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from stp.models.train import train

    config = config_from_args(args)
    base_model = args.base_model or config.run.base_model
    # Round N's train stage seeds from run.seed, N and the stage: the same seed here makes
    # the model that round would train, which its train stage then keeps.
    seed = (
        config.run.seed if args.round is None else stage_seed(config.run.seed, args.round, "train")
    )
    bars: list[tqdm] = []

    def progress(step: int, total: int) -> None:
        # Made on the first step: train() sets up the process group before any step, and
        # asking PartialState earlier would set it up first, without the CPU flag.
        if not bars:
            bars.append(tqdm(total=total, unit="step", disable=not PartialState().is_main_process))
        bars[0].update(step - bars[0].n)

    out = train(
        base_model,
        args.examples,
        args.out,
        config.training,
        seed=seed,
        progress=progress,
    )
    for bar in bars:
        bar.close()
    if PartialState().is_main_process:
        print(f"model written to {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    model = subparsers.add_parser("model", help="Build models.")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    init = model_sub.add_parser(
        "init",
        help="Build the offline tiny model: a BPE tokenizer trained on a corpus and a small "
        "randomly initialised Llama-style model.",
    )
    init.add_argument("--corpus", nargs="+", type=Path, required=True, help="Text files.")
    init.add_argument("--out", type=Path, required=True, help="Folder to save the model in.")
    init.add_argument("--vocab-size", type=int, default=4096, help="BPE vocabulary size.")
    init.add_argument("--hidden-size", type=int, default=128, help="Model width.")
    init.add_argument("--layers", type=int, default=4, help="Transformer layers.")
    init.add_argument("--heads", type=int, default=4, help="Attention heads.")
    init.add_argument("--intermediate-size", type=int, default=512, help="MLP width.")
    init.add_argument("--max-positions", type=int, default=2048, help="Longest sequence.")
    init.add_argument("--seed", type=int, default=0, help="Initialisation seed.")
    init.set_defaults(func=_init)

    train = subparsers.add_parser(
        "train",
        help="Weighted fine-tuning on {prompt, completion, weight} JSONL (accelerate-aware).",
    )
    train.add_argument(
        "--base-model", help="Model to start from (default: the config's run.base_model)."
    )
    train.add_argument("--examples", type=Path, required=True, help="Training JSONL file.")
    train.add_argument("--out", type=Path, required=True, help="Folder for the trained model.")
    train.add_argument(
        "--round",
        type=int,
        metavar="N",
        help="Train as round N of the config's run does (its seed, from run.seed and N), so "
        "that round's train stage keeps the model: --base-model is round N-1's model (round 0: "
        "run.base_model, or bootstrap/sft_model), --examples round N's train.jsonl, --out round "
        "N's model folder, the same config. Without it the seed is run.seed.",
    )
    add_config_arguments(train, ("run", "training"))
    train.set_defaults(func=_train)
