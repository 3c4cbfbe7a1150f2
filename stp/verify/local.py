"""The configured proof assistant's backend on this machine (``stp.assistants`` names the
module that builds it)."""

from __future__ import annotations

import dataclasses
import importlib

from stp.assistants import assistant
from stp.config import VerificationConfig
from stp.verify.types import Verifier


def make_local_backend(config: VerificationConfig) -> Verifier:
    """The configured assistant's local pool of ``config.workers`` warm checkers; raises
    ``VerifierUnavailableError`` (with what to install) when the assistant is missing."""
    module = importlib.import_module(assistant(config.backend).backend_module)
    verifier: Verifier = module.make_backend(config)
    return verifier


def check_installed(config: VerificationConfig) -> None:
    """The backend's own installation check: building a backend checks the assistant and
    starts no checker process, so this is cheap."""
    make_local_backend(dataclasses.replace(config, workers=1, ray_address=None)).close()
