"""Sampling proofs (and conjectures) from a model with the run's sampling settings.

``ModelSampler`` is the one place that turns ``SamplingConfig`` into a ``generate`` call: the
rounds' conjecturer and prover stages and ``stp eval`` all sample through it, so the same
settings mean the same call everywhere. The sampler (and the model) is built on first use:
a stage or evaluation that finds its work done loads nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from stp.config import SamplingConfig
from stp.languages import FENCE
from stp.models.sampler import Completion, Sampler

Progress = Callable[[int], None]


class ModelSampler:
    """``sampler_factory()`` built once, on first use, and called with ``settings``."""

    def __init__(self, sampler_factory: Callable[[], Sampler], settings: SamplingConfig) -> None:
        self._factory = sampler_factory
        self._sampler: Sampler | None = None
        self.settings = settings

    @classmethod
    def of_model(cls, model: str, settings: SamplingConfig) -> ModelSampler:
        def build() -> Sampler:
            from stp.models import make_sampler  # loads torch: only when something is sampled

            return make_sampler(model, settings)

        return cls(build, settings)

    def generate(
        self, prompts: Sequence[str], n: int, seed: int, progress: Progress | None = None
    ) -> list[list[Completion]]:
        """``n`` completions per prompt, in prompt order; each stops at the closing fence."""
        if self._sampler is None:
            self._sampler = self._factory()
        return self._sampler.generate(
            prompts,
            n,
            temperature=self.settings.temperature,
            top_p=self.settings.top_p,
            max_new_tokens=self.settings.max_new_tokens,
            seed=seed,
            stop=(FENCE,),
            progress=progress,
        )

    def close(self) -> None:
        """Free the model (its memory goes back to the verifier workers); a later
        ``generate`` builds it again."""
        if self._sampler is not None:
            self._sampler.close()
            self._sampler = None
