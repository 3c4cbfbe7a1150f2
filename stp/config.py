"""Configuration: one dataclass per stage, loaded from YAML, overridden from the command line.

A config file is YAML with one mapping per stage::

    run:
      name: tiny-rocq
    sampling:
      temperature: 1.0
    selection:
      window_high: 0.25

Every field can be overridden on the command line, either as ``--set selection.window_high=0.2``
(repeatable) or as a per-field flag ``--selection.window_high 0.2``. Values are parsed as YAML
scalars and checked against the field's type on load; an error names the field and what it
accepts. ``stp config show --config X`` prints the merged, resolved result.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from stp.assistants import NAMES as ASSISTANT_NAMES
from stp.errors import ConfigError

__all__ = ["ConfigError", "STPConfig", "load_config"]


def _field(default: Any, help: str) -> Any:
    """A dataclass field with help text (shown by ``--help`` and ``stp config show --help``)."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class RunConfig:
    """What the run is and where its artifacts land."""

    name: str = _field("tiny-rocq", "Run name; artifacts go to <output_dir>/<name>/.")
    output_dir: str = _field("runs", "Folder that holds every run.")
    base_model: str = _field(
        "artifacts/tiny-rocq-model",
        "Starting model: a local folder with save_pretrained files, or a hub id (GPU configs).",
    )
    mode: Literal["stp", "expert_iteration", "parallel_sampling"] = _field(
        "stp",
        "stp: conjecturer and prover self-play; expert_iteration: no conjectures, only unproved "
        "statements are sampled; parallel_sampling: a fixed model, no training.",
    )
    seed: int = _field(0, "Global random seed; a resumed run reproduces the same artifacts.")
    corpus: str | None = _field(
        "artifacts/rocq-corpus",
        "Folder of an extracted Rocq corpus (`stp data extract-rocq`): its sft split feeds the "
        "initial fine-tune and the round-0 seeds, its lemmas the conjecturer. Extracted on first "
        "use when missing (rocq backend). None: no corpus (Lean runs start from an SFT model).",
    )
    corpus_modules: list[str] | None = _field(
        None,
        "Stdlib folders the corpus is extracted from on first use (e.g. [Arith, Lists]); "
        "None: the extractor's default set.",
    )
    corpus_max_theorems: int | None = _field(
        None, "Most stdlib theorems checked when the corpus is extracted on first use."
    )
    targets: list[str] = _field(
        ["corpus:selfplay"],
        "Statements the run tries to prove: corpus:<split> (the corpus' selfplay, unproved, "
        "sft or heldout split), "
        "<benchmark>:<split> (bundled, e.g. minif2f:valid), leanworkbook (hub), or a .jsonl file "
        "of the benchmark schema.",
    )
    target_limit: int | None = _field(
        None, "Keep only the first N target statements (small CPU runs)."
    )
    init_model: bool = _field(
        False,
        "Build base_model with `stp model init` on the corpus' corpus.txt when the folder is "
        "missing (the offline tiny model).",
    )
    initial_sft: bool = _field(
        False,
        "Before round 0, fine-tune base_model on the corpus' sft proofs and conjecturer examples "
        "(STP stage 1); rounds then start from that model.",
    )
    initial_sft_epochs: float | None = _field(
        None, "Epochs of the initial fine-tune; None uses training.epochs."
    )
    initial_sft_learning_rate: float | None = _field(
        None,
        "Peak learning rate of the initial fine-tune (a model built from scratch wants more "
        "than the rounds' fine-tunes); None uses training.learning_rate.",
    )
    torch_threads: int | None = _field(
        None,
        "CPU threads torch may use (None: torch's default, one per core). 1 is much faster for "
        "the tiny model on a busy machine: OpenMP threads spin-wait when cores are shared.",
    )
    chunk_targets: int = _field(
        64, "Targets per generation/verification chunk; a killed round resumes at a chunk."
    )

    def validate(self) -> None:
        if not self.name or "/" in self.name:
            raise ConfigError(f"run.name: must be a non-empty name without '/', got {self.name!r}")
        if not self.targets:
            raise ConfigError("run.targets: name at least one set of target statements")
        if self.target_limit is not None and self.target_limit < 1:
            raise ConfigError(f"run.target_limit: must be >= 1, got {self.target_limit}")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ConfigError(f"run.torch_threads: must be >= 1, got {self.torch_threads}")
        if self.chunk_targets < 1:
            raise ConfigError(f"run.chunk_targets: must be >= 1, got {self.chunk_targets}")
        if (self.init_model or self.initial_sft) and self.corpus is None:
            raise ConfigError("run.init_model/run.initial_sft: need run.corpus (a corpus folder)")


@dataclass
class SamplingConfig:
    """How completions are sampled from the model (prover and conjecturer alike)."""

    backend: Literal["auto", "fast", "hf", "vllm"] = _field(
        "auto",
        "fast: a Llama decode loop in plain torch on the CPU (other models fall back to hf); "
        "hf: transformers generate (CPU or one GPU); vllm: vLLM on GPUs (extra `gpu`); "
        "auto: fast without a CUDA GPU, hf with one.",
    )
    temperature: float = _field(1.0, "Sampling temperature.")
    conjecturer_temperature: float | None = _field(
        None,
        "Sampling temperature of the conjecturer's samples; null: temperature. A small model "
        "writes well-typed statements far more often when sampled cooler.",
    )
    top_p: float = _field(0.95, "Nucleus sampling mass.")
    max_new_tokens: int = _field(512, "Longest completion, in tokens.")
    batch_size: int = _field(8, "Prompts decoded together (hf and fast backends).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = _field(
        "auto", "Model weights dtype; auto is float32 on CPU and bfloat16 on GPU."
    )
    tensor_parallel_size: int = _field(1, "GPUs one vLLM engine spans (vllm backend).")
    data_parallel_size: int = _field(
        1, "Independent vLLM engines, one per GPU group (vllm backend)."
    )
    gpu_memory_utilization: float = _field(0.9, "Share of GPU memory vLLM may take.")
    enable_prefix_caching: bool = _field(
        True, "Reuse the KV cache of shared prompt prefixes (vllm)."
    )

    def validate(self) -> None:
        for name in ("temperature", "conjecturer_temperature"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"sampling.{name}: must be >= 0, got {value}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"sampling.top_p: must be in (0, 1], got {self.top_p}")
        for name in ("max_new_tokens", "batch_size", "tensor_parallel_size", "data_parallel_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"sampling.{name}: must be >= 1, got {getattr(self, name)}")


@dataclass
class VerificationConfig:
    """Which proof assistant checks proofs, and how its workers run."""

    backend: str = _field(
        "rocq", f"Proof assistant: {', '.join(ASSISTANT_NAMES)} (stp.assistants)."
    )
    workers: int = _field(0, "Local verifier processes; 0 means one per CPU core.")
    timeout_s: float = _field(20.0, "Wall-clock limit for checking one proof, in seconds.")
    memory_limit_mb: int = _field(
        4096, "Address-space limit of each verifier process (Lean with Mathlib wants about 8192)."
    )
    jobs_per_worker: int = _field(
        500, "Retire and restart a worker after this many jobs (memory grows with use)."
    )
    resource_retries: int = _field(
        2,
        "Times a job whose checker ran out of memory or threads runs again on a fresh process "
        "before it is `resource_limit` (lean and isabelle backends); a crash is retried once.",
    )
    header_timeout_s: float = _field(
        120.0,
        "Wall-clock limit for a worker to load one header (imports), in seconds (Lean's "
        "`import Mathlib` takes seconds to minutes: give it 600 or more).",
    )
    coqtop: str = _field(
        "coqtop", "Rocq/Coq toplevel to run, with extra flags if needed (rocq backend)."
    )
    repl_cmd: str = _field(
        "lake exe repl",
        "Command that starts a Lean REPL (lean backend), split like a shell would; it runs in "
        "lean_project and may be any process that speaks the REPL's JSON protocol.",
    )
    lean_project: str = _field(
        "lean_project",
        "Folder the Lean REPL command runs in; its lean-toolchain and lakefile.lean pin Lean, "
        "Mathlib and the REPL (scripts/setup_lean.sh installs them). A repl_cmd other than "
        "lake needs none: where the default folder is missing, it runs in the current directory.",
    )
    lean_lake_path: str = _field(
        "",
        "Absolute path of Lean's `lake` (lean backend; `~` allowed). '' looks on PATH, then in "
        "$ELAN_HOME/bin and ~/.elan/bin, where elan installs it: verifier workers started over "
        "ssh or by a Ray raylet often run without elan's PATH. A repl_cmd starting with `lake` "
        "and the second check run the lake found.",
    )
    lean_kernel_check: Literal["auto", "on", "off"] = _field(
        "auto",
        "Check every proof the Lean REPL accepts a second time, outside it: compiled by `lean` in "
        "a fresh process, then replayed through the kernel by lean_project's stp_check and "
        "compared with the statement (lean backend). auto: on wherever lake is found "
        "(lean_lake_path).",
    )
    lean_run_as: str = _field(
        "",
        "User (name or uid) the Lean REPL and the second check run as, so that proofs cannot "
        "write the project, Mathlib or other workers' files (lean backend; needs stp to run as "
        "root). '' runs them as the current user.",
    )
    isabelle_cmd: str = _field(
        "isabelle",
        "Isabelle launcher (isabelle backend), split like a shell would; each worker runs "
        "`<isabelle_cmd> server` and talks to it over its socket.",
    )
    isabelle_session: str = _field(
        "HOL",
        "Isabelle session (heap image) the proofs' imports come from; STP_MiniF2F from "
        "isabelle/ROOT holds everything the miniF2F headers import (scripts/setup_isabelle.sh "
        "builds it). Isabelle's JVM and Poly/ML reserve much address space: give "
        "memory_limit_mb 16384 or more.",
    )
    isabelle_dir: str = _field(
        "isabelle", "Folder with a ROOT file of extra Isabelle sessions ('' for none)."
    )
    ray_address: str | None = _field(
        None,
        "Ray cluster address ('auto' or host:port); set it to verify on the cluster's CPU nodes "
        "(started with `stp verify-workers`).",
    )
    ray_chunk_size: int = _field(
        8,
        "Jobs sent to one Ray verifier actor at a time: smaller spreads a batch more evenly "
        "over the nodes, larger costs fewer round trips.",
    )

    def validate(self) -> None:
        if self.backend not in ASSISTANT_NAMES:
            known = ", ".join(repr(name) for name in ASSISTANT_NAMES)
            raise ConfigError(
                f"verification.backend: expected one of {known}, got {self.backend!r}"
            )
        if self.workers < 0:
            raise ConfigError(f"verification.workers: must be >= 0, got {self.workers}")
        for name in ("timeout_s", "header_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"verification.{name}: must be > 0, got {getattr(self, name)}")
        if self.memory_limit_mb < 64:
            raise ConfigError(
                f"verification.memory_limit_mb: must be >= 64, got {self.memory_limit_mb}"
            )
        if self.jobs_per_worker < 1:
            raise ConfigError(
                f"verification.jobs_per_worker: must be >= 1, got {self.jobs_per_worker}"
            )
        if self.resource_retries < 0:
            raise ConfigError(
                f"verification.resource_retries: must be >= 0, got {self.resource_retries}"
            )
        lake = Path(self.lean_lake_path).expanduser()
        if self.lean_lake_path and not lake.is_absolute():
            raise ConfigError(
                "verification.lean_lake_path: must be an absolute path (the workers of a Ray "
                f"cluster do not share this working directory), got {self.lean_lake_path!r}"
            )
        if self.ray_chunk_size < 1:
            raise ConfigError(
                f"verification.ray_chunk_size: must be >= 1, got {self.ray_chunk_size}"
            )


@dataclass
class SelectionConfig:
    """Self-play round parameters; defaults are the STP paper's."""

    seed_pass_rate_min: float = _field(
        0.35, "A proved dataset statement seeds conjectures when its best pass rate is above this."
    )
    trivial_lemma_prob: float = _field(
        0.5,
        "Probability that a seed is paired with the trivial lemma instead of one its proof uses.",
    )
    max_seeds: int | None = _field(
        None,
        "Most seeds per round (a seeded random subset); the corpus' sft proofs fill up to it when "
        "fewer statements qualify. None keeps every eligible seed.",
    )
    conjectures_per_seed: int = _field(
        1, "Conjecturer samples drawn per seed (before parsing and dedup)."
    )
    conjectures_per_corpus_seed: int | None = _field(
        None,
        "Conjecturer samples per seed that is a corpus sft proof (see max_seeds), not one the "
        "model found; None: conjectures_per_seed. A budget may favour the model's own proofs, "
        "whose conjectures the model proves far more often.",
    )
    max_conjectures: int = _field(
        2000, "Most new conjectures proved per round (after dedup and the conjecture gate)."
    )
    proofs_per_statement: int = _field(32, "Proof attempts per target in each round.")
    proofs_per_statement_round0: int = _field(64, "Proof attempts per target in round 0.")
    resample_pass_rate_max: float = _field(
        0.25,
        "Proved dataset statements are sampled again while their best pass rate is at most this.",
    )
    window_low: float = _field(
        0.0, "Barely provable: a conjecture's pass rate must be above this (exclusive)."
    )
    window_high: float = _field(
        0.25, "Barely provable: a conjecture's pass rate must be at most this (inclusive)."
    )
    elegance_drop_fraction: float = _field(
        0.2, "Share of selected conjectures dropped as least elegant (longest proof/statement)."
    )
    gate_passed_weight: float = _field(
        0.0,
        "Weight of a conjecturer example made of each conjecture that passed the gate and got "
        "proof attempts but was not selected (0: STP's rule, only the selected conjectures "
        "train the conjecturer). A model that rarely writes a well-typed statement learns the "
        "form from these.",
    )
    gate_passed_max_pass_rate: float | None = _field(
        None,
        "With gate_passed_weight > 0: a conjecture past the gate whose pass rate is above this "
        "is no conjecturer example (None: every one is). The prover finds those easy, and a "
        "conjecturer trained on them writes them again.",
    )
    gate_passed_until_well_typed: float | None = _field(
        None,
        "With gate_passed_weight > 0: a round in which at least this share of the conjecturer's "
        "samples is well-typed makes no such examples (None: every round makes them). Once the "
        "form is learned they only pull the conjecturer toward what it already writes.",
    )
    reweight_conjectures: bool = _field(
        True,
        "Re-weight selected conjectures toward the still-unproved statements (STP): each "
        "unproved statement votes for its nearest conjecture, and one no statement votes for "
        "gets weight 0 and is not trained on.",
    )
    conjecture_weight_cap: float = _field(4.0, "Largest weight one conjecture may get.")
    prover_pass_rate_max: float = _field(
        0.5, "Prover examples come from statements whose pass rate is at most this."
    )
    length_penalty: float = _field(0.001, "Prover example weight is exp(-length_penalty * len).")
    replay_rounds: int = _field(3, "Prover examples are drawn from the last this many rounds.")
    final_max_proofs_per_statement: int = _field(
        16, "Final re-training keeps at most this many correct proofs per statement."
    )

    def validate(self) -> None:
        if not 0.0 <= self.window_low < self.window_high <= 1.0:
            raise ConfigError(
                "selection.window_low/window_high: need 0 <= window_low < window_high <= 1, got "
                f"{self.window_low} and {self.window_high}"
            )
        for name in (
            "seed_pass_rate_min",
            "trivial_lemma_prob",
            "elegance_drop_fraction",
            "prover_pass_rate_max",
            "resample_pass_rate_max",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"selection.{name}: must be in [0, 1], got {value}")
        for name in (
            "conjectures_per_seed",
            "max_conjectures",
            "proofs_per_statement",
            "proofs_per_statement_round0",
            "replay_rounds",
            "final_max_proofs_per_statement",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"selection.{name}: must be >= 1, got {getattr(self, name)}")
        if self.conjectures_per_corpus_seed is not None and self.conjectures_per_corpus_seed < 1:
            raise ConfigError(
                "selection.conjectures_per_corpus_seed: must be >= 1 or null, got "
                f"{self.conjectures_per_corpus_seed}"
            )
        if self.max_seeds is not None and self.max_seeds < 1:
            raise ConfigError(f"selection.max_seeds: must be >= 1, got {self.max_seeds}")
        for name in ("gate_passed_max_pass_rate", "gate_passed_until_well_typed"):
            share = getattr(self, name)
            if share is not None and not 0.0 <= share <= 1.0:
                raise ConfigError(f"selection.{name}: must be in [0, 1] or null, got {share}")
        if self.gate_passed_weight < 0:
            raise ConfigError(
                f"selection.gate_passed_weight: must be >= 0, got {self.gate_passed_weight}"
            )
        if self.conjecture_weight_cap <= 0 or self.length_penalty < 0:
            raise ConfigError(
                "selection.conjecture_weight_cap must be > 0 and selection.length_penalty >= 0"
            )


# Proves ``~ (forall x y ..., P x y ...)`` by a counterexample among small values: each leading
# variable becomes each of a few values (bool: both; nat: 0-2; Prop: True/False; a type: bool
# or nat; a list: nil), a premise that then holds by computation is discharged, and what is
# left is decided; `+` backtracks through every combination until one refutes the statement.
_ROCQ_SMALL_COUNTEREXAMPLE = (
    "let rec stp_inst h := lazymatch type of h with"
    " | forall _ : bool, _ => (specialize (h true) + specialize (h false)); stp_inst h"
    " | forall _ : nat, _ => (specialize (h 0) + specialize (h 1) + specialize (h 2)); stp_inst h"
    " | forall _ : Prop, _ => (specialize (h True) + specialize (h False)); stp_inst h"
    " | forall _ : Set, _ => (specialize (h bool) + specialize (h nat)); stp_inst h"
    " | forall _ : Type, _ => (specialize (h bool) + specialize (h nat)); stp_inst h"
    " | forall _ : list _, _ => specialize (h nil); stp_inst h"
    " | ?p -> _ =>"
    " (specialize (h ltac:(solve [repeat constructor | reflexivity | easy])); stp_inst h) + idtac"
    " | _ => idtac end in"
    " intro stp_h; stp_inst stp_h; revert stp_h; simpl;"
    " solve [intuition (first [discriminate | reflexivity | easy | auto])]."
)


@dataclass
class GateConfig:
    """The conjecture gate (the round's ``gate`` stage): each new conjecture is elaborated once,
    and rejected when it is ill-typed, trivial (closed by a short automation list), a
    restatement (the seed theorem or the given lemma, as a hypothesis, closes it directly),
    vacuous (its hypotheses are contradictory, shown by a cheap tactic) or refuted (a cheap
    tactic proves its negation). Only what passes gets proof attempts. Tactic lists are per
    proof assistant; every check runs through the verifier."""

    enabled: bool = _field(True, "Run the gate; false sends every new conjecture to the prover.")
    timeout_s: float = _field(
        2.0, "Seconds one gate check may take (the gate is cheap: no proof search beyond this)."
    )
    rocq_trivial_tactics: list[str] = _field(
        ["reflexivity.", "intros; reflexivity.", "auto.", "tauto.", "intros; congruence."],
        "Rocq: a conjecture one of these proves is trivial.",
    )
    rocq_restatement_tactics: list[str] = _field(
        ["exact stp_given.", "intros; apply stp_given.", "intros; apply stp_given; assumption."],
        "Rocq: a conjecture one of these proves with the seed theorem (or the given lemma) as "
        "hypothesis stp_given is a restatement.",
    )
    rocq_vacuous_tactics: list[str] = _field(
        ["intros; exfalso; auto.", "intros; exfalso; congruence.", "intros; exfalso; lia."],
        "Rocq: a conjecture one of these proves has contradictory hypotheses (vacuous); lia "
        "works where the header loads Lia.",
    )
    rocq_refutation_tactics: list[str] = _field(
        [_ROCQ_SMALL_COUNTEREXAMPLE],
        "Rocq: a conjecture whose negation one of these proves is false (refuted); the default "
        "searches small values of its variables for a counterexample.",
    )
    lean_trivial_tactics: list[str] = _field(
        ["rfl", "norm_num", "simp", "decide", "omega", "aesop"],
        "Lean: a conjecture one of these proves is trivial.",
    )
    lean_restatement_tactics: list[str] = _field(
        ["exact stp_given", "apply stp_given <;> assumption"],
        "Lean: a conjecture one of these proves with the seed theorem (or the given lemma) as "
        "hypothesis stp_given is a restatement.",
    )
    lean_vacuous_tactics: list[str] = _field(
        ["intros; exfalso; simp_all", "intros; exfalso; omega"],
        "Lean: a conjecture one of these proves has contradictory hypotheses (vacuous).",
    )
    lean_refutation_tactics: list[str] = _field(
        ["decide", "simp", "intro h; simp_all"],
        "Lean: a conjecture whose negation one of these proves is false (refuted).",
    )

    def validate(self) -> None:
        if self.timeout_s <= 0:
            raise ConfigError(f"gate.timeout_s: must be > 0, got {self.timeout_s}")

    def tactics(self, assistant: str, check: str) -> list[str]:
        """The ``check`` list (trivial, restatement, vacuous, refutation) of ``assistant``;
        empty for an assistant the gate has no lists for."""
        value: list[str] = getattr(self, f"{assistant}_{check}_tactics", [])
        return value


@dataclass
class TrainingConfig:
    """Weighted fine-tuning (expert iteration step), run through accelerate."""

    learning_rate: float = _field(1e-4, "Peak learning rate.")
    epochs: float = _field(1.0, "Passes over the round's training set.")
    batch_size: int = _field(8, "Sequences per device per step.")
    gradient_accumulation_steps: int = _field(1, "Steps accumulated before each optimizer update.")
    max_seq_len: int = _field(1024, "Longest training sequence, in tokens; longer are truncated.")
    lr_schedule: Literal["cosine", "constant"] = _field("cosine", "Learning-rate schedule.")
    warmup_ratio: float = _field(0.03, "Share of steps spent warming the learning rate up.")
    weight_decay: float = _field(0.0, "AdamW weight decay.")
    mixed_precision: Literal["no", "bf16", "fp16"] = _field("no", "accelerate mixed precision.")
    save_every_steps: int = _field(200, "Checkpoint interval (a killed run resumes from it).")
    optimizer: Literal["adamw", "sgd"] = _field(
        "adamw", "adamw (the usual choice) or plain sgd (exactly linear updates, for checks)."
    )
    max_grad_norm: float = _field(1.0, "Clip the gradient norm to this; 0 switches clipping off.")
    gradient_checkpointing: bool = _field(
        False, "Recompute activations in the backward pass: less memory, ~30% slower (7B models)."
    )
    save_dtype: Literal["auto", "float32", "bfloat16"] = _field(
        "auto",
        "Dtype of the saved weights. auto: bfloat16 when mixed_precision is bf16 (a 7B model's "
        "weights are 13.8 GB instead of 27.6 GB for every vLLM engine to read each round), "
        "else float32 (on a CPU bfloat16 buys nothing: the tiny model is a few MB and is "
        "sampled and trained in float32, and rounding only adds noise). ZeRO-3 gathers 16-bit "
        "weights to save them, so float32 there only widens them.",
    )
    launcher: Literal["inline", "accelerate"] = _field(
        "inline",
        "How a run's train stages (initial fine-tune, each round's, final re-training) train. "
        "inline: in the stp process itself, on one device. accelerate: as a job of its own, "
        "`accelerate launch --config_file <accelerate_config> -m stp train ...`, in its own "
        "process group; DDP, ZeRO-3 or FSDP over the GPUs of one node or several (README, "
        "Cluster). The job writes the stage's model folder, and the round goes on with it.",
    )
    accelerate_config: str = _field(
        "configs/accelerate/deepspeed_zero3.yaml",
        "accelerate launch config for launcher=accelerate (configs/accelerate/: single_gpu, "
        "multi_gpu (DDP), deepspeed_zero3, fsdp, cpu_ddp; multi_node for several nodes).",
    )
    num_processes: int | None = _field(
        None,
        "launcher=accelerate: processes of the job, over all nodes (null: the accelerate "
        "config's num_processes). Each optimizer step takes batch_size x num_processes x "
        "gradient_accumulation_steps examples.",
    )
    launch_prefix: list[str] = _field(
        [],
        "launcher=accelerate: a command the accelerate launch line runs under, e.g. "
        "[srun, --nodes=2, --ntasks-per-node=1] to start it once on every node.",
    )
    accelerate_args: list[str] = _field(
        [],
        "launcher=accelerate: more `accelerate launch` arguments, e.g. [--main_process_ip, "
        "node001] for several nodes (set processes with num_processes, not here).",
    )

    def validate(self) -> None:
        if self.learning_rate <= 0:
            raise ConfigError(f"training.learning_rate: must be > 0, got {self.learning_rate}")
        if self.epochs <= 0:
            raise ConfigError(f"training.epochs: must be > 0, got {self.epochs}")
        for name in (
            "batch_size",
            "gradient_accumulation_steps",
            "max_seq_len",
            "save_every_steps",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"training.{name}: must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"training.warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if self.max_grad_norm < 0:
            raise ConfigError(f"training.max_grad_norm: must be >= 0, got {self.max_grad_norm}")
        if self.num_processes is not None and self.num_processes < 1:
            raise ConfigError(f"training.num_processes: must be >= 1, got {self.num_processes}")

    def result_settings(self) -> dict[str, Any]:
        """The settings the trained model depends on: all but how the job is launched."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in LAUNCH_FIELDS}


# How a training job is started, not what it computes (the process count is recorded with
# the model separately: it sets how many examples each optimizer step takes).
LAUNCH_FIELDS = (
    "launcher",
    "accelerate_config",
    "num_processes",
    "launch_prefix",
    "accelerate_args",
)


@dataclass
class EvaluationConfig:
    """pass@k evaluation on a benchmark."""

    benchmark: str = _field(
        "minif2f",
        "Bundled benchmark name (see `stp data list`), or a path to a JSONL file of the "
        "benchmark schema.",
    )
    split: str | None = _field(
        None,
        "Benchmark split (valid, test, or a split of the JSONL file); null: a bundled "
        "benchmark's first split (valid; test for putnambench), or every statement of a JSONL.",
    )
    samples: int = _field(8, "Proof attempts per problem.")
    k: list[int] = _field([1, 8], "k values reported for pass@k.")
    limit: int | None = _field(None, "Evaluate only the first N problems (smoke runs).")
    model: str | None = _field(
        None,
        "Model to evaluate: a local folder or a hub id; null means the run's newest model "
        "(the last round's, else the initial fine-tune's, else run.base_model); `automation`: "
        "the automation baseline (<assistant>_automation_tactics, one attempt each).",
    )
    output: str | None = _field(
        None,
        "Folder for attempts and report; null means "
        "<run.output_dir>/<run.name>/eval/<model>/<benchmark>-<split>-<prover>.",
    )
    rocq_automation_tactics: list[str] = _field(
        [
            "auto.",
            "intros; auto.",
            "intuition.",
            "firstorder.",
            "tauto.",
            "intros; subst; auto.",
            "intros; congruence.",
            "intros; split; intros; auto.",
        ],
        "Rocq: the automation baseline's proofs (`stp eval --model automation`), one attempt "
        "each: the no-learning floor a model must beat.",
    )
    lean_automation_tactics: list[str] = _field(
        ["rfl", "norm_num", "simp", "decide", "omega", "aesop", "linarith", "nlinarith"],
        "Lean: the automation baseline's tactics, one attempt each.",
    )
    isabelle_automation_tactics: list[str] = _field(
        ["by auto", "by simp", "by blast", "by force", "by fastforce", "by arith", "by presburger"],
        "Isabelle: the automation baseline's proofs, one attempt each.",
    )
    batch_problems: int = _field(
        16,
        "Problems per chunk of an evaluation (sampled, then checked while the next is "
        "sampled): larger keeps GPUs busier, smaller loses less work to a kill. A folder "
        "keeps the chunk size it was started with.",
    )

    def validate(self) -> None:
        if self.samples < 1:
            raise ConfigError(f"evaluation.samples: must be >= 1, got {self.samples}")
        if not self.k or min(self.k) < 1:
            raise ConfigError(f"evaluation.k: must be a non-empty list of k >= 1, got {self.k}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"evaluation.limit: must be >= 1 or null, got {self.limit}")
        if self.batch_problems < 1:
            raise ConfigError(f"evaluation.batch_problems: must be >= 1, got {self.batch_problems}")


@dataclass
class TinyModelConfig:
    """The offline tiny model ``run.init_model`` builds into ``run.base_model``: its size, its
    tokenizer and its pre-training on raw Rocq sources (built once, reused by every run that
    names the same folder, rebuilt only when these settings or the sources change)."""

    vocab_size: int = _field(4096, "BPE vocabulary size of the tokenizer.")
    hidden_size: int = _field(128, "Model width.")
    num_layers: int = _field(4, "Transformer layers.")
    num_heads: int = _field(4, "Attention heads.")
    intermediate_size: int = _field(512, "MLP width.")
    pretrain_sources: list[str] = _field(
        [],
        "Raw Rocq sources the model is pre-trained on (next-token loss on the text) before the "
        "initial fine-tune, and its tokenizer trained on: .v files, folders (every .v file "
        "below them), or coq:<folder> for a folder of the installed Coq (coq:theories is the "
        "standard library, coq:user-contrib the installed packages). Empty: no pre-training, "
        "the tokenizer is trained on the corpus' corpus.txt.",
    )
    pretrain_epochs: float = _field(1.0, "Passes over the pre-training text.")
    pretrain_learning_rate: float = _field(2e-3, "Peak learning rate of the pre-training.")
    pretrain_batch_size: int = _field(16, "Text blocks per pre-training step.")
    pretrain_block_tokens: int = _field(
        256, "Tokens per pre-training block (the text is cut at line ends into blocks)."
    )

    def validate(self) -> None:
        for name in (
            "vocab_size",
            "hidden_size",
            "num_layers",
            "num_heads",
            "intermediate_size",
            "pretrain_batch_size",
            "pretrain_block_tokens",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"tiny_model.{name}: must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"tiny_model.hidden_size ({self.hidden_size}) must be a multiple of "
                f"tiny_model.num_heads ({self.num_heads})"
            )
        if self.pretrain_epochs <= 0 or self.pretrain_learning_rate <= 0:
            raise ConfigError("tiny_model.pretrain_epochs/pretrain_learning_rate: must be > 0")


@dataclass
class STPConfig:
    """The whole configuration: one section per stage."""

    run: RunConfig = field(default_factory=RunConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    verification: VerificationConfig = field(default_factory=VerificationConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    tiny_model: TinyModelConfig = field(default_factory=TinyModelConfig)


SECTIONS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(STPConfig))


# ---------------------------------------------------------------------------- loading


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, str(tp)
    )


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it in the field's type."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"{where}: expected {_describe(tp)}, got {value!r}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise bad
        return value
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        raise bad
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):  # "1,8,32" from the command line
            value = [yaml.safe_load(part) for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise bad
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if tp is str:
        if isinstance(value, bool) or value is None:
            raise bad
        return str(value)  # YAML may read a model name like 1.5 as a number
    raise ConfigError(f"{where}: unsupported field type {tp}")


def _section_from_dict(cls: type, data: dict[str, Any], section: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown field {section}.{unknown[0]}; {section} has: {', '.join(names)}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{section}.{k}") for k, v in data.items()}
    obj = cls(**kwargs)
    obj.validate()
    return obj


def config_from_dict(data: dict[str, Any]) -> STPConfig:
    """Build and validate a config from nested plain data (missing fields take defaults)."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"a config is a mapping of sections ({', '.join(SECTIONS)}), got {data!r}"
        )
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section {unknown[0]!r}; sections are: {', '.join(SECTIONS)}")
    hints = typing.get_type_hints(STPConfig)
    sections = {}
    for name in SECTIONS:
        body = data.get(name) or {}
        if not isinstance(body, dict):
            raise ConfigError(f"{name}: expected a mapping of fields, got {body!r}")
        sections[name] = _section_from_dict(hints[name], body, name)
    return STPConfig(**sections)


def config_to_dict(config: STPConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _field_type(key: str) -> Any:
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name:
        raise ConfigError(
            f"override {key!r}: expected <section>.<field> with section in {SECTIONS}"
        )
    cls = typing.get_type_hints(STPConfig)[section]
    hints = typing.get_type_hints(cls)
    if name not in hints:
        names = ", ".join(f.name for f in dataclasses.fields(cls))
        raise ConfigError(f"unknown field {key}; {section} has: {names}")
    return hints[name]


def parse_override(text: str) -> tuple[str, Any]:
    """``"selection.window_high=0.2"`` -> ``("selection.window_high", 0.2)``."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError(f"override {text!r}: expected <section>.<field>=<value>")
    tp = _field_type(key)
    # A string field, or a choice among strings, keeps the text as typed: YAML would turn
    # "1e-3" or "no" (training.mixed_precision) into other types.
    textual = tp is str or (
        typing.get_origin(tp) is Literal
        and all(isinstance(choice, str) for choice in typing.get_args(tp))
    )
    value = raw if textual else yaml.safe_load(raw) if raw.strip() else raw
    return key, value


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> STPConfig:
    """Read a YAML config (or the defaults when ``path`` is None) and apply ``key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    for text in overrides:
        key, value = parse_override(text)
        section, _, name = key.partition(".")
        data.setdefault(section, {})
        if data[section] is None:
            data[section] = {}
        data[section][name] = value
    return config_from_dict(data)


# ------------------------------------------------------------------ command-line glue


def add_config_arguments(
    parser: argparse.ArgumentParser, sections: Sequence[str] = SECTIONS
) -> None:
    """Add ``--config``, ``--set`` and one ``--section.field`` flag per field of the
    ``sections`` the command reads (``--set`` and the config file take any field)."""
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"no config section {unknown[0]!r}")
    parser.add_argument("--config", type=Path, help="YAML config file (defaults when omitted).")
    parser.add_argument(
        "--set",
        dest="config_set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="Override one field; repeatable.",
    )
    hints = typing.get_type_hints(STPConfig)
    for section in (s for s in SECTIONS if s in sections):
        group = parser.add_argument_group(f"{section} config")
        for f in dataclasses.fields(hints[section]):
            group.add_argument(
                f"--{section}.{f.name}",
                dest=f"config_field:{section}.{f.name}",
                metavar="V",
                default=None,
                help=f"{f.metadata.get('help', '')} (default: {_default_repr(f)})",
            )


def _default_repr(f: dataclasses.Field[Any]) -> str:
    if f.default_factory is not dataclasses.MISSING:
        return repr(f.default_factory())
    return repr(f.default).replace("%", "%%")


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    """The overrides given on the command line, ``--set`` first, per-field flags after."""
    overrides = list(getattr(args, "config_set", []))
    for dest, value in vars(args).items():
        if dest.startswith("config_field:") and value is not None:
            overrides.append(f"{dest.removeprefix('config_field:')}={value}")
    return overrides


def config_from_args(args: argparse.Namespace, extra_overrides: Sequence[str] = ()) -> STPConfig:
    """The merged config of a command: file, then ``--set``/per-field flags, then ``extra``."""
    return load_config(args.config, [*overrides_from_args(args), *extra_overrides])


def dump_config(config: STPConfig) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)
