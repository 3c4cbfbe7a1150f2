"""The model layer on the real tiny model: build, sample, embed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stp.cli import main
from stp.config import SamplingConfig
from stp.data import load_benchmark
from stp.errors import MissingExtraError
from stp.languages.rocq import ROCQ
from stp.models import make_sampler
from stp.models.embed import mean_pooled_embeddings
from stp.models.sampler import Sampler

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", params=["hf", "fast"])
def sampler(request: pytest.FixtureRequest, tiny_model: Path) -> Sampler:
    """Each CPU backend, through the same tests."""
    return make_sampler(str(tiny_model), SamplingConfig(backend=request.param, batch_size=2))


def prompts(count: int) -> list[str]:
    return [
        ROCQ.prover_prompt(s.header, s.formal_statement)
        for s in load_benchmark("minif2f", "rocq", "valid")[:count]
    ]


def test_init_rejects_missing_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["model", "init", "--corpus", str(tmp_path / "none.v"), "--out", str(tmp_path / "m")]
    assert main(argv) == 2
    assert "corpus file not found" in capsys.readouterr().err


def test_model_loads_and_samples_offline_by_path(tiny_model: Path) -> None:
    code = (
        "import sys; from stp.config import SamplingConfig; from stp.models import make_sampler\n"
        "s = make_sampler(sys.argv[1], SamplingConfig())\n"
        "out = s.generate(['Theorem'], 2, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=0)\n"
        "print(len(out), len(out[0]), all(c.num_tokens >= 1 for c in out[0]))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tiny_model)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "2", "True"]


def test_tokenizer_round_trips_rocq_text(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    text = prompts(1)[0] + "intros. lia.\nQed.\n```"
    ids = tokenizer(text).input_ids
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert len({tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}) == 3


def test_generate_shape_order_progress_and_reproducibility(sampler: Sampler) -> None:
    batch = prompts(3)
    seen: list[int] = []
    kwargs = dict(temperature=1.0, top_p=0.95, max_new_tokens=12, seed=7)
    first = sampler.generate(batch, 4, progress=seen.append, **kwargs)
    assert [len(per_prompt) for per_prompt in first] == [4, 4, 4]
    assert seen == [2, 3]  # batch_size 2: after the first batch, then after the second
    assert all(1 <= c.num_tokens <= 12 for per_prompt in first for c in per_prompt)
    assert len({c.text for c in first[0]}) > 1  # n samples of one prompt are not copies
    assert sampler.generate(batch, 4, **kwargs) == first
    other_seed = sampler.generate(batch, 4, **{**kwargs, "seed": 8})
    assert other_seed != first
    # A prompt's samples do not depend on the prompts after it in the call (order kept).
    assert sampler.generate(batch[:2], 4, **kwargs) == first[:2]


def test_greedy_samples_are_identical(sampler: Sampler) -> None:
    [completions] = sampler.generate(
        prompts(1), 3, temperature=0.0, top_p=1.0, max_new_tokens=10, seed=0
    )
    assert len({c.text for c in completions}) == 1


def test_stop_strings_cut_text_and_count_tokens_to_the_stop(sampler: Sampler) -> None:
    batch = prompts(2)
    kwargs = dict(n=3, temperature=1.0, top_p=1.0, max_new_tokens=40, seed=3)
    free = sampler.generate(batch, **kwargs)
    # A stop string the untrained model surely writes: its most common character.
    stop = max("etaoinsr ", key=lambda ch: sum(c.text.count(ch) for p in free for c in p))
    stopped = sampler.generate(batch, stop=[stop], **kwargs)
    hits = 0
    for free_prompt, stopped_prompt in zip(free, stopped, strict=True):
        for unstopped, cut in zip(free_prompt, stopped_prompt, strict=True):
            assert stop not in cut.text
            # Same seed, same draws: the stopped text is the free text cut before the stop.
            assert cut.text == unstopped.text.split(stop, 1)[0]
            if stop in unstopped.text:
                hits += 1
                assert cut.num_tokens < unstopped.num_tokens or unstopped.text.endswith(stop)
    assert hits > 0


def test_mean_pooled_embeddings(tiny_model: Path) -> None:
    texts = ["Theorem a : 1 = 1.", "Lemma b : forall n : nat, n + 0 = n.", "Theorem a : 1 = 1."]
    embeddings = mean_pooled_embeddings(str(tiny_model), texts, batch_size=2)
    assert embeddings.shape == (3, 64)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(embeddings[0], embeddings[2], atol=1e-6)
    assert not np.allclose(embeddings[0], embeddings[1])
    # Padding is left out of the mean: a text alone embeds as it does next to a longer one.
    alone = mean_pooled_embeddings(str(tiny_model), texts[:1], batch_size=1)
    np.testing.assert_allclose(alone[0], embeddings[0], atol=1e-5)


@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is not None, reason="vllm is installed: nothing is missing"
)
def test_vllm_backend_without_vllm_names_the_extra(tiny_model: Path) -> None:
    with pytest.raises(MissingExtraError, match=r"pip install 'stp\[gpu\]'"):
        make_sampler(str(tiny_model), SamplingConfig(backend="vllm"))


@pytest.fixture(scope="module")
def gpu_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Head size 64: vLLM's attention kernels support it (the CPU tiny model's 16 is not)."""
    corpus = sorted(Path(__file__).parents[1].glob("stp/data/benchmarks/*.jsonl"))
    out = tmp_path_factory.mktemp("gpu") / "model"
    argv = ["model", "init", "--corpus", *map(str, corpus), "--out", str(out)]
    argv += ["--vocab-size", "1000", "--hidden-size", "128", "--heads", "2", "--layers", "2"]
    assert main(argv) == 0
    return out


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["hf", "vllm"])
def test_gpu_sampling(gpu_model: Path, backend: str) -> None:
    sampler = make_sampler(str(gpu_model), SamplingConfig(backend=backend))
    kwargs = dict(temperature=1.0, top_p=0.95, max_new_tokens=16, seed=0, stop=["."])
    try:
        first = sampler.generate(prompts(3), 4, **kwargs)
        assert [len(p) for p in first] == [4, 4, 4]
        assert all(1 <= c.num_tokens <= 16 and "." not in c.text for p in first for c in p)
        assert len({c.text for c in first[0]}) > 1  # n samples of one prompt differ
        again = sampler.generate(prompts(3), 4, **kwargs)
        if backend == "hf":
            assert again == first  # seeded
        else:
            # vLLM documents seeded sampling as not reproducible run to run (batching changes
            # the kernels' floating-point order): a rerun is checked for shape only. Which
            # seeds it is given is tested in test_vllm_sampler.py.
            assert [len(p) for p in again] == [4, 4, 4]
    finally:
        sampler.close()
