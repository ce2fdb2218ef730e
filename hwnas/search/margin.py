"""A latency margin measured, not guessed: search under ``budget x (1 - m)`` where ``m`` is a high
quantile of how far the estimator *under*-predicts measured architectures it was not fitted on.

With ``u = (true - predicted) / true`` for a pick, a pick searched under ``budget x (1 - m)`` can
exceed its budget only if its ``u > m``: a violation always means the estimator erred beyond its
measured margin on that pick. With ``m`` the ``q``-quantile of ``u`` over held-out architectures,
about ``1 - q`` of picks drawn like them would be expected to err that far; picks sit at the edge of
the feasible region, where an estimator's bias can differ, which is why the studies verify them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnas.data.tables import read_latency_table
from hwnas.devices import TableDevice
from hwnas.errors import ConfigError

#: the largest margin ``auto`` may set: beyond it the search would look for networks < 10 % of the budget
MAX_MARGIN = 0.9
#: the fewest held-out architectures a quantile of the estimator's error is measured on
MIN_HELD_OUT = 10


def underestimate(predicted_ms: np.ndarray, true_ms: np.ndarray) -> np.ndarray:
    """``(true - predicted) / true``: > 0 where the estimator promises less latency than is measured."""
    true_ms = np.asarray(true_ms, dtype=np.float64)
    return (true_ms - np.asarray(predicted_ms, dtype=np.float64)) / true_ms


@dataclass
class Margin:
    """The margin, and the held-out evidence it was set from."""

    margin: float
    quantile: float
    errors: np.ndarray  # underestimate() of each held-out architecture

    def metrics(self) -> dict[str, float]:
        e = self.errors
        # medians, not an RMSE: relative errors explode on near-zero latencies (NB201 cells whose output is cut off)
        return {"latency_margin": self.margin, "margin_quantile": self.quantile, "margin_n": int(len(e)),
                "margin_median_abs_error_pct": float(np.median(np.abs(e)) * 100),
                "margin_median_error_pct": float(np.median(e) * 100)}


#: ``search.latency_margin`` values that are not a fraction: a margin measured on held-out architectures, or
#: each architecture's own error bar (the upper end of a calibrated interval: ``estimator.interval``)
MARGIN_WORDS = ("auto", "uncertainty")


def parse_margin(value) -> float | str:
    """``search.latency_margin``: a fraction in [0, 1), ``auto`` or ``uncertainty``."""
    allowed = "a fraction in [0, 1), auto (set from the estimator's measured error) or uncertainty (each " \
              "architecture's calibrated interval: estimator.interval)"
    if isinstance(value, str):
        if value.strip().lower() in MARGIN_WORDS:
            return value.strip().lower()
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"search.latency_margin = {value!r} is not allowed; allowed: {allowed}") from None
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"search.latency_margin = {value!r} is not allowed; allowed: {allowed}")
    return float(value)


def held_out(estimator, space, device, data: str | None, n: int, seed: int) -> tuple[list, np.ndarray]:
    """Measured architectures the estimator was not fitted on: the rows of ``data`` (a latency CSV),
    else up to ``n`` architectures of a table device outside the estimator's fitting sample."""
    seen = getattr(estimator, "fit_keys", None) or set()
    if data:
        table = read_latency_table(data, allow_duplicates=True)
        keep = [i for i, a in enumerate(table.archs) if a not in seen]
        archs, lat = space.from_strings([table.archs[i] for i in keep]), table.latency_ms[keep]
    elif isinstance(device, TableDevice):
        if getattr(estimator, "fit_keys", None) is None:
            raise ConfigError(f"search.latency_margin=auto: estimator={estimator.name} was not fitted by this job "
                              f"(a checkpoint?), so its training architectures are unknown; give "
                              f"search.margin_data=<CSV of measured architectures it has not seen>")
        archs, lat = device.dataset(space)
        pool = [i for i, a in enumerate(archs) if space.to_string(a) not in seen]
        if n > len(pool):  # was: quietly fewer
            raise ConfigError(f"search.margin_samples = {n} exceeds the {len(pool)} architectures of device "
                              f"{device.name} outside the estimator's fitting sample of {len(seen)}; allowed: "
                              f"{MIN_HELD_OUT}..{len(pool)}" if len(pool) >= MIN_HELD_OUT else
                              f"search.latency_margin=auto: device {device.name} has only {len(pool)} architectures "
                              f"outside the estimator's fitting sample of {len(seen)}; at least {MIN_HELD_OUT} are "
                              f"needed to measure its error (lower estimator.fit_samples or give search.margin_data)")
        pick = np.random.default_rng(seed).choice(len(pool), size=n, replace=False)
        archs, lat = [archs[pool[i]] for i in pick], lat[[pool[i] for i in pick]]
    else:
        raise ConfigError("search.latency_margin=auto needs measured architectures the estimator was not fitted on: "
                          "give search.margin_data=<CSV with arch, latency_ms> (e.g. the predictions.csv of "
                          "job=train_predictor, or a job=measure CSV) or use a table device")
    if len(archs) < MIN_HELD_OUT:
        raise ConfigError(f"search.latency_margin=auto: only {len(archs)} held-out architectures "
                          f"({data or device.name}); at least {MIN_HELD_OUT} are needed to measure the estimator's error")
    return archs, lat


def measure_margin(estimator, space, archs, true_ms: np.ndarray, quantile: float) -> Margin:
    """The ``quantile`` of the estimator's underestimate on ``archs``, clipped to [0, MAX_MARGIN]."""
    if not 0.0 < quantile < 1.0:
        raise ConfigError(f"search.margin_quantile = {quantile} must lie in (0, 1), e.g. 0.95")
    errors = underestimate(estimator.predict(space, archs), true_ms)
    return Margin(float(np.clip(np.quantile(errors, quantile), 0.0, MAX_MARGIN)), float(quantile), errors)
