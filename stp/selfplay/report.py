"""What a round reports: its ``summary.json``, the run-level table (one row per finished
round, ``rounds.jsonl``), the lines ``stp round`` ends with, and the learning curves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stp.artifacts import atomic_write_jsonl, read_jsonl
from stp.errors import MissingInput
from stp.runs import RunLayout
from stp.selfplay import selection
from stp.selfplay.history import RunHistory
from stp.selfplay.records import CONJECTURE, DATASET, SUMMARY_FILE, StatementStats
from stp.stages import StageRecord


def summarize(
    *,
    round_index: int,
    mode: str,
    model: str,
    dataset_statements: int,
    before: RunHistory,
    stats: Sequence[StatementStats],
    records: dict[str, StageRecord | None],
    wall_seconds: float,
) -> dict[str, Any]:
    """The round's ``summary.json``, from its stats and the figures its stages reported."""

    def info(stage: str) -> dict[str, Any]:
        record = records.get(stage)
        return record.info if record is not None else {}

    after = before.with_round(stats)
    conj, gen, ver, sel, tgt = (
        info(s) for s in ("conjectures", "generate", "verify", "select", "targets")
    )
    return {
        "round": round_index,
        "mode": mode,
        "model": model,
        "k": tgt.get("k"),
        "dataset_statements": dataset_statements,
        "proved": len(after.proved_ids()),
        "proved_new": len(after.proved_ids() - before.proved_ids()),
        "targets": {"dataset": tgt.get("dataset"), "conjectures": tgt.get("conjectures")},
        "conjectures": {
            "generated": conj.get("generated", 0),
            "valid": conj.get("valid", 0),
            "new": conj.get("new", 0),
            "selected": sel.get("conjecturer_examples", 0),
        },
        "pass_rate_histogram": {
            kind: selection.histogram(r.pass_rate for r in stats if r.kind == kind)
            for kind in (DATASET, CONJECTURE)
        },
        "proofs_sampled": gen.get("attempts", 0),
        "tokens_generated": gen.get("tokens", 0) + conj.get("tokens", 0),
        "distinct_proofs_checked": ver.get("distinct_proofs", 0),
        "verifier_cpu_seconds": round(ver.get("verifier_seconds", 0.0), 2),
        "train_examples": {
            "prover": sel.get("prover_examples", 0),
            "conjecturer": sel.get("conjecturer_examples", 0),
            "with_replay": sel.get("train_examples", 0),
        },
        "stage_seconds": {
            stage: round(record.seconds, 2) if record is not None else None
            for stage, record in records.items()
        },
        "wall_seconds_this_invocation": round(wall_seconds, 2),
    }


def write_rounds_table(layout: RunLayout) -> list[dict[str, Any]]:
    """Rewrite ``rounds.jsonl`` from the finished rounds' summaries (derived, idempotent)."""
    rows = [
        json.loads((layout.round_dir(i) / SUMMARY_FILE).read_text())
        for i in layout.finished_rounds()
    ]
    atomic_write_jsonl(layout.rounds_table, rows)
    return rows


def closing_lines(rows: list[dict[str, Any]]) -> list[str]:
    """What the last round changed, in words (printed at the end of `stp round`)."""
    last = rows[-1]
    lines = [
        f"round {last['round']} ({last['mode']}): {last['proved']}/{last['dataset_statements']} "
        f"dataset statements proved so far, {last['proved_new']} new this round",
        f"  conjectures: {last['conjectures']['generated']} sampled, "
        f"{last['conjectures']['valid']} well-formed, {last['conjectures']['new']} new, "
        f"{last['conjectures']['selected']} selected for training",
        f"  {last['proofs_sampled']} proofs sampled ({last['tokens_generated']} tokens), "
        f"{last['distinct_proofs_checked']} distinct checked in "
        f"{last['verifier_cpu_seconds']} verifier-s; "
        f"{last['train_examples']['with_replay']} training examples",
        "  stage seconds: "
        + ", ".join(f"{k} {v}" for k, v in last["stage_seconds"].items() if v is not None),
    ]
    if len(rows) > 1:
        prev = rows[-2]
        lines.append(
            f"  vs round {prev['round']}: proved {prev['proved']} -> {last['proved']}, "
            f"selected conjectures {prev['conjectures']['selected']} -> "
            f"{last['conjectures']['selected']}"
        )
    return lines


COLUMNS: tuple[tuple[str, str], ...] = (
    ("round", "round"),
    ("mode", "mode"),
    ("proved", "proved"),
    ("proved_new", "new"),
    ("conj_generated", "conj sampled"),
    ("conj_valid", "well-formed"),
    ("conj_new", "new conj"),
    ("conj_selected", "selected"),
    ("proofs_sampled", "proofs"),
    ("tokens_generated", "tokens"),
    ("verifier_cpu_seconds", "verifier s"),
    ("wall_seconds", "wall s"),
)


def load_rounds(run_dir: Path) -> list[dict[str, Any]]:
    """The run's summaries in round order (``rounds.jsonl``, rebuilt if missing)."""
    layout = RunLayout(run_dir)
    if not run_dir.is_dir():
        raise MissingInput(f"run folder {run_dir} not found")
    if layout.rounds_table.is_file():
        return list(read_jsonl(layout.rounds_table))
    return write_rounds_table(layout)


def flat_row(summary: dict[str, Any]) -> dict[str, Any]:
    conj = summary["conjectures"]
    return {
        "round": summary["round"],
        "mode": summary["mode"],
        "proved": f"{summary['proved']}/{summary['dataset_statements']}",
        "proved_new": summary["proved_new"],
        "conj_generated": conj["generated"],
        "conj_valid": conj["valid"],
        "conj_new": conj["new"],
        "conj_selected": conj["selected"],
        "proofs_sampled": summary["proofs_sampled"],
        "tokens_generated": summary["tokens_generated"],
        "verifier_cpu_seconds": summary["verifier_cpu_seconds"],
        "wall_seconds": round(sum(v or 0 for v in summary["stage_seconds"].values()), 1),
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    cells = [[title for _, title in COLUMNS]]
    cells += [[str(flat_row(r)[key]) for key, _ in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in cells
    )


def plot_curves(rows: list[dict[str, Any]], out: Path, title: str) -> Path:
    """Proved statements, conjectures and cost per round, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r["round"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].plot(rounds, [r["proved"] for r in rows], marker="o")
    axes[0].set_title("dataset statements proved so far")
    for key, label in (("generated", "sampled"), ("new", "new"), ("selected", "selected")):
        axes[1].plot(rounds, [r["conjectures"][key] for r in rows], marker="o", label=label)
    axes[1].set_title("conjectures")
    axes[1].legend()
    stages = list(rows[-1]["stage_seconds"])
    bottom = [0.0] * len(rows)
    for stage in stages:
        values = [r["stage_seconds"].get(stage) or 0.0 for r in rows]
        axes[2].bar(rounds, values, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes[2].set_title("wall seconds per stage")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("round")
        ax.set_xticks(rounds)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
