"""The automation baseline: a prover that learns nothing and tries a fixed list of
automation tactics, one attempt each (``evaluation.<assistant>_automation_tactics``).

It is a ``Sampler`` like the models': each prompt gets the tactics as its completions, in
list order, so whatever samples and checks proofs (``stp eval``, the comparison script)
evaluates it like any model and reports the floor a learned prover must beat:

    stp eval --config configs/tiny-rocq.yaml --model automation
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from stp.artifacts import text_sha256
from stp.config import STPConfig
from stp.errors import ConfigError
from stp.languages import language
from stp.languages.base import FENCE, FormalLanguage
from stp.models.sampler import Completion
from stp.verify.gate import tactic_proof

AUTOMATION = "automation"  # the model name that selects the baseline


class AutomationSampler:
    """Answers every prompt with the tactics, each as one completion."""

    def __init__(self, tactics: Sequence[str], lang: FormalLanguage) -> None:
        if not tactics:
            raise ConfigError(f"evaluation.{lang.name}_automation_tactics: the list is empty")
        self._completions = [
            Completion(f"{tactic_proof(t, lang.name)}{lang.proof_close}\n{FENCE}", 0)
            for t in tactics
        ]

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
        if n != len(self._completions):
            raise ConfigError(
                f"the automation baseline makes one attempt per tactic: {n} samples asked, "
                f"{len(self._completions)} tactics listed"
            )
        if progress is not None:
            progress(len(prompts))
        return [list(self._completions) for _ in prompts]

    def close(self) -> None:
        pass


def automation_tactics(config: STPConfig) -> list[str]:
    tactics: list[str] = getattr(
        config.evaluation, f"{config.verification.backend}_automation_tactics"
    )
    return tactics


def automation_prover(config: STPConfig) -> tuple[str, AutomationSampler]:
    """The baseline for ``config``'s proof assistant, named by its tactic list (a changed list
    is another prover, evaluated in another folder); sets ``evaluation.samples`` to one
    attempt per tactic."""
    tactics = automation_tactics(config)
    config.evaluation.samples = len(tactics)
    digest = text_sha256("\n".join(tactics)).hex()[:8]
    lang = language(config.verification.backend)
    return f"{AUTOMATION}-{len(tactics)}-{digest}", AutomationSampler(tactics, lang)
