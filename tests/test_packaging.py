"""The dependency floors in pyproject.toml admit no version that lacks an API the code uses."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# (package, first version with the API, a file that uses it, a pattern that finds the use).
# The pattern keeps each entry honest: when the code stops using the API the entry fails and
# goes, and a new use of a newer API gets its own line here.
API_FLOORS = [
    # from_pretrained pops `dtype` (4.55 only `torch_dtype`)
    ("transformers", "4.56", "stp/models/hf_sampler.py", r"from_pretrained\([^)]*\bdtype="),
    # FullyShardedDataParallelPlugin(fsdp_version=2)
    ("accelerate", "1.6", "configs/accelerate/fsdp.yaml", r"fsdp_version: 2"),
    # prepare() takes DeepSpeed's gradient_accumulation_steps over the Accelerator's
    (
        "accelerate",
        "1.8",
        "stp/models/train.py",
        r'deepspeed_config\["gradient_accumulation_steps"\]',
    ),
]


def declared_floors() -> dict[str, Version]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        (spec,) = [s for s in requirement.specifier if s.operator == ">="]
        floors[requirement.name] = Version(spec.version)
    return floors


@pytest.mark.parametrize(("package", "needed", "path", "pattern"), API_FLOORS)
def test_floor_admits_only_versions_with_the_api(package, needed, path, pattern):
    assert re.search(pattern, (ROOT / path).read_text()), (
        f"{path} no longer uses it: drop the entry"
    )
    declared = declared_floors()[package]
    assert declared >= Version(needed), f"{package}>={declared} admits versions without the API"
