"""The vLLM sampler's requests, against a stand-in `vllm` module that records them (vLLM
needs a GPU and is not installed here)."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stp.config import SamplingConfig
from stp.models import vllm_sampler


class FakeSamplingParams:
    def __init__(self, n: int = 1, seed: int | None = None, **params: Any) -> None:
        self.n, self.seed, self.params = n, seed, params


class FakeLLM:
    """Answers each request as vLLM does for ``n > 1``: sample j of a request seeded s is
    drawn with seed s + j (vllm/v1/engine/parallel_sampling.py), so a sample's text is
    its seed."""

    requests: list[tuple[str, FakeSamplingParams]]

    def __init__(self, **kwargs: Any) -> None:
        self.requests = []

    def generate(
        self, prompts: list[str], params: list[FakeSamplingParams], use_tqdm: bool
    ) -> list[Any]:
        self.requests += zip(prompts, params, strict=True)
        return [
            types.SimpleNamespace(
                outputs=[
                    types.SimpleNamespace(text=f"seed {p.seed + j}", token_ids=[0])
                    for j in range(p.n)
                ]
            )
            for p in params
        ]


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("vllm")
    module.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    module.LLM = FakeLLM  # type: ignore[attr-defined]
    module.SamplingParams = FakeSamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)


def sample(prompts: list[str], n: int, seed: int) -> tuple[list[list[str]], list[Any]]:
    sampler = vllm_sampler.VLLMSampler("model", SamplingConfig(backend="vllm"))
    out = sampler.generate(prompts, n, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=seed)
    requests = sampler.engines[0].llm.requests
    return [[c.text for c in per_prompt] for per_prompt in out], requests


def test_no_two_samples_of_a_call_share_a_seed(fake_vllm: None) -> None:
    # Two copies of one statement must not come out as shifted copies of each other.
    texts, requests = sample(["A", "A", "B", "A", "C"], n=4, seed=11)
    assert [len(t) for t in texts] == [4] * 5
    assert [prompt for prompt, _ in requests] == ["A", "A", "B", "A", "C"]
    assert all(params.n == 4 for _, params in requests)
    drawn = [text for per_prompt in texts for text in per_prompt]
    assert len(set(drawn)) == len(drawn), drawn


def test_a_prompts_samples_do_not_depend_on_the_chunking(
    fake_vllm: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = [f"p{i}" for i in range(7)]
    whole, _ = sample(prompts, n=3, seed=5)
    monkeypatch.setattr(vllm_sampler, "CHUNK_PROMPTS", 2)
    chunked, requests = sample(prompts, n=3, seed=5)
    assert len(requests) == 7 and chunked == whole
    assert sample(prompts, n=3, seed=6)[0] != whole


class FakeRay(types.ModuleType):
    """Records the arguments the driver sends to each engine actor."""

    def __init__(self) -> None:
        super().__init__("ray")
        self.__spec__ = importlib.machinery.ModuleSpec("ray", None)
        self.actors: list[tuple[Any, ...]] = []

    def is_initialized(self) -> bool:
        return True

    def remote(self, **resources: Any) -> Callable[[type], Any]:
        def actor_class(cls: type) -> Any:
            return types.SimpleNamespace(remote=lambda *args, **kw: self.actors.append(args))

        return actor_class


def test_engine_actors_get_the_model_folder_as_an_absolute_path(
    fake_vllm: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Actors do not share the driver's working directory: `runs/...` there would be a hub id.
    (tmp_path / "runs" / "model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    ray = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", ray)
    vllm_sampler.VLLMSampler("runs/model", SamplingConfig(backend="vllm", data_parallel_size=2))
    assert [args[0] for args in ray.actors] == [str(tmp_path / "runs" / "model")] * 2
    vllm_sampler.VLLMSampler("org/hub-model", SamplingConfig(backend="vllm", data_parallel_size=2))
    assert ray.actors[-1][0] == "org/hub-model"
