"""Does self-play learn? STP against expert iteration from the same start, equal budgets.

Runs ``--rounds`` rounds of STP and of expert iteration (``run.mode: expert_iteration``: no
conjectures, only unproved statements sampled) from the same starting model, giving expert
iteration in each round as many proof samples as STP used in that round (spread over its
unproved statements). After every round both models are evaluated on the corpus' held-out
split with the eval library (pass@k, unbiased estimator of Chen et al. 2021), and the script
writes a markdown table and a plot.

    # CPU default (a few rounds of the tiny model; run it in the background, it takes a while)
    python scripts/compare_selfplay.py --config configs/tiny-rocq.yaml --rounds 3
    # the paper's setting on a Ray cluster (see scripts/ray_cluster.sh)
    python scripts/compare_selfplay.py --config configs/stp-lean-7b.yaml --rounds 10

The STP arm is the config's own run (for configs/tiny-rocq.yaml the run `make round`
advances, so rounds already played are reused); expert iteration runs as
``<name>-expert-iteration`` from the STP run's start model, and the comparison lands in
``<output_dir>/<name>-compare/`` (compare.md, compare.json, compare.png). Rerunning resumes:
rounds and evaluations are both resumable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from stp.artifacts import atomic_write_json, atomic_write_text
from stp.config import STPConfig, load_config
from stp.runs import RunLayout, model_for_round, start_model
from stp.selfplay.round import advance


def evaluate_model(config: STPConfig, model: str, out_dir: Path) -> dict[str, Any]:
    """pass@k of ``model`` on ``config.evaluation``'s benchmark (resumable folder)."""
    from stp.eval.report import write_report
    from stp.eval.runner import evaluate, load_benchmark_for_eval
    from stp.prove import load_sampler
    from stp.verify import make_verifier

    e = config.evaluation
    benchmark = load_benchmark_for_eval(e.benchmark, e.split, config.verification.backend, e.limit)
    evaluate(
        config,
        model,
        benchmark,
        out_dir,
        sampler_factory=lambda: load_sampler(model, config.sampling),
        verifier_factory=lambda: make_verifier(config.verification),
        log=lambda line: print(f"    {line}", flush=True),
    )
    return write_report(out_dir, e.k)


def unbiased(report: dict[str, Any], k: int) -> float | None:
    for estimate in report["pass_at_k"]:
        if estimate["k"] == k and estimate["estimator"] == "unbiased":
            return float(estimate["value"])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/tiny-rocq.yaml"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    stp = load_config(args.config, [*args.overrides, "run.mode=stp"])
    stp_layout = RunLayout.of(stp)
    out = Path(stp.run.output_dir) / f"{stp.run.name}-compare"

    def ei_config(k: int) -> STPConfig:
        # Same start as STP: its starting model (after the initial fine-tune, if any).
        return load_config(
            args.config,
            [
                *args.overrides,
                f"run.name={stp.run.name}-expert-iteration",
                "run.mode=expert_iteration",
                "run.init_model=false",
                "run.initial_sft=false",
                f"run.base_model={start_model(stp, stp_layout)}",
                f"selection.proofs_per_statement={k}",
                f"selection.proofs_per_statement_round0={k}",
            ],
        )

    rows: list[dict[str, Any]] = []
    ei_summary: dict[str, Any] | None = None
    for index in range(args.rounds):
        print(f"=== round {index}: STP", flush=True)
        stp_summary = _round_summary(stp, index)
        unproved = stp_summary["dataset_statements"] - (ei_summary["proved"] if ei_summary else 0)
        k = max(1, stp_summary["proofs_sampled"] // max(unproved, 1))
        print(f"=== round {index}: expert iteration, k={k} over {unproved} unproved", flush=True)
        ei = ei_config(k)
        ei_summary = _round_summary(ei, index)
        rows.append({"round": index, "stp": stp_summary, "ei": ei_summary})

    ks = stp.evaluation.k
    table = []
    evaluations = [("start", start_model(stp, stp_layout), start_model(stp, stp_layout))]
    for index in range(args.rounds):
        evaluations.append(
            (
                str(index),
                model_for_round(stp, stp_layout, index + 1),
                model_for_round(ei_config(1), RunLayout.of(ei_config(1)), index + 1),
            )
        )
    done: dict[str, dict[str, Any]] = {}  # model -> report: the shared start is evaluated once
    for label, stp_model, ei_model in evaluations:
        print(f"=== held-out evaluation after round {label}", flush=True)
        reports = {}
        for name, model in (("stp", stp_model), ("ei", ei_model)):
            if model not in done:
                done[model] = evaluate_model(stp, model, out / "eval" / name / label)
            reports[name] = done[model]
        table.append(
            {
                "after_round": label,
                **{
                    f"{name}_pass@{k}": unbiased(report, k)
                    for name, report in reports.items()
                    for k in ks
                },
            }
        )
    budget = [
        {
            "round": r["round"],
            "stp_proofs": r["stp"]["proofs_sampled"],
            "ei_proofs": r["ei"]["proofs_sampled"],
            "stp_proved": r["stp"]["proved"],
            "ei_proved": r["ei"]["proved"],
            "stp_selected_conjectures": r["stp"]["conjectures"]["selected"],
        }
        for r in rows
    ]
    atomic_write_json(out / "compare.json", {"heldout": table, "rounds": budget})
    text = _markdown(table, budget, ks)
    atomic_write_text(out / "compare.md", text)
    _plot(table, ks, out / "compare.png")
    print(text)
    print(f"written: {out / 'compare.md'}, {out / 'compare.png'}")
    return 0


def _round_summary(config: STPConfig, index: int) -> dict[str, Any]:
    layout = RunLayout.of(config)
    if index not in layout.finished_rounds():
        advance(config)
    return json.loads((layout.round_dir(index) / "summary.json").read_text())


def _markdown(table: list[dict[str, Any]], budget: list[dict[str, Any]], ks: list[int]) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    head = ["after round"] + [f"{n} pass@{k}" for n in ("STP", "EI") for k in ks]
    lines = [
        "Held-out pass@k (unbiased estimator, Chen et al. 2021)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in table:
        cells = [row["after_round"]]
        cells += [pct(row[f"{n}_pass@{k}"]) for n in ("stp", "ei") for k in ks]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Training-set statements proved so far and proof samples per round",
        "",
        "| round | STP proofs | EI proofs | STP proved | EI proved | STP conjectures selected |",
        "|---|---|---|---|---|---|",
    ]
    for b in budget:
        lines.append(
            f"| {b['round']} | {b['stp_proofs']} | {b['ei_proofs']} | {b['stp_proved']} | "
            f"{b['ei_proved']} | {b['stp_selected_conjectures']} |"
        )
    return "\n".join(lines) + "\n"


def _plot(table: list[dict[str, Any]], ks: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [row["after_round"] for row in table]
    fig, axes = plt.subplots(1, len(ks), figsize=(5 * len(ks), 3.6), squeeze=False)
    for ax, k in zip(axes[0], ks, strict=True):
        for name, title in (("stp", "STP"), ("ei", "expert iteration")):
            values = [row[f"{name}_pass@{k}"] for row in table]
            ax.plot(
                labels,
                [100 * v if v is not None else float("nan") for v in values],
                marker="o",
                label=title,
            )
        ax.set_title(f"held-out pass@{k} (unbiased)")
        ax.set_xlabel("after round")
        ax.set_ylabel("%")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
