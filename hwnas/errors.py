"""User-facing errors.

Every error a user can cause by bad input (a config value, an architecture string, a CSV)
derives from :class:`HwnasError`. The CLI prints such errors as one line, without a traceback,
so each message must name the bad value and what is allowed.
"""
from __future__ import annotations


class HwnasError(Exception):
    """Base class of errors caused by user input; printed by the CLI as one line."""


class InvalidArchitecture(HwnasError, ValueError):
    """An architecture (object or string) that does not belong to its search space."""


class ConfigError(HwnasError, ValueError):
    """A configuration value that is unknown or out of range."""


class DataError(HwnasError, ValueError):
    """A data file (latency or accuracy table, lookup table) that is missing or malformed."""


def choices_text(allowed) -> str:
    """Render allowed values for an error message: ``3, 5, 7``."""
    return ", ".join(str(a) for a in allowed)
