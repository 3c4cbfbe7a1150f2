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
(``RAY_ADDRESS``). Prompts go to the engines in chunks, and results come back in order.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stp.config import SamplingConfig
from stp.errors import MissingExtraError
from stp.models.sampler import Completion

# Prompts per generate call: large enough for vLLM's continuous batching to fill the GPU,
# small enough that progress reports come regularly.
CHUNK_PROMPTS = 512


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
    ) -> list[list[tuple[str, int]]]:
        from vllm import SamplingParams

        outputs = self.llm.generate(
            prompts,
            [SamplingParams(n=n, seed=seed, **params) for seed in seeds],
            use_tqdm=False,
        )
        return [[(o.text, len(o.token_ids)) for o in request.outputs] for request in outputs]


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
        for start in range(0, len(prompts), CHUNK_PROMPTS):
            chunk = list(prompts[start : start + CHUNK_PROMPTS])
            chunks.append((chunk, [seed + (start + i) * n for i in range(len(chunk))]))
        results: list[list[list[tuple[str, int]]] | None] = [None] * len(chunks)
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
        return [
            [Completion(text=text, num_tokens=count) for text, count in per_prompt]
            for chunk_result in results
            for per_prompt in chunk_result or []
        ]

    def close(self) -> None:
        if self.ray is not None:
            for engine in self.engines:
                self.ray.kill(engine)
        self.engines = []
