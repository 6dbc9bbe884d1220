"""The reason policy's pieces: concepts, eligibility, representatives and column-wise sentences."""

import numpy as np
import pytest

from features.catalog import FeatureInfo
from features.catalog_generated import one_hot_entries
from features.reasons import choose, compile_template, reason_policy, render, render_values, representatives

ENTRIES = [
    *one_hot_entries("housing", "Housing", ("stable", "unstable"), "demographic"),
    FeatureInfo("visits", "therapy", "", "Visits", {"one": "1 visit", "any": "{value:.0f} visits"}, "modifiable"),
    FeatureInfo("age_days", "bdnf", "days", "Sample age", "Sample is {value:.0f} days old", "measurement_age"),
    FeatureInfo("ethnicity_x", "demographic", "0/1", "Ethnicity is x", "Ethnicity: x", "sensitive", "ethnicity"),
]
NAMES = tuple(e.name for e in ENTRIES)
POLICY = reason_policy(NAMES, {e.name: e for e in ENTRIES})


def test_concepts_and_what_may_be_shown():
    assert POLICY.concepts == ("housing", "visits", "age_days", "ethnicity")
    assert POLICY.shown.tolist() == [True, True, False, False]
    assert POLICY.one_hot.tolist() == [True, True, False, False, False]


def test_one_hot_levels_sum_to_the_variable_and_hidden_kinds_never_show():
    shap = np.array([[0.3, 0.2, 0.1, -0.9, 0.8], [-0.3, -0.2, 0.4, -0.1, 0.0]])
    choice = choose(POLICY, shap, np.zeros(2), 3, 0.005)
    np.testing.assert_allclose(choice.concept_shap[:, 0], [0.5, -0.5])
    assert choice.reasons.tolist() == [[0, 1, -1], [1, -1, -1]]
    assert choice.protective.tolist() == [-1, 0]  # the measurement age (-0.9) is never protective


def test_the_minimum_effect_is_on_the_probability_scale():
    shap = np.array([[0.0, 0.0, 0.03, 0.0, 0.0]])  # at margin 0: effect 0.0075
    assert choose(POLICY, shap, np.zeros(1), 1, 0.005).reasons.tolist() == [[1]]
    assert choose(POLICY, shap, np.zeros(1), 1, 0.01).reasons.tolist() == [[-1]]
    assert choose(POLICY, shap, np.array([-6.0]), 1, 0.005).reasons.tolist() == [[-1]]  # tiny at low risk


def test_a_missing_group_is_never_chosen():
    shap = np.array([[0.0, 0.0, 0.5, 0.0, 0.0]])
    assert choose(POLICY, shap, np.zeros(1), 1, 0.0, unavailable=("therapy",)).reasons.tolist() == [[-1]]


def test_a_feature_whose_input_is_absent_is_never_chosen_nor_its_concept():
    shap = np.array([[0.5, 0.0, 0.1, 0.0, 0.0]])
    assert choose(POLICY, shap, np.zeros(1), 2, 0.0).reasons.tolist() == [[0, 1]]
    # housing_stable's input is absent: the housing concept goes, whatever its other level holds
    assert choose(POLICY, shap, np.zeros(1), 2, 0.0, unavailable=("housing_stable",)).reasons.tolist() == [[1, -1]]


def test_the_patients_level_speaks_for_a_categorical():
    X = np.array([[0.0, 1.0, 3, 1, 0], [0.0, 0.0, 1, 1, 0], [np.nan, np.nan, 1, 1, 0]])
    shap = np.array([[0.4, 0.1, 0, 0, 0], [0.4, 0.1, 0, 0, 0], [0.4, 0.1, 0, 0, 0]])
    feature = representatives(POLICY, np.array([[0], [0], [0]]), shap, X)[:, 0]
    assert feature.tolist() == [1, 0, 0]
    assert render(POLICY, feature, X).to_list() == ["Housing: unstable", "Housing: another category",
                                                     "Housing: not recorded"]


def test_sentences_are_rendered_per_feature_and_variant():
    X = np.array([[0, 0, 1.0, 0, 0], [0, 0, 3.4, 0, 0], [0, 0, np.nan, 0, 0], [0, 0, 0, 0, 0]])
    assert render(POLICY, np.array([2, 2, 2, -1]), X).to_list() == ["1 visit", "3 visits", "Visits: not recorded", None]


@pytest.mark.parametrize(
    ("template", "value", "text"),
    [
        ("{value:g}", 2.50, "2.5"),
        ("{value:g}", 100.0, "100"),
        ("{value:g}", -0.001, "0"),
        ("{value:.1f}", 3.0, "3.0"),
        ("{abs:.0f}%", -31.6, "32%"),
        ("{pct:.0f}%", 0.389, "39%"),
    ],
)
def test_number_formats(template, value, text):
    compiled = compile_template(FeatureInfo("x", "g", "", "X", template))
    assert render_values(compiled, np.array([value]), {})[0] == text


def test_unknown_fields_and_formats_are_refused():
    with pytest.raises(ValueError, match="field 'name'"):
        compile_template(FeatureInfo("x", "g", "", "X", "{name}"))
    with pytest.raises(ValueError, match="format '.3e'"):
        compile_template(FeatureInfo("x", "g", "", "X", "{value:.3e}"))
