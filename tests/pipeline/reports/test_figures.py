import base64

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest

from pipeline.reports import figures
from pipeline.reports.analysis import decision_curve

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def decode(uri: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return base64.b64decode(uri[len(prefix) :])


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    n, k = 400, 5
    values = rng.normal(0, 0.2, (n, k))
    features = rng.normal(30, 5, (n, k))
    features[:40, 0] = np.nan
    p = rng.uniform(0.01, 0.5, n)
    y = (rng.random(n) < p).astype(float)
    return values, features, ["bdnf_last_ng_ml", "hrv_rmssd_mean_28d", "a", "b", "c"], y, p


def test_each_figure_is_a_png_data_uri_and_leaves_no_open_pyplot_figure(arrays):
    values, features, names, y, p = arrays
    before = plt.get_fignums()
    built = [
        figures.calibration_figure(figures.curve_with_band(y, p), p, "cal"),
        figures.decision_curve_figure(decision_curve(y, p), "dc"),
        figures.shap_bar_figure(values, names, "bar"),
        figures.shap_beeswarm_figure(values, features, names, "swarm"),
        figures.dependence_figure(values, features, names, names[:2], "dep"),
        figures.waterfall_figure(values[0], features[0], names, -1.5, "one patient", top=3),
    ]
    for fig in built:
        png = decode(figures.to_data_uri(fig))
        assert png.startswith(PNG_MAGIC) and len(png) > 2000
    assert plt.get_fignums() == before


def test_figures_are_deterministic(arrays):
    values, features, names, *_ = arrays
    first = figures.to_data_uri(figures.shap_beeswarm_figure(values, features, names))
    assert figures.to_data_uri(figures.shap_beeswarm_figure(values, features, names)) == first


def test_calibration_bins_weighted_rates():
    table = figures.calibration_bins([0, 1, 0, 1], [0.1, 0.1, 0.9, 0.9], [1, 3, 1, 1], bins=2)
    assert table["observed"].to_list() == pytest.approx([0.75, 0.5])
    assert table["predicted"].to_list() == pytest.approx([0.1, 0.9])
    assert table["n"].to_list() == [2, 2]


def test_format_value():
    assert figures.format_value(None) == "missing"
    assert figures.format_value(float("nan")) == "missing"
    assert figures.format_value(3.0) == "3"
    assert figures.format_value(12.3456) == "12.3"


def test_calibration_band_brackets_each_bin_and_the_axis_covers_every_risk(arrays):
    *_, y, p = arrays
    groups = np.repeat(np.arange(100), 4)
    table = figures.calibration_bins(y, p, None, 10)
    band = figures.calibration_band(y, p, None, groups, 10, n_boot=200, seed=1)
    assert band.shape == (2, table.height)
    observed = table["observed"].to_numpy()
    assert (band[0] <= observed + 1e-12).all() and (observed <= band[1] + 1e-12).all()
    assert (band[1] - band[0] > 0).all()
    high = np.concatenate([p, [0.93]])  # one very high risk: the x axis must reach it
    fig = figures.calibration_figure(figures.curve_with_band(np.concatenate([y, [1.0]]), high), high, "cal")
    assert fig.axes[0].get_xlim()[1] >= 0.93


def test_one_calibration_figure_draws_training_and_evaluation_curves(arrays):
    from pipeline.reports.validation import calibration_curve

    *_, y, p = arrays
    groups = np.repeat(np.arange(100), 4)
    training = figures.curve_with_band(y, p, None, groups, 10, n_boot=50, seed=1)
    evaluation = calibration_curve(y, p, np.ones_like(p), groups, n_boot=50, seed=1)
    assert {"predicted", "observed", "lo", "hi"} <= set(training.columns) & set(evaluation.columns)
    assert training["observed"].to_list() == pytest.approx(evaluation["observed"].to_list())
    for curve in (training, evaluation):
        fig = figures.calibration_figure(curve, p, "cal")
        band = fig.axes[0].collections[0]  # the band is drawn, over every bin
        assert band.get_paths()[0].vertices[:, 0].max() == pytest.approx(curve["predicted"].max())
        assert fig.axes[0].get_xlim()[1] >= p.max()  # the axis reaches the highest risk, not the top bin's mean
    thin = evaluation.with_columns(lo=pl.lit(float("nan")), hi=pl.lit(float("nan")))  # too few resamples
    assert decode(figures.to_data_uri(figures.calibration_figure(thin, p))).startswith(PNG_MAGIC)
