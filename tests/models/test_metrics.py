"""Unit tests: weighted metrics against scikit-learn and the patient-level bootstrap."""


import hashlib

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from models import metrics, newton
from models.link import logit, sigmoid


def calibrated_sample(n: int, seed: int, n_patients: int | None = None):
    """Probabilities with ties, outcomes drawn from them (so perfectly calibrated), weights."""
    rng = np.random.default_rng(seed)
    p = np.round(sigmoid(rng.normal(-1.5, 1.2, n)), 2)
    y = (rng.random(n) < p).astype(float)
    w = rng.uniform(1, 3, n)
    groups = rng.integers(n_patients or n, size=n)
    return y, p, w, groups


def test_weighted_auroc_and_auprc_equal_sklearn_with_ties():
    y, p, w, _ = calibrated_sample(3000, 0)
    assert metrics.auroc(y, p, w) == pytest.approx(roc_auc_score(y, p, sample_weight=w),
                                                   abs=1e-12)
    assert metrics.auprc(y, p, w) == pytest.approx(
        average_precision_score(y, p, sample_weight=w), abs=1e-12)
    assert metrics.auroc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_brier_equals_sklearn():
    y, p, w, _ = calibrated_sample(500, 1)
    assert metrics.brier(y, p, w) == pytest.approx(brier_score_loss(y, p, sample_weight=w))


def test_well_calibrated_probabilities_have_intercept_0_and_slope_1():
    y, p, w, _ = calibrated_sample(200_000, 2)
    assert metrics.calibration_intercept(y, p, w) == pytest.approx(0, abs=0.03)
    assert metrics.calibration_slope(y, p, w) == pytest.approx(1, abs=0.03)
    assert metrics.ece(y, p, w) < 0.01


def test_a_model_ranking_the_wrong_way_round_gets_its_negative_slope_not_nan():
    # Newton from the usual start (a slope of 1) overshoots into saturation here; the fit
    # retries from (0, 0), in the point estimate and in every bootstrap resample alike
    rng = np.random.default_rng(6)
    p = sigmoid(rng.normal(-2.0, 1.0, 6000))
    y = (rng.random(p.size) < sigmoid(-1.0 - 0.8 * logit(p))).astype(float)
    a, b = metrics.recalibration_line(y, p)
    expected = LogisticRegression(C=1e12, tol=1e-12, max_iter=1000).fit(logit(p)[:, None], y)
    assert (a, b) == pytest.approx((expected.intercept_[0], expected.coef_[0, 0]), abs=1e-5)
    W = np.vstack([np.ones(p.size), rng.poisson(1.0, p.size).astype(float)])
    _, slopes = newton.newton_line(logit(p), y, W, np.zeros(2), np.ones(2))
    assert slopes[0] == pytest.approx(b, abs=1e-9) and np.isfinite(slopes).all() and (slopes < 0).all()


def test_overconfident_and_underpredicted_risks_are_detected():
    y, p, w, _ = calibrated_sample(100_000, 3)
    overconfident = sigmoid(2 * logit(p))
    assert metrics.calibration_slope(y, overconfident, w) == pytest.approx(0.5, abs=0.03)
    too_low = sigmoid(logit(p) - 1)
    assert metrics.calibration_intercept(y, too_low, w) == pytest.approx(1, abs=0.05)


def test_calibration_fits_solve_their_score_equations():
    y, p, w, _ = calibrated_sample(2000, 4)
    z = logit(p)
    a, b = metrics.recalibration_line(y, p, w)
    residual = w * (y - sigmoid(a + b * z))
    assert abs(residual.sum()) < 1e-6 and abs((residual * z).sum()) < 1e-6
    a0 = metrics.calibration_intercept(y, p, w)
    assert abs(np.sum(w * (y - sigmoid(a0 + z)))) < 1e-6


def test_ece_of_a_constant_prediction_is_its_gap_to_the_event_rate():
    y = np.array([0, 1] * 50, dtype=float)
    assert metrics.ece(y, np.full(100, 0.3)) == pytest.approx(0.2)


def test_single_class_gives_nan_for_ranking_and_calibration_fits_only():
    y = np.zeros(50)
    m = metrics.point_metrics(y, np.full(50, 0.1))
    assert np.isnan(m["auroc"]) and np.isnan(m["calibration_slope"])
    assert m["brier"] == pytest.approx(0.01) and m["ece"] == pytest.approx(0.1)


def test_confidence_intervals_contain_the_estimate_and_are_deterministic():
    y, p, w, g = calibrated_sample(5000, 5, n_patients=800)
    result = metrics.evaluate(y, p, w, g, n_boot=100, seed=1)
    assert set(result) == set(metrics.METRICS)
    for name in ("auroc", "auprc", "brier", "calibration_intercept", "calibration_slope"):
        est, lo, hi = result[name]
        assert lo <= est <= hi, name
    assert result == metrics.evaluate(y, p, w, g, n_boot=100, seed=1)


def test_intervals_do_not_depend_on_how_the_patient_ids_are_spelled():
    # the audit reads keyed-hash ids: its resamples must be those training drew from the same rows
    y, p, w, g = calibrated_sample(3000, 5, n_patients=500)
    spelled = np.array([f"{int(i):04d}" for i in g], dtype=object)
    hashed = np.array([hashlib.sha256(i.encode()).hexdigest() for i in spelled], dtype=object)
    assert metrics.evaluate(y, p, w, spelled, 60, 2) == metrics.evaluate(y, p, w, hashed, 60, 2)
    subgroup = metrics.group_metrics(y, p, w, hashed, 60, 2)
    assert subgroup["auroc"] == metrics.evaluate(y, p, w, spelled, 60, 2)["auroc"]
    paired = [metrics.paired_differences(y, p, p ** 1.1, w, ids, 60, 2) for ids in (spelled, hashed)]
    assert paired[0] == paired[1]


def test_intervals_narrow_with_more_data():
    small = metrics.evaluate(*calibrated_sample(1000, 6), n_boot=100, seed=0)
    large = metrics.evaluate(*calibrated_sample(16000, 6), n_boot=100, seed=0)
    for name in ("auroc", "brier", "calibration_slope"):
        assert large[name][2] - large[name][1] < 0.5 * (small[name][2] - small[name][1]), name


def test_bootstrap_resamples_patients_not_rows():
    y, p, w, _ = calibrated_sample(2000, 7)
    ids = np.arange(2000)
    # each patient contributes 5 identical rows: a row bootstrap would see 10,000 independent
    # rows; a patient bootstrap must give exactly the intervals of one row per patient
    rep = [np.repeat(a, 5) for a in (y, p, w, ids)]
    one_row = metrics.evaluate(y, p, w, ids, n_boot=100, seed=3)
    by_patient = metrics.evaluate(*rep, n_boot=100, seed=3)
    by_row = metrics.evaluate(*rep[:3], np.arange(10_000), n_boot=100, seed=3)
    for name in ("auroc", "brier", "calibration_intercept"):
        np.testing.assert_allclose(by_patient[name], one_row[name], rtol=1e-9, atol=1e-12)
        assert by_row[name][2] - by_row[name][1] < 0.7 * (by_patient[name][2]
                                                          - by_patient[name][1])


@pytest.mark.parametrize(("event_patients", "interval"), [(1, False), (3, False), (8, True)])
def test_an_interval_is_withheld_when_many_resamples_draw_no_event(event_patients, interval):
    # one event patient: 37% of resamples draw no event, and the rest all hold the same one, so
    # skipping the undefined ones gave a narrow interval that luck decided; three: about 5%
    rng = np.random.default_rng(8)
    y = np.zeros(300)
    y[:event_patients] = 1
    p = rng.uniform(0, 0.2, 300)
    result = metrics.evaluate(y, p, None, np.arange(300), n_boot=400, seed=0)
    assert np.isfinite(result["auroc"][0]) and np.isfinite(result["brier"][1])  # Brier is always defined
    assert np.isfinite(result["auroc"][1:]).all() == interval
    assert np.isfinite(metrics.group_metrics(y, p, None, np.arange(300), 400, 0)["auroc"][1]) == interval
    assert np.isnan(metrics.evaluate(np.zeros(10), np.full(10, .1), None, np.arange(10),
                                     50, 0)["auroc"][1])


def test_no_bootstrap_gives_nan_bounds():
    y, p, w, g = calibrated_sample(200, 9)
    est, lo, hi = metrics.evaluate(y, p, w, g, n_boot=0, seed=0)["auroc"]
    assert np.isfinite(est) and np.isnan(lo) and np.isnan(hi)


def test_counts():
    got = metrics.counts(np.array([0, 1, 1, 0, 1]), np.array(["a", "a", "a", "b", "c"]))
    assert got == {"rows": 5, "patients": 3, "events": 3, "event_patients": 2}


def test_invalid_inputs_are_rejected():
    with pytest.raises(ValueError, match="0/1"):
        metrics.auroc(np.array([0, 2]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="probabilities"):
        metrics.auroc(np.array([0, 1]), np.array([0.1, 1.2]))


def test_an_undefined_estimate_has_no_interval():
    # a constant prediction: its calibration slope is undefined on the full sample; some
    # resamples would still fit one, but no interval is shown around a missing estimate
    y = np.array([0, 1, 0, 0, 1, 0, 0, 0] * 10, dtype=float)
    p = np.full(y.size, 0.25)
    groups = np.arange(y.size).astype(str)
    got = metrics.evaluate(y, p, None, groups, n_boot=50, seed=0)
    assert np.isnan(got["calibration_slope"][0])
    assert np.isnan(got["calibration_slope"][1]) and np.isnan(got["calibration_slope"][2])
    assert np.isfinite(got["brier"]).all()


def test_observed_over_expected_is_the_ratio_of_weighted_sums():
    y = np.array([1, 0, 0, 1, 0], dtype=float)
    p = np.array([0.2, 0.1, 0.3, 0.4, 0.1])
    w = np.array([1, 2, 1, 1, 1], dtype=float)
    assert metrics.point_metrics(y, p, w)["oe_ratio"] == pytest.approx(2 / (0.2 + 0.2 + 0.3 + 0.4 + 0.1))


@pytest.mark.parametrize("tied", [True, False])
def test_each_resample_row_equals_its_own_single_sample_metrics(tied):
    # Rows span several of the Newton fits' column blocks; each row of a batch of resample
    # weights must give what that weighting alone gives (sklearn for ranking, score equations
    # for the calibration fits), with and without tied scores.
    n = 2 * newton.BLOCK + 317
    y, p, w, _ = calibrated_sample(n, 11)
    if not tied:
        p = sigmoid(np.random.default_rng(12).normal(-1.5, 1.2, n))
    s = metrics._Sample(y, p, w)
    assert (s.ends.size < n) == tied  # the case holds tied scores, or none
    counts = np.random.default_rng(13).poisson(1.0, size=(3, n)).astype(float)
    out = metrics._batch(s, counts * s.w, metrics._point(s))
    z = logit(s.p)
    for r, weights in enumerate(counts * s.w):
        assert out["auroc"][r] == pytest.approx(roc_auc_score(s.y, s.p, sample_weight=weights), abs=1e-12)
        assert out["auprc"][r] == pytest.approx(average_precision_score(s.y, s.p, sample_weight=weights), abs=1e-12)
        a0 = out["calibration_intercept"][r]
        assert abs(np.sum(weights * (s.y - sigmoid(a0 + z)))) < 1e-7
        a, b = out["_line_a"][r], out["calibration_slope"][r]
        residual = weights * (s.y - sigmoid(a + b * z))
        assert abs(residual.sum()) < 1e-7 and abs((residual * z).sum()) < 1e-7


def test_ranking_at_the_edges_equals_sklearn():
    # positives in the first and the last run, ties at both ends, rows and a whole tied run
    # weighted zero (a patient not drawn in a resample), a positive of weight zero
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 1], dtype=float)
    p = np.array([.9, .9, .8, .7, .7, .7, .5, .5, .3, .1, .1, .1])
    rows = np.array([[1, 2, 0, 1, 1, 1, 0, 0, 3, 1, 2, 1],
                     [0, 1, 1, 2, 0, 1, 1, 1, 0, 0, 1, 1],
                     [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]], dtype=float)
    s = metrics._Sample(y, p, np.ones_like(y))
    auroc, auprc = metrics._ranking(s, rows[:, s.order])
    for r, weights in enumerate(rows):
        assert auroc[r] == pytest.approx(roc_auc_score(y, p, sample_weight=weights), abs=1e-12)
        assert auprc[r] == pytest.approx(average_precision_score(y, p, sample_weight=weights), abs=1e-12)
