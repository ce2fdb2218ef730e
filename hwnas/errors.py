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


class WriteError(HwnasError, OSError):
    """An output the system refuses to take (disk full, file too large, permissions)."""


def choices_text(allowed) -> str:
    """Render allowed values for an error message: ``3, 5, 7``."""
    return ", ".join(str(a) for a in allowed)


def user_error_text(exc: BaseException | None) -> str | None:
    """The one line for an error a user caused (None: a bug, shown with its traceback).

    Besides :class:`HwnasError` (Hydra's instantiate wraps the errors of the objects it builds), a
    mandatory value left unset, a config object built with a bad argument, and a file the system
    refuses (disk full, permissions, a directory where a file should be) are user errors too.
    """
    import re

    from hydra.errors import InstantiationException
    from omegaconf.errors import MissingMandatoryValue

    found = user_error(exc)
    if found is not None:
        return str(found)
    if isinstance(exc, MissingMandatoryValue):
        key = getattr(exc, "full_key", None) or str(exc).split(":")[-1].strip()
        return f"{key} is required here and is not set; give {key}=<value> on the command line"
    if isinstance(exc, InstantiationException) and isinstance(exc.__cause__, (TypeError, ValueError)):
        text = str(exc)
        target = re.search(r"target '([^']+)'", text)
        key = re.search(r"full_key: (\S+)", text)
        what = " ".join(filter(None, [key and key.group(1), target and f"({target.group(1)})"])) or "an object"
        return f"cannot build {what}: {exc.__cause__} (HWNAS_DEBUG=1 shows the traceback)"
    if isinstance(exc, OSError) and exc.filename:
        return f"cannot use '{exc.filename}': {exc.strerror or exc} (HWNAS_DEBUG=1 shows the traceback)"
    return None


def user_error(exc: BaseException | None) -> HwnasError | None:
    """The :class:`HwnasError` behind ``exc`` (Hydra's instantiate wraps errors of the objects it builds)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, HwnasError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None
