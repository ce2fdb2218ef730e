"""hwnas: hardware-aware neural architecture search. ``hwnas.compose`` / ``hwnas.run`` run its jobs from Python."""
from hwnas.api import compose, run

__all__ = ["compose", "run"]
