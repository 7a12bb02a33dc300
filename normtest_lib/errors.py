"""Exceptions that carry a message a user can act on.

Every error raised for bad input derives from :class:`NormtestError`, so the
command line can print it without a traceback.
"""


class NormtestError(Exception):
    """Base class for errors caused by user input or missing files."""


class ConfigError(NormtestError, ValueError):
    """A run's parameters are invalid (unknown key, wrong type, bad value)."""


class DatasetError(NormtestError):
    """A data set is unknown, missing, truncated, or fails its integrity check."""


class ModelError(NormtestError):
    """A model is unknown or its weights cannot be found or loaded."""
