"""The Python blocks of docs/howto.md run as written (the docs stay true to the code)."""
from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "howto.md"


def test_howto_python_blocks_run():
    from hwnas.spaces import registry

    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, "docs/howto.md has no python block"
    before = dict(registry._SPACES)
    try:
        for code in blocks:
            exec(compile(code, str(DOC), "exec"), {"__name__": "howto"})
    finally:  # the example registers a space; leave the registry as it was
        registry._SPACES.clear()
        registry._SPACES.update(before)
