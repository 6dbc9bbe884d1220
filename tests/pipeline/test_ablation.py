"""Unit tests: `pipeline.ablation` refits all phases together, without a group, on the same folds."""

import numpy as np
import pytest

from pipeline.ablation import ablate_phases, deterministic_fit, without
from tests.models.synthetic import small_model_config, synthetic_phases


def test_without_drops_only_the_named_columns():
    s = synthetic_phases()
    reduced = without(s["phases"], s["feature_names"], ["f0", "f3"])
    for phase, d in s["phases"].items():
        r = reduced[phase]
        assert r.X.shape == (d.X.shape[0], d.X.shape[1] - 2)
        np.testing.assert_array_equal(r.X, d.X[:, [1, 2, 4, 5]])
        assert r.y is d.y and r.w is d.w and r.groups is d.groups and r.day is d.day


@pytest.mark.slow  # three fits of every phase: seconds, not milliseconds
def test_dropping_the_signal_column_lowers_auroc_in_the_phases_with_a_booster():
    s = synthetic_phases()
    cfg = small_model_config(bootstrap_samples=50)
    rows, notes = ablate_phases(s["phases"], {"signal": ["f0"], "noise": ["f5"]}, s["feature_names"], cfg,
                                [0.1, 0.25])
    assert {r["phase"] for r in rows} == {"acute", "early"}
    assert any("late" in n and "no_data" in n for n in notes)
    got = {(r["phase"], r["group"], r["metric"]): r for r in rows}
    assert {m for _, _, m in got} == {"delta_auroc", "delta_brier", "delta_net_benefit_0.1",
                                       "delta_net_benefit_0.25"}
    for phase in ("acute", "early"):
        signal = got[(phase, "signal", "delta_auroc")]
        assert signal["estimate"] < 0 and signal["hi"] < 0
        assert got[(phase, "signal", "delta_brier")]["estimate"] > 0
        noise = got[(phase, "noise", "delta_auroc")]
        assert noise["lo"] <= 0 <= noise["hi"], (phase, noise)


def test_both_arms_are_fitted_without_subsampling_and_otherwise_as_configured():
    cfg = small_model_config()
    fit = deterministic_fit(cfg)
    assert fit.xgboost.subsample == 1.0 and fit.xgboost.colsample_bytree == 1.0
    assert cfg.xgboost.subsample == 0.8  # the caller's config is left alone
    assert fit.xgboost.model_dump(exclude={"subsample", "colsample_bytree"}) == \
        cfg.xgboost.model_dump(exclude={"subsample", "colsample_bytree"})
    assert fit.model_dump(exclude={"xgboost"}) == cfg.model_dump(exclude={"xgboost"})
