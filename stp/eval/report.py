"""Evaluation reports: Markdown for people, JSON for machines, a pass@k-vs-k plot, and a
side-by-side comparison of two reports.

Every pass@k figure names its estimator; figures from the literature are shown beside the
measured ones only under a heading that says they are quoted, with their sources.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stp.artifacts import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
)
from stp.errors import MissingInput
from stp.eval.passk import ESTIMATOR_LABELS, PassAtK, estimate_all
from stp.eval.reference import QuotedResult, quoted_for
from stp.eval.runner import CheckedSample, read_evaluation, read_manifest
from stp.verify.types import Verdict

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
PLOT_PNG = "passk.png"
ATTEMPTS_JSONL = "attempts.jsonl"


@dataclass(frozen=True, slots=True)
class ProblemResult:
    name: str
    samples: int
    proved: int  # attempts the proof assistant accepted

    @property
    def solved(self) -> bool:
        return self.proved > 0


@dataclass(frozen=True, slots=True)
class Report:
    """The figures of one evaluation folder."""

    manifest: dict[str, Any]
    problems: tuple[ProblemResult, ...]
    estimates: tuple[PassAtK, ...]
    verdicts: dict[str, int]
    attempts: int
    tokens: int
    wall_seconds: float  # of every `stp eval` call on the folder (sampling and checking overlap)
    generation_seconds: float  # time spent sampling
    verification_seconds: float  # time spent checking, chunk by chunk
    verifier_seconds: (
        float  # per-proof check times (across verifier processes), each distinct proof once
    )
    assistant_versions: tuple[str, ...]
    quoted: tuple[QuotedResult, ...]
    ks: tuple[int, ...]

    @property
    def complete(self) -> bool:
        return len(self.problems) == len(self.manifest["problems"])

    @property
    def solved(self) -> int:
        return sum(p.solved for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "model": m["model"],
            "benchmark": m["benchmark"],
            "benchmark_source": m["benchmark_source"],
            "split": m["split"],
            "prover": m["prover"],
            "data_sha256": m["data_sha256"],
            "problems_total": len(m["problems"]),
            "problems_evaluated": len(self.problems),
            "complete": self.complete,
            "samples_per_problem": m["samples"],
            "attempts": self.attempts,
            "solved": self.solved,
            "ks": list(self.ks),
            "pass_at_k": [e.to_dict() for e in self.estimates],
            "verdicts": self.verdicts,
            "tokens": self.tokens,
            "wall_seconds": round(self.wall_seconds, 3),
            "sampling_seconds": round(self.generation_seconds, 3),
            "checking_seconds": round(self.verification_seconds, 3),
            "verifier_seconds": round(self.verifier_seconds, 3),
            "assistant_versions": list(self.assistant_versions),
            "stp_version": m["stp_version"],
            "sampling": m["sampling"],
            "config": m["config"],
            "problems": [
                {"name": p.name, "samples": p.samples, "proved": p.proved, "solved": p.solved}
                for p in self.problems
            ],
            "quoted": [q.to_dict() for q in self.quoted],
        }


def build_report(out_dir: str | Path, ks: Sequence[int]) -> Report:
    """Read an evaluation folder and compute pass@k for every ``k`` with both estimators."""
    manifest = read_manifest(out_dir)
    evaluated = read_evaluation(out_dir)
    by_problem: dict[str, list[CheckedSample]] = {}
    for sample in evaluated.samples:  # in sampling order
        by_problem.setdefault(sample.problem, []).append(sample)
    order = [name for name in manifest["problems"] if name in by_problem]
    outcomes = [[s.proved for s in by_problem[name]] for name in order]
    attempts = [s for name in order for s in by_problem[name]]
    counts = Counter(s.verdict.value for s in attempts)
    return Report(
        manifest=manifest,
        problems=tuple(
            ProblemResult(name, len(o), sum(o)) for name, o in zip(order, outcomes, strict=True)
        ),
        estimates=tuple(estimate_all(outcomes, ks)),
        verdicts={v.value: counts.get(v.value, 0) for v in Verdict},
        attempts=len(attempts),
        tokens=sum(a.num_tokens for a in attempts),
        wall_seconds=evaluated.wall_seconds,
        generation_seconds=evaluated.sampling_seconds,
        verification_seconds=evaluated.checking_seconds,
        verifier_seconds=evaluated.verifier_seconds,
        assistant_versions=tuple(sorted({a.assistant_version for a in attempts} - {""})),
        quoted=tuple(quoted_for(manifest["benchmark"], manifest["split"], manifest["prover"])),
        ks=tuple(sorted(set(ks))),
    )


# ------------------------------------------------------------------------------ markdown


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """The human report, from the JSON form (so ``report.json`` alone can re-render it)."""
    model = report["model"]
    title = f"{report['benchmark']} {report['split']} ({report['prover']})"
    lines = [f"# Evaluation: {title}", ""]
    if not report["complete"]:
        lines += [
            f"**Partial**: {report['problems_evaluated']} of {report['problems_total']} "
            "problems have attempts; run the same `stp eval` command again to finish.",
            "",
        ]
    lines += _table(
        [
            "benchmark",
            "split",
            "prover",
            "problems",
            "samples/problem",
            "attempts",
            "solved",
            "tokens",
            "wall s",
            "sampling s",
            "checking s",
            "verifier s",
        ],
        [
            [
                report["benchmark"],
                report["split"],
                report["prover"],
                report["problems_evaluated"],
                report["samples_per_problem"],
                report["attempts"],
                report["solved"],
                report["tokens"],
                f"{report['wall_seconds']:.1f}",
                f"{report['sampling_seconds']:.1f}",
                f"{report['checking_seconds']:.1f}",
                f"{report['verifier_seconds']:.1f}",
            ]
        ],
    )
    lines += [
        "",
        "Wall s: elapsed time of the `stp eval` calls on this folder. Sampling s and checking "
        "s: time in each stage (checking a chunk overlaps sampling the next). Verifier s: "
        "per-proof check times summed over the verifier processes (identical samples of a "
        "problem are checked once).",
    ]
    estimates = _estimates(report)
    lines += ["", "## pass@k", ""]
    rows = []
    for k in report["ks"]:
        cells = [estimates.get((k, est)) for est in ESTIMATOR_LABELS]
        rows.append([k, *(e.format() if e else f"n/a (needs {k} samples)" for e in cells)])
    lines += _table(["k", *(f"pass@k, {label}" for label in ESTIMATOR_LABELS.values())], rows)
    lines += [
        "",
        "Unbiased: `1 - C(n-c,k)/C(n,k)` averaged over problems, shown only where every "
        "problem has n >= k samples. Block: disjoint blocks of k samples in sampling order, "
        "mean ± sample std over blocks (std shown from 4 blocks on).",
        "",
        "## Verdicts",
        "",
    ]
    lines += _table(list(report["verdicts"]), [list(report["verdicts"].values())])
    lines += ["", "## Quoted from the literature (not measured here)", ""]
    if report["quoted"]:
        lines += _table(
            ["model", "k", "pass@k", "source"],
            [
                [q["model"], q["k"], QuotedResult(**_quoted_fields(q)).format(), q["source"]]
                for q in report["quoted"]
            ],
        )
    else:
        lines.append(
            f"No published figures are on file for {report['benchmark']} {report['split']} "
            f"with {report['prover']}."
        )
    sampling = report["sampling"]
    lines += [
        "",
        "## Provenance",
        "",
        f"- model: `{model['name']}`"
        + (f" (folder `{model['path']}`, sha256 `{model['sha256']}`)" if model["path"] else ""),
        f"- proof assistant: {', '.join(report['assistant_versions']) or 'unknown'}",
        f"- statements: {report['benchmark']} ({report['benchmark_source']}), split "
        f"{report['split']}, sha256 of the statements `{report['data_sha256']}`",
        f"- sampling: temperature {sampling['temperature']}, top_p {sampling['top_p']}, "
        f"max_new_tokens {sampling['max_new_tokens']}, seed {sampling['seed']}",
        f"- stp {report['stp_version']}",
        "",
        "<details><summary>config</summary>",
        "",
        "```yaml",
        yaml.safe_dump(report["config"], sort_keys=False).rstrip(),
        "```",
        "",
        "</details>",
        "",
        f"## Problems solved ({report['solved']} of {report['problems_evaluated']})",
        "",
    ]
    solved = [p for p in report["problems"] if p["solved"]]
    lines += [f"- {p['name']}: {p['proved']}/{p['samples']}" for p in solved] or ["(none)"]
    unsolved = [p["name"] for p in report["problems"] if not p["solved"]]
    if unsolved:
        lines += ["", f"Unsolved ({len(unsolved)}): " + ", ".join(unsolved)]
    return "\n".join(lines) + "\n"


def _quoted_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "quoted"}


# ---------------------------------------------------------------------------------- plot


def render_plot(report: dict[str, Any]) -> bytes:
    """pass@k against k (log scale) for both estimators, quoted figures as open markers."""
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for estimator, marker in (("unbiased", "o"), ("block", "s")):
        rows = sorted(
            (e for e in report["pass_at_k"] if e["estimator"] == estimator), key=lambda e: e["k"]
        )
        if not rows:
            continue
        ks = [e["k"] for e in rows]
        values = [100 * e["value"] for e in rows]
        errors = [100 * e["std"] if e["std"] is not None else 0.0 for e in rows]
        label = f"measured, {ESTIMATOR_LABELS[estimator]}"
        ax.errorbar(ks, values, yerr=errors, marker=marker, capsize=3, label=label)
    for model in sorted({q["model"] for q in report["quoted"]}):
        points = sorted(
            (q["k"], 100 * fraction)
            for q in report["quoted"]
            if q["model"] == model and (fraction := _quoted_fraction(q)) is not None
        )
        if points:
            ax.plot(
                [k for k, _ in points],
                [v for _, v in points],
                linestyle=":",
                marker="D",
                fillstyle="none",
                label=f"quoted: {model}",
            )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel("pass@k (%)")
    ax.set_ylim(bottom=0)
    ax.set_title(
        f"{report['benchmark']} {report['split']} ({report['prover']}): {report['model']['name']}",
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _quoted_fraction(row: dict[str, Any]) -> float | None:
    if row["value"] is not None:
        return float(row["value"])
    if row["solved"] is not None and row["total"]:
        return row["solved"] / row["total"]
    return None


# --------------------------------------------------------------------------------- files


def write_report(out_dir: str | Path, ks: Sequence[int]) -> dict[str, Any]:
    """Write ``report.md``, ``report.json``, ``passk.png`` and the flat ``attempts.jsonl``
    into the evaluation folder; returns the JSON form."""
    out_dir = Path(out_dir)
    report = build_report(out_dir, ks).to_dict()
    atomic_write_jsonl(
        out_dir / ATTEMPTS_JSONL,
        (sample.to_dict() for sample in read_evaluation(out_dir).samples),
    )
    atomic_write_json(out_dir / REPORT_JSON, report)
    atomic_write_text(out_dir / REPORT_MD, render_markdown(report))
    atomic_write_bytes(out_dir / PLOT_PNG, render_plot(report))
    return report


def load_report(path: str | Path) -> dict[str, Any]:
    """A ``report.json``, given the file or the evaluation folder that holds it."""
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    if not path.is_file():
        raise MissingInput(f"{path} not found: run `stp eval` to write the report first")
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return report


def compare_markdown(
    a: dict[str, Any], b: dict[str, Any], names: Sequence[str] = ("A", "B")
) -> str:
    """Two reports side by side: setup, pass@k per estimator, verdicts, cost, and (on the same
    statements) the problems only one of them solved."""
    name_a, name_b = names
    same_data = a["data_sha256"] == b["data_sha256"]
    lines = [f"# Comparison: {name_a} vs {name_b}", ""]
    if not same_data:
        lines += [
            "**The two reports evaluate different statements** (data sha256 differs): "
            "compare their figures with care.",
            "",
        ]

    summary_a, summary_b = _summary(a), _summary(b)
    rows: list[list[object]] = [[key, summary_a[key], summary_b[key], ""] for key in summary_a]
    est_a, est_b = _estimates(a), _estimates(b)
    order = list(ESTIMATOR_LABELS)
    for k, estimator in sorted(set(est_a) | set(est_b), key=lambda e: (e[0], order.index(e[1]))):
        ea, eb = est_a.get((k, estimator)), est_b.get((k, estimator))
        delta = (
            f"{100 * (eb.value - ea.value):+.1f} pts" if ea is not None and eb is not None else ""
        )
        rows.append(
            [
                f"pass@{k}, {ESTIMATOR_LABELS[estimator]}",
                ea.format() if ea else "n/a",
                eb.format() if eb else "n/a",
                delta,
            ]
        )
    for verdict in dict.fromkeys([*a["verdicts"], *b["verdicts"]]):  # a report may predate one
        rows.append(
            [
                f"verdict {verdict}",
                a["verdicts"].get(verdict, 0),
                b["verdicts"].get(verdict, 0),
                "",
            ]
        )
    lines += _table(["", name_a, name_b, f"{name_b} - {name_a}"], rows)
    if same_data:
        solved_a = {p["name"] for p in a["problems"] if p["solved"]}
        solved_b = {p["name"] for p in b["problems"] if p["solved"]}
        lines += [
            "",
            f"Solved by both: {len(solved_a & solved_b)}",
            f"Only {name_a} ({len(solved_a - solved_b)}): "
            + (", ".join(sorted(solved_a - solved_b)) or "none"),
            f"Only {name_b} ({len(solved_b - solved_a)}): "
            + (", ".join(sorted(solved_b - solved_a)) or "none"),
        ]
    return "\n".join(lines) + "\n"


def _summary(r: dict[str, Any]) -> dict[str, object]:
    return {
        "model": r["model"]["name"],
        "benchmark": f"{r['benchmark']} {r['split']} ({r['prover']})",
        "statements sha256": r["data_sha256"][:16],
        "problems": r["problems_evaluated"],
        "samples/problem": r["samples_per_problem"],
        "solved": r["solved"],
        "tokens": r["tokens"],
        "wall s": f"{r['wall_seconds']:.1f}",
        "sampling s": f"{r['sampling_seconds']:.1f}",
        "checking s": f"{r['checking_seconds']:.1f}",
        "verifier s": f"{r['verifier_seconds']:.1f}",
    }


def _estimates(report: dict[str, Any]) -> dict[tuple[int, str], PassAtK]:
    return {
        (e["k"], e["estimator"]): PassAtK(e["estimator"], e["k"], e["value"], e["std"], e["blocks"])
        for e in report["pass_at_k"]
    }
