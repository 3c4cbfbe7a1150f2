"""Throughput of the ``hf`` sampler against a bare ``model.generate`` call.

Both sample the same prompts (prover prompts of miniF2F-valid, Rocq) with the same model,
batch size, ``n`` and ``max_new_tokens``; tokens/s counts generated tokens. The sampler adds
batching, stop strings, text cutting and token counting, and should keep at least 80% of the
bare call's throughput.

    python scripts/bench_sampler.py --model artifacts/tiny-rocq-model
    python scripts/bench_sampler.py --model M --prompts 16 --n 4 --max-new-tokens 128
"""

from __future__ import annotations

import argparse
import time

import torch

from stp.config import SamplingConfig
from stp.data import load_benchmark
from stp.languages import ROCQ
from stp.models.hf_sampler import HFSampler


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="Local model folder or hub id.")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="Best of this many runs.")
    args = parser.parse_args()

    prompts = [
        ROCQ.prover_prompt(s.header, s.formal_statement)
        for s in load_benchmark("minif2f", "rocq", "valid")[: args.prompts]
    ]
    sampler = HFSampler(args.model, SamplingConfig(batch_size=args.batch_size))
    bare_rates, sampler_rates = [], []
    for repeat in range(args.repeats):
        torch.manual_seed(repeat)
        start = time.perf_counter()
        tokens = bare_generate(sampler, prompts, args.n, args.max_new_tokens, args.batch_size)
        bare_rates.append(tokens / (time.perf_counter() - start))
        start = time.perf_counter()
        results = sampler.generate(
            prompts,
            args.n,
            temperature=1.0,
            top_p=0.95,
            max_new_tokens=args.max_new_tokens,
            seed=repeat,
            # A stop string the untrained model rarely writes: generation runs to the limit
            # as in the bare call, so the comparison measures the sampler's own overhead.
            stop=["\nQed.\n```"],
        )
        tokens = sum(c.num_tokens for per_prompt in results for c in per_prompt)
        sampler_rates.append(tokens / (time.perf_counter() - start))
    bare, ours = max(bare_rates), max(sampler_rates)
    print(f"threads: {torch.get_num_threads()}, device: {sampler.device}")
    print(f"bare model.generate: {bare:8.0f} tokens/s")
    print(f"hf sampler:          {ours:8.0f} tokens/s ({100 * ours / bare:.0f}% of bare)")


if __name__ == "__main__":
    main()
