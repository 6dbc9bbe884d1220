import math

import pytest

from pipeline.reports.sample_size import max_r2_cs, phase_sample_sizes, riley_minimum_n


def test_riley_criteria_by_hand():
    # phi = 0.05: max R2_CS = 1 - exp(2 (0.05 ln 0.05 + 0.95 ln 0.95)) ≈ 0.3348
    assert max_r2_cs(0.05) == pytest.approx(1 - math.exp(2 * (0.05 * math.log(0.05) + 0.95 * math.log(0.95))))
    need = riley_minimum_n(20, 0.05)
    r2 = 0.15 * max_r2_cs(0.05)
    assert need["criterion_i"] == math.ceil(20 / ((0.9 - 1) * math.log(1 - r2 / 0.9)))
    assert need["criterion_iii"] == math.ceil((1.96 / 0.05) ** 2 * 0.05 * 0.95)  # 73
    assert need["required_n"] == max(need["criterion_i"], need["criterion_ii"], need["criterion_iii"])


def test_phase_sizes_count_patients_and_a_fallback_is_one_parameter():
    rows = [
        {"phase": "early", "rows": 20000, "patients": 2000, "events": 1000, "model": "xgboost"},
        {"phase": "late", "rows": 500, "patients": 80, "events": 10, "model": "constant_rate"},
        {"phase": "empty", "rows": 0, "patients": 0, "events": 0, "model": "constant_rate"},
    ]
    early, late, empty = phase_sample_sizes(rows, n_features=91)
    assert early["parameters"] == 91 and early["available_patients"] == 2000 and early["met"] is False
    assert late["parameters"] == 1 and late["required_n"] == late["criterion_iii"]
    assert empty["required_n"] is None and empty["met"] is None
