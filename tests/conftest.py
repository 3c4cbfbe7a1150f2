"""Markers that depend on what the machine has: `lean` needs `lake`, `gpu` needs CUDA."""

from __future__ import annotations

import shutil

import pytest


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_lean = pytest.mark.skip(reason="no Lean toolchain: `lake` not on PATH")
    skip_gpu = pytest.mark.skip(reason="no CUDA GPU")
    has_lake = shutil.which("lake") is not None
    has_cuda = None
    for item in items:
        # Markers, not `item.keywords`: keywords also hold folder names (a checkout named lean).
        if item.get_closest_marker("lean") and not has_lake:
            item.add_marker(skip_lean)
        if item.get_closest_marker("gpu"):
            if has_cuda is None:
                has_cuda = _has_cuda()
            if not has_cuda:
                item.add_marker(skip_gpu)
