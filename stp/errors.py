"""Errors a user can fix from the message alone.

Every such error derives from ``UserError``; ``stp`` prints it as one line and exits with
status 2. Anything else is a bug (or a failure the user cannot fix from a message) and keeps
its traceback. The classes also derive from the built-in error they refine, so code that
catches ``ValueError`` or ``FileNotFoundError`` still catches them.
"""

from __future__ import annotations


class UserError(Exception):
    """Base class: the message says what is wrong and what to do about it."""


class ConfigError(UserError, ValueError):
    """A config file or override names an unknown field or gives a value the field cannot take,
    or the config names something (model, data set, proof assistant) that is not there."""


class DataError(UserError, ValueError):
    """A data file is malformed, or a benchmark/prover/split that does not exist was asked for."""


class MissingInput(UserError, FileNotFoundError):
    """A file or folder the command was pointed at does not exist."""


class MissingExtraError(UserError, ImportError):
    """An optional dependency of the chosen backend is not installed."""


class VerifierUnavailableError(UserError, RuntimeError):
    """The configured proof assistant is not installed or not known; the message says what
    to install."""


class TrainingOutputConflict(UserError):
    """The output folder holds a finished or partial run with different data or settings."""


class TrainingJobFailed(UserError, RuntimeError):
    """A training job launched by a run's train stage failed; its own output says why."""


class EvaluationMismatch(UserError):
    """The output folder holds an evaluation of something else; pick another folder."""


class RunLockedError(UserError, RuntimeError):
    """Another process holds the run's lock."""


class IncompatibleRun(UserError):
    """A run or evaluation folder was written by a version of STP whose artifacts this one
    cannot continue."""
