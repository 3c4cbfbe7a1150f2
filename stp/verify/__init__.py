"""Proof checking: one interface over Rocq, Lean 4 and Isabelle backends.

``make_verifier(config.verification)`` is the entry point; see ``stp.verify.backends``.
"""

from stp.verify.backends import BACKENDS, VerifierUnavailableError, make_verifier
from stp.verify.types import Message, Verdict, Verifier, VerifyJob, VerifyResult

__all__ = [
    "BACKENDS",
    "Message",
    "Verdict",
    "Verifier",
    "VerifierUnavailableError",
    "VerifyJob",
    "VerifyResult",
    "make_verifier",
]
