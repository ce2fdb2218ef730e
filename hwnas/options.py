"""Checked reads of numeric config values: ``int(cfg.x)`` would run ``seed=1.5`` as seed 1 and
``train.samples=-5`` as a slice; these name the key, the bad value and what is allowed instead.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

from hwnas.errors import ConfigError

_MISSING = object()


def _range_text(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f"between {minimum} and {maximum}"
    if minimum is not None:
        return f">= {minimum}"
    if maximum is not None:
        return f"<= {maximum}"
    return ""


def integer(value: Any, name: str, minimum: int | None = None, maximum: int | None = None,
            allow_none: bool = False, hint: str = "") -> int | None:
    """``value`` as an int; a ``ConfigError`` naming ``name`` for a bool, a fraction, text or a value out of range."""
    if value is None:
        if allow_none:
            return None
        raise ConfigError(f"{name} is not set; it must be an integer {_range_text(minimum, maximum)}".rstrip() + hint)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (not isinstance(value, numbers.Integral) and
                                                                         (not math.isfinite(value) or value != int(value))):
        if isinstance(value, str):
            try:
                return integer(int(value.strip()), name, minimum, maximum, allow_none, hint)
            except ValueError:
                pass
        allowed = _range_text(minimum, maximum)
        raise ConfigError(f"{name} = {value!r} is not an integer; it must be an integer{' ' + allowed if allowed else ''}"
                          + (" or null" if allow_none else "") + hint)
    out = int(value)
    if (minimum is not None and out < minimum) or (maximum is not None and out > maximum):
        raise ConfigError(f"{name} = {out} is out of range; it must be {_range_text(minimum, maximum)}" + hint)
    return out


def number(value: Any, name: str, minimum: float | None = None, maximum: float | None = None,
           allow_none: bool = False, exclusive_minimum: bool = False, hint: str = "") -> float | None:
    """``value`` as a finite float; a ``ConfigError`` naming ``name`` otherwise (``exclusive_minimum``: > minimum)."""
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{name} = {value!r} is not a finite number" + (" or null" if allow_none else "") + hint)
    out = float(value)
    low_bad = minimum is not None and (out <= minimum if exclusive_minimum else out < minimum)
    if low_bad or (maximum is not None and out > maximum):
        low = f"> {minimum}" if exclusive_minimum and minimum is not None else None
        allowed = (low if maximum is None else f"{low} and <= {maximum}") if low else _range_text(minimum, maximum)
        raise ConfigError(f"{name} = {value!r} is out of range; it must be {allowed}" + hint)
    return out


def warn(message: str) -> None:
    """One ``hwnas: warning:`` line on stderr, for input that is used but may not mean what the user meant
    (moderately disagreeing re-measurements, a checkpoint whose role is judged from its contents)."""
    import sys

    print(f"hwnas: warning: {' '.join(str(message).split())}", file=sys.stderr)


def count(value: Any, name: str, minimum: int, maximum: int | None = None, allow_none: bool = False,
          why: str = "") -> int | None:
    """:func:`integer` for a number of items (samples, rows, steps) whose minimum the computation needs;
    ``why`` (e.g. "a rank correlation needs 3 points") is appended to the message of a value out of range."""
    return integer(value, name, minimum, maximum, allow_none, hint=f" ({why})" if why else "")


def seed(value: Any, name: str) -> int:
    """A random seed: an integer >= 0 (``seed=1.5`` is not seed 1; numpy refuses negative seeds deep inside)."""
    return integer(value, name, 0, hint=" (a random seed)")
