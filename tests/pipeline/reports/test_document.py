"""report.json: the document follows docs/report.schema.json and carries the report's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pipeline.reports.document import report_document
from tests.schema_check import errors

# shares the session fixture's one expensive build with the other tests of its group
pytestmark = pytest.mark.xdist_group("report")

SCHEMA = json.loads((Path(__file__).parents[3] / "docs" / "report.schema.json").read_text())


@pytest.fixture(scope="module")
def document(sample_context) -> dict:
    context = dict(sample_context)
    card = dict(context["model_card"])
    card["fallback_phases"] = [{"phase": "maintenance", "rate": 0.012, "reason": "4 patients with an event"}]
    card["events_per_phase"] = [
        {**r, "event_patients": 20, "model": "constant_rate" if r["phase"] == "maintenance" else "xgboost"}
        for r in card["events_per_phase"]
    ]
    context["model_card"] = card
    return json.loads(json.dumps(report_document(context), allow_nan=False))


def test_the_document_validates_against_the_schema(document):
    assert errors(document, SCHEMA) == []


def test_the_checker_catches_what_the_schema_forbids(document):
    broken = json.loads(json.dumps(document))
    broken["drift"][0]["flag"] = "major shift"
    broken["subgroups"][0].pop("n_patients")
    broken["tripod"][0]["status"] = "done"
    found = errors(broken, SCHEMA)
    assert any("drift[0].flag" in e for e in found)
    assert any("subgroups[0]: missing 'n_patients'" in e for e in found)
    assert any("tripod[0].status" in e for e in found)


def test_numbers_are_those_of_the_context(document, sample_context):
    subgroups = sample_context["subgroups"]
    assert len(document["subgroups"]) == subgroups.height
    first = subgroups.row(0, named=True)
    assert document["subgroups"][0]["oe_ratio"] == pytest.approx(first["oe_ratio"])
    assert document["subgroups"][0]["n_patients"] == first["n_patients"]
    drift = sample_context["drift"]
    assert len(document["drift"]) == drift.height
    assert sum(r["flag"] == "major" for r in document["drift"]) == drift.filter(pl.col("flag") == "major").height
    acute = next(p for p in document["phases"] if p["phase"] == "acute")
    assert acute["metrics"]["auroc"] == {"estimate": 0.7312, "lo": 0.7015, "hi": 0.7598, "in_sample": False}
    assert [p["id"] for p in document["patients"]] == [p["id"] for p in sample_context["patients"]]
    assert all(p["as_of"] == "2025-05-31" for p in document["patients"])
    assert {t["status"] for t in document["tripod"]} <= {"answered", "partial", "manual"}


def test_a_fallback_phase_is_marked_and_left_out_of_pooled(document):
    maintenance = next(p for p in document["phases"] if p["phase"] == "maintenance")
    assert maintenance["model_kind"] == "constant_rate" and maintenance["in_sample"]
    assert maintenance["fallback_rate"] == 0.012
    assert "maintenance" not in document["pooled"]["phases_included"]


def test_an_evaluation_run_is_carried_and_validates(sample_context):
    context = dict(sample_context)
    context["evaluation"] = {
        "run_id": "a" * 32,
        "tags": {"validation": "external", "model_name": "relapse-risk", "model_version": "3",
                 "data_fingerprint": "f" * 64},
        "metrics": {"acute": {"auroc": [0.81, 0.77, 0.85], "oe_ratio": [1.62, 1.48, 1.77]},
                    "pooled": {"auroc": [0.79, 0.76, 0.82], "ece": [float("nan"), None, None]}},
        "figures": {"acute": ["data:image/png;base64,AAAA"]},
    }
    document = json.loads(json.dumps(report_document(context), allow_nan=False))
    assert errors(document, SCHEMA) == []
    evaluation = document["evaluation"]
    assert evaluation["run_id"] == "a" * 32 and evaluation["model_version"] == "3"
    assert evaluation["phases"]["acute"]["oe_ratio"] == {"estimate": 1.62, "lo": 1.48, "hi": 1.77}
    assert evaluation["phases"]["pooled"]["ece"] == {"estimate": None, "lo": None, "hi": None}
    assert "figures" not in evaluation


def test_without_an_evaluation_run_the_section_is_null(document):
    assert document["evaluation"] is None


def test_a_phase_without_training_rows_is_no_model_not_xgboost():
    from pipeline.reports.document import _phases

    card = {"phases": [{"name": "early"}, {"name": "late"}],
            "events_per_phase": [{"phase": "early", "model": "xgboost", "patients": 9},
                                 {"phase": "late", "model": "no_model", "patients": 0}]}
    kinds = {p["phase"]: p["model_kind"] for p in _phases({"model_card": card}, None)}
    assert kinds == {"early": "xgboost", "late": "no_model"}
