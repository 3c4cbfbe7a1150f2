"""``make_verifier``: the one way every part of the project gets a verifier.

    with make_verifier(config.verification) as verifier:
        results = verifier.verify(jobs)        # one VerifyResult per job, in order

Backends register by name below: a module with ``make_backend(config) -> Verifier``,
imported only when asked for. With ``verification.ray_address`` set, the same backend runs
inside Ray actors on the cluster's CPU nodes instead (``stp.verify.distributed``). Either way
it sits behind ``Deduplicated``, so identical (header, statement, proof) jobs in a batch are
checked once.
"""

from __future__ import annotations

import importlib

from stp.config import VerificationConfig
from stp.verify.pool import Deduplicated
from stp.verify.types import Verifier


class VerifierUnavailableError(RuntimeError):
    """The configured proof assistant is not installed or not known; the message says what
    to install."""


# Backend name -> module providing `make_backend(config: VerificationConfig) -> Verifier`.
BACKENDS: dict[str, str] = {
    "rocq": "stp.verify.rocq",
    "lean": "stp.verify.lean",
    "isabelle": "stp.verify.isabelle",
}


def make_local_backend(config: VerificationConfig) -> Verifier:
    """The configured backend's local pool of ``config.workers`` warm processes."""
    module = BACKENDS.get(config.backend)
    if module is None:
        raise VerifierUnavailableError(
            f"no verifier backend {config.backend!r} in this installation; "
            f"available: {', '.join(sorted(BACKENDS))}"
        )
    verifier: Verifier = importlib.import_module(module).make_backend(config)
    return verifier


def make_verifier(config: VerificationConfig) -> Deduplicated:
    """The verifier ``config`` asks for; use it as a context manager (``close`` kills every
    worker process, or every Ray actor)."""
    if config.ray_address:
        from stp.verify.distributed import RayVerifier  # imports ray: only when asked for

        return Deduplicated(RayVerifier(config))
    return Deduplicated(make_local_backend(config))
