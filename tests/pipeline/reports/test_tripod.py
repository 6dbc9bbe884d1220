import polars as pl
import pytest

from pipeline.reports.analysis import tripod_checklist

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
    assert all(c["answer"] == "manual" and c["where"] == "" for c in checklist)
    assert all(set(c) == {"item", "topic", "answer", "where"} for c in checklist)


def test_answers_come_from_the_context_with_their_section(sample_context):
    checklist = {c["item"]: c for c in tripod_checklist(sample_context)}
    assert checklist["11"]["answer"] == sample_context["model_card"]["missing_data"]
    assert "30" in checklist["8a"]["answer"]
    assert "acute: 700 patients" in checklist["20a"]["answer"]
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
