"""Sampling throughput on the CPU: bare ``model.generate``, the ``hf`` sampler and the ``fast``
sampler, side by side in one run, against the machine's arithmetic limit.

All three sample the same prompts (prover prompts of miniF2F-valid, Rocq) from the same model
with the same ``n`` and ``max_new_tokens`` at temperature 1, top-p 0.95; tokens/s counts
generated tokens. Bare ``generate`` and the ``hf`` sampler take ``--batch-size`` prompts per
call (8 is their fastest on two cores: larger batches are slower), the ``fast`` sampler
``--fast-batch-size``. Each figure is the best of ``--repeats`` runs, the three interleaved so
that a load spike hits them alike; the load average is printed before and after.

The arithmetic limit: FLOPs per generated token from the model's shapes (2 per weight of the
layers' and the output head's matrix products, plus 4 × heads × head_dim per attended position
and layer at the mean context of a sampled token), divided into the FLOP/s of a large fp32
``torch.matmul`` measured here, now, on the same threads. The fraction is how much of the
machine's matrix-product speed a sampler turns into generated tokens.

    python scripts/bench_sampler.py --model artifacts/tiny-rocq-model
    python scripts/bench_sampler.py --model M --prompts 16 --n 4 --max-new-tokens 128
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from transformers import PretrainedConfig

from stp.config import SamplingConfig
from stp.data import load_benchmark
from stp.envinfo import load_average
from stp.languages.rocq import ROCQ
from stp.models.fast_sampler import FastSampler
from stp.models.hf_sampler import HFSampler
from stp.models.sampler import Sampler

# A stop string the models rarely write: generation runs to the limit as in the bare call,
# so the comparison measures the samplers, not how early their samples end.
STOP = "\nQed.\n```"


def bare_generate(
    sampler: HFSampler, prompts: list[str], n: int, max_new_tokens: int, batch_size: int
) -> int:
    """Plain transformers: the same batches, no stop strings, no decoding. Returns tokens."""
    tokenizer, model = sampler.tokenizer, sampler.model
    generated = 0
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            encoded = tokenizer(
                prompts[start : start + batch_size], return_tensors="pt", padding=True
            ).to(sampler.device)
            output = model.generate(
                **encoded,
                do_sample=True,
                top_p=0.95,
                max_new_tokens=max_new_tokens,
                num_return_sequences=n,
                pad_token_id=tokenizer.pad_token_id,
            )
            new = output[:, encoded["input_ids"].shape[1] :]
            generated += int((new != tokenizer.pad_token_id).sum())
    return generated


def sampled_tokens(
    sampler: Sampler, prompts: list[str], n: int, max_new_tokens: int, seed: int
) -> int:
    results = sampler.generate(
        prompts,
        n,
        temperature=1.0,
        top_p=0.95,
        max_new_tokens=max_new_tokens,
        seed=seed,
        stop=[STOP],
    )
    return sum(c.num_tokens for per_prompt in results for c in per_prompt)


def matmul_gflops(size: int = 1024, seconds: float = 1.0) -> float:
    """fp32 GFLOP/s of a square ``torch.matmul`` on the current threads: the arithmetic limit."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.matmul(a, b)
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9


def flops_per_token(config: PretrainedConfig, context: float) -> float:
    """Matrix-product FLOPs of one decoded token at ``context`` attended positions."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    projections = hidden * head_dim * (2 * heads + 2 * kv_heads)  # q, k, v, o
    mlp = 3 * hidden * config.intermediate_size
    attention = 2 * heads * head_dim * context  # q.k and weights.v, multiply-adds
    return 2 * (layers * (projections + mlp + attention) + hidden * config.vocab_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="Local model folder or hub id.")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8, help="Bare generate and hf.")
    parser.add_argument("--fast-batch-size", type=int, default=32, help="The fast sampler.")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all).")
    parser.add_argument("--repeats", type=int, default=3, help="Best of this many runs.")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    print(f"load average before: {load_average()}", flush=True)
    prompts = [
        ROCQ.prover_prompt(s.header, s.formal_statement)
        for s in load_benchmark("minif2f", "rocq", "valid")[: args.prompts]
    ]
    start = time.perf_counter()
    hf = HFSampler(args.model, SamplingConfig(backend="hf", batch_size=args.batch_size))
    hf_load = time.perf_counter() - start
    start = time.perf_counter()
    fast = FastSampler(args.model, SamplingConfig(backend="fast", batch_size=args.fast_batch_size))
    fast_load = time.perf_counter() - start

    runs: dict[str, Callable[[int], int]] = {
        "bare model.generate": lambda seed: bare_generate(
            hf, prompts, args.n, args.max_new_tokens, args.batch_size
        ),
        "hf sampler": lambda seed: sampled_tokens(hf, prompts, args.n, args.max_new_tokens, seed),
        "fast sampler": lambda seed: sampled_tokens(
            fast, prompts, args.n, args.max_new_tokens, seed
        ),
    }
    for run in runs.values():  # warm-up: first calls allocate and pick kernels
        run(-1)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for name, run in runs.items():
            torch.manual_seed(repeat)
            start = time.perf_counter()
            tokens = run(repeat)
            rates[name].append(tokens / (time.perf_counter() - start))
            print(f"  run {repeat + 1}, {name}: {rates[name][-1]:.0f} tokens/s", flush=True)
    gflops = matmul_gflops()

    prompt_tokens = [len(ids) for ids in hf.tokenizer(prompts)["input_ids"]]
    context = sum(prompt_tokens) / len(prompt_tokens) + args.max_new_tokens / 2
    per_token = flops_per_token(hf.model.config, context)
    limit = gflops * 1e9 / per_token
    bare = max(rates["bare model.generate"])
    print(
        f"{args.prompts} prompts x n={args.n}, {args.max_new_tokens} new tokens, "
        f"threads: {torch.get_num_threads()}, batch size: {args.batch_size} "
        f"(fast: {args.fast_batch_size}), best of {args.repeats}"
    )
    print(f"model load: hf {hf_load:.2f} s, fast {fast_load:.2f} s (weights read and fused)")
    print(
        f"arithmetic limit: {per_token / 1e6:.2f} MFLOP/token (mean context {context:.0f}), "
        f"matmul {gflops:.1f} GFLOP/s -> {limit:,.0f} tokens/s"
    )
    for name, measured in rates.items():
        rate = max(measured)
        print(
            f"{name + ':':21s}{rate:8.0f} tokens/s  {rate / bare:5.2f}x bare  "
            f"{100 * rate / limit:5.1f}% of limit   (runs: {', '.join(f'{r:.0f}' for r in measured)})"
        )
    print(f"load average after:  {load_average()}")


if __name__ == "__main__":
    main()
