import numpy as np
import pytest

from pipeline.reports.analysis import decision_curve
from pipeline.reports.figures import calibration_bins
from pipeline.reports.intervals import calibration_bands, net_benefit_intervals


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(4)
    n = 2000
    groups = np.repeat(np.arange(n // 4), 4)
    p = rng.uniform(0.02, 0.5, n)
    y = (rng.random(n) < p).astype(float)
    w = rng.uniform(1.0, 1.4, n)
    return y, p, w, groups


def test_calibration_bands_share_the_figure_bins_and_contain_the_estimate(sample):
    y, p, w, groups = sample
    bands = calibration_bands(y, p, w, groups, n_boot=100, seed=1)
    bins = calibration_bins(y, p, w)
    np.testing.assert_allclose(bands["observed"].to_numpy(), bins["observed"].to_numpy())
    assert (bands["observed_lo"] <= bands["observed"]).all() and (bands["observed"] <= bands["observed_hi"]).all()
    assert (bands["observed_hi"] - bands["observed_lo"] > 0).all()


def test_net_benefit_intervals_match_the_decision_curve_at_the_thresholds(sample):
    y, p, w, groups = sample
    table = net_benefit_intervals(y, p, w, groups, [0.0, 0.10, 0.25], n_boot=100, seed=1)
    assert table["threshold"].to_list() == [0.10, 0.25]  # 0 is not a threshold
    curve = decision_curve(y, p, w, [0.10, 0.25])
    np.testing.assert_allclose(table["net_benefit_model"].to_numpy(), curve["net_benefit_model"].to_numpy())
    np.testing.assert_allclose(table["net_benefit_treat_all"].to_numpy(), curve["net_benefit_treat_all"].to_numpy())
    assert (table["net_benefit_model_lo"] <= table["net_benefit_model"]).all()
    assert (table["net_benefit_model"] <= table["net_benefit_model_hi"]).all()
    np.testing.assert_allclose(table["difference"].to_numpy(),
                               (table["net_benefit_model"] - table["net_benefit_treat_all"]).to_numpy())


def test_rows_without_an_event_get_no_interval_not_one_of_zero_width(sample):
    y, p, w, g = sample
    none = np.zeros_like(np.asarray(y, dtype=float))
    bands = calibration_bands(none, p, w, g, n_boot=30, seed=1)
    assert (bands["observed"] == 0).all() and bands["observed_lo"].is_nan().all()
    nb = net_benefit_intervals(none, p, w, g, [0.1, 0.25], n_boot=30, seed=1)
    assert nb["difference_lo"].is_nan().all() and nb["net_benefit_model_hi"].is_nan().all()
    assert nb["difference"].is_finite().all()  # the estimate stays: only its interval is withheld
