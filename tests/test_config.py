import textwrap
from pathlib import Path

import pytest

from stp.cli import main
from stp.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults_are_stp_paper_values():
    cfg = load_config()
    assert cfg.selection.window_low == 0.0 and cfg.selection.window_high == 0.25
    assert cfg.selection.seed_pass_rate_min == 0.35
    assert cfg.selection.proofs_per_statement == 32
    assert cfg.selection.proofs_per_statement_round0 == 64


def test_yaml_then_overrides_in_order(tmp_path):
    path = write(
        tmp_path,
        """
        run: {name: exp1}
        sampling: {temperature: 0.7}
        evaluation: {k: [1, 4]}
    """,
    )
    cfg = load_config(
        path, ["sampling.temperature=1.2", "evaluation.k=1,8,32", "run.base_model=1.5"]
    )
    assert cfg.run.name == "exp1"
    assert cfg.sampling.temperature == 1.2
    assert cfg.evaluation.k == [1, 8, 32]
    assert cfg.run.base_model == "1.5"  # a string field keeps the text, not YAML's float


def test_int_is_accepted_for_float_but_not_string_for_int(tmp_path):
    assert load_config(None, ["training.learning_rate=1"]).training.learning_rate == 1.0
    with pytest.raises(ConfigError, match=r"sampling\.max_new_tokens: expected an integer"):
        load_config(None, ["sampling.max_new_tokens=lots"])


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        (
            "sampling.backend=tpu",
            r"sampling\.backend: expected one of 'auto', 'fast', 'hf', 'vllm'",
        ),
        ("selection.nope=1", r"unknown field selection\.nope; selection has: .*window_high"),
        ("nosection.x=1", r"expected <section>\.<field>"),
        ("selection.window_high=0.0", r"window_low < window_high"),
        ("sampling.top_p=1.5", r"sampling\.top_p: must be in \(0, 1\]"),
        ("verification.backend=coq", r"one of 'rocq', 'lean', 'isabelle'"),
        ("run.seed", r"expected <section>\.<field>=<value>"),
    ],
)
def test_invalid_values_name_the_field(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, [override])


def test_unknown_section_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="unknown section 'sampler'"):
        load_config(write(tmp_path, "sampler: {}\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "run: [unclosed\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_optional_field_takes_null():
    assert load_config(None, ["evaluation.limit=null"]).evaluation.limit is None
    assert load_config(None, ["evaluation.limit=5"]).evaluation.limit == 5


def test_config_show_merges_file_set_and_flags(tmp_path, capsys):
    path = write(tmp_path, "selection: {window_high: 0.3}\nrun: {name: a}\n")
    rc = main(
        [
            "config",
            "show",
            "--config",
            str(path),
            "--set",
            "run.name=b",
            "--sampling.temperature",
            "0.5",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "window_high: 0.3" in out and "name: b" in out and "temperature: 0.5" in out


def test_config_show_reports_error_in_one_line(capsys):
    rc = main(["config", "show", "--set", "sampling.backend=tpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and "sampling.backend" in err


CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_lean_configs_leave_mathlib_import_its_time():
    # 128 REPLs importing Mathlib at once on a cold page cache take minutes, not seconds.
    verification = {path.name: load_config(path).verification for path in CONFIGS}
    lean = {name: v.header_timeout_s for name, v in verification.items() if v.backend == "lean"}
    assert lean, "no Lean config under configs/"
    short = {name: seconds for name, seconds in lean.items() if seconds < 600}
    assert not short, f"verification.header_timeout_s under 600 s: {short}"
