"""The offline CPU default model: a byte-level BPE tokenizer trained on a corpus and a tiny,
randomly initialised Llama-style causal LM, saved with ``save_pretrained``.

Nothing is downloaded: the tokenizer is trained here with ``tokenizers`` and the model is built
from a config, so the result loads with ``HF_HUB_OFFLINE=1`` by path. The corpus for Rocq is the
Coq standard library; the model learns the language from the round-0 fine-tuning on it.

    stp model init --corpus $(coqc -where)/theories/Arith/*.v --out artifacts/tiny-rocq-model
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from stp.errors import MissingInput

BOS, EOS, PAD = "<s>", "</s>", "<pad>"


@dataclass(frozen=True)
class TinyModelSpec:
    """Size of the tiny model. The defaults make a ~1.5M-parameter model that samples a few
    thousand tokens/s on two CPU cores."""

    vocab_size: int = 4096
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    max_positions: int = 2048
    seed: int = 0


def _read_corpus(files: Sequence[Path]) -> Iterator[str]:
    for path in files:
        # Some stdlib files carry Latin-1 bytes in comments: keep going, never crash on them.
        yield path.read_text(encoding="utf-8", errors="replace")


def train_tokenizer(corpus: Sequence[Path], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (any text round-trips) that prepends ``<s>`` like the Llama
    family's tokenizers do, so prompts are encoded the same way for the tiny and the hub models."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_read_corpus(corpus), trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD
    )


def build_tiny_model(
    corpus: Sequence[str | Path], out_dir: str | Path, spec: TinyModelSpec
) -> Path:
    """Train the tokenizer on ``corpus``, build the model, save both to ``out_dir``."""
    files = [Path(p) for p in corpus]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise MissingInput(f"corpus file not found: {missing[0]}")
    if not files:
        raise MissingInput("no corpus files given: pass --corpus FILE [FILE ...]")
    tokenizer = train_tokenizer(files, spec.vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=spec.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
