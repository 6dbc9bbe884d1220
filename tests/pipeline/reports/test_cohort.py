from datetime import date

import polars as pl

from pipeline.reports.cohort import accrual, participant_flow


def test_flow_counts_patients_censoring_and_follow_up_by_hand():
    patients = pl.DataFrame({"patient_id": ["A", "B", "C"],
                             "intake_date": [date(2023, 1, 1), date(2023, 2, 1), date(2023, 3, 1)]})
    outcomes = pl.DataFrame({"patient_id": ["A", "B", "C"],
                             "relapse_date": [date(2023, 1, 21), None, None],
                             "last_followup_date": [date(2023, 6, 1), date(2023, 2, 11), date(2023, 12, 1)]})
    # A: rows at days 0, 7, 14 (events); B: day 0 and 7 censored (follow-up ends day 10); C: 3 clean rows
    landmarks = pl.DataFrame({
        "patient_id": ["A", "A", "A", "B", "B", "C", "C", "C"],
        "phase": ["acute"] * 8,
        "label": [1, 1, 1, None, None, 0, 0, 0],
        "censored": [False, False, False, True, True, False, False, False],
    })
    flow = participant_flow(patients, outcomes, landmarks, ["acute", "early"])
    acute, early = flow["phases"]
    assert acute == {"phase": "acute", "patients_at_risk": 3, "rows": 8, "censored_rows": 2, "censored_patients": 1,
                     "analysed_patients": 2, "event_patients": 1, "event_rows": 3}
    assert early["patients_at_risk"] == 0
    follow = flow["follow_up"]
    assert follow["relapsed"] == 1 and follow["censored_without_relapse"] == 2
    assert follow["median_days"] == 20.0 and follow["max_days"] == 275  # A 20, B 10, C 275
    assert accrual(patients, outcomes) == {"accrual_start": "2023-01-01", "accrual_end": "2023-03-01",
                                           "follow_up_end": "2023-12-01"}
