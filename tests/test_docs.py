"""The Python blocks of docs/howto.md and docs/python_api.md run as written (the docs stay true to the code)."""
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


def test_python_api_blocks_run(tmp_path, monkeypatch, capsys):
    doc = DOC.parent / "python_api.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)  # the blocks write under outputs/
    for code in blocks:
        exec(compile(code, str(doc), "exec"), {"__name__": "python_api"})
    out = capsys.readouterr().out
    assert "FLOPs fit on 100 cells: Spearman" in out and "available options in 'search_space'" in out
    assert "90 % intervals cover" in out
    assert (tmp_path / "outputs" / "python_api" / "evaluate" / "metrics.json").exists()
