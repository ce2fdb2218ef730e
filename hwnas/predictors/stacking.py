"""Few-shot stacking: a new device's latency as a ridge regression on what is known without measuring it.

With K = 20 measurements a network fine-tuned to a new device has little to learn from, yet much is
known about every architecture for free: its latency on each source device (the HELP table), how
many operations of each kind it holds and its FLOPs and parameters. ``transfer.adapt.head=ridge``
regresses the target's log latency on those (standardized on the K samples, the ridge penalty chosen
by leave-one-out error over the K), so the fit is a weighted mix of source devices corrected by
operation counts: a new mobile CPU is close to some mix of the source CPUs, and where no source is
alike (FA: GPUs only to mobile phones) the FLOPs and operation counts carry it, which is why this
head never falls far below the FLOPs baseline fitted on the same samples.

The default recipe averages four such fits (every input set that holds the costs) in log space;
it was chosen on source devices only, never on a test device
(experiments/predictor_transfer/stacking_recipes.py).
"""
from __future__ import annotations

import itertools
import time
from typing import Callable, Sequence

import numpy as np

from hwnas.errors import ConfigError, DataError, choices_text
from hwnas.estimators.base import LatencyEstimator

#: The inputs a stacked predictor may regress on.
FEATURES = ("sources", "ops", "costs", "genes")
#: The default recipe: the mean of the log predictions of four ridge fits, every feature set with the costs.
#: Chosen on source devices only (experiments/predictor_transfer/stacking_recipes.md: best leave-one-train-
#: device-out Spearman when the held-out device's own kind, e.g. every GPU, is removed from its sources).
DEFAULT_RECIPE = (("costs",), ("sources", "costs"), ("ops", "costs"), ("sources", "ops", "costs"))
#: Ridge penalties searched by leave-one-out error (on standardized inputs and log latency).
ALPHAS = tuple(np.logspace(-3, 3, 13).tolist())


def check_features(features: Sequence[str], key: str = "transfer.adapt.features") -> list[str]:
    features = list(dict.fromkeys(str(f) for f in features))
    bad = [f for f in features if f not in FEATURES]
    if bad or not features:
        raise ConfigError(f"{key} = {features} is not allowed; choose one or more of {choices_text(FEATURES)} "
                          f"(or a list of such lists: the mean of their fits)")
    return features


def check_recipe(recipe, key: str = "transfer.adapt.features") -> list[list[str]]:
    """A recipe: one feature list (one ridge fit) or a list of them (the mean of their log predictions)."""
    if isinstance(recipe, str):
        recipe = [recipe]
    recipe = list(recipe)
    if recipe and all(isinstance(m, str) for m in recipe):
        return [check_features(recipe, key)]
    if not recipe or any(isinstance(m, str) for m in recipe):
        raise ConfigError(f"{key} = {recipe} is not allowed; give a list of features (any of {choices_text(FEATURES)}) "
                          f"or a list of such lists, e.g. [[costs], [sources, costs]]")
    return [check_features(m, key) for m in recipe]


def feature_sets() -> list[list[str]]:
    """Every non-empty subset of :data:`FEATURES`."""
    return [list(c) for r in range(1, len(FEATURES) + 1) for c in itertools.combinations(FEATURES, r)]


def arch_blocks(space, archs: Sequence, features: Sequence[str] = FEATURES) -> dict[str, np.ndarray]:
    """The architecture-only inputs of ``archs`` by feature: ``ops`` (operation counts), ``genes`` (the one-hot
    encoding) and ``costs`` (log FLOPs and parameters), each ``(N, columns)``."""
    out = {}
    if "ops" in features:
        out["ops"] = space.op_counts(archs).astype(np.float64)
    if "genes" in features:
        out["genes"] = space.encode(archs).double().numpy()
    if "costs" in features:
        c = space.costs(archs)
        out["costs"] = np.log1p(np.stack([np.asarray(c["flops"], dtype=np.float64),
                                          np.asarray(c["params"], dtype=np.float64)], axis=1))
    return out


def _ridge():
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS))


class StackedPredictor(LatencyEstimator):
    """Ridge regression of log latency on source-device log latencies, operation counts and costs.

    ``recipe``: one feature list or several (the prediction is then the geometric mean of their fits).
    ``source_latency(space, archs)`` returns the ``(N, S)`` latencies (ms) of ``archs`` on the source
    devices (table values where measured, a pretrained predictor's elsewhere); needed when a member
    uses ``sources`` and the caller does not pass ``source_ms``.
    """

    name = "stacked"
    needs_fit = True

    def __init__(self, recipe=DEFAULT_RECIPE, source_latency: Callable[[object, Sequence], np.ndarray] | None = None):
        super().__init__()
        self.recipe = check_recipe(recipe)
        self.source_latency = source_latency
        self.models: list = []
        self.train_seconds = 0.0

    @property
    def uses(self) -> set[str]:
        return {f for member in self.recipe for f in member}

    @property
    def min_fit_samples(self) -> int:
        return 3  # leave-one-out over >= 3 samples picks the penalty

    def _inputs(self, space, archs, source_ms, blocks):
        if "sources" in self.uses and source_ms is None:
            if self.source_latency is None:
                raise ConfigError("a stacked predictor on the source devices' latencies needs them (source_latency)")
            source_ms = self.source_latency(space, archs)
        if source_ms is not None:
            source_ms = np.asarray(source_ms, dtype=np.float64)
            if source_ms.ndim != 2 or len(source_ms) != len(archs) or not (source_ms > 0).all():
                raise DataError(f"source latencies must be positive, one row per architecture; got shape "
                                f"{source_ms.shape} for {len(archs)} architectures")
        blocks = arch_blocks(space, archs, self.uses) if blocks is None else blocks
        return (np.log(source_ms) if source_ms is not None else None), blocks

    @staticmethod
    def _design(member, log_src, blocks) -> np.ndarray:
        parts = [log_src] if "sources" in member else []
        parts += [np.asarray(blocks[f], dtype=np.float64) for f in FEATURES if f != "sources" and f in member]
        return np.concatenate(parts, axis=1)

    def fit(self, space, archs: Sequence, latency_ms, source_ms: np.ndarray | None = None,
            blocks: dict[str, np.ndarray] | None = None) -> "StackedPredictor":
        """Fit on measured ``archs``; ``source_ms`` / ``blocks`` (:func:`arch_blocks`): their inputs, when at hand."""
        y = np.asarray(latency_ms, dtype=np.float64)
        if len(y) != len(archs) or len(y) < self.min_fit_samples or not (y > 0).all():
            raise DataError(f"a stacked predictor fits log latency: it needs >= {self.min_fit_samples} positive "
                            f"latencies, one per architecture; got {len(y)} for {len(archs)} architectures")
        t0 = time.perf_counter()
        log_src, blocks = self._inputs(space, archs, source_ms, blocks)
        self.models = [_ridge().fit(self._design(m, log_src, blocks), np.log(y)) for m in self.recipe]
        self.train_seconds = time.perf_counter() - t0
        self.fitted = True
        return self

    @property
    def alphas(self) -> list[float]:
        """The ridge penalty leave-one-out chose for each member."""
        return [float(m[-1].alpha_) for m in self.models]

    def _predict(self, space, archs: Sequence, source_ms: np.ndarray | None = None,
                 blocks: dict[str, np.ndarray] | None = None) -> np.ndarray:
        if len(archs) == 0:
            return np.zeros(0)
        log_src, blocks = self._inputs(space, archs, source_ms, blocks)
        z = [model.predict(self._design(m, log_src, blocks)) for m, model in zip(self.recipe, self.models)]
        return np.exp(np.mean(z, axis=0))

    def predict_with(self, space, archs: Sequence, source_ms: np.ndarray | None = None,
                     blocks: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """:meth:`predict` when the caller already holds the inputs of ``archs``."""
        if not self.fitted:
            raise ConfigError("a stacked predictor must be fit before predicting")
        return np.asarray(self._predict(space, archs, source_ms, blocks), dtype=np.float64)
