import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline.reports.analysis import FLAG, OK, TOO_SMALL, decision_curve, subgroup_table


def test_decision_curve_matches_a_hand_computed_weighted_case():
    y = [1, 1, 0, 0, 1]
    p = [0.8, 0.4, 0.6, 0.2, 0.1]
    w = [1.0, 2.0, 1.0, 1.0, 1.0]  # total weight 6, weighted events 4
    curve = decision_curve(y, p, w, thresholds=[0.3, 0.5])
    # pt = 0.3: treated rows 0, 1, 2 -> TP = 3/6, FP = 1/6, odds 3/7
    # pt = 0.5: treated rows 0, 2    -> TP = 1/6, FP = 1/6, odds 1
    expected = pl.DataFrame(
        {
            "threshold": [0.3, 0.5],
            "net_benefit_model": [3 / 6 - 1 / 6 * 3 / 7, 1 / 6 - 1 / 6],
            "net_benefit_treat_all": [4 / 6 - 2 / 6 * 3 / 7, 4 / 6 - 2 / 6],
            "net_benefit_treat_none": [0.0, 0.0],
        }
    )
    assert_frame_equal(curve, expected)


def test_decision_curve_treats_risk_equal_to_the_threshold_and_defaults_to_unit_weights():
    curve = decision_curve([1, 0], [0.2, 0.1], None, thresholds=[0.2])
    assert curve["net_benefit_model"][0] == pytest.approx(0.5)
    default = decision_curve([1, 0, 1], [0.5, 0.3, 0.05])
    assert default["threshold"].to_list()[:3] == [0.01, 0.02, 0.03]
    assert default["threshold"].max() == pytest.approx(0.60)
    assert default.height == 60


def test_decision_curve_rejects_thresholds_outside_zero_one():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        decision_curve([1], [0.5], None, thresholds=[1.0])


def make_oof(n: int = 2000, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    risk = rng.uniform(0.02, 0.6, n)
    label = (rng.random(n) < risk).astype(np.int8)
    age = rng.uniform(13, 60, n)
    age[:25] = np.nan  # NaN and null ages both count as missing
    decile = rng.integers(1, 11, n).tolist()

    def with_nulls(values: list, fraction: float) -> list:
        return [None if u < fraction else v for v, u in zip(values, rng.random(n), strict=True)]

    return pl.DataFrame(
        {
            "phase": rng.choice(["acute", "early"], n).tolist(),
            "label": label,
            "ipcw_weight": rng.uniform(1.0, 1.5, n),
            "risk": risk,
            "age_at_intake": with_nulls(age.tolist(), 0.02),
            "sex": with_nulls(
                rng.choice(["female", "male", "other"], n, p=[0.47, 0.47, 0.06]).tolist(), 0.05
            ),
            "polysubstance": with_nulls((rng.random(n) < 0.3).tolist(), 0.1),
            "deprivation_decile": with_nulls(decile, 0.1),
            "ethnicity": with_nulls(rng.choice(["a", "b", "c"], n).tolist(), 0.05),
        }
    )


def test_subgroup_counts_add_up_to_each_phase_total():
    oof = make_oof()
    table = subgroup_table(oof)
    totals = oof.group_by("phase").len()
    sums = table.group_by("phase", "attribute").agg(pl.col("n").sum(), pl.col("events").sum())
    checked = sums.join(totals, on="phase")
    assert (checked["n"] == checked["len"]).all()
    events = oof.group_by("phase").agg(pl.col("label").cast(pl.Int64).sum().alias("phase_events"))
    checked = sums.join(events, on="phase")
    assert (checked["events"] == checked["phase_events"]).all()
    assert set(table["attribute"]) == {
        "all",
        "age band",
        "sex",
        "polysubstance",
        "deprivation quintile",
        "ethnicity",
    }
    assert "missing" in table.filter(pl.col("attribute") == "sex")["group"].to_list()
    assert "missing" in table.filter(pl.col("attribute") == "age band")["group"].to_list()


def test_censored_rows_are_left_out_of_every_count():
    oof = make_oof(600).with_columns(
        label=pl.when(pl.int_range(pl.len()) < 100).then(None).otherwise(pl.col("label"))
    )
    table = subgroup_table(oof)
    assert table.filter(pl.col("attribute") == "all")["n"].sum() == 500


def test_age_bands_deprivation_quintiles_and_polysubstance_labels():
    ages = [12.0, 17.9, 18.0, 24.99, 25.0, 30.0, 30.1, 65.0]
    oof = pl.DataFrame(
        {
            "phase": ["acute"] * 8,
            "label": [0, 1] * 4,
            "ipcw_weight": [1.0] * 8,
            "risk": [0.3] * 8,
            "age_at_intake": ages,
            "sex": ["female"] * 8,
            "polysubstance": [True, False, None, True, True, True, True, True],
            "deprivation_decile": [1, 2, 3, 4, 5, 6, 9, 10],
        }
    )
    table = subgroup_table(oof)
    groups = {
        t["attribute"][0]: dict(zip(t["group"], t["n"], strict=True))
        for t in table.partition_by("attribute")
    }
    assert groups["age band"] == {"under 18": 2, "18–24": 2, "25–30": 2, "over 30": 2}
    assert groups["deprivation quintile"] == {
        "Q1 (most deprived)": 2,
        "Q2": 2,
        "Q3": 2,
        "Q5 (least deprived)": 2,
    }
    assert groups["polysubstance"] == {"no": 1, "yes": 6, "missing": 1}
    assert "ethnicity" not in groups  # absent column: no attribute


def test_optional_attributes_without_any_value_are_left_out():
    oof = make_oof(400).with_columns(polysubstance=pl.lit(None, dtype=pl.Boolean)).drop("ethnicity")
    assert {"polysubstance", "ethnicity"}.isdisjoint(set(subgroup_table(oof)["attribute"]))


def test_small_groups_are_marked_too_small_and_get_no_auroc():
    table = subgroup_table(make_oof(), min_n=100, min_events=10)
    small = table.filter((pl.col("n") < 100) | (pl.col("events") < 10))
    assert small.height > 0
    assert (small["status"] == TOO_SMALL).all()
    assert small["auroc"].null_count() == small.height
    judged = table.filter((pl.col("n") >= 100) & (pl.col("events") >= 10))
    assert judged["status"].is_in([OK, FLAG]).all()
    assert judged["auroc"].null_count() == 0


def test_a_large_calibration_gap_or_auroc_drop_is_flagged():
    rng = np.random.default_rng(3)
    n = 3000
    risk = rng.uniform(0.05, 0.6, n)
    label = (rng.random(n) < risk).astype(np.int8)
    sex = rng.choice(["female", "male", "other"], n, p=[0.4, 0.4, 0.2])
    shown = risk.copy()
    shown[sex == "female"] = np.clip(risk[sex == "female"] + 0.25, 0, 1)  # overpredicts
    other = sex == "other"
    shown[other] = rng.permutation(risk[other])  # no discrimination, same mean
    oof = pl.DataFrame(
        {
            "phase": "acute",
            "label": label,
            "ipcw_weight": 1.0,
            "risk": shown,
            "age_at_intake": 25.0,
            "sex": sex,
        }
    )
    table = subgroup_table(oof).filter(pl.col("attribute") == "sex")
    status = dict(zip(table["group"], table["status"], strict=True))
    assert status == {"female": FLAG, "male": OK, "other": FLAG}
    female = table.filter(pl.col("group") == "female").row(0, named=True)
    assert female["calibration_in_the_large"] == pytest.approx(
        female["observed"] - female["mean_predicted"]
    )
    assert female["calibration_in_the_large"] < -0.10
    assert "AUROC" in table.filter(pl.col("group") == "other")["note"][0]


def test_subgroup_table_names_missing_columns():
    with pytest.raises(ValueError, match="ipcw_weight"):
        subgroup_table(pl.DataFrame({"phase": ["a"], "label": [1], "risk": [0.2]}))
