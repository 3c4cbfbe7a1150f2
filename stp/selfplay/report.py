"""The run-level table (one row per finished round) and its learning curves as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stp.artifacts import read_jsonl
from stp.selfplay.layout import RunLayout
from stp.selfplay.round import write_rounds_table

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
        raise FileNotFoundError(f"run folder {run_dir} not found")
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
