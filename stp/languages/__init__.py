"""Formal languages, one module per proof assistant, on a shared prompt format.

    from stp.languages import language
    language("lean").prover_prompt(header, formal_statement, informal_statement)

``stp.languages.base`` holds the prompt format every assistant shares (``FormalLanguage``,
``FENCE``); ``stp.languages.rocq``, ``.lean`` and ``.isabelle`` each hold one assistant's
instance (``ROCQ``, ``LEAN``, ``ISABELLE``) and its lexer. ``stp.assistants`` names each
assistant's language in its descriptor.
"""

from __future__ import annotations

from stp.languages.base import FormalLanguage
from stp.languages.isabelle import ISABELLE
from stp.languages.lean import LEAN
from stp.languages.rocq import ROCQ

LANGUAGES: dict[str, FormalLanguage] = {"rocq": ROCQ, "lean": LEAN, "isabelle": ISABELLE}


def language(name: str) -> FormalLanguage:
    """The formal language of a verifier backend name (``"rocq"``, ``"lean"``,
    ``"isabelle"``)."""
    try:
        return LANGUAGES[name]
    except KeyError:
        raise ValueError(
            f"no prompt format for {name!r}; formats exist for: {', '.join(LANGUAGES)}"
        ) from None
