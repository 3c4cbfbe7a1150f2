"""What a round reports: its ``summary.json``, the run-level table (one row per finished
round, ``rounds.jsonl``), the lines ``stp round`` ends with, and the learning curves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stp.artifacts import atomic_write_jsonl, read_jsonl
from stp.config import SelectionConfig
from stp.errors import MissingInput
from stp.runs import RunLayout
from stp.selfplay import gate, selection
from stp.selfplay.history import RunHistory
from stp.selfplay.records import (
    CONJECTURE,
    DATASET,
    GATE_PASSED,
    ILL_TYPED,
    SUMMARY_FILE,
    UNCHECKED,
    StatementStats,
)
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
    conj, gated, gen, ver, sel, tgt = (
        info(s) for s in ("conjectures", "gate", "generate", "verify", "select", "targets")
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
        "conjectures": conjecture_funnel(conj, gated, tgt, sel),
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
            "conjecturer_past_gate": sel.get("gate_passed_examples", 0),
            "with_replay": sel.get("train_examples", 0),
        },
        "stage_seconds": {
            stage: round(record.seconds, 2) if record is not None else None
            for stage, record in records.items()
        },
        "wall_seconds_this_invocation": round(wall_seconds, 2),
    }


def conjectures_proved(
    stats: Sequence[StatementStats], settings: SelectionConfig
) -> dict[str, int]:
    """How many of the round's conjectures were proved at least once, and how many have a
    pass rate in the barely-provable window (the select stage reports both)."""
    rates = [row.pass_rate for row in stats if row.kind == CONJECTURE]
    return {
        "conjectures_proved": sum(rate > 0 for rate in rates),
        "conjectures_in_window": sum(
            selection.in_window(rate, settings.window_low, settings.window_high) for rate in rates
        ),
    }


def conjecture_funnel(
    conj: dict[str, Any], gated: dict[str, Any], tgt: dict[str, Any], sel: dict[str, Any]
) -> dict[str, Any]:
    """The round's conjectures stage by stage, from the figures the stages reported:
    sampled -> parsed -> new (not a known statement) -> well-typed -> past the gate (the
    rejections by reason) -> given proof attempts -> proved at least once -> pass rate in the
    window -> selected for training. ``well_typed`` is None where the gate did not check.
    ``well_typed_samples`` counts samples rather than statements: a repeat of a statement that
    elaborates (one sampled earlier in the round, an earlier round's, a dataset or corpus
    statement) is a well-typed sample too."""
    new = conj.get("new", 0)
    rejected = {reason: gated.get(reason, 0) for reason in gate.REJECTIONS}
    unknown = rejected[ILL_TYPED] + rejected[UNCHECKED]
    checked = bool(gated.get("checked"))
    typed_samples = gated.get("well_typed_samples")
    return {
        "sampled": conj.get("generated", 0),
        "parsed": conj.get("valid", 0),
        "new": new,
        "well_typed": new - unknown if checked else None,
        # samples (repeats included) of a statement that elaborates; None where not counted
        "well_typed_samples": (
            typed_samples + conj.get("known_well_typed", 0)
            if checked and typed_samples is not None
            else None
        ),
        "past_gate": gated.get(GATE_PASSED, new),
        "rejected": rejected,
        "targeted": tgt.get("conjectures", 0),
        "proved": sel.get("conjectures_proved", 0),
        "in_window": sel.get("conjectures_in_window", 0),
        "selected": sel.get("conjecturer_examples", 0),
    }


FUNNEL: tuple[tuple[str, str], ...] = (
    ("sampled", "sampled"),
    ("parsed", "parsed"),
    ("new", "new"),
    ("well_typed", "well-typed"),
    ("past_gate", "past the gate"),
    ("targeted", "targeted"),
    ("proved", "proved once"),
    ("in_window", "in window"),
    ("selected", "selected"),
)


def funnel_of(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary's funnel; summaries written before the gate existed name two steps
    ``generated``/``valid`` and have no gate (every new conjecture was targeted)."""
    conj = summary["conjectures"]
    if "sampled" in conj:
        return dict(conj)
    return {
        "sampled": conj.get("generated", 0),
        "parsed": conj.get("valid", 0),
        "new": conj.get("new", 0),
        "well_typed": None,
        "well_typed_samples": None,
        "past_gate": conj.get("new", 0),
        "rejected": {},
        "targeted": (summary.get("targets") or {}).get("conjectures"),
        "proved": None,
        "in_window": None,
        "selected": conj.get("selected", 0),
    }


def funnel_line(funnel: dict[str, Any]) -> str:
    """``96 sampled -> 80 parsed -> ... -> 3 selected (rejected: 40 ill_typed, ...)``."""
    steps = " -> ".join(
        f"{'?' if funnel.get(key) is None else funnel[key]} {title}" for key, title in FUNNEL
    )
    rejected = ", ".join(f"{n} {reason}" for reason, n in funnel["rejected"].items() if n)
    line = steps + (f" (gate rejected {rejected})" if rejected else "")
    share = well_typed_share(funnel)
    if share is not None:
        line += (
            f"; {funnel['well_typed_samples']} of {funnel['sampled']} samples well-typed "
            f"({100 * share:.1f}%)"
        )
    return line


def well_typed_share(funnel: dict[str, Any]) -> float | None:
    """The share of the round's conjecturer samples that are well-typed statements (repeats
    included); None where it was not counted."""
    typed, sampled = funnel.get("well_typed_samples"), funnel["sampled"]
    return typed / sampled if typed is not None and sampled else None


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
        f"  conjectures: {funnel_line(funnel_of(last))}",
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
            f"selected conjectures {funnel_of(prev)['selected']} -> "
            f"{funnel_of(last)['selected']}"
        )
    return lines


COLUMNS: tuple[tuple[str, str], ...] = (
    ("round", "round"),
    ("mode", "mode"),
    ("proved", "proved"),
    ("proved_new", "new"),
    ("conj_sampled", "conj sampled"),
    ("conj_parsed", "parsed"),
    ("conj_new", "new"),
    ("conj_well_typed", "well-typed"),
    ("conj_typed_share", "typed % of samples"),
    ("conj_past_gate", "past gate"),
    ("conj_rejected", "gate rejected"),
    ("conj_proved", "proved once"),
    ("conj_in_window", "in window"),
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
    conj = funnel_of(summary)
    return {
        "round": summary["round"],
        "mode": summary["mode"],
        "proved": f"{summary['proved']}/{summary['dataset_statements']}",
        "proved_new": summary["proved_new"],
        **{f"conj_{key}": "-" if conj[key] is None else conj[key] for key, _ in FUNNEL},
        "conj_typed_share": "-"
        if (share := well_typed_share(conj)) is None
        else f"{100 * share:.1f}",
        "conj_rejected": " ".join(
            f"{n} {reason.replace('_', '-')}" for reason, n in conj["rejected"].items() if n
        )
        or "-",
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
    funnels = [funnel_of(r) for r in rows]
    for key, label in FUNNEL:
        values = [f[key] for f in funnels]
        if any(v is not None for v in values):
            axes[1].plot(
                rounds, [float("nan") if v is None else v for v in values], marker="o", label=label
            )
    axes[1].set_title("conjecture funnel")
    axes[1].set_yscale("symlog")
    axes[1].legend(fontsize=7)
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
