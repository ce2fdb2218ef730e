"""Cross-validated choice between a learned estimator and its FLOPs baseline (hwnas/estimators/selection.py)."""
from __future__ import annotations

import numpy as np
import pytest

from hwnas.data.tables import load_nb201_latency
from hwnas.errors import ConfigError
from hwnas.estimators.flops import FlopsEstimator
from hwnas.estimators.hybrid import PRIOR_FLOOR, ResidualEstimator
from hwnas.estimators.selection import BLEND, Blend, cross_validate
from hwnas.spaces import get_space


@pytest.fixture(scope="module")
def nb201(data_dir):
    space = get_space("nb201")
    wide = load_nb201_latency(data_dir)
    return space, space.from_strings(wide.archs[:200]), wide.column("silver_4114")[:200]


def _flops(space):
    return lambda a, y: FlopsEstimator(fit_samples=len(y)).fit(space, a, y)


def _params(space):  # a weaker proxy of the same form: the peak activation size instead of FLOPs
    return lambda a, y: FlopsEstimator(features=("peak_activation_bytes",), fit_samples=len(y)).fit(space, a, y)


def test_cross_validation_ranks_flops_above_activation_size_on_a_xeon(nb201):
    space, archs, lat = nb201
    errors = cross_validate({"flops": _flops(space), "params": _params(space)}, space, archs, lat, folds=5, seed=0)
    assert set(errors) == {"flops", "params", BLEND}
    assert errors["flops"] < errors["blend"] < errors["params"], errors  # 0.176 < 0.198 < 0.322
    # the same seed, the same folds
    assert cross_validate({"flops": _flops(space), "params": _params(space)}, space, archs, lat, seed=0) == errors
    assert cross_validate({"flops": _flops(space)}, space, archs, lat, seed=0).keys() == {"flops"}


def test_the_blend_is_the_geometric_mean_of_its_members(nb201):
    space, archs, lat = nb201
    a, b = _flops(space)(archs, lat), _params(space)(archs, lat)
    both = Blend([a, b]).predict(space, archs[:20])
    assert np.allclose(both, np.sqrt(np.clip(a.predict(space, archs[:20]), 1e-9, None)
                                     * np.clip(b.predict(space, archs[:20]), 1e-9, None)))
    with pytest.raises(ConfigError, match="a blend needs at least one estimator"):
        Blend([])


def test_too_few_samples_for_two_folds_is_refused(nb201):
    space, archs, lat = nb201
    with pytest.raises(ConfigError, match=r"needs >= 2 folds of the 1 fitting samples"):
        cross_validate({"flops": _flops(space)}, space, archs[:1], lat[:1])


def test_a_residual_estimator_multiplies_its_prior_by_a_correction_fitted_on_the_ratios(nb201):
    space, archs, lat = nb201
    seen = {}

    def correction(a, ratio):
        seen["ratio"] = ratio
        return _params(space)(a, ratio)

    model = ResidualEstimator(FlopsEstimator(fit_samples=len(lat)), correction).fit(space, archs, lat)
    prior = np.maximum(model.prior.predict(space, archs), PRIOR_FLOOR * lat.min())
    assert np.allclose(seen["ratio"], lat / prior)
    assert np.allclose(model.predict(space, archs), prior * model.correction.predict(space, archs))
    # the correction learns what FLOPs misses: on the samples it fits, it is closer than FLOPs alone
    assert np.abs(np.log(model.predict(space, archs) / lat)).mean() < np.abs(np.log(prior / lat)).mean()
