"""Markers that depend on what the machine has: `rocq` needs `coqtop` and `coqc`, `lean`
needs `lake`, `isabelle` needs `isabelle`, `gpu` needs CUDA. A marked test is skipped where
its tool is missing, never failed.
Shared fixtures: `tiny_model`, a real tiny model built offline from Coq's standard library;
`load_script`, which imports one of the project's scripts/ as a module."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def load_script() -> Callable[[str], ModuleType]:
    """``load_script("compare_selfplay")`` imports ``scripts/compare_selfplay.py``."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_rocq = pytest.mark.skip(reason="no Rocq/Coq: `coqtop` or `coqc` not on PATH")
    skip_lean = pytest.mark.skip(reason="no Lean toolchain: `lake` not on PATH")
    skip_isabelle = pytest.mark.skip(reason="no Isabelle: `isabelle` not on PATH")
    skip_gpu = pytest.mark.skip(reason="no CUDA GPU")
    has_coq = all(shutil.which(tool) is not None for tool in ("coqtop", "coqc"))
    has_lake = shutil.which("lake") is not None
    has_isabelle = shutil.which("isabelle") is not None
    has_cuda = None
    for item in items:
        # Markers, not `item.keywords`: keywords also hold folder names (a checkout named lean).
        # The shared tiny model is built from Coq's standard library: its users need Coq too.
        needs_coq = item.get_closest_marker("rocq") or "tiny_model" in getattr(
            item, "fixturenames", ()
        )
        if needs_coq and not has_coq:
            item.add_marker(skip_rocq)
        if item.get_closest_marker("lean") and not has_lake:
            item.add_marker(skip_lean)
        if item.get_closest_marker("isabelle") and not has_isabelle:
            item.add_marker(skip_isabelle)
        if item.get_closest_marker("gpu"):
            if has_cuda is None:
                has_cuda = _has_cuda()
            if not has_cuda:
                item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model (2 layers, width 64, 800 BPE tokens) built by `stp model init` on the
    stdlib's Arith files: about a second. Untrained: it writes noise, quickly."""
    from stp.cli import main

    where = subprocess.run(["coqc", "-where"], capture_output=True, text=True, check=True)
    corpus = sorted((Path(where.stdout.strip()) / "theories" / "Arith").glob("*.v"))
    out = tmp_path_factory.mktemp("tiny") / "model"
    argv = ["model", "init", "--corpus", *map(str, corpus), "--out", str(out)]
    argv += ["--vocab-size", "800", "--hidden-size", "64", "--layers", "2"]
    argv += ["--intermediate-size", "128", "--max-positions", "1024"]
    assert main(argv) == 0
    return out
