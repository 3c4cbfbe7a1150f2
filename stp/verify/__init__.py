"""Proof checking: one interface over Rocq, Lean 4 and Isabelle backends."""

from stp.verify.types import Message, Verdict, Verifier, VerifyJob, VerifyResult

__all__ = ["Message", "Verdict", "Verifier", "VerifyJob", "VerifyResult"]
