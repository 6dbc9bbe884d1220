import re

import polars as pl
import pytest

from pipeline.reports.render import defang, find_external_references, render_report

SECTIONS = ["model-card", "tripod", "performance", "subgroups", "explanations", "drift", "patients"]


# shares the session fixture's one build with the other tests of its group; figures are built,
# not rasterised (conftest.undrawn_figures)
pytestmark = [pytest.mark.xdist_group("report"), pytest.mark.usefixtures("undrawn_figures")]


def test_every_section_has_its_stable_id(sample_html):
    for section in SECTIONS:
        assert f'<section id="{section}">' in sample_html


def test_synthetic_banner_and_decision_support_statement(sample_html, sample_context):
    assert 'id="synthetic-notice"' in sample_html and "SYNTHETIC DATA" in sample_html
    assert "Decision support, never a sole decision maker" in sample_html
    real = render_report({**sample_context, "synthetic": False, "patients": None, "shap": None})
    assert 'id="synthetic-notice"' not in real
    assert "Decision support, never a sole decision maker" in real


def test_metrics_appear_with_their_confidence_intervals(sample_html, sample_context):
    for row in sample_context["metrics"].iter_rows(named=True):
        assert f"{row['estimate']:.3f} ({row['lo']:.3f}–{row['hi']:.3f})" in sample_html
    assert "0.731 (0.702–0.760)" in sample_html  # acute xgboost AUROC, written out once


def test_subgroup_numbers_and_statuses_appear(sample_html, sample_context):
    table = sample_context["subgroups"]
    assert "too small to judge" in sample_html
    for row in table.filter(pl.col("phase") == "acute").iter_rows(named=True):
        assert f'<td class="num">{row["n_patients"]}</td>' in sample_html
    all_acute = table.filter((pl.col("phase") == "acute") & (pl.col("attribute") == "all")).row(
        0, named=True
    )
    assert f"{all_acute['auroc']:.3f} ({all_acute['auroc_lo']:.3f}–{all_acute['auroc_hi']:.3f})" in sample_html
    assert f"{all_acute['oe_ratio']:.2f} ({all_acute['oe_ratio_lo']:.2f}–{all_acute['oe_ratio_hi']:.2f})" in sample_html


def test_drift_patients_and_model_card_content(sample_html, sample_context):
    for patient in sample_context["patients"]:
        assert f"Patient {patient['id']}" in sample_html
        for reason in patient["reasons"]:
            assert reason in sample_html
    assert "Feature drift per phase" in sample_html and "Values outside physiological ranges" in sample_html
    major = sample_context["drift"].filter(pl.col("flag") == "major")
    assert major.height and f"<code>{major['feature'][0]}</code>" in sample_html
    card = sample_context["model_card"]
    for text in (card["intended_use"], card["calibration"], card["training_data"]["fingerprint"]):
        assert text in sample_html
    assert "development key" in sample_html


def test_report_loads_nothing_from_anywhere(sample_html):
    for needle in ("http://", "https://", 'src="//', "<script", "<link", "@import", "@font-face"):
        assert needle not in sample_html.lower()
    assert find_external_references(sample_html) == []
    images = re.findall(r'<img [^>]*src="([^"]*)"', sample_html)
    assert len(images) >= 4 * 4 + 3  # calibration, decision, bar, beeswarm per phase + waterfalls
    assert all(src.startswith("data:image/png;base64,") for src in images)


def test_urls_in_context_text_are_defanged(sample_context):
    card = {
        **sample_context["model_card"],
        "intended_use": "See https://example.org/card for more.",
    }
    html = render_report({"model_card": card})
    assert "https://" not in html and "https[:]//example.org/card" in html
    assert defang("data:image/png;base64,AAAA") == "data:image/png;base64,AAAA"


def test_text_from_the_context_is_escaped(sample_context):
    card = {**sample_context["model_card"], "intended_use": '<img src="x" onerror="alert(1)">'}
    html = render_report({"model_card": card})
    assert '<img src="x"' not in html and "&lt;img" in html
    assert find_external_references(html) == []


def test_a_minimal_context_renders_every_section_with_placeholders():
    html = render_report({"model_card": {"model_name": "relapse-risk"}})
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    assert "No scores were given" in html and "No per-patient pages" in html


def test_missing_model_card_is_a_clear_error():
    with pytest.raises(ValueError, match="model_card"):
        render_report({})


def test_external_reference_finder_catches_each_kind():
    html = (
        '<link rel="stylesheet" href="https://cdn.example/x.css"><img src="//h/x.png">'
        '<script src="a.js"></script><div style="background: url(http://x/y.png)"></div>'
        '<style>@import "f.css"; body { background: url(data:image/png;base64,AA) }</style>'
        '<a href="#tripod">ok</a><img src="data:image/png;base64,AA">'
    )
    found = find_external_references(html)
    assert len(found) == 5, found


def test_metrics_without_an_interval_show_the_estimate_alone():
    metrics = [
        {
            "phase": "acute",
            "model": "xgboost",
            "metric": "auroc",
            "estimate": 0.7123,
            "lo": float("nan"),
            "hi": float("nan"),
        },
        {
            "phase": "acute",
            "model": "logistic",
            "metric": "auroc",
            "estimate": 0.6543,
            "lo": None,
            "hi": None,
        },
    ]
    html = render_report({"model_card": {}, "metrics": metrics})
    assert '<td class="num">0.712</td>' in html and '<td class="num">0.654</td>' in html


def test_a_recalibrated_version_says_its_performance_figures_are_its_parents():
    lineage = {"parent_version": "2", "data_fingerprint": "abcdef0123456789", "methods": {"acute": "intercept"}}
    html = render_report({"model_card": {"model_name": "relapse-risk", "model_version": "4", "recalibration": lineage}})
    note = re.search(r'<p class="note" id="performance-recalibrated">(.*?)</p>', html, re.S).group(1)
    text = " ".join(note.split())
    assert "Version 4 is a site recalibration of version 2 on local data abcdef012345" in text
    assert "version 2's out-of-fold estimates on its own training cohort, before that recalibration" in text
    assert "--evaluation RUN" in text
    plain = render_report({"model_card": {"model_name": "relapse-risk", "model_version": "2"}})
    assert 'id="performance-recalibrated"' not in plain


def test_an_evaluation_section_lists_phases_in_the_models_order_then_pooled():
    metrics = {name: {"auroc": (0.8, 0.7, 0.9)} for name in ("acute", "consolidation", "early", "pooled")}
    context = {"model_card": {"model_name": "relapse-risk",
                              "phases": [{"name": n, "start_day": i, "end_day": i} for i, n in
                                         enumerate(("acute", "early", "consolidation"))]},
               "evaluation": {"run_id": "e1", "tags": {}, "metrics": metrics, "figures": {}}}
    html = render_report(context)
    section = html[html.index("From evaluation run e1"):]
    positions = [section.index(f"<td>{name}</td>") for name in ("acute", "early", "consolidation", "pooled")]
    assert positions == sorted(positions)
