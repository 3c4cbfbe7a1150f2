"""``stp eval``: pass@k of a model on a benchmark, and side-by-side comparison of two reports.

    stp eval --config configs/tiny-rocq.yaml                     # what `make eval` runs
    stp eval --model artifacts/tiny-rocq-model --benchmark minif2f --split valid \\
        --prover rocq --samples 4 --k 1,2,4 --limit 3
    stp eval --model deepseek-ai/DeepSeek-Prover-V1.5-SFT --benchmark minif2f --split test \\
        --prover lean --samples 3200 --k 1,32,128,3200 --set sampling.backend=vllm
    stp eval --benchmark artifacts/rocq-corpus/heldout.jsonl --prover rocq  # a JSONL file
    stp eval --config configs/tiny-rocq.yaml --model automation  # the no-learning floor
    stp eval compare runs/a/eval/.../minif2f-test-lean runs/b/eval/.../minif2f-test-lean

The short flags set config fields (``--samples`` is ``evaluation.samples``, ``--prover`` is
``verification.backend``); ``--config``/``--set``/``--section.field`` work as everywhere. Run
the same command again after a kill and it continues where it stopped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stp.artifacts import atomic_write_text
from stp.assistants import NAMES as ASSISTANT_NAMES
from stp.config import STPConfig, add_config_arguments, config_from_args
from stp.eval.passk import ESTIMATOR_LABELS
from stp.eval.report import REPORT_MD, compare_markdown, load_report, write_report
from stp.eval.runner import default_output_dir, evaluate, load_benchmark_for_eval
from stp.models.automation import AUTOMATION, automation_prover
from stp.prove import load_sampler
from stp.runs import current_model
from stp.verify.local import check_installed
from stp.verify.types import Verifier

# Short flag -> the config field it sets.
SHORT_FLAGS: dict[str, tuple[str, str]] = {
    "model": (
        "evaluation.model",
        "Model to evaluate: local folder or hub id (default: the run's newest model); "
        "`automation`: the automation baseline.",
    ),
    "benchmark": ("evaluation.benchmark", "Bundled benchmark name or a JSONL file path."),
    "split": ("evaluation.split", "Benchmark split (valid, test, ...)."),
    "prover": ("verification.backend", f"Proof assistant: {', '.join(ASSISTANT_NAMES)}."),
    "samples": ("evaluation.samples", "Proof attempts per problem."),
    "k": ("evaluation.k", "Comma-separated k values, e.g. 1,8,32."),
    "limit": ("evaluation.limit", "Evaluate only the first N problems."),
    "output": ("evaluation.output", "Folder for attempts and report."),
}


def eval_config_from_args(args: argparse.Namespace) -> STPConfig:
    """The config of an ``stp eval`` command: file, ``--set``/``--section.field``, then the
    short flags (which win)."""
    overrides = []
    for flag, (key, _) in SHORT_FLAGS.items():
        value = getattr(args, f"short_{flag}")
        if value is not None:
            overrides.append(f"{key}=[{value}]" if flag == "k" else f"{key}={value}")
    return config_from_args(args, overrides)


def _run(args: argparse.Namespace) -> int:
    config = eval_config_from_args(args)
    evaluation = config.evaluation
    prover = config.verification.backend
    model = evaluation.model or current_model(config)
    baseline = None
    if model == AUTOMATION:  # the automation baseline: one attempt per listed tactic
        model, baseline = automation_prover(config)
    benchmark = load_benchmark_for_eval(
        evaluation.benchmark, evaluation.split, prover, evaluation.limit
    )
    out_dir = (
        Path(evaluation.output)
        if evaluation.output
        else default_output_dir(config, model, benchmark)
    )
    print(
        f"stp eval: {model} on {benchmark.name} {benchmark.split} ({prover}), "
        f"{len(benchmark.statements)} problems x {evaluation.samples} samples -> {out_dir}",
        flush=True,
    )

    def make_proof_verifier() -> Verifier:
        from stp.verify import make_verifier

        return make_verifier(config.verification)

    if not config.verification.ray_address:
        # Sampling can take hours: a proof assistant missing here should stop us before it.
        check_installed(config.verification)
    evaluate(
        config,
        model,
        benchmark,
        out_dir,
        sampler_factory=lambda: baseline or load_sampler(model, config.sampling),
        verifier_factory=make_proof_verifier,
        log=lambda line: print(line, flush=True),
    )
    report = write_report(out_dir, evaluation.k)
    for estimate in report["pass_at_k"]:
        print(
            f"pass@{estimate['k']} [{ESTIMATOR_LABELS[estimate['estimator']]}]: "
            f"{100 * estimate['value']:.1f}%"
            + (f" ± {100 * estimate['std']:.1f}%" if estimate["std"] is not None else "")
        )
    print(
        f"solved {report['solved']}/{report['problems_evaluated']}; report: {out_dir / REPORT_MD}"
    )
    return 0


def _compare(args: argparse.Namespace) -> int:
    text = compare_markdown(load_report(args.a), load_report(args.b))
    text += f"\nA: {args.a}\nB: {args.b}\n"
    if args.write:
        atomic_write_text(args.write, text)
    print(text, end="")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="pass@k of a model on a benchmark (resumable); `stp eval compare A B`.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, (key, help_text) in SHORT_FLAGS.items():
        parser.add_argument(
            f"--{flag}", dest=f"short_{flag}", metavar="V", help=f"{help_text} (sets {key})"
        )
    add_config_arguments(parser, ("run", "sampling", "verification", "evaluation"))
    parser.set_defaults(func=_run)
    sub = parser.add_subparsers(dest="eval_command", metavar="{compare}")
    compare = sub.add_parser("compare", help="Set two evaluation reports side by side.")
    compare.add_argument("a", type=Path, help="Evaluation folder or report.json (column A).")
    compare.add_argument("b", type=Path, help="Evaluation folder or report.json (column B).")
    compare.add_argument("--write", type=Path, help="Also write the comparison to this file.")
    compare.set_defaults(func=_compare)
