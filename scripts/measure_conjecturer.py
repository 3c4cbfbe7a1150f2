"""How often the conjecturer writes a well-typed statement, prompted as round 0 prompts it.

Bootstraps the run the config names (corpus, base model, initial fine-tune: each skipped when
already done, exactly as ``stp round`` does), draws seeds from the corpus' sft proofs with the
round's seed chooser, samples conjectures with the round's sampler and parser, and puts every
parsed statement through the round's conjecture gate (``stp.selfplay.gate.screen``: elaborated
in its header, then the trivial, restatement, vacuous and refutation checks) with the run's
verifier::

    python scripts/measure_conjecturer.py --config configs/tiny-rocq.yaml --seeds 100
    python scripts/measure_conjecturer.py --config configs/tiny-rocq.yaml --model runs/x/model \\
        --set sampling.temperature=0.7

Prints the load average (the machine is shared: compare ratios measured side by side), the
funnel sampled -> parsed -> well-typed -> past the gate, how many well-typed statements are
new (not a corpus statement), the gate's rejections by reason and a few examples. ``--json
FILE`` also writes the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from pathlib import Path

from stp.assistants import assistant
from stp.config import add_config_arguments, config_from_args
from stp.envinfo import load_average
from stp.prove import ModelSampler
from stp.runs import RunLayout, model_for_round
from stp.selfplay import gate
from stp.selfplay.bootstrap import bootstrap, load_run_corpus
from stp.selfplay.conjecturing import (
    KnownStatements,
    choose_seeds,
    known_statements,
    sample_conjectures,
)
from stp.selfplay.history import RunHistory
from stp.selfplay.records import GATE_PASSED, ILL_TYPED
from stp.selfplay.training import apply_torch_threads
from stp.verify import make_verifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="Model to sample (default: the run's round-0 model).")
    parser.add_argument("--seeds", type=int, default=100, help="Seeds drawn from the corpus.")
    parser.add_argument("--per-seed", type=int, default=2, help="Conjectures per seed.")
    parser.add_argument("--sample-seed", type=int, default=0, help="Seed of the draw.")
    parser.add_argument(
        "--examples", type=int, default=8, help="New well-typed ones (and ill-typed ones) to print."
    )
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    add_config_arguments(parser)
    args = parser.parse_args()
    config = config_from_args(args)
    apply_torch_threads(config)
    lang = assistant(config.verification.backend).language
    print(f"load average {load_average()}", flush=True)

    started = time.perf_counter()
    layout = RunLayout.of(config)
    if args.model is None:
        bootstrap(config, layout, lambda line: print(line, flush=True))
    model = args.model or model_for_round(config, layout, 0)
    bootstrap_s = time.perf_counter() - started
    corpus = load_run_corpus(config)
    if corpus is None:
        raise SystemExit("the config names no run.corpus: seeds come from the corpus' sft proofs")

    selection = dataclasses.replace(
        config.selection,
        max_seeds=args.seeds,
        conjectures_per_seed=args.per_seed,
        max_conjectures=args.seeds * args.per_seed,
    )
    rng = random.Random(args.sample_seed)
    seeds, _ = choose_seeds([], RunHistory(), corpus, selection, lang, rng)
    known = known_statements([], corpus, RunHistory(), lang).keys
    started = time.perf_counter()
    sampler = ModelSampler.of_model(model, config.sampling)
    # An empty "known" set: every parsed statement is kept (repeats within the draw aside),
    # and checked; whether it restates a corpus theorem is counted apart.
    conjectures, counts = sample_conjectures(
        seeds, sampler, lang, KnownStatements(set(), set()), 0, selection, args.sample_seed
    )
    sampler.close()
    sample_s = time.perf_counter() - started

    started = time.perf_counter()
    with make_verifier(config.verification) as verifier:
        outcomes = gate.screen(conjectures, verifier, config.gate, config.verification.backend)
    check_s = time.perf_counter() - started
    typed = [c for c, o in zip(conjectures, outcomes, strict=True) if o.well_typed]
    new = [c for c in typed if bytes.fromhex(c.key) not in known]
    passed = [c for c, o in zip(conjectures, outcomes, strict=True) if o.outcome == GATE_PASSED]
    rejections = gate.counts(outcomes)
    sampled = counts.generated
    figures = {
        "model": model,
        "load_average": load_average(),
        "sampled": sampled,
        "parsed": counts.valid,
        "distinct": len(conjectures),
        "well_typed": len(typed),
        "well_typed_new": len(new),
        "passed_gate": len(passed),
        "gate": rejections,
        "well_typed_rate": len(typed) / sampled if sampled else 0.0,
        "well_typed_new_rate": len(new) / sampled if sampled else 0.0,
        "tokens": counts.tokens,
        "bootstrap_s": round(bootstrap_s, 1),
        "sample_s": round(sample_s, 1),
        "check_s": round(check_s, 1),
    }
    print(
        f"{model}: {sampled} sampled, {counts.valid} parsed, {len(conjectures)} distinct, "
        f"{len(typed)} well-typed ({100 * figures['well_typed_rate']:.1f}%), "
        f"{len(new)} of them new ({100 * figures['well_typed_new_rate']:.1f}%), "
        f"{len(passed)} past the gate; gate: {rejections}; "
        f"sampling {sample_s:.0f} s, checking {check_s:.0f} s, load {figures['load_average']}"
    )
    for c in new[: args.examples]:
        print(f"  well-typed: {lang.statement_body(c.formal_statement)}")
    for c, o in list(zip(conjectures, outcomes, strict=True))[: args.examples]:
        if o.outcome == ILL_TYPED:
            print(
                f"  ill-typed: {lang.statement_body(c.formal_statement)[:100]!r}: {o.detail[:90]}"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
