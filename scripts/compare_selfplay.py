"""Does self-play learn? STP against expert iteration from the same start at equal proof-sample
budget, over several seeds, with the automation baseline as the floor.

Every arm starts from one model: the config's run start (its initial fine-tune when
``run.initial_sft``, built once by the config's own run, the one `make round` advances).
Each seed plays ``--rounds`` rounds of STP and of expert iteration (``run.mode:
expert_iteration``: no conjectures, only unproved statements sampled); in each round, expert
iteration gets as many proof samples as that seed's STP round used, spread over its unproved
statements. After every round each arm's model is evaluated on the held-out benchmark
(``evaluation``, pass@k with the unbiased estimator of Chen et al. 2021), and so is the
automation baseline once (``stp eval --model automation``: a fixed tactic list, one attempt
each). The table gives mean and std over the seeds per round; the plot held-out pass@1 and
pass@8 per round with the baseline as a line.

    make compare                                              # 10 rounds x 3 seeds, CPU default
    python scripts/compare_selfplay.py --config configs/tiny-rocq.yaml --rounds 10 --seeds 3
    python scripts/compare_selfplay.py --config configs/stp-lean-7b.yaml --rounds 10  # cluster

Everything lands in ``<output_dir>/<name>-compare/`` (``--out``): the arms' runs
(``runs/stp-s0``, ``runs/ei-s0``, ...), their evaluations (``eval/``), and compare.md,
compare.json, compare.png. Rerunning the same command resumes: finished rounds and
evaluations are kept, and more rounds or seeds extend what is there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from stp.artifacts import atomic_write_json, atomic_write_text
from stp.config import STPConfig, load_config
from stp.models.automation import AUTOMATION
from stp.runs import RunLayout, model_for_round, start_model
from stp.selfplay.bootstrap import bootstrap
from stp.selfplay.lock import run_lock
from stp.selfplay.report import funnel_of, well_typed_share
from stp.selfplay.round import advance

ARMS = (("stp", "STP"), ("ei", "expert iteration"))


def evaluate(config: STPConfig, model: str, out_dir: Path) -> dict[str, Any]:
    """pass@k of ``model`` (or of the automation baseline) on ``config.evaluation``'s
    benchmark, in a resumable folder."""
    from stp.eval.report import write_report
    from stp.eval.runner import evaluate as run_evaluation
    from stp.eval.runner import load_benchmark_for_eval
    from stp.models import Sampler
    from stp.models.automation import automation_prover
    from stp.prove import load_sampler
    from stp.verify import make_verifier

    baseline: Sampler | None = None
    if model == AUTOMATION:
        model, baseline = automation_prover(config)
    e = config.evaluation
    benchmark = load_benchmark_for_eval(e.benchmark, e.split, config.verification.backend, e.limit)
    run_evaluation(
        config,
        model,
        benchmark,
        out_dir,
        sampler_factory=lambda: baseline or load_sampler(model, config.sampling),
        verifier_factory=lambda: make_verifier(config.verification),
        log=lambda line: print(f"    {line}", flush=True),
    )
    return write_report(out_dir, e.k)


def unbiased(report: dict[str, Any], k: int) -> float | None:
    for estimate in report["pass_at_k"]:
        if estimate["k"] == k and estimate["estimator"] == "unbiased":
            return float(estimate["value"])
    return None


def played(config: STPConfig, index: int) -> dict[str, Any]:
    """Round ``index``'s summary, playing the round when it is not finished."""
    layout = RunLayout.of(config)
    while index not in layout.finished_rounds():
        advance(config)
    summary: dict[str, Any] = json.loads((layout.round_dir(index) / "summary.json").read_text())
    return summary


def mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    known = [v for v in values if v is not None]
    if not known:
        return None, None
    return statistics.fmean(known), statistics.pstdev(known) if len(known) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/tiny-rocq.yaml"))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3, help="Seeds per arm (run.seed 0..S-1).")
    parser.add_argument("--out", type=Path, help="Default: <output_dir>/<name>-compare.")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)

    base = load_config(args.config, args.overrides)
    base_layout = RunLayout.of(base)
    out = args.out or Path(base.run.output_dir) / f"{base.run.name}-compare"
    with run_lock(base_layout.root):  # the shared start: corpus, model, initial fine-tune
        bootstrap(base, base_layout, print)
    start = str(Path(start_model(base, base_layout)).resolve())

    def arm(mode: str, seed: int, k: int | None = None) -> STPConfig:
        extra = [f"selection.proofs_per_statement={k}"] if k is not None else []
        extra += [f"selection.proofs_per_statement_round0={k}"] if k is not None else []
        return load_config(
            args.config,
            [
                *args.overrides,
                f"run.output_dir={out / 'runs'}",
                f"run.name={mode}-s{seed}",
                f"run.mode={'stp' if mode == 'stp' else 'expert_iteration'}",
                f"run.seed={seed}",
                "run.init_model=false",
                "run.initial_sft=false",
                f"run.base_model={start}",
                *extra,
            ],
        )

    ks = base.evaluation.k
    floor = evaluate(
        load_config(args.config, args.overrides), AUTOMATION, out / "eval" / AUTOMATION
    )
    baseline = {k: unbiased(floor, k) for k in ks}
    reports: dict[tuple[str, int, str], dict[str, Any]] = {}  # (arm, seed, after round)
    budget: list[dict[str, Any]] = []
    for seed in range(args.seeds):  # the shared start, sampled with each seed
        report = evaluate(arm("stp", seed), start, out / "eval" / f"start-s{seed}")
        for name, _ in ARMS:
            reports[name, seed, "start"] = report
    for index in range(args.rounds):
        for seed in range(args.seeds):
            print(f"=== round {index}, seed {seed}: STP", flush=True)
            stp = played(arm("stp", seed), index)
            ei_before = played(arm("ei", seed), index - 1)["proved"] if index else 0
            unproved = max(stp["dataset_statements"] - ei_before, 1)
            k = max(1, stp["proofs_sampled"] // unproved)
            print(f"=== round {index}, seed {seed}: expert iteration, k={k}", flush=True)
            ei = played(arm("ei", seed, k), index)
            budget.append(_budget_row(index, seed, stp, ei))
            for name, _ in ARMS:
                config = arm(name, seed)
                model = model_for_round(config, RunLayout.of(config), index + 1)
                folder = out / "eval" / f"{name}-s{seed}" / f"round-{index:03d}"
                reports[name, seed, str(index)] = evaluate(config, model, folder)
        _write(out, _table(reports, args.seeds, index + 1, ks), baseline, budget, ks)
    if args.rounds == 0:
        _write(out, _table(reports, args.seeds, 0, ks), baseline, budget, ks)
    print((out / "compare.md").read_text())
    print(f"written: {out / 'compare.md'}, {out / 'compare.png'}")
    return 0


FUNNEL_STEPS = ("sampled", "new", "well_typed", "past_gate", "proved", "in_window", "selected")
# The per-round table: (key, title) of each column.
BUDGET_COLUMNS = (
    ("round", "round"),
    ("seed", "seed"),
    ("stp_proofs", "STP proofs"),
    ("ei_proofs", "EI proofs"),
    ("stp_proved", "STP proved"),
    ("ei_proved", "EI proved"),
    ("conj_sampled", "conj sampled"),
    ("conj_typed_share", "well-typed % of samples"),
    ("conj_new", "new"),
    ("conj_well_typed", "well-typed"),
    ("conj_past_gate", "past gate"),
    ("conj_proved", "proved once"),
    ("conj_in_window", "in window"),
    ("conj_selected", "selected"),
)


def _budget_row(index: int, seed: int, stp: dict[str, Any], ei: dict[str, Any]) -> dict[str, Any]:
    funnel = funnel_of(stp)
    share = well_typed_share(funnel)
    return {
        "round": index,
        "seed": seed,
        "stp_proofs": stp["proofs_sampled"],
        "ei_proofs": ei["proofs_sampled"],
        "stp_proved": stp["proved"],
        "ei_proved": ei["proved"],
        "conj_typed_share": None if share is None else round(100 * share, 1),
        **{f"conj_{key}": funnel.get(key) for key in FUNNEL_STEPS},
    }


def _table(
    reports: dict[tuple[str, int, str], dict[str, Any]], seeds: int, rounds: int, ks: list[int]
) -> list[dict[str, Any]]:
    """Per evaluation point (start, after each round): mean and std over seeds per arm and k."""
    rows = []
    for label in ["start", *map(str, range(rounds))]:
        row: dict[str, Any] = {"after_round": label}
        for name, _ in ARMS:
            for k in ks:
                values = [unbiased(reports[name, s, label], k) for s in range(seeds)]
                row[f"{name}_pass@{k}"] = mean_std(values)
        rows.append(row)
    return rows


def _write(
    out: Path,
    table: list[dict[str, Any]],
    baseline: dict[int, float | None],
    budget: list[dict[str, Any]],
    ks: list[int],
) -> None:
    body = {"heldout": table, "automation_baseline": baseline, "rounds": budget}
    atomic_write_json(out / "compare.json", body)
    atomic_write_text(out / "compare.md", _markdown(table, baseline, budget, ks))
    _plot(table, baseline, ks, out / "compare.png")


def _pct(value: tuple[float | None, float | None] | float | None) -> str:
    if isinstance(value, tuple):
        mean, std = value
        return "n/a" if mean is None else f"{100 * mean:.1f} ± {100 * (std or 0):.1f}%"
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _markdown(
    table: list[dict[str, Any]],
    baseline: dict[int, float | None],
    budget: list[dict[str, Any]],
    ks: list[int],
) -> str:
    head = ["after round"] + [f"{title} pass@{k}" for _, title in ARMS for k in ks]
    lines = [
        "Held-out pass@k (unbiased estimator, Chen et al. 2021), mean ± std over seeds",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in table:
        cells = [row["after_round"], *(_pct(row[f"{n}_pass@{k}"]) for n, _ in ARMS for k in ks)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Automation baseline (no learning, one attempt per tactic): "
        + ", ".join(f"pass@{k} {_pct(baseline[k])}" for k in ks),
        "",
        "Per round and seed: proof samples, training statements proved so far, STP's conjectures",
        "",
        "| " + " | ".join(title for _, title in BUDGET_COLUMNS) + " |",
        "|" + "---|" * len(BUDGET_COLUMNS),
    ]
    for b in budget:
        cells = [b.get(key) for key, _ in BUDGET_COLUMNS]
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    if budget:
        selected = [b.get("conj_selected") or 0 for b in budget]
        lines += [
            "",
            f"STP conjectures selected per round: {statistics.mean(selected):.1f} on average "
            f"over {len(selected)} rounds x seeds (min {min(selected)}, max {max(selected)})",
        ]
    return "\n".join(lines) + "\n"


def _plot(
    table: list[dict[str, Any]], baseline: dict[int, float | None], ks: list[int], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [row["after_round"] for row in table]
    x = list(range(len(labels)))
    fig, axes = plt.subplots(1, len(ks), figsize=(5 * len(ks), 3.6), squeeze=False)
    for ax, k in zip(axes[0], ks, strict=True):
        for name, title in ARMS:
            stats = [row[f"{name}_pass@{k}"] for row in table]
            mean = [100 * m if m is not None else float("nan") for m, _ in stats]
            std = [100 * (s or 0.0) for _, s in stats]
            ax.plot(x, mean, marker="o", label=title)
            low = [m - s for m, s in zip(mean, std, strict=True)]
            high = [m + s for m, s in zip(mean, std, strict=True)]
            ax.fill_between(x, low, high, alpha=0.2)
        if baseline.get(k) is not None:
            ax.axhline(100 * baseline[k], color="grey", linestyle="--", label="automation")
        ax.set_xticks(x, labels)
        ax.set_title(f"held-out pass@{k} (unbiased), mean ± std over seeds")
        ax.set_xlabel("after round")
        ax.set_ylabel("%")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
