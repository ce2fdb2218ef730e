"""Fetch the reference data into the data root (``hwnas job=download``).

Released files come from their authors' URLs; the derived tables are rebuilt from the authors'
upstream files (fetched into ``<dir>/upstream/``) by :mod:`hwnas.data.convert`, every file
checked by sha256. A rerun fetches only what is missing. Without network, each dataset gets one
line naming its missing files and the folder to put them in by hand, and the job exits with an
error.

Examples::

    hwnas job=download                                   # everything, into paths.data_dir
    hwnas job=download 'download.only=[nb201,ofa/note10_lut]'
    hwnas job=download download.base_url=https://mirror.example.org/hwnas-data
"""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from hwnas.data.download import download
from hwnas.data.root import ENV_VAR, resolve_data_dir
from hwnas.errors import DataError
from hwnas.options import number


def _target_dir(cfg) -> Path:
    explicit = OmegaConf.select(cfg, "download.data_dir", default=None)
    if explicit is not None and str(explicit).strip():
        return Path(str(explicit)).expanduser()
    configured = OmegaConf.select(cfg, "paths.data_dir", default=None)
    try:
        return resolve_data_dir(configured)
    except DataError:
        # A configured root that does not exist yet is where a first download should go.
        fresh = (str(configured).strip() if configured is not None else "") or os.environ.get(ENV_VAR, "").strip()
        if fresh:
            return Path(fresh).expanduser()
        raise


def run(cfg, ctx=None) -> dict[str, float]:
    only = OmegaConf.select(cfg, "download.only", default=None)
    if only is not None and not isinstance(only, str):
        only = [str(prefix) for prefix in only]
    report = download(
        _target_dir(cfg),
        only=only,
        force=bool(OmegaConf.select(cfg, "download.force", default=False)),
        base_url_override=OmegaConf.select(cfg, "download.base_url", default=None),
        timeout=number(OmegaConf.select(cfg, "download.timeout", default=60), "download.timeout", 0,
                       exclusive_minimum=True, hint=" (seconds per request)"),
    )
    return {
        name: float(value)
        for name, value in report.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
