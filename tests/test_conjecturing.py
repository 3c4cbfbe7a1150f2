"""The conjecturer's half of a round (stp.selfplay.conjecturing): how conjectures are sampled
and parsed. The sampler is a stand-in that records what it was asked; real sampling runs in
test_selfplay_round.py."""

from __future__ import annotations

from collections.abc import Sequence

from stp.config import SamplingConfig, SelectionConfig
from stp.languages import language
from stp.models.sampler import Completion
from stp.prove import ModelSampler
from stp.selfplay.conjecturing import sample_conjectures
from stp.selfplay.records import Seed

ROCQ = language("rocq")
SEED = Seed("t0", "", "Theorem t0 : 0 + 0 = 0.", "reflexivity.", None, None)


class RecordingSampler:
    def __init__(self) -> None:
        self.temperatures: list[float] = []

    def generate(
        self, prompts: Sequence[str], n: int, *, temperature: float, **_: object
    ) -> list[list[Completion]]:
        self.temperatures.append(temperature)
        return [
            [Completion(f"x{j} : {j} + 0 = {j}.\n```", 9) for j in range(n)] for _ in prompts
        ]

    def close(self) -> None:
        pass


def test_conjectures_are_sampled_at_the_conjecturer_temperature_when_one_is_set():
    for conjecturer, expected in ((None, 1.0), (0.6, 0.6)):
        recording = RecordingSampler()
        settings = SamplingConfig(temperature=1.0, conjecturer_temperature=conjecturer)
        sampler = ModelSampler(lambda r=recording: r, settings)
        new, counts = sample_conjectures(
            [SEED], sampler, ROCQ, set(), 0, SelectionConfig(conjectures_per_seed=3), seed=1
        )
        assert recording.temperatures == [expected]
        assert counts.generated == 3 and [c.formal_statement for c in new] == [
            f"Theorem conj_r000_00000_0{j} : {j} + 0 = {j}." for j in range(3)
        ]
        sampler.generate(["prove"], 1, seed=2)  # the prover keeps sampling.temperature
        assert recording.temperatures == [expected, 1.0]
