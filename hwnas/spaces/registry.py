"""Name -> search-space class registry (``@register_space`` / ``get_space``)."""
from __future__ import annotations

from typing import Callable

from hwnas.errors import ConfigError, choices_text

_SPACES: dict[str, Callable] = {}


def register_space(name: str):
    """Class decorator that makes a space constructible by name."""

    def deco(cls):
        if name in _SPACES:
            raise ValueError(f"search space {name!r} registered twice")
        cls.name = name
        _SPACES[name] = cls
        return cls

    return deco


def encoding_family(name: str) -> str:
    """Spaces of one family share an encoding, so predictors transfer between them (OFA -> CompOFA)."""
    cls = _SPACES.get(name)
    return getattr(cls, "encoding_family", None) or name


def list_spaces() -> list[str]:
    return sorted(_SPACES)


def get_space(name: str, **overrides):
    """Build a registered space; ``overrides`` are its constructor arguments (e.g. ``resolutions``)."""
    if name not in _SPACES:
        raise ConfigError(f"unknown search space {name!r}; allowed: {choices_text(list_spaces())}")
    try:
        return _SPACES[name](**overrides)
    except TypeError as exc:  # unknown keyword: name it and list what the space accepts
        import inspect

        params = [p for p in inspect.signature(_SPACES[name]).parameters if p != "self"]
        raise ConfigError(f"search space {name!r}: {exc}; accepted options: {choices_text(params)}") from None
