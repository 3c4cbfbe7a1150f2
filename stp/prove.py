"""What rounds and evaluations share on the way from a statement to a checked proof.

``Problem`` is a statement as the prover sees it: its prompt and, for each proof, the job the
proof assistant checks. A bundled benchmark ``Statement`` becomes one once
(``Problem.from_statement``); a round's ``Target`` is one.

``ModelSampler`` is the one place that turns ``SamplingConfig`` into a ``generate`` call: the
rounds' conjecturer and prover stages and ``stp eval`` all sample through it, so the same
settings mean the same call everywhere. The sampler (and the model) is built on first use:
a stage or evaluation that finds its work done loads nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Self

from stp.config import SamplingConfig
from stp.data.benchmarks import Statement
from stp.languages.base import FENCE, FormalLanguage
from stp.models.sampler import Completion, Sampler
from stp.verify.types import VerifyJob

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Problem:
    """A statement to prove: what the prover is shown and what its proofs are checked against."""

    id: str
    header: str
    formal_statement: str
    informal: str | None = None
    forbidden: tuple[str, ...] = ()  # names a proof may not cite (its own library copy)

    @classmethod
    def from_statement(cls, statement: Statement) -> Self:
        return cls(
            id=statement.name,
            header=statement.header,
            formal_statement=statement.formal_statement,
            informal=statement.informal_statement,
            forbidden=statement.forbidden_names,
        )

    def prompt(self, lang: FormalLanguage) -> str:
        return lang.prover_prompt(self.header, self.formal_statement, self.informal)

    def job(self, job_id: str, proof: str) -> VerifyJob:
        return VerifyJob(
            id=job_id,
            header=self.header,
            formal_statement=self.formal_statement,
            proof=proof,
            forbidden_names=self.forbidden,
        )


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
