"""hwnas from Python, without the command line: compose a config from overrides, run a job, get its metrics.

    import hwnas
    cfg = hwnas.compose(["job=evaluate", "search_space=nb201", "device=help", "device.column=pixel3",
                         "estimator=flops", "logger=none"])
    metrics = hwnas.run(cfg)                  # a dict, the job's metrics.json
    hwnas.run(cfg, run_dir="outputs/mine")    # or in a folder of your choice (a rerun there resumes)

The overrides are exactly the command line's (``hwnas job=evaluate ...``), checked the same way: a bad
value fails with the same one-line :class:`hwnas.errors.HwnasError` (an unknown option or key with
Hydra's message as a :class:`~hwnas.errors.ConfigError`). The building blocks (spaces,
estimators, devices, search strategies) are plain classes too; ``hydra.utils.instantiate(cfg.search_space)``
builds any group's choice, and docs/python_api.md shows them used directly.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig

from hwnas.errors import ConfigError


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The config ``hwnas <overrides>`` would run (Hydra's compose API over hwnas's config groups)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from hydra.errors import HydraException

    if isinstance(overrides, str):  # one string would be read letter by letter
        overrides = [overrides]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="hwnas.conf", version_base="1.3"):
            return hydra_compose(config_name="config", overrides=list(overrides))
    except HydraException as exc:  # an unknown option or key: Hydra's message, without its search path, one line
        text = str(exc).split("Config search path:")[0]
        raise ConfigError(" ".join(text.replace("Available options in", "; available options in").split())) from exc
    finally:
        GlobalHydra.instance().clear()


def run(cfg: DictConfig | Sequence[str], run_dir: str | Path | None = None) -> dict[str, float]:
    """Run ``cfg`` (a composed config, or overrides to compose) in ``run_dir`` (default
    ``<paths.output_dir>/<job>/<timestamp>``, as the command line names it); its metrics."""
    from hwnas.jobs import run_job

    if not isinstance(cfg, DictConfig):
        cfg = compose(cfg)
    if run_dir is None:
        run_dir = Path(str(cfg.paths.output_dir)) / str(cfg.job.name) / time.strftime("%Y-%m-%d_%H-%M-%S")
    return run_job(cfg, run_dir=Path(run_dir))
