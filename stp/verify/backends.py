"""``make_verifier``: the one way every part of the project gets a verifier.

    with make_verifier(config.verification) as verifier:
        results = verifier.verify(jobs)        # one VerifyResult per job, in order

Backends register by name below: a module with ``make_backend(config) -> Verifier``,
imported only when asked for. Every backend sits behind ``Deduplicated``, so identical
(header, statement, proof) jobs in a batch are checked once.
"""

from __future__ import annotations

import importlib

from stp.config import VerificationConfig
from stp.verify.pool import Deduplicated


class VerifierUnavailableError(RuntimeError):
    """The configured proof assistant is not installed or not known; the message says what
    to install."""


# Backend name -> module providing `make_backend(config: VerificationConfig) -> Verifier`.
BACKENDS: dict[str, str] = {
    "rocq": "stp.verify.rocq",
    "lean": "stp.verify.lean",
}


def make_verifier(config: VerificationConfig) -> Deduplicated:
    """The verifier ``config`` asks for; use it as a context manager (``close`` kills every
    worker process)."""
    module = BACKENDS.get(config.backend)
    if module is None:
        raise VerifierUnavailableError(
            f"no verifier backend {config.backend!r} in this installation; "
            f"available: {', '.join(sorted(BACKENDS))}"
        )
    return Deduplicated(importlib.import_module(module).make_backend(config))
