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


def make_oof(n: int = 2000, seed: int = 0, rows_per_patient: int = 4) -> pl.DataFrame:
    """Out-of-fold rows of n // rows_per_patient patients; attributes are per patient."""
    rng = np.random.default_rng(seed)
    m = n // rows_per_patient
    risk = rng.uniform(0.02, 0.6, n)
    label = (rng.random(n) < risk).astype(np.int8)
    age = rng.uniform(13, 60, m)
    age[:6] = np.nan  # NaN and null ages both count as missing

    def per_patient(values: list, fraction: float) -> list:
        values = [None if u < fraction else v for v, u in zip(values, rng.random(m), strict=True)]
        return [values[i // rows_per_patient] for i in range(n)]

    return pl.DataFrame(
        {
            "phase": per_patient(rng.choice(["acute", "early"], m).tolist(), 0.0),
            "patient_id": [f"P{i // rows_per_patient:05d}" for i in range(n)],
            "label": label,
            "ipcw_weight": rng.uniform(1.0, 1.5, n),
            "risk": risk,
            "age_at_intake": per_patient(age.tolist(), 0.02),
            "sex": per_patient(rng.choice(["female", "male", "other"], m, p=[0.47, 0.47, 0.06]).tolist(), 0.05),
            "polysubstance": per_patient((rng.random(m) < 0.3).tolist(), 0.1),
            "deprivation_decile": per_patient(rng.integers(1, 11, m).tolist(), 0.1),
            "ethnicity": per_patient(rng.choice(["a", "b", "c"], m).tolist(), 0.05),
        }
    )


def test_subgroup_counts_are_patients_and_add_up_to_each_phase_total():
    oof = make_oof()
    table = subgroup_table(oof, n_boot=20)
    totals = oof.group_by("phase").agg(
        pl.col("patient_id").n_unique().alias("patients"),
        pl.col("patient_id").filter(pl.col("label") == 1).n_unique().alias("event_patients"),
        pl.len().alias("rows"),
    )
    sums = table.group_by("phase", "attribute").agg(pl.col("n_patients", "n_event_patients", "n_rows").sum())
    checked = sums.join(totals, on="phase")
    assert (checked["n_patients"] == checked["patients"]).all()
    assert (checked["n_event_patients"] == checked["event_patients"]).all()
    assert (checked["n_rows"] == checked["rows"]).all()
    assert set(table["attribute"]) == {"all", "age band", "sex", "polysubstance", "deprivation quintile", "ethnicity"}
    assert "missing" in table.filter(pl.col("attribute") == "sex")["level"].to_list()
    assert "missing" in table.filter(pl.col("attribute") == "age band")["level"].to_list()


def test_subgroup_counts_match_a_hand_count_of_patients():
    # P1: 5 rows, relapse seen in 3 of them; P2: 4 rows, none; P3: 2 rows, one event row (female);
    # P4: 6 rows, none (male); P5: 1 row with an event (male).
    rows = {"P1": (5, 3, "female"), "P2": (4, 0, "female"), "P3": (2, 1, "female"), "P4": (6, 0, "male"),
            "P5": (1, 1, "male")}
    ids, labels, sexes = [], [], []
    for pid, (n, events, sex) in rows.items():
        ids += [pid] * n
        labels += [0] * (n - events) + [1] * events
        sexes += [sex] * n
    oof = pl.DataFrame({"phase": "early", "patient_id": ids, "label": labels, "ipcw_weight": 1.0, "risk": 0.2,
                        "age_at_intake": 20.0, "sex": sexes})
    table = subgroup_table(oof, n_boot=10).filter(pl.col("attribute").is_in(["all", "sex"]))
    counts = {r["level"]: (r["n_patients"], r["n_event_patients"], r["n_rows"]) for r in table.to_dicts()}
    assert counts == {"all": (5, 3, 18), "female": (3, 2, 11), "male": (2, 1, 7)}


def test_three_patients_with_many_rows_are_too_small_to_judge():
    # 3 patients × 60 rows with 20 event rows each: "n ≥ 100, events ≥ 10" in rows, 3 people in truth
    n = 180
    oof = pl.DataFrame({"phase": "maintenance", "patient_id": [f"P{i // 60}" for i in range(n)],
                        "label": [int(i % 3 == 0) for i in range(n)], "ipcw_weight": 1.0,
                        "risk": np.linspace(0.1, 0.5, n), "sex": "female"})
    table = subgroup_table(oof, n_boot=10)
    assert (table["flag"] == TOO_SMALL).all()
    assert table["auroc"].null_count() == table.height and table["oe_ratio"].null_count() == table.height
    assert "3 event patients" in table["note"][0]


def test_censored_rows_are_left_out_of_every_count():
    oof = make_oof(600).with_columns(
        label=pl.when(pl.int_range(pl.len()) < 100).then(None).otherwise(pl.col("label"))
    )
    table = subgroup_table(oof, n_boot=10)
    assert table.filter(pl.col("attribute") == "all")["n_rows"].sum() == 500
    assert table.filter(pl.col("attribute") == "all")["n_patients"].sum() == 125  # 25 patients wholly censored


def test_age_bands_deprivation_quintiles_and_polysubstance_labels():
    ages = [12.0, 17.9, 18.0, 24.99, 25.0, 30.0, 30.1, 65.0]
    oof = pl.DataFrame(
        {
            "phase": ["acute"] * 8,
            "patient_id": [f"P{i}" for i in range(8)],
            "label": [0, 1] * 4,
            "ipcw_weight": [1.0] * 8,
            "risk": [0.3] * 8,
            "age_at_intake": ages,
            "sex": ["female"] * 8,
            "polysubstance": [True, False, None, True, True, True, True, True],
            "deprivation_decile": [1, 2, 3, 4, 5, 6, 9, 10],
        }
    )
    table = subgroup_table(oof, n_boot=0)
    groups = {
        t["attribute"][0]: dict(zip(t["level"], t["n_patients"], strict=True))
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
    assert {"polysubstance", "ethnicity"}.isdisjoint(set(subgroup_table(oof, n_boot=0)["attribute"]))


def test_small_groups_are_judged_by_event_patients_and_get_no_metrics():
    table = subgroup_table(make_oof(), min_event_patients=10, n_boot=20)
    small = table.filter(
        (pl.col("n_event_patients") < 10) | (pl.col("n_patients") - pl.col("n_event_patients") < 10)
    )
    assert small.height > 0
    assert (small["flag"] == TOO_SMALL).all()
    assert small["auroc"].null_count() == small.height
    judged = table.filter(pl.col("flag") != TOO_SMALL)
    assert judged["flag"].is_in([OK, FLAG]).all()
    assert judged["auroc"].null_count() == 0 and judged["oe_ratio_lo"].null_count() == 0
    inside = judged.filter(pl.col("oe_ratio").is_between(pl.col("oe_ratio_lo"), pl.col("oe_ratio_hi")))
    assert inside.height == judged.height


def _flag_case(low: float, high: float) -> pl.DataFrame:
    rng = np.random.default_rng(3)
    n_patients, per = 1500, 4
    n = n_patients * per
    risk = rng.uniform(low, high, n)
    label = (rng.random(n) < risk).astype(np.int8)
    sex = np.repeat(rng.choice(["female", "male", "other"], n_patients, p=[0.4, 0.4, 0.2]), per)
    shown = risk.copy()
    shown[sex == "female"] = risk[sex == "female"] / 3  # threefold under-prediction, gap < 0.04
    other = sex == "other"
    shown[other] = rng.permutation(risk[other])  # no discrimination, same mean
    oof = pl.DataFrame(
        {
            "phase": "acute",
            "patient_id": [f"P{i // per}" for i in range(n)],
            "label": label,
            "ipcw_weight": 1.0,
            "risk": shown,
            "age_at_intake": 25.0,
            "sex": sex,
        }
    )
    return subgroup_table(oof, n_boot=60, seed=1).filter(pl.col("attribute") == "sex")


def test_a_threefold_under_prediction_at_low_rates_is_flagged_from_the_oe_interval():
    table = _flag_case(0.01, 0.06)  # low event rates, where an absolute 0.10 gap never fires
    flag = dict(zip(table["level"], table["flag"], strict=True))
    assert flag["female"] == FLAG and flag["male"] == OK
    female = table.filter(pl.col("level") == "female").row(0, named=True)
    assert female["observed"] - female["mean_predicted"] < 0.10  # the old absolute rule said "ok"
    assert female["oe_ratio_lo"] > 1 and "more events than predicted" in female["note"]


def test_an_auroc_interval_below_the_phase_auroc_within_its_groups_is_flagged():
    table = _flag_case(0.02, 0.6)
    other = table.filter(pl.col("level") == "other").row(0, named=True)
    phase_auroc = table.filter(pl.col("level") == "male")["auroc"][0]
    assert other["flag"] == FLAG and other["auroc_hi"] < phase_auroc
    assert "AUROC" in other["note"] and "within sex groups" in other["note"]


def test_groups_of_a_predictive_attribute_are_not_flagged_for_the_pairs_across_them():
    # polysubstance use triples the risk and the model knows it: across-group pairs are easy, so the
    # phase's AUROC is above both groups' AUROCs although the model ranks each group equally well
    rng = np.random.default_rng(5)
    n_patients, per = 3000, 4
    poly = np.repeat(rng.random(n_patients) < 0.5, per)
    risk = np.where(poly, 0.3, 0.1) * rng.uniform(0.5, 1.5, poly.size)
    oof = pl.DataFrame({
        "phase": "acute", "patient_id": np.repeat(np.arange(n_patients), per).astype(str),
        "label": (rng.random(poly.size) < risk).astype(np.int8), "ipcw_weight": 1.0, "risk": risk,
        "age_at_intake": 25.0, "sex": "female", "polysubstance": poly,
    })
    table = subgroup_table(oof, n_boot=60, seed=1)
    everyone = table.filter(pl.col("attribute") == "all").row(0, named=True)
    groups = table.filter(pl.col("attribute") == "polysubstance")
    assert (groups["auroc_hi"] < everyone["auroc"]).all()  # the old comparison flagged both
    assert groups["flag"].to_list() == [OK, OK]


def test_subgroup_table_names_missing_columns():
    with pytest.raises(ValueError, match="ipcw_weight"):
        subgroup_table(pl.DataFrame({"phase": ["a"], "patient_id": ["P"], "label": [1], "risk": [0.2]}))
