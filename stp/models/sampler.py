"""The sampling interface shared by the CPU (transformers) and GPU (vLLM) backends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    num_tokens: int  # generated tokens, as the model's tokenizer counts them


class Sampler(Protocol):
    """Draws ``n`` completions per prompt. Results come back in prompt order, one list per
    prompt; ``progress`` is called with the number of prompts finished so far."""

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
    ) -> list[list[Completion]]: ...

    def close(self) -> None: ...
