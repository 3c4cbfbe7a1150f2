"""The ``fast`` CPU sampler draws what transformers ``generate`` draws: the same greedy tokens,
the same sampling distribution, the same stop strings and token counts.

The shared behaviour of every backend (order, ``n``, seeds, progress, stop-string cuts) is
tested in test_models.py for ``hf`` and ``fast`` alike; this file compares the two."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from stp.config import SamplingConfig
from stp.data import load_benchmark
from stp.languages.rocq import ROCQ
from stp.models import make_sampler
from stp.models.fast_sampler import FastSampler, sample_tokens
from stp.models.hf_sampler import CompletionDecoder, HFSampler


def prompts(count: int) -> list[str]:
    return [
        ROCQ.prover_prompt(s.header, s.formal_statement)
        for s in load_benchmark("minif2f", "rocq", "valid")[:count]
    ]


@pytest.fixture(scope="module")
def variant_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Llama with what `stp model init` does not use: grouped-query attention, biases, linear
    RoPE scaling, and an untied output head scaled up so that next-token distributions are
    peaked (temperature and top-p then change them a lot)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        attention_bias=True,
        mlp_bias=True,
        rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0},
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(1)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and module.bias is not None:
                module.bias.normal_(0.0, 0.1)
        model.lm_head.weight.mul_(20.0)
    out = tmp_path_factory.mktemp("variant") / "model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module", params=["tiny", "variant"])
def model_path(request: pytest.FixtureRequest, tiny_model: Path, variant_model: Path) -> Path:
    return tiny_model if request.param == "tiny" else variant_model


def test_logits_match_transformers(model_path: Path) -> None:
    sampler = FastSampler(str(model_path), SamplingConfig())
    reference = AutoModelForCausalLM.from_pretrained(model_path)
    ids = torch.tensor(sampler.tokenizer(prompts(1))["input_ids"])
    prompt, continuation = ids[0, :-6], ids[0, -6:]
    decoder = sampler.decoder
    with torch.inference_mode():
        expected = reference(ids).logits[0]
        caches, first = decoder.start([prompt], n=2, steps=len(continuation))
        got = [first[0]]
        for slot, token in enumerate(continuation[:-1]):
            got.append(decoder.step(caches, token.repeat(2), None, slot)[0])
    torch.testing.assert_close(torch.stack(got), expected[-7:-1], atol=2e-5, rtol=1e-4)


def test_greedy_tokens_identical_to_generate(model_path: Path) -> None:
    batch = [*prompts(5), "Theorem"]
    sampler = FastSampler(str(model_path), SamplingConfig(batch_size=4))
    reference = AutoModelForCausalLM.from_pretrained(model_path)
    got = sampler.sample_ids(batch, 2, temperature=0.0, top_p=1.0, max_new_tokens=24, seed=0)
    for prompt, rows in zip(batch, got, strict=True):
        encoded = sampler.tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            output = reference.generate(**encoded, do_sample=False, max_new_tokens=24)
        expected = output[0, encoded["input_ids"].shape[1] :].tolist()
        assert rows == [expected, expected]


def test_sample_tokens_follows_generates_warpers() -> None:
    """Stratified uniforms turn inverse-CDF sampling into exact frequencies: each token's
    share of draws is its probability to within one draw."""
    torch.manual_seed(0)
    logits = torch.randn(3, 800) * 3
    draws = 20_000
    uniforms = (torch.arange(draws) + 0.5) / draws
    for temperature, top_k, top_p in [
        (1.0, 50, 0.95),
        (0.7, 50, 0.8),
        (1.3, 0, 1.0),
        (1.0, 0, 0.5),
    ]:
        warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature)])
        if top_k:
            warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p))
        expected = torch.softmax(warpers(None, logits.clone()), dim=-1)
        for row in range(logits.shape[0]):
            chosen = sample_tokens(
                logits[row].expand(draws, -1), temperature, top_k, top_p, uniforms
            )
            frequencies = torch.bincount(chosen, minlength=800) / draws
            torch.testing.assert_close(frequencies, expected[row], atol=1.5 / draws, rtol=0)
    assert torch.equal(sample_tokens(logits, 0.0, 50, 0.9, uniforms[:3]), logits.argmax(dim=-1))


def _histogram(rows: list[list[int]], position: int, vocab: int) -> torch.Tensor:
    tokens = torch.tensor([r[position] for r in rows if len(r) > position])
    return torch.bincount(tokens, minlength=vocab).double() / len(tokens)


def test_sampled_tokens_follow_the_reference_distribution(variant_model: Path) -> None:
    """Many samples of a few tokens from the fast and the hf sampler: the first token's
    frequencies match the distribution `generate` samples from, computed from the model's
    logits, and later tokens' frequencies match between the two samplers. The tolerance is
    well inside the distance to the distribution at other settings."""
    prompt = ["Lemma add_comm : forall n m : nat, n + m = m + n.\nProof.\n"]
    settings = dict(temperature=0.8, top_p=0.9, max_new_tokens=3)
    draws = 3000
    fast = FastSampler(str(variant_model), SamplingConfig())
    hf = HFSampler(str(variant_model), SamplingConfig())
    [fast_rows] = fast.sample_ids(prompt, draws, seed=0, **settings)
    with torch.inference_mode():
        encoded = hf.tokenizer(prompt, return_tensors="pt")
        output = hf.model.generate(
            **encoded,
            do_sample=True,
            temperature=0.8,
            top_p=0.9,
            max_new_tokens=3,
            num_return_sequences=draws,
        )
        hf_rows = output[:, encoded["input_ids"].shape[1] :].tolist()
        logits = hf.model(**encoded).logits[0, -1]
    vocab = logits.shape[-1]

    def warped(temperature: float, top_p: float) -> torch.Tensor:
        warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature), TopKLogitsWarper(50)])
        if top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p))
        return torch.softmax(warpers(None, logits.unsqueeze(0).clone())[0], dim=-1).double()

    def distance(p: torch.Tensor, q: torch.Tensor) -> float:
        return 0.5 * float((p - q).abs().sum())

    expected = warped(0.8, 0.9)
    tolerance = 0.035
    for other in (warped(1.0, 0.9), warped(0.8, 1.0), warped(0.6, 0.9)):
        assert distance(other, expected) > 2.5 * tolerance  # the test can tell them apart
    assert distance(_histogram(fast_rows, 0, vocab), expected) < tolerance
    assert distance(_histogram(hf_rows, 0, vocab), expected) < tolerance
    for position in (1, 2):
        fast_share = _histogram(fast_rows, position, vocab)
        hf_share = _histogram(hf_rows, position, vocab)
        assert distance(fast_share, hf_share) < 1.5 * tolerance


def test_greedy_stop_strings_and_token_counts_match_hf(model_path: Path) -> None:
    batch = prompts(4)
    kwargs = dict(temperature=0.0, top_p=1.0, max_new_tokens=40, seed=0)
    fast = FastSampler(str(model_path), SamplingConfig(batch_size=3))
    hf = HFSampler(str(model_path), SamplingConfig(batch_size=3))
    free = fast.generate(batch, 1, **kwargs)
    assert free == hf.generate(batch, 1, **kwargs)
    first, second = free[0][0].text, free[1][0].text
    assert len(first) >= 8 and len(second) >= 8
    # Stop strings the model writes (several at once, some of two characters, which may
    # end inside a token), and one that begins in the prompt's last characters.
    for stop in ([first[6:8]], [second[4:6], first[3]], ["\n" + first[:2]]):
        stopped = fast.generate(batch, 2, stop=stop, **kwargs)
        assert stopped == hf.generate(batch, 2, stop=stop, **kwargs)
        assert stopped[0][0].num_tokens < free[0][0].num_tokens


def test_make_sampler_chooses_fast_on_cpu_and_falls_back(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(make_sampler(str(tiny_model), SamplingConfig()), FastSampler)
    assert isinstance(make_sampler(str(tiny_model), SamplingConfig(backend="hf")), HFSampler)
    # A generation config that samples with a repetition penalty: `generate` applies it, the
    # fast loop does not, so the model goes to the hf backend, and the log says why.
    penalised = tmp_path / "penalised"
    shutil.copytree(tiny_model, penalised)
    settings = json.loads((penalised / "generation_config.json").read_text())
    settings["repetition_penalty"] = 1.3
    (penalised / "generation_config.json").write_text(json.dumps(settings))
    with caplog.at_level(logging.WARNING, logger="stp.models"):
        sampler = make_sampler(str(penalised), SamplingConfig(backend="fast"))
    assert isinstance(sampler, HFSampler)
    assert "repetition_penalty=1.3" in caplog.text and "transformers generate" in caplog.text


def test_completions_decode_like_hf(tiny_model: Path) -> None:
    """End of sequence ends a completion (counted), padding ends it (not counted)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    decoder = CompletionDecoder(tokenizer)
    ids = tokenizer("intros. auto.")["input_ids"][1:]
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    assert decoder.decode([*ids, eos, ids[0]], ()).num_tokens == len(ids) + 1
    assert decoder.decode([*ids, pad, pad], ()).num_tokens == len(ids)
    assert decoder.decode(ids, ()).text == "intros. auto."
    cut = decoder.decode(ids, ["."])
    assert cut.text == "intros" and 1 <= cut.num_tokens < len(ids)
