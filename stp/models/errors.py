"""Errors of the model layer a user can fix from the message (kept free of heavy imports so
the CLI can name them without loading torch)."""


class TrainingOutputConflict(Exception):
    """The output folder holds a finished or partial run with different data or settings."""


class MissingExtraError(ImportError):
    """An optional dependency of the chosen backend is not installed."""


class UnsupportedModelError(Exception):
    """The fast CPU sampler does not implement this model (the ``hf`` backend samples it)."""
