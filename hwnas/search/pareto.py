"""Pareto utilities on objective matrices (rows = architectures, columns = objectives to minimize)."""
from __future__ import annotations

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting


def pareto_front(objectives: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows (every column minimized), sorted by the first column."""
    f = np.asarray(objectives, dtype=np.float64)
    if len(f) == 0:
        return np.zeros(0, dtype=np.int64)
    idx = NonDominatedSorting().do(f, only_non_dominated_front=True)
    return np.asarray(idx, dtype=np.int64)[np.argsort(f[idx, 0], kind="stable")]


def hypervolume(objectives: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume dominated by the rows (minimization) up to ``reference``."""
    f = np.asarray(objectives, dtype=np.float64)
    inside = (f < np.asarray(reference)).all(axis=1)
    return float(HV(ref_point=np.asarray(reference, dtype=np.float64))(f[inside])) if inside.any() else 0.0
