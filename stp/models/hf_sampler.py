"""The ``hf`` sampling backend: transformers ``generate`` on the CPU or one GPU.

Prompts are batched with left padding (``sampling.batch_size`` prompts per call) and each
prompt's ``n`` samples come from ``num_return_sequences``. Stop strings end a sequence early
(transformers' ``stop_strings`` criterion) and the text is cut before the first one, as vLLM
does. Every batch is seeded from ``seed`` and its position, so the same call returns the same
completions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from stp.config import SamplingConfig
from stp.models.sampler import Completion

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` is float32 on the CPU (bf16 matmuls are slow there) and bfloat16 on a GPU."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return _DTYPES[name]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class HFSampler:
    """A ``Sampler`` over a transformers causal LM (local folder or hub id)."""

    def __init__(self, model: str, config: SamplingConfig) -> None:
        self.device = default_device()
        self.batch_size = config.batch_size
        self.tokenizer = load_tokenizer(model)
        self.completions = CompletionDecoder(self.tokenizer)
        self.model = AutoModelForCausalLM.from_pretrained(
            model, dtype=resolve_dtype(config.dtype, self.device), device_map=self.device
        )
        self.model.eval()

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
        results: list[list[Completion]] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = list(prompts[start : start + self.batch_size])
            # Seeded per batch: a batch's samples never depend on the batches drawn before it.
            torch.manual_seed(seed + start)
            sequences = self._generate_batch(batch, n, temperature, top_p, max_new_tokens, stop)
            for i in range(len(batch)):
                results.append(
                    [self.completions.decode(sequences[i * n + j].tolist(), stop) for j in range(n)]
                )
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
        stop: Sequence[str],
    ) -> torch.Tensor:
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        greedy = temperature == 0
        sampling = (
            {"do_sample": False}
            if greedy
            else {"do_sample": True, "temperature": temperature, "top_p": top_p}
        )
        output = self.model.generate(
            **encoded,
            **sampling,
            max_new_tokens=max_new_tokens,
            num_return_sequences=1 if greedy else n,
            stop_strings=list(stop) or None,
            tokenizer=self.tokenizer,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        generated = output[:, encoded["input_ids"].shape[1] :].cpu()
        # Greedy decoding has one answer per prompt; transformers refuses n > 1 for it.
        return generated.repeat_interleave(n, dim=0) if greedy else generated

    def close(self) -> None:
        del self.model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def load_tokenizer(model: str) -> PreTrainedTokenizerBase:
    """The model's tokenizer, padding on the left (prompts end where generation starts)."""
    tokenizer = AutoTokenizer.from_pretrained(model, padding_side="left")
    if tokenizer.pad_token_id is None:  # Llama-family hub tokenizers ship no pad token
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class CompletionDecoder:
    """Generated token ids to a ``Completion``: the text up to the end of sequence, cut before
    the first stop string, and the number of tokens generation used to get there."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer

    def decode(self, ids: list[int], stop: Sequence[str]) -> Completion:
        # A sequence ends at its end-of-sequence token (counted, as vLLM counts it); once a
        # sequence is finished, generate fills its row with padding.
        eos = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id
        length = len(ids)
        for position, token in enumerate(ids):
            if token == eos:
                length = position + 1
                break
            if token == pad:
                length = position
                break
        ids = ids[:length]
        text = self._text(ids)
        cut = _first_stop(text, stop)
        if cut is None:
            return Completion(text=text, num_tokens=len(ids))
        return Completion(text=text[:cut], num_tokens=self._tokens_until(ids, stop))

    def _text(self, ids: list[int]) -> str:
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        assert isinstance(text, str)  # one sequence in, one string out
        return text

    def _tokens_until(self, ids: list[int], stop: Sequence[str]) -> int:
        """The fewest leading tokens whose text contains a stop string: generation stops at
        the token that completes it. Binary search, since containment only grows with length."""
        low, high = 1, len(ids)
        while low < high:
            middle = (low + high) // 2
            if _first_stop(self._text(ids[:middle]), stop) is None:
                low = middle + 1
            else:
                high = middle
        return low


def _first_stop(text: str, stop: Sequence[str]) -> int | None:
    positions = [at for at in (text.find(s) for s in stop if s) if at != -1]
    return min(positions) if positions else None
