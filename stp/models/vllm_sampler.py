"""The ``vllm`` sampling backend (extra ``gpu``): vLLM engines on GPUs.

One request per prompt with ``SamplingParams(n=k, seed=...)``: vLLM draws the k samples from
one seeded generator, so they differ (k copies of a prompt with one seed would come out
identical) and the prompt is prefilled once. Prefix caching shares the KV cache of the long
common prompt headers. vLLM draws sample j of a request seeded s with seed s + j, so prompt i
gets seed ``seed + i * n``: no two samples of a call share a seed (with ``seed + i``, two
copies of a prompt would come out as shifted copies of each other), and a prompt's samples do
not depend on how the prompts were split.

``sampling.tensor_parallel_size`` GPUs form one engine; ``sampling.data_parallel_size > 1``
runs that many independent engines as Ray actors (extra ``dist``), each holding
``tensor_parallel_size`` GPUs, on the local node or the cluster ``ray.init`` connects to
(``RAY_ADDRESS``). Prompts go to the engines in chunks of at most ``CHUNK_PROMPTS``, cut so that
every engine gets one when there are fewer (``stp eval`` asks for a few prompts at a time), and
results come back in order.

vLLM refuses a prompt that leaves no room for one generated token within the model's context
(``max_model_len``), and the refusal fails the whole ``generate`` call. Each engine counts the
prompts' tokens with the model's tokenizer first: a prompt too long gets ``n`` empty
completions (a failed attempt, so pass@k stays defined) and a warning naming it.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stp.config import SamplingConfig
from stp.errors import MissingExtraError
from stp.models.sampler import Completion

# Prompts per generate call: large enough for vLLM's continuous batching to fill the GPU,
# small enough that progress reports come regularly.
CHUNK_PROMPTS = 512

log = logging.getLogger(__name__)

# What an engine gives back for a chunk: per prompt its samples' (text, generated tokens), or
# the prompt's token count where it does not fit the model's context.
ChunkResult = list[list[tuple[str, int]] | int]


def _require(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(f"sampling.backend=vllm needs {module}: pip install 'stp[{extra}]'")


class _Engine:
    """One vLLM engine over ``tensor_parallel_size`` GPUs (in this process or a Ray actor)."""

    def __init__(self, model: str, config: SamplingConfig, seed: int) -> None:
        from vllm import LLM

        self.llm = LLM(
            model=model,
            tensor_parallel_size=config.tensor_parallel_size,
            dtype=config.dtype,
            gpu_memory_utilization=config.gpu_memory_utilization,
            enable_prefix_caching=config.enable_prefix_caching,
            seed=seed,
        )

    def generate(
        self, prompts: list[str], seeds: list[int], n: int, params: dict[str, Any]
    ) -> ChunkResult:
        from vllm import SamplingParams

        tokenizer = self.llm.get_tokenizer()
        context = self.llm.llm_engine.model_config.max_model_len
        lengths = [len(tokenizer.encode(prompt)) for prompt in prompts]
        fits = [i for i, length in enumerate(lengths) if length < context]
        outputs = (
            self.llm.generate(
                [prompts[i] for i in fits],
                [SamplingParams(n=n, seed=seeds[i], **params) for i in fits],
                use_tqdm=False,
            )
            if fits
            else []
        )
        results: ChunkResult = list(lengths)
        for i, request in zip(fits, outputs, strict=True):
            results[i] = [(o.text, len(o.token_ids)) for o in request.outputs]
        return results


class VLLMSampler:
    """A ``Sampler`` over vLLM: one engine in this process, or ``data_parallel_size`` Ray
    actors each running one."""

    def __init__(self, model: str, config: SamplingConfig) -> None:
        _require("vllm", "gpu")
        if Path(model).exists():
            # Ray actors do not run in this process's working directory, and vLLM takes a
            # relative path it cannot find for a hub id.
            model = str(Path(model).resolve())
        self.engines: list[Any]
        if config.data_parallel_size == 1:
            self.ray = None
            self.engines = [_Engine(model, config, seed=0)]
            return
        _require("ray", "dist")
        import ray

        if not ray.is_initialized():
            ray.init()
        actor = ray.remote(num_gpus=config.tensor_parallel_size)(_Engine)
        self.ray = ray
        self.engines = [
            actor.remote(model, config, seed=rank) for rank in range(config.data_parallel_size)
        ]

    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        *,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        seed: int,
        stop: Sequence[str] = (),
        progress: Callable[[int], None] | None = None,
    ) -> list[list[Completion]]:
        params = {
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_new_tokens,
            "stop": list(stop),
        }
        chunks = []  # (prompts, their seeds)
        size = max(1, min(CHUNK_PROMPTS, math.ceil(len(prompts) / len(self.engines))))
        for start in range(0, len(prompts), size):
            chunk = list(prompts[start : start + size])
            chunks.append((chunk, [seed + (start + i) * n for i in range(len(chunk))]))
        results: list[ChunkResult | None] = [None] * len(chunks)
        finished = 0
        if self.ray is None:
            for index, (chunk, seeds) in enumerate(chunks):
                results[index] = self.engines[0].generate(chunk, seeds, n, params)
                finished += len(chunk)
                if progress is not None:
                    progress(finished)
        else:
            pending = {
                self.engines[index % len(self.engines)].generate.remote(
                    chunk, seeds, n, params
                ): index
                for index, (chunk, seeds) in enumerate(chunks)
            }
            while pending:
                [ready], _ = self.ray.wait(list(pending), num_returns=1)
                index = pending.pop(ready)
                results[index] = self.ray.get(ready)
                finished += len(chunks[index][0])
                if progress is not None:
                    progress(finished)
        out: list[list[Completion]] = []
        too_long: list[str] = []
        for chunk_result in results:
            for per_prompt in chunk_result or []:
                if isinstance(per_prompt, int):
                    too_long.append(f"#{len(out)} ({per_prompt} tokens)")
                    out.append([Completion(text="", num_tokens=0)] * n)
                else:
                    out.append([Completion(text=t, num_tokens=c) for t, c in per_prompt])
        if too_long:
            log.warning(
                "vllm: %d of %d prompts leave no room in the model's context (max_model_len) and get "
                "%d empty completions each: prompt %s",
                len(too_long),
                len(prompts),
                n,
                ", ".join(too_long),
            )
        return out

    def close(self) -> None:
        if self.ray is not None:
            for engine in self.engines:
                self.ray.kill(engine)
        self.engines = []
