"""Exceptions for user-facing failures.

Anything that is the user's mistake (a bad file, a bad config key, an invalid sequence) raises a
subclass of :class:`HadnaError`. The CLI prints its message and exits with code 2 instead of a
traceback. Subclasses that also derive from ``ValueError``/``FileNotFoundError`` keep working with
ordinary ``except`` clauses in library code.
"""

from __future__ import annotations


class HadnaError(Exception):
    """Base class of errors caused by user input; the CLI reports them without a traceback."""

    exit_code = 2


class ConfigError(HadnaError, ValueError):
    """A config file or an override is malformed (unknown key, wrong type, bad value)."""


class InvalidSequenceError(HadnaError, ValueError):
    """A DNA sequence contains a character that cannot be tokenised, or is empty."""


class DataError(HadnaError, ValueError):
    """A data file (FASTA, BED, CSV, parquet, ...) is malformed; the message names file and record/row."""


class MissingFileError(HadnaError, FileNotFoundError):
    """A required file or directory is absent; the message says what was expected and where to get it."""


class CheckpointError(HadnaError, RuntimeError):
    """A checkpoint is truncated, corrupt or incompatible."""


class DirectoryInUseError(HadnaError, RuntimeError):
    """Another live process holds the output directory's lock (the message names its pid)."""


class TrainingError(HadnaError, RuntimeError):
    """Training cannot continue (for example a non-finite loss); the last good checkpoint is kept."""
