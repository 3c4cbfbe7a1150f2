"""STP: self-play theorem proving. One LLM conjectures and proves; a proof assistant checks."""

__version__ = "0.1.0"
