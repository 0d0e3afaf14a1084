"""User-facing errors.

Everything a user can cause (bad input, bad config, missing files) raises a `PmxError`
subclass whose message names the file / patient / key and the fix. The CLI turns these into a
one-paragraph message and a non-zero exit instead of a traceback; anything else is a bug.
"""

from __future__ import annotations


class PmxError(Exception):
    """Base class of errors caused by input, configuration or environment (not bugs)."""

    exit_code: int = 2


class ConfigError(PmxError):
    """A config key is unknown, ill-typed or out of range."""


class PluginError(PmxError):
    """A plugin could not be loaded or registered something invalid."""


class DuplicateComponentError(PluginError):
    """Two plugins registered a component of the same kind and name."""


class UnknownComponentError(PmxError):
    """A component (or method) name that no loaded plugin registered."""


class DataError(PmxError):
    """Input data (slides, omics, clinical tables, predictions) is missing or malformed."""
