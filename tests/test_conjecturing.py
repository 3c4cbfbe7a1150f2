"""The conjecturer's half of a round (stp.selfplay.conjecturing): where seeds come from, how
conjectures are sampled and parsed. The sampler is a stand-in that records what it was asked; real sampling runs in
test_selfplay_round.py."""

from __future__ import annotations

import random
from collections.abc import Sequence

from stp.config import SamplingConfig, SelectionConfig
from stp.data.benchmarks import Statement
from stp.data.corpus import Corpus, ProvedTheorem
from stp.languages import language
from stp.models.sampler import Completion
from stp.prove import ModelSampler
from stp.selfplay.conjecturing import choose_seeds, sample_conjectures
from stp.selfplay.history import RunHistory, StatementHistory
from stp.selfplay.records import Seed, Target

ROCQ = language("rocq")
SEED = Seed("t0", "", "Theorem t0 : 0 + 0 = 0.", "reflexivity.", None, None)


class RecordingSampler:
    def __init__(self) -> None:
        self.temperatures: list[float] = []

    def generate(
        self, prompts: Sequence[str], n: int, *, temperature: float, **_: object
    ) -> list[list[Completion]]:
        self.temperatures.append(temperature)
        return [[Completion(f"x{j} : {j} + 0 = {j}.\n```", 9) for j in range(n)] for _ in prompts]

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


def corpus_of(n: int) -> Corpus:
    sft = tuple(
        ProvedTheorem(
            Statement(f"s{i}", "rocq", "sft", "test", "", f"Theorem s{i} : {i} = {i}."),
            "reflexivity.",
            (),
        )
        for i in range(n)
    )
    return Corpus(sft, (), (), (), (), (), {})


def test_model_proved_seeds_come_first_and_corpus_proofs_fill_up_to_max_seeds():
    dataset = [Target(f"t{i}", "", f"Theorem t{i} : {i} + 0 = {i}.") for i in range(4)]
    history = RunHistory(
        {
            "t0": StatementHistory(0.5, "reflexivity."),
            "t1": StatementHistory(1.0, "auto."),
            "t2": StatementHistory(0.25, "reflexivity."),  # not above seed_pass_rate_min
        }
    )

    def ids(settings: SelectionConfig, corpus: Corpus | None) -> tuple[list[str], str]:
        seeds, source = choose_seeds(dataset, history, corpus, settings, ROCQ, random.Random(0))
        return [s.id for s in seeds], source

    chosen, source = ids(SelectionConfig(max_seeds=5), corpus_of(10))
    assert chosen[:2] == ["t0", "t1"] and len(chosen) == 5 == len(set(chosen))
    assert all(i.startswith("s") for i in chosen[2:])
    assert source == "2 model proofs, 3 corpus sft proofs"
    # more qualifying statements than max_seeds: a subset of them, no corpus proof
    chosen, _ = ids(SelectionConfig(max_seeds=1), corpus_of(10))
    assert len(chosen) == 1 and chosen[0] in {"t0", "t1"}
    # without max_seeds: every qualifying statement, the corpus only when none qualifies
    assert ids(SelectionConfig(), corpus_of(10))[0] == ["t0", "t1"]
    history.statements.clear()
    chosen, source = ids(SelectionConfig(), corpus_of(10))
    assert sorted(chosen) == sorted(f"s{i}" for i in range(10))
    assert source == "0 model proofs, 10 corpus sft proofs"
    assert ids(SelectionConfig(max_seeds=5), None) == ([], "0 model proofs, 0 corpus sft proofs")
