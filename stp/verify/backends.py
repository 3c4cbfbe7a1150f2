"""``make_verifier``: the one way every part of the project gets a verifier.

    with make_verifier(config.verification) as verifier:
        results = verifier.verify(jobs)        # one VerifyResult per job, in order

The backend is the configured proof assistant's (``stp.assistants``): a local pool of warm
checker processes. With ``verification.ray_address`` set, the same backend runs inside Ray
actors on the cluster's CPU nodes instead (``stp.verify.distributed``). Either way it sits
behind ``Deduplicated``, so identical (header, statement, proof) jobs in a batch are checked
once.
"""

from __future__ import annotations

from stp.config import VerificationConfig
from stp.verify.local import make_local_backend
from stp.verify.pool import Deduplicated


def make_verifier(config: VerificationConfig) -> Deduplicated:
    """The verifier ``config`` asks for; use it as a context manager (``close`` kills every
    worker process, or every Ray actor)."""
    if config.ray_address:
        from stp.verify.distributed import RayVerifier  # imports ray: only when asked for

        return Deduplicated(RayVerifier(config))
    return Deduplicated(make_local_backend(config))
