"""The conjecturer's half of a round (stp.selfplay.conjecturing): where seeds come from, how
conjectures are sampled and parsed. The sampler is a stand-in that records what it was asked; real sampling runs in
test_selfplay_round.py."""

from __future__ import annotations

import random
from collections.abc import Sequence

from stp.artifacts import atomic_write_jsonl
from stp.config import SamplingConfig, SelectionConfig
from stp.data.benchmarks import Statement
from stp.data.corpus import Corpus, ProvedTheorem
from stp.languages import language
from stp.models.sampler import Completion
from stp.prove import ModelSampler
from stp.runs import RunLayout
from stp.selfplay.conjecturing import (
    KnownStatements,
    choose_seeds,
    known_statements,
    sample_conjectures,
)
from stp.selfplay.history import RunHistory, StatementHistory, key_digest, load_history
from stp.selfplay.records import (
    CONJECTURES_FILE,
    GATE_FILE,
    STATS_FILE,
    GateOutcome,
    Seed,
    Target,
)
from stp.selfplay.selection import whitespace_key

ROCQ = language("rocq")
SEED = Seed("t0", "", "Theorem t0 : 0 + 0 = 0.", "reflexivity.", None, None)


class RecordingSampler:
    """Writes ``x<j> : <j> + 0 = <j>.`` for sample j of each prompt, and records the
    temperature and the prompts of each call."""

    def __init__(self) -> None:
        self.temperatures: list[float] = []
        self.calls: list[tuple[int, int]] = []  # (prompts, samples per prompt)

    def generate(
        self, prompts: Sequence[str], n: int, *, temperature: float, **_: object
    ) -> list[list[Completion]]:
        self.temperatures.append(temperature)
        self.calls.append((len(prompts), n))
        return [[Completion(f"x{j} : {j} + 0 = {j}.\n```", 9) for j in range(n)] for _ in prompts]

    def close(self) -> None:
        pass


def test_conjectures_are_sampled_at_the_conjecturer_temperature_when_one_is_set():
    for conjecturer, expected in ((None, 1.0), (0.6, 0.6)):
        recording = RecordingSampler()
        settings = SamplingConfig(temperature=1.0, conjecturer_temperature=conjecturer)
        sampler = ModelSampler(lambda r=recording: r, settings)
        new, counts = sample_conjectures(
            [SEED],
            sampler,
            ROCQ,
            KnownStatements(set(), set()),
            0,
            SelectionConfig(conjectures_per_seed=3),
            seed=1,
        )
        assert recording.temperatures == [expected]
        assert counts.generated == 3 and [c.formal_statement for c in new] == [
            f"Theorem conj_r000_00000_0{j} : {j} + 0 = {j}." for j in range(3)
        ]
        sampler.generate(["prove"], 1, seed=2)  # the prover keeps sampling.temperature
        assert recording.temperatures == [expected, 1.0]


def test_corpus_seeds_get_their_own_number_of_samples_when_one_is_set():
    # distinct headers: the stand-in writes the same statements for every seed
    model_seed = Seed("t1", "(* 1 *)", "Theorem t1 : 1 + 0 = 1.", "reflexivity.", None, None)
    corpus_seed = Seed("s0", "(* 2 *)", "Theorem s0 : 0 = 0.", "reflexivity.", None, None, True)
    seeds = [corpus_seed, model_seed, SEED]
    for per_corpus_seed, calls, per_seed in (
        (None, [(2, 3), (1, 3)], [3, 3, 3]),
        (1, [(2, 3), (1, 1)], [1, 3, 3]),
    ):
        recording = RecordingSampler()
        new, counts = sample_conjectures(
            seeds,
            ModelSampler(lambda r=recording: r, SamplingConfig()),
            ROCQ,
            KnownStatements(set(), set()),
            0,
            SelectionConfig(conjectures_per_seed=3, conjectures_per_corpus_seed=per_corpus_seed),
            seed=1,
        )
        assert recording.calls == calls
        assert counts.generated == sum(per_seed)
        # each seed's samples stay its own (the names number them per seed, in seed order)
        assert [sum(c.seed == s.id for c in new) for s in seeds] == per_seed
        assert [c.id for c in new if c.seed == "s0"] == [
            f"conj_r000_00000_0{j}" for j in range(per_seed[0])
        ]


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
    flags = [
        s.from_corpus
        for s in choose_seeds(
            dataset, history, corpus_of(10), SelectionConfig(max_seeds=5), ROCQ, random.Random(0)
        )[0]
    ]
    assert flags == [False, False, True, True, True]
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


class ScriptedSampler:
    """Writes the statements of ``texts`` in order, one per sample."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def generate(self, prompts: Sequence[str], n: int, **_: object) -> list[list[Completion]]:
        assert len(prompts) * n == len(self.texts)
        rows = [Completion(f"{t}\n```", 5) for t in self.texts]
        return [rows[i * n : (i + 1) * n] for i in range(len(prompts))]

    def close(self) -> None:
        pass


def test_repeats_are_counted_and_known_well_typed_statements_recognised():
    def key(body: str) -> bytes:
        return key_digest(whitespace_key("", body))

    dataset = [Target("t0", "", "Theorem t0 : 0 + 0 = 0.")]
    history = RunHistory(
        conjecture_keys={key(": 1 = 1."), key(": 1 = 2.")},  # 1 = 2 never elaborated
        well_typed_keys={key(": 1 = 1.")},
    )
    known = known_statements(dataset, None, history, ROCQ)
    assert known.well_typed == {key(": 0 + 0 = 0."), key(": 1 = 1.")}
    texts = [
        "a : 2 = 2.",  # new
        "b : 2  =  2.",  # a repeat of the first (white space aside)
        "c : 0 + 0 = 0.",  # the dataset's statement: well-typed
        "d : 1 = 1.",  # an earlier conjecture that elaborated
        "e : 1 = 2.",  # an earlier conjecture that did not
        "f : 3 = 3.",  # new
        "g : 2 = 2.",  # the first again
        "not a statement",
    ]
    sampler = ModelSampler(lambda: ScriptedSampler(texts), SamplingConfig())
    new, counts = sample_conjectures(
        [SEED, SEED], sampler, ROCQ, known, 4, SelectionConfig(conjectures_per_seed=4), seed=0
    )
    assert [(c.id, c.samples) for c in new] == [
        ("conj_r004_00000_00", 3),
        ("conj_r004_00001_01", 1),
    ]
    assert (counts.generated, counts.valid, counts.duplicates) == (8, 7, 5)
    assert counts.known_well_typed == 2
    assert {bytes.fromhex(c.key) for c in new} <= known.keys


def test_the_history_knows_which_earlier_conjectures_elaborated(tmp_path):
    layout = RunLayout(tmp_path / "run")
    rows = {"c1": "11" * 16, "c2": "22" * 16, "c3": "33" * 16}
    for index, gated in enumerate((True, False)):  # round 1 was written before the gate
        directory = layout.round_dir(index)
        names = ("c1", "c2") if index == 0 else ("c3",)
        atomic_write_jsonl(directory / STATS_FILE, [])
        atomic_write_jsonl(directory / CONJECTURES_FILE, [{"id": n, "key": rows[n]} for n in names])
        if gated:
            atomic_write_jsonl(
                directory / GATE_FILE,
                [
                    GateOutcome("c1", "trivial", "auto.", "").to_dict(),
                    GateOutcome("c2", "ill_typed", "idtac.", "").to_dict(),
                ],
            )
    history = load_history(layout, 2)
    assert history.conjecture_keys == {bytes.fromhex(k) for k in rows.values()}
    assert history.well_typed_keys == {bytes.fromhex(rows["c1"])}  # c3: not known
