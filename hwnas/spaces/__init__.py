"""Search spaces: architectures, their genomes, strings, encodings and networks."""
from hwnas.spaces.base import Gene, SearchSpace
from hwnas.spaces.registry import encoding_family, get_space, list_spaces, register_space

# Importing the modules registers the spaces.
from hwnas.spaces import ofa as _ofa  # noqa: E402,F401
from hwnas.spaces import nb201 as _nb201  # noqa: E402,F401
from hwnas.spaces import fbnet as _fbnet  # noqa: E402,F401

__all__ = ["Gene", "SearchSpace", "encoding_family", "get_space", "list_spaces", "register_space"]
