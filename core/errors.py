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


class SlidesFailed(DataError):
    """A run over many slides (tiling, embedding) finished, but some slides failed.

    The other slides' results are committed; ``summary`` is the run's summary (which slides
    failed and why, what the others produced). Catch this to handle any partial slide run.
    """

    #: what the run does to a slide, for the message ("tiled", "embedded")
    verb = "processed"

    def __init__(self, message: str, summary: object):
        super().__init__(message)
        self.summary = summary

    def __reduce__(self):  # type: ignore[no-untyped-def]  # keep the summary across processes
        return (type(self), (str(self), self.summary))

    @classmethod
    def of(cls, failed: dict[str, str], total: int, summary: object, shown: int = 10) -> "SlidesFailed":
        """The error for ``failed`` (slide id -> reason) out of ``total`` slides."""
        listing = "; ".join(f"{slide}: {why.rstrip('.')}" for slide, why in list(failed.items())[:shown])
        more = f" (and {len(failed) - shown} more)" if len(failed) > shown else ""
        return cls(f"{len(failed)} of {total} slide(s) could not be {cls.verb}: {listing}{more}. "
                   f"The other {total - len(failed)} are stored; fix or remove the failed slides and "
                   "rerun (finished slides are not redone).", summary)
