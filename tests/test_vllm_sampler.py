"""The vLLM sampler's requests, against a stand-in `vllm` module that records them (vLLM
needs a GPU and is not installed here)."""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import vllm_api

from stp.config import SamplingConfig
from stp.models import vllm_sampler


class FakeSamplingParams:
    def __init__(self, n: int = 1, seed: int | None = None, **params: Any) -> None:
        self.n, self.seed, self.params = n, seed, params


class FakeTokenizer:
    """One token per word."""

    def encode(self, text: str) -> list[int]:
        return [0] * len(text.split())


class FakeLLM:
    """Answers each request as vLLM does for ``n > 1``: sample j of a request seeded s is
    drawn with seed s + j (vllm/v1/engine/parallel_sampling.py), so a sample's text is
    its seed. Like vLLM (vllm/v1/engine/input_processor.py) it refuses the whole call when a
    prompt leaves no room for one token in ``MAX_MODEL_LEN``."""

    MAX_MODEL_LEN = 100
    requests: list[tuple[str, FakeSamplingParams]]

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.requests = []
        config = types.SimpleNamespace(max_model_len=self.MAX_MODEL_LEN)
        self.llm_engine = types.SimpleNamespace(model_config=config)

    def get_tokenizer(self) -> FakeTokenizer:
        return FakeTokenizer()

    def generate(
        self, prompts: list[str], params: list[FakeSamplingParams], use_tqdm: bool
    ) -> list[Any]:
        for prompt in prompts:
            length = len(FakeTokenizer().encode(prompt))
            if length >= self.MAX_MODEL_LEN:
                raise ValueError(f"The decoder prompt (length {length}) plus the number of ...")
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


class Ref:
    """An object reference: hashable, holding its value."""

    def __init__(self, value: Any) -> None:
        self.value = value


class FakeRay(types.ModuleType):
    """Runs each engine actor in this process, recording the arguments it was built with."""

    def __init__(self) -> None:
        super().__init__("ray")
        self.__spec__ = importlib.machinery.ModuleSpec("ray", None)
        self.actors: list[tuple[Any, ...]] = []
        self.engines: list[Any] = []

    def is_initialized(self) -> bool:
        return True

    def remote(self, **resources: Any) -> Callable[[type], Any]:
        def actor_class(cls: type) -> Any:
            def start(*args: Any, **kwargs: Any) -> Any:
                self.actors.append(args)
                engine = cls(*args, **kwargs)
                self.engines.append(engine)
                call = lambda *a: Ref(engine.generate(*a))  # noqa: E731
                return types.SimpleNamespace(generate=types.SimpleNamespace(remote=call))

            return types.SimpleNamespace(remote=start)

        return actor_class

    def wait(self, refs: list[Any], num_returns: int) -> tuple[list[Any], list[Any]]:
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref: Ref) -> Any:
        return ref.value


@pytest.fixture
def ray(monkeypatch: pytest.MonkeyPatch) -> FakeRay:
    fake = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    return fake


def sample_dp(
    prompts: list[str], engines: int, ray: FakeRay, n: int = 2, seed: int = 7
) -> list[list[str]]:
    """Texts from a sampler over ``engines`` data-parallel engines."""
    config = SamplingConfig(backend="vllm", data_parallel_size=engines)
    sampler = vllm_sampler.VLLMSampler("model", config)
    out = sampler.generate(prompts, n, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=seed)
    return [[c.text for c in per_prompt] for per_prompt in out]


def test_a_small_call_runs_on_every_engine(fake_vllm: None, ray: FakeRay) -> None:
    # `stp eval` asks for 16 problems at a time: all 8 engines must work on them.
    prompts = [f"p{i}" for i in range(16)]
    texts = sample_dp(prompts, engines=8, ray=ray, n=2, seed=7)
    got = [[prompt for prompt, _ in engine.llm.requests] for engine in ray.engines]
    assert got == [prompts[i : i + 2] for i in range(0, 16, 2)]
    seeds = [[p.seed for _, p in engine.llm.requests] for engine in ray.engines]
    assert seeds == [[7 + i * 2, 7 + (i + 1) * 2] for i in range(0, 16, 2)]
    # Results in prompt order, and the same as one engine gives.
    assert texts == [[f"seed {7 + i * 2}", f"seed {7 + i * 2 + 1}"] for i in range(16)]
    assert sample_dp(prompts, engines=1, ray=ray) == texts


def test_fewer_prompts_than_engines_leave_the_rest_idle(fake_vllm: None, ray: FakeRay) -> None:
    sample_dp(["a", "b", "c"], engines=8, ray=ray)
    assert [len(engine.llm.requests) for engine in ray.engines] == [1, 1, 1, 0, 0, 0, 0, 0]


def test_large_calls_still_go_in_chunks_of_chunk_prompts(
    fake_vllm: None, ray: FakeRay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vllm_sampler, "CHUNK_PROMPTS", 3)
    sample_dp([f"p{i}" for i in range(20)], engines=2, ray=ray)
    # 7 chunks of 3, 3, ..., 2 dealt round robin: 3+3+3+2 prompts and 3+3+3.
    assert [len(engine.llm.requests) for engine in ray.engines] == [11, 9]


def test_an_over_long_prompt_gets_empty_completions_not_a_failed_call(
    fake_vllm: None, ray: FakeRay, caplog: pytest.LogCaptureFixture
) -> None:
    fits = " ".join(["w"] * (FakeLLM.MAX_MODEL_LEN - 1))
    too_long = " ".join(["w"] * FakeLLM.MAX_MODEL_LEN)  # no room for one generated token
    prompts = ["short", too_long, fits, too_long + " more"]
    with caplog.at_level("WARNING", logger="stp.models.vllm_sampler"):
        texts = sample_dp(prompts, engines=2, ray=ray, n=3, seed=0)
    assert texts[0] == ["seed 0", "seed 1", "seed 2"]
    assert texts[1] == ["", "", ""] and texts[3] == ["", "", ""]
    assert texts[2] == ["seed 6", "seed 7", "seed 8"]  # its seed does not move
    sent = [prompt for engine in ray.engines for prompt, _ in engine.llm.requests]
    assert sent == ["short", fits]
    [record] = caplog.records
    assert "2 of 4 prompts" in record.message
    assert "#1 (100 tokens), #3 (101 tokens)" in record.message


def test_engine_actors_get_the_model_folder_as_an_absolute_path(
    fake_vllm: None, ray: FakeRay, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Actors do not share the driver's working directory: `runs/...` there would be a hub id.
    (tmp_path / "runs" / "model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    vllm_sampler.VLLMSampler("runs/model", SamplingConfig(backend="vllm", data_parallel_size=2))
    assert [args[0] for args in ray.actors] == [str(tmp_path / "runs" / "model")] * 2
    vllm_sampler.VLLMSampler("org/hub-model", SamplingConfig(backend="vllm", data_parallel_size=2))
    assert ray.actors[-1][0] == "org/hub-model"


# ------------------------------------------------------------ vLLM's names, from its source

API = json.loads((Path(__file__).parent / "data" / "vllm_api.json").read_text())
SAMPLER_SOURCE = Path(vllm_sampler.__file__)
# The sampler's local names that hold vLLM objects, and their classes.
LOCALS = {"o": "CompletionOutput", "request": "RequestOutput", "tokenizer": "TokenizerLike"}
# Attribute chains under `self.llm`: each step's class.
CHAIN = ("LLM", "LLMEngine", "ModelConfig")


def names_of(cls: str, api: dict[str, Any]) -> set[str]:
    record = api[cls]
    return {*record["fields"], *record["attributes"], *record["methods"]}


def sampler_uses() -> list[tuple[str, str]]:
    """(vLLM class, name) for every keyword and attribute of vLLM's that the sampler uses."""
    uses = []
    tree = ast.parse(SAMPLER_SOURCE.read_text())
    for node in ast.walk(tree):
        called = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        if called and node.func.id in ("LLM", "SamplingParams"):
            uses += [(f"{node.func.id}()", k.arg) for k in node.keywords if k.arg]
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "self.llm.generate":
            uses += [("LLM.generate", k.arg) for k in node.keywords if k.arg]
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "params":
            assert isinstance(node.value, ast.Dict)  # the SamplingParams every request gets
            uses += [("SamplingParams()", ast.literal_eval(k)) for k in node.value.keys if k]
        if isinstance(node, ast.Attribute):
            chain = ast.unparse(node).split(".")
            if chain[:2] == ["self", "llm"] and len(chain) > 2:
                uses += list(zip(CHAIN, chain[2:5], strict=False))
            elif isinstance(node.value, ast.Name) and node.value.id in LOCALS:
                uses.append((LOCALS[node.value.id], node.attr))
    return sorted(set(uses))


def unknown_uses(api: dict[str, Any]) -> list[tuple[str, str]]:
    known = {  # LLM passes keywords it does not name on to EngineArgs
        "LLM()": {*api["LLM"]["__init__ parameters"], *api["EngineArgs"]["fields"]},
        "SamplingParams()": set(api["SamplingParams"]["fields"]),
        "LLM.generate": set(api["LLM"]["generate parameters"]),
    }
    return [
        (cls, name)
        for cls, name in sampler_uses()
        if name not in known.get(cls, names_of(cls, api) if cls in api else set())
    ]


def test_the_recorded_api_is_vllms_and_the_sampler_uses_it() -> None:
    assert API["source"].startswith("vllm 0.33.0")
    uses = sampler_uses()
    assert ("LLM()", "enable_prefix_caching") in uses and ("SamplingParams()", "max_tokens") in uses
    assert ("LLM", "get_tokenizer") in uses and ("TokenizerLike", "encode") in uses
    assert ("LLMEngine", "model_config") in uses and ("ModelConfig", "max_model_len") in uses
    assert ("CompletionOutput", "token_ids") in uses and ("LLM.generate", "use_tqdm") in uses
    assert unknown_uses(API) == []


def test_the_check_catches_a_misspelt_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = SAMPLER_SOURCE.read_text()
    swaps = [("enable_prefix_caching=", "prefix_caching="), ('"max_tokens"', '"max_new"')]
    for index, (right, wrong) in enumerate(swaps):
        changed = tmp_path / f"sampler{index}.py"
        changed.write_text(source.replace(right, wrong))
        monkeypatch.setattr(sys.modules[__name__], "SAMPLER_SOURCE", changed)
        assert len(unknown_uses(API)) == 1


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")
def test_the_installed_vllm_has_the_names_the_sampler_uses() -> None:
    spec = importlib.util.find_spec("vllm")
    assert spec is not None and spec.origin is not None
    installed = vllm_api.read_api(Path(spec.origin).parents[1])  # parsed, not imported
    assert unknown_uses(installed) == []
