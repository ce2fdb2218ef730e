"""Where a fitted estimator learns from: a latency CSV, or samples of the target table device."""
from __future__ import annotations

import numpy as np

from hwnas.data.tables import read_latency_table
from hwnas.devices import TableDevice
from hwnas.errors import ConfigError


def training_samples(estimator, space, device) -> tuple[list, np.ndarray]:
    """``estimator.fit_data`` if given, else ``fit_samples`` architectures drawn from a table device."""
    if estimator.fit_data:
        table = read_latency_table(estimator.fit_data, allow_duplicates=True)
        return space.from_strings(table.archs), table.latency_ms
    if isinstance(device, TableDevice):
        archs, lat = device.dataset(space)
        n = min(estimator.fit_samples, len(archs))
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
