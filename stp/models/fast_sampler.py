"""The ``fast`` sampling backend: a Llama decode loop in plain torch for the CPU.

``transformers.generate`` spends most of its CPU time outside arithmetic on a small model: it
prefills every prompt ``n`` times (``num_return_sequences`` copies the prompt before the
forward pass), grows its KV cache by concatenation, and runs a stack of generic modules, hooks
and logits processors per token. This backend reads the weights of a loaded
``LlamaForCausalLM`` once and runs the same arithmetic with less around it:

- each prompt is prefilled once and its keys and values are shared by its ``n`` samples: the
  ``n`` queries of a prompt meet its prompt cache in one matrix product, so the cache is read
  once per prompt, not once per sample;
- the generated tokens' keys and values go to a preallocated cache, one slot per step;
- all prompts × ``n`` samples of a batch decode together, projections fused (q, k, v in one
  matrix product, gate and up in another);
- a finished row (end of sequence or a stop string) leaves the projections, the MLP, the
  output head and sampling at once; a prompt whose ``n`` rows have all finished leaves the
  caches when a quarter of the batch's prompts have (one copy of the caches then).

The distribution is the reference ``hf`` backend's: temperature, then the model's generation
config ``top_k`` (transformers' default 50 when unset), then ``top_p``, sampled by inverse CDF
from one uniform draw per row and step; greedy (temperature 0) takes the argmax. Stop strings
are transformers' own ``StopStringCriteria`` over the same tokens (prompt included), and the
text is cut and its tokens counted as the ``hf`` backend does. Every batch draws from its own
generator seeded with ``seed`` and the batch's position, and each row's draws do not depend on
which other rows are still running.

Models this loop does not implement (other architectures, dynamic RoPE, sampling settings in
the generation config beyond temperature, top-k and top-p) raise ``UnsupportedModelError``;
``make_sampler`` then falls back to the ``hf`` backend and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import (
    AutoModelForCausalLM,
    GenerationConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
    StopStringCriteria,
)

from stp.config import SamplingConfig
from stp.models.hf_sampler import CompletionDecoder, load_tokenizer, resolve_dtype
from stp.models.sampler import Completion

# Generation-config fields that change the distribution, with the values that leave it alone:
# a model that sets any of them otherwise samples differently in `generate`, so it is refused.
_NEUTRAL_GENERATION = {
    "repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "typical_p": (None, 1.0),
    "min_p": (None,),
    "top_h": (None,),
    "epsilon_cutoff": (None, 0.0),
    "eta_cutoff": (None, 0.0),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "bad_words_ids": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "exponential_decay_length_penalty": (None,),
    "sequence_bias": (None,),
}
# Compact a batch once this share of its rows has finished: the copy costs about one step.
_COMPACT_SHARE = 0.25


class UnsupportedModelError(Exception):
    """The decode loop does not implement this model; the ``hf`` backend samples it."""


@dataclass(frozen=True)
class _Layer:
    attn_norm: torch.Tensor
    qkv: torch.Tensor  # [(heads + 2 kv_heads) * head_dim, hidden]: q, k, v in one product
    qkv_bias: torch.Tensor | None
    out: torch.Tensor
    out_bias: torch.Tensor | None
    mlp_norm: torch.Tensor
    gate_up: torch.Tensor  # [2 * intermediate, hidden]: gate, then up
    gate_up_bias: torch.Tensor | None
    down: torch.Tensor
    down_bias: torch.Tensor | None


class LlamaDecoder:
    """The forward pass of a ``LlamaForCausalLM`` over its own weights, for decoding.

    Keys and values of prompts live in ``[prompts, kv_heads, length, head_dim]`` caches, those
    of generated tokens in ``[rows, kv_heads, steps, head_dim]`` caches, where the rows of
    prompt ``p`` are ``p * n ... p * n + n - 1``.
    """

    def __init__(self, model: LlamaForCausalLM) -> None:
        config = model.config
        rope = getattr(config, "rope_parameters", None) or {}
        if rope.get("rope_type", "default") in ("dynamic", "longrope"):
            raise UnsupportedModelError(f"RoPE type {rope['rope_type']!r} changes with length")
        if config.hidden_act != "silu":
            raise UnsupportedModelError(f"activation {config.hidden_act!r} (silu expected)")
        self.heads = int(config.num_attention_heads)
        self.kv_heads = int(config.num_key_value_heads or self.heads)
        self.head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // self.heads)
        self.group = self.heads // self.kv_heads
        self.eps = config.rms_norm_eps
        self.hidden = config.hidden_size
        self.scale = self.head_dim**-0.5
        self.dtype = model.dtype
        body = model.model
        self.embed = body.embed_tokens.weight.detach()
        self.final_norm = body.norm.weight.detach()
        self.lm_head = model.lm_head.weight.detach()
        self.lm_head_bias = _detach(getattr(model.lm_head, "bias", None))
        self.layers = [self._layer(layer) for layer in body.layers]
        self.rotary = body.rotary_emb
        self.cos = self.sin = torch.empty(0, self.head_dim, dtype=self.dtype)
        self.reserve_positions(config.max_position_embeddings)

    def reserve_positions(self, count: int) -> None:
        """cos/sin of positions ``0 .. count - 1`` from the model's own rotary embedding
        (scaled RoPE types included), in the layout ``rotate_half`` expects."""
        if count <= self.cos.shape[0]:
            return
        with torch.inference_mode():
            cos, sin = self.rotary(self.embed[:1].unsqueeze(0), torch.arange(count).unsqueeze(0))
        self.cos, self.sin = cos[0].to(self.dtype), sin[0].to(self.dtype)

    @staticmethod
    def _layer(layer: Any) -> _Layer:  # a LlamaDecoderLayer
        attn, mlp = layer.self_attn, layer.mlp
        return _Layer(
            attn_norm=layer.input_layernorm.weight.detach(),
            qkv=torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]).detach(),
            qkv_bias=_cat_biases(attn.q_proj, attn.k_proj, attn.v_proj),
            out=attn.o_proj.weight.detach(),
            out_bias=_detach(attn.o_proj.bias),
            mlp_norm=layer.post_attention_layernorm.weight.detach(),
            gate_up=torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).detach(),
            gate_up_bias=_cat_biases(mlp.gate_proj, mlp.up_proj),
            down=mlp.down_proj.weight.detach(),
            down_bias=_detach(mlp.down_proj.bias),
        )

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (self.hidden,), weight, self.eps)

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = self.head_dim // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def _project(
        self, layer: _Layer, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v of ``x`` ``[..., hidden]`` as ``[..., heads, head_dim]``, q and k rotated."""
        qkv = F.linear(self._norm(x, layer.attn_norm), layer.qkv, layer.qkv_bias)
        qkv = qkv.unflatten(-1, (self.heads + 2 * self.kv_heads, self.head_dim))
        q, k, v = qkv.split([self.heads, self.kv_heads, self.kv_heads], dim=-2)
        cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)
        return self._rope(q, cos, sin), self._rope(k, cos, sin), v

    def _finish_layer(self, layer: _Layer, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        x = x + F.linear(attended, layer.out, layer.out_bias)
        gate, up = F.linear(self._norm(x, layer.mlp_norm), layer.gate_up, layer.gate_up_bias).chunk(
            2, dim=-1
        )
        return x + F.linear(F.silu(gate) * up, layer.down, layer.down_bias)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self._norm(x, self.final_norm), self.lm_head, self.lm_head_bias)

    def prefill(
        self, ids: torch.Tensor
    ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
        """One prompt ``[length]``: per layer its keys and values ``[kv_heads, length,
        head_dim]``, and the logits of its last position ``[vocab]``."""
        length = ids.shape[0]
        cos, sin = self.cos[:length], self.sin[:length]
        x = F.embedding(ids, self.embed)
        cache = []
        for layer in self.layers:
            q, k, v = self._project(layer, x, cos, sin)
            q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
            attended = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, scale=self.scale, enable_gqa=self.group > 1
            )
            x = self._finish_layer(layer, x, attended.transpose(0, 1).flatten(-2))
            cache.append((k, v))
        return cache, self.logits(x[-1])

    def start(self, prompts: list[torch.Tensor], n: int, steps: int) -> tuple[Caches, torch.Tensor]:
        """Prefill each prompt once, on its own (no padding to compute), for ``n`` samples of
        up to ``steps`` more tokens each; returns the caches and the logits of each prompt's
        last position ``[prompts, vocab]``."""
        longest = max(len(ids) for ids in prompts)
        count = len(prompts)
        key_shape = (count, self.kv_heads, self.head_dim, longest)
        value_shape = (count, self.kv_heads, longest, self.head_dim)
        gen_shape = (count * n, self.kv_heads, max(steps, 1), self.head_dim)
        caches = Caches(
            n=n,
            lengths=torch.tensor([len(ids) for ids in prompts]).repeat_interleave(n),
            prompt_keys=[torch.zeros(key_shape, dtype=self.dtype) for _ in self.layers],
            prompt_values=[torch.zeros(value_shape, dtype=self.dtype) for _ in self.layers],
            prompt_mask=torch.full((count, 1, 1, longest), float("-inf"), dtype=self.dtype),
            gen_keys=[torch.empty(gen_shape, dtype=self.dtype) for _ in self.layers],
            gen_values=[torch.empty(gen_shape, dtype=self.dtype) for _ in self.layers],
        )
        logits = []
        for p, ids in enumerate(prompts):
            layers, last = self.prefill(ids)
            for keys, values, (k, v) in zip(
                caches.prompt_keys, caches.prompt_values, layers, strict=True
            ):
                keys[p, :, :, : len(ids)] = k.transpose(-1, -2)
                values[p, :, : len(ids)] = v
            caches.prompt_mask[p, ..., : len(ids)] = 0.0
            logits.append(last)
        return caches, torch.stack(logits)

    def step(
        self, caches: Caches, tokens: torch.Tensor, active: torch.Tensor | None, slot: int
    ) -> torch.Tensor:
        """Logits ``[len(tokens), vocab]`` of ``tokens``, the generated token ``slot`` of the
        rows ``active`` (indices into the caches' rows; None: every row); writes their keys and
        values into the generated caches at ``slot``.

        Projections and the MLP run on the active rows only; attention runs on every row of
        the caches, since a prompt's rows meet its prompt cache in one product."""
        n, rows = caches.n, caches.rows
        prompts = rows // n
        positions = caches.lengths if active is None else caches.lengths[active]
        positions = positions + slot
        cos, sin = self.cos[positions], self.sin[positions]
        x = F.embedding(tokens, self.embed)
        width = self.group * n  # queries that meet one kv head of one prompt
        seen = slot + 1
        for layer, prompt_k, prompt_v, gen_k, gen_v in zip(
            self.layers,
            caches.prompt_keys,
            caches.prompt_values,
            caches.gen_keys,
            caches.gen_values,
            strict=True,
        ):
            q, k, v = self._project(layer, x, cos, sin)  # [active, heads | kv_heads, head_dim]
            if active is None:
                gen_k[:, :, slot] = k
                gen_v[:, :, slot] = v
            else:
                gen_k[active, :, slot] = k
                gen_v[active, :, slot] = v
                q = q.new_zeros((rows, *q.shape[1:])).index_copy_(0, active, q)
            # The prompt part: [prompts, kv_heads, n * group, head_dim] against the prompt cache.
            q_prompt = q.view(prompts, n, self.kv_heads, self.group, self.head_dim)
            q_prompt = q_prompt.transpose(1, 2).reshape(prompts, self.kv_heads, width, -1)
            scores_prompt = (
                torch.matmul(q_prompt, prompt_k).mul_(self.scale).add_(caches.prompt_mask)
            )
            # The generated part: each row against its own tokens.
            q_gen = q.view(rows, self.kv_heads, self.group, self.head_dim)
            scores_gen = torch.matmul(q_gen, gen_k[:, :, :seen].transpose(-1, -2)).mul_(self.scale)
            scores_gen = (
                scores_gen.view(prompts, n, self.kv_heads, self.group, seen)
                .transpose(1, 2)
                .reshape(prompts, self.kv_heads, width, seen)
            )
            weights = torch.softmax(torch.cat([scores_prompt, scores_gen], dim=-1), dim=-1)
            length = scores_prompt.shape[-1]
            attended = torch.matmul(weights[..., :length], prompt_v)  # [p, kvh, width, d]
            attended = attended.view(prompts, self.kv_heads, n, self.group, self.head_dim)
            attended = attended.transpose(1, 2).reshape(rows, self.kv_heads, self.group, -1)
            weights_gen = (
                weights[..., length:]
                .reshape(prompts, self.kv_heads, n, self.group, seen)
                .transpose(1, 2)
                .reshape(rows, self.kv_heads, self.group, seen)
            )
            attended = attended + torch.matmul(weights_gen, gen_v[:, :, :seen])
            if active is not None:
                attended = attended[active]
            x = self._finish_layer(layer, x, attended.flatten(1))
        return self.logits(x)


@dataclass
class Caches:
    """The keys and values of one batch: prompt ``p``'s ``n`` samples are rows
    ``p * n ... p * n + n - 1``. Prompt keys are stored transposed, ``[prompts, kv_heads,
    head_dim, longest]``, ready for the product with the queries; prompt values are
    ``[prompts, kv_heads, longest, head_dim]``; ``prompt_mask`` ``[prompts, 1, 1, longest]``
    is 0 on each prompt's tokens and -inf on its padding; generated keys and values are
    ``[rows, kv_heads, steps, head_dim]``. ``lengths`` ``[rows]`` is each row's prompt length."""

    n: int
    lengths: torch.Tensor
    prompt_keys: list[torch.Tensor]
    prompt_values: list[torch.Tensor]
    prompt_mask: torch.Tensor
    gen_keys: list[torch.Tensor]
    gen_values: list[torch.Tensor]

    @property
    def rows(self) -> int:
        return self.lengths.shape[0]

    def keep_prompts(self, keep: torch.Tensor) -> None:
        """Drop every prompt but ``keep`` (prompt indices, in order) and their rows."""
        rows = (keep.unsqueeze(1) * self.n + torch.arange(self.n)).flatten()
        self.lengths = self.lengths[rows]
        self.prompt_keys = [t.index_select(0, keep) for t in self.prompt_keys]
        self.prompt_values = [t.index_select(0, keep) for t in self.prompt_values]
        self.prompt_mask = self.prompt_mask.index_select(0, keep)
        self.gen_keys = [t.index_select(0, rows) for t in self.gen_keys]
        self.gen_values = [t.index_select(0, rows) for t in self.gen_values]


def _detach(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.detach()


def _cat_biases(*linears: Any) -> torch.Tensor | None:  # torch.nn.Linear
    biases = [linear.bias for linear in linears]
    if all(b is None for b in biases):
        return None
    return torch.cat(
        [
            b if b is not None else torch.zeros(lin.out_features, dtype=lin.weight.dtype)
            for b, lin in zip(biases, linears, strict=True)
        ]
    ).detach()


def sample_tokens(
    logits: torch.Tensor, temperature: float, top_k: int, top_p: float, uniforms: torch.Tensor
) -> torch.Tensor:
    """One token per row of ``logits`` ``[rows, vocab]``: greedy at temperature 0, else from
    the temperature-scaled distribution cut to the ``top_k`` most likely tokens (0: all), then
    to the smallest head of mass ``top_p``, by inverse CDF at ``uniforms`` ``[rows]``."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    vocab = logits.shape[-1]
    values, indices = torch.topk(logits, min(top_k or vocab, vocab), dim=-1)  # sorted
    probs = torch.softmax(values / temperature, dim=-1)
    cumulative = probs.cumsum(dim=-1)
    if top_p < 1.0:
        # A token stays while the mass strictly above it is below top_p (the first always).
        probs = probs.masked_fill(cumulative - probs >= top_p, 0.0)
        cumulative = probs.cumsum(dim=-1)
    targets = uniforms.unsqueeze(-1) * cumulative[:, -1:]
    choice = torch.searchsorted(cumulative, targets, right=True).clamp_(max=values.shape[-1] - 1)
    return indices.gather(-1, choice).squeeze(-1)


class FastSampler:
    """A ``Sampler`` over a Llama-architecture causal LM, decoding on the CPU in plain torch."""

    def __init__(self, model: str, config: SamplingConfig) -> None:
        self.batch_size = config.batch_size
        self.tokenizer: PreTrainedTokenizerBase = load_tokenizer(model)
        self.completions = CompletionDecoder(self.tokenizer)
        dtype = resolve_dtype(config.dtype, torch.device("cpu"))
        hf_model = AutoModelForCausalLM.from_pretrained(model, dtype=dtype)
        if not isinstance(hf_model, LlamaForCausalLM):
            raise UnsupportedModelError(f"{type(hf_model).__name__} is not a LlamaForCausalLM")
        self.top_k, self.eos_ids = _generation_settings(hf_model.generation_config, self.tokenizer)
        self.decoder = LlamaDecoder(hf_model)
        self.pad = self.tokenizer.pad_token_id

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
        sampled = self.sample_ids(
            prompts,
            n,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            stop=stop,
            progress=progress,
        )
        return [[self.completions.decode(ids, stop) for ids in rows] for rows in sampled]

    def sample_ids(
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
    ) -> list[list[list[int]]]:
        """The generated token ids behind ``generate``'s completions, ``n`` lists per prompt,
        each ending at its end-of-sequence token or at the token that completes a stop string."""
        stop_criteria = StopStringCriteria(self.tokenizer, list(stop)) if stop else None
        # Greedy decoding has one answer per prompt: decode it once, copy it n times.
        rows_per_prompt = 1 if temperature == 0 else n
        results: list[list[list[int]]] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = list(prompts[start : start + self.batch_size])
            # Seeded per batch: a batch's samples never depend on the batches drawn before it.
            generator = torch.Generator().manual_seed(seed + start)
            rows = self._generate_batch(
                batch, rows_per_prompt, temperature, top_p, max_new_tokens, stop_criteria, generator
            )
            for i in range(len(batch)):
                drawn = rows[i * rows_per_prompt : (i + 1) * rows_per_prompt]
                results.append(drawn * n if rows_per_prompt == 1 else drawn)
            if progress is not None:
                progress(len(results))
        return results

    @torch.inference_mode()
    def _generate_batch(
        self,
        prompts: list[str],
        n: int,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        stop_criteria: StopStringCriteria | None,
        generator: torch.Generator,
    ) -> list[list[int]]:
        """The generated ids of each prompt's ``n`` rows, row ``p * n + j`` for sample ``j``
        of prompt ``p``, each ending at its end of sequence or stop string."""
        decoder = self.decoder
        encoded = [torch.tensor(ids) for ids in self.tokenizer(prompts)["input_ids"]]
        decoder.reserve_positions(max(len(ids) for ids in encoded) + max_new_tokens)
        caches, first_logits = decoder.start(encoded, n, max_new_tokens - 1)
        rows = len(prompts) * n
        logits = first_logits.repeat_interleave(n, dim=0)
        # Each row's tokens, after the last `window` prompt tokens the stop criterion may
        # need to see (a stop string can begin in the prompt).
        window = stop_criteria.maximum_token_len if stop_criteria is not None else 0
        tokens = torch.full((rows, window + max_new_tokens), self.pad, dtype=torch.long)
        for p, ids in enumerate(encoded):
            tail = ids[-window:] if window else ids[:0]
            tokens[p * n : (p + 1) * n, window - len(tail) : window] = tail
        ended = torch.full((rows,), max_new_tokens, dtype=torch.long)  # tokens each row keeps
        eos = torch.tensor(self.eos_ids)
        row_of = torch.arange(rows)  # the batch row of each cache row (compaction drops some)
        running = torch.ones(rows, dtype=torch.bool)  # per cache row
        active: torch.Tensor | None = None  # the running cache rows; None: all of them
        for step in range(max_new_tokens):
            # One draw per row and step, whether or not the row still runs: a row's samples
            # never depend on when the other rows finish.
            uniforms = torch.rand(rows, generator=generator)
            live = row_of if active is None else row_of[active]  # the rows of `logits`
            chosen = sample_tokens(logits, temperature, self.top_k, top_p, uniforms[live])
            tokens[live, window + step] = chosen
            finished = torch.isin(chosen, eos)
            if stop_criteria is not None:
                finished |= stop_criteria(tokens[live, step + 1 : window + step + 1], None)
            ended[live[finished]] = step + 1
            if step == max_new_tokens - 1:
                break
            if finished.any():
                running[finished.nonzero().squeeze(1) if active is None else active[finished]] = (
                    False
                )
                if not running.any():
                    break
                chosen = chosen[~finished]
                prompt_running = running.view(-1, n).any(dim=1)
                if (~prompt_running).sum() >= _COMPACT_SHARE * prompt_running.numel():
                    keep = prompt_running.nonzero().squeeze(1)
                    caches.keep_prompts(keep)
                    kept_rows = (keep.unsqueeze(1) * n + torch.arange(n)).flatten()
                    row_of, running = row_of[kept_rows], running[kept_rows]
                active = None if running.all() else running.nonzero().squeeze(1)
            logits = decoder.step(caches, chosen, active, step)
        generated = tokens[:, window:].tolist()
        return [row[:end] for row, end in zip(generated, ended.tolist(), strict=True)]

    def close(self) -> None:
        del self.decoder


def _generation_settings(
    generation: GenerationConfig, tokenizer: PreTrainedTokenizerBase
) -> tuple[int, list[int]]:
    """The model's ``top_k`` as ``generate`` applies it, and its end-of-sequence ids; refuses a
    generation config that samples otherwise (repetition penalty, min-p, ...)."""
    for name, neutral in _NEUTRAL_GENERATION.items():
        value = getattr(generation, name, None)
        if value not in neutral:
            raise UnsupportedModelError(f"generation config sets {name}={value!r}")
    top_k = generation.top_k
    if top_k is None:  # unset: generate applies transformers' global default
        top_k = GenerationConfig._get_default_generation_params()["top_k"]
    eos = generation.eos_token_id if generation.eos_token_id is not None else tokenizer.eos_token_id
    return int(top_k), list(eos) if isinstance(eos, list) else [int(eos)]
