"""Proof checking: one interface over the proof assistants of ``stp.assistants``.

``make_verifier(config.verification)`` is the entry point; see ``stp.verify.backends``.
"""

from stp.errors import VerifierUnavailableError
from stp.verify.backends import make_verifier
from stp.verify.types import Message, Verdict, Verifier, VerifyJob, VerifyResult

__all__ = [
    "Message",
    "Verdict",
    "Verifier",
    "VerifierUnavailableError",
    "VerifyJob",
    "VerifyResult",
    "make_verifier",
]
