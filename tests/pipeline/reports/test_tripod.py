import polars as pl
import pytest

from pipeline.reports.analysis import tripod_checklist
from pipeline.reports.sample_size import phase_sample_sizes

SECTIONS = {"model-card", "tripod", "performance", "subgroups", "explanations", "drift", "patients"}
PAPER_ITEMS = [
    "1",
    "2",
    "3a",
    "3b",
    "3c",
    "4",
    "5a",
    "5b",
    "6a",
    "6b",
    "6c",
    "7",
    "8a",
    "8b",
    "8c",
    "9a",
    "9b",
    "9c",
    "10",
    "11",
    "12a",
    "12b",
    "12c",
    "12d",
    "12e",
    "12f",
    "12g",
    "13",
    "14",
    "15",
    "16",
    "17",
    "18a",
    "18b",
    "18c",
    "18d",
    "18e",
    "18f",
    "19",
    "20a",
    "20b",
    "20c",
    "21",
    "22",
    "23a",
    "23b",
    "24",
    "25",
    "26",
    "27a",
    "27b",
    "27c",
]


# shares the session fixture's one expensive build with the other tests of its group
pytestmark = pytest.mark.xdist_group("report")


def test_items_are_numbered_as_in_the_paper_and_all_manual_without_context():
    checklist = tripod_checklist({})
    assert [c["item"] for c in checklist] == PAPER_ITEMS
    assert all(c["answer"] == "manual" and c["section"] == "" and c["status"] == "manual" for c in checklist)
    assert all(set(c) == {"item", "topic", "status", "answer", "section", "where"} for c in checklist)


def test_answers_come_from_the_context_with_their_section(sample_context):
    checklist = {c["item"]: c for c in tripod_checklist(sample_context)}
    assert checklist["11"]["answer"] == sample_context["model_card"]["missing_data"]
    assert "30" in checklist["8a"]["answer"]
    assert "acute: 700 patients" in checklist["20a"]["answer"]
    assert checklist["20a"]["status"] == "partial"  # counts only: no flow, censoring or follow-up
    assert checklist["23a"]["where"] == "performance"
    assert "age band" in checklist["14"]["answer"] and checklist["14"]["where"] == "subgroups"
    assert checklist["16"]["where"] == "drift"
    assert checklist["17"]["answer"] == "manual"  # ethics: only people can answer
    assert {c["where"] for c in checklist.values()} <= SECTIONS | {""}


def test_metrics_as_a_list_of_dicts_are_accepted():
    context = {
        "model_card": {},
        "metrics": [
            {
                "phase": "acute",
                "model": "xgboost",
                "metric": "auroc",
                "estimate": 0.7,
                "lo": 0.6,
                "hi": 0.8,
            }
        ],
    }
    checklist = {c["item"]: c for c in tripod_checklist(context)}
    assert checklist["12e"]["answer"].startswith("auroc")
    assert pl.DataFrame(context["metrics"]).height == 1


FLOW = {
    "patients_in_data": 120,
    "patients_with_outcome": 120,
    "patients_with_landmark": 118,
    "follow_up": {"patients": 120, "relapsed": 40, "censored_without_relapse": 80, "median_days": 200.0,
                  "q1_days": 90.0, "q3_days": 400.0, "max_days": 729},
    "phases": [{"phase": "acute", "patients_at_risk": 118, "rows": 236, "censored_rows": 5, "censored_patients": 4,
                "analysed_patients": 116, "event_patients": 12, "event_rows": 30}],
}


def _item(context: dict, item: str) -> dict:
    return {c["item"]: c for c in tripod_checklist(context)}[item]


def test_participant_flow_needs_censoring_counts_and_follow_up_to_be_answered():
    counts = [{"phase": "acute", "patients": 116, "event_patients": 12, "rows": 230, "events": 30}]
    assert _item({"model_card": {"events_per_phase": counts}}, "20a")["status"] == "partial"
    answered = _item({"model_card": {"events_per_phase": counts, "participant_flow": FLOW}}, "20a")
    assert answered["status"] == "answered"
    assert "4 censored" in answered["answer"] and "median 200" in answered["answer"]
    without_follow_up = {**FLOW, "follow_up": {"patients": 120}}
    partial = _item({"model_card": {"events_per_phase": counts, "participant_flow": without_follow_up}}, "20a")
    assert partial["status"] == "partial"


def test_sample_size_from_counts_alone_stays_partial():
    counts = [{"phase": "acute", "patients": 116, "event_patients": 12, "rows": 230, "events": 30}]
    item = _item({"model_card": {"events_per_phase": counts}}, "10")
    assert item["status"] == "partial" and "No sample-size reasoning" in item["answer"]
    sizes = phase_sample_sizes([{**counts[0], "model": "xgboost"}], n_features=91)
    item = _item({"model_card": {"events_per_phase": counts}, "sample_size": sizes}, "10")
    assert item["status"] == "answered" and "Riley" in item["answer"] and "not met" in item["answer"]


def test_dates_need_accrual_and_end_of_follow_up():
    landmarks = {"training_data": {"date_start": "2022-01-03", "date_end": "2024-12-30"}}
    assert _item({"model_card": landmarks}, "5b")["status"] == "partial"
    full = {"training_data": {**landmarks["training_data"], "accrual_start": "2022-01-01",
                              "accrual_end": "2023-06-30", "follow_up_end": "2024-12-31"}}
    item = _item({"model_card": full}, "5b")
    assert item["status"] == "answered" and "2023-06-30" in item["answer"]


def test_calibration_does_not_answer_updating_and_a_psi_table_is_partial(sample_context):
    assert _item(sample_context, "12f")["status"] == "manual"
    for item in ("16", "20c"):
        assert _item(sample_context, item)["status"] == "partial"


def test_performance_without_intervals_is_partial():
    metrics = [{"phase": "acute", "model": "xgboost", "metric": "auroc", "estimate": 0.7, "lo": None, "hi": None}]
    item = _item({"model_card": {}, "metrics": metrics}, "23a")
    assert item["status"] == "partial" and "confidence intervals" in item["answer"]


def test_a_recalibrated_version_answers_updating_with_its_parent_and_methods():
    lineage = {"parent_version": "1", "data_fingerprint": "ab" * 32,
               "methods": {"acute": "intercept_slope", "early": "none", "maintenance": "intercept"},
               "layers": {"acute": {"method": "intercept_slope", "a": 0.787, "b": 1.165},
                          "maintenance": {"method": "intercept", "a": 0.4, "b": 1.0}}}
    item = _item({"model_card": {"model_version": "2", "recalibration": lineage}}, "12f")
    assert item["status"] == "answered"
    text = item["answer"]
    assert "Version 2" in text and "version 1" in text and "abababababab" in text
    assert "acute: intercept and slope (logit(risk') = +0.787 + 1.165" in text
    assert "early: none" in text and "maintenance: intercept (logit(risk') = +0.400" in text
    assert _item({"model_card": {"model_version": "1"}}, "12f")["status"] == "manual"


def test_a_version_recalibrated_twice_names_every_step_and_the_composed_layer():
    first = {"parent_version": "2", "data_fingerprint": "d" * 64, "methods": {"acute": "intercept"}}
    lineage = {"parent_version": "3", "data_fingerprint": "e" * 64, "methods": {"acute": "none", "early": "none"},
               "layers": {"acute": {"method": "intercept", "a": 0.593, "b": 1.0}}, "earlier": first}
    text = _item({"model_card": {"model_version": "4", "recalibration": lineage}}, "12f")["answer"]
    assert "Version 4 is a site recalibration of version 3" in text and "eeeeeeeeeeee" in text
    assert "acute: none, giving with the earlier recalibration(s) intercept (logit(risk') = +0.593 + 1.000" in text
    assert "early: none, giving with the earlier recalibration(s) none." in text
    assert "latest first: version 2 on local data dddddddddddd" in text
