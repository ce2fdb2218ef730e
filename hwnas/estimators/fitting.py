"""Where a fitted estimator learns from: a latency CSV, or samples of the target table device."""
from __future__ import annotations

import numpy as np

from hwnas.data.tables import read_latency_table
from hwnas.devices import TableDevice
from hwnas.errors import ConfigError


def training_samples(estimator, space, device) -> tuple[list, np.ndarray]:
    """``estimator.fit_data`` if given, else ``fit_samples`` architectures drawn from a table device."""
    need = getattr(estimator, "min_fit_samples", 2)
    if estimator.fit_data:
        table = read_latency_table(estimator.fit_data, allow_duplicates=True)
        archs = space.from_strings(table.archs)
        distinct = len({space.to_string(a) for a in archs})
        if distinct < need:
            raise ConfigError(f"estimator.fit_data '{estimator.fit_data}' holds {distinct} distinct "
                              f"architecture{'s' if distinct != 1 else ''}; estimator={estimator.name} needs >= {need} "
                              f"to fit")
        return archs, table.latency_ms
    if isinstance(device, TableDevice):
        archs, lat = device.dataset(space)
        n = estimator.fit_samples
        if n > len(archs):  # a smaller sample than asked for would be fitted silently
            raise ConfigError(f"estimator.fit_samples = {n} exceeds the {len(archs)} architectures of device "
                              f"{device.name} for {space.name}; allowed: {need}..{len(archs)}, or give "
                              f"estimator.fit_data=<CSV with arch, latency_ms>")
        if n < need:
            raise ConfigError(f"estimator.fit_samples = {n} is too few: estimator={estimator.name} needs >= {need} "
                              f"architectures to fit")
        pick = np.random.default_rng(estimator.fit_seed).choice(len(archs), size=n, replace=False)
        return [archs[i] for i in pick], lat[pick]
    raise ConfigError(f"estimator={estimator.name} learns from latency samples: give estimator.fit_data=<CSV with "
                      f"arch, latency_ms> (e.g. from `hwnas job=measure`) or pick a table device")


def fit_from_config(estimator, space, device):
    """Fit ``estimator`` if it needs it; return it. The fitted architectures' strings are kept in
    ``estimator.fit_keys`` (``None`` when it was not fitted here, e.g. loaded from a checkpoint), so
    that its error can be measured on architectures it has not seen (:mod:`hwnas.search.margin`)."""
    if estimator.needs_fit and not estimator.fitted:
        archs, lat = training_samples(estimator, space, device)
        estimator.fit(space, archs, lat)
        estimator.fit_keys = {space.to_string(a) for a in archs}
    elif not hasattr(estimator, "fit_keys"):
        estimator.fit_keys = set() if not estimator.needs_fit else None
    return estimator
