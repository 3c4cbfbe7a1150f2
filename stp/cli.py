"""The ``stp`` command: thin entry points over the library.

    stp env                          versions and hardware, for bug reports
    stp data list                    bundled benchmarks with counts per split
    stp config show --config C       the merged, resolved config
    stp model init --corpus F --out D  build the offline tiny model
    stp train --examples F --out D   weighted fine-tuning (under `accelerate launch` on GPUs)
    stp verify IN.jsonl --out R.jsonl check proofs (rocq, lean)
    stp verify-workers --address A --cpus N  serve as a verifier node of a Ray cluster
    stp eval --config C              pass@k of a model on a benchmark, with a report

Each command group lives next to the code it drives and registers itself here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from stp.config import add_config_arguments, config_from_args, dump_config
from stp.errors import UserError

# Modules with a `register(subparsers)` function, one per command group.
COMMAND_MODULES: tuple[str, ...] = (
    "stp.envinfo",
    "stp.data.cli",
    "stp.models.cli",
    "stp.verify.cli",
    "stp.eval.cli",
    "stp.selfplay.cli",
)


def _register_config(subparsers: argparse._SubParsersAction) -> None:
    config = subparsers.add_parser("config", help="Inspect configurations.")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    show = config_sub.add_parser("show", help="Print the merged, resolved config as YAML.")
    add_config_arguments(show)
    show.set_defaults(func=lambda args: print(dump_config(config_from_args(args)), end="") or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stp",
        description="Self-play theorem prover: conjecture, prove, verify, select, train.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_config(subparsers)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:  # fixable from the message: one line; anything else: traceback
        print(f"stp {args.command}: error: {exc}", file=sys.stderr)
        return 2
