"""Unit tests: the temporal hold-out of the latest intakes."""

from datetime import date

import polars as pl

from models.evaluation import metrics_table
from pipeline.temporal import SCHEMA, latest_intakes, split
from tests.models.synthetic import small_model_config


def patients(n: int = 10) -> pl.DataFrame:
    return pl.DataFrame({"patient_id": [f"P{i:02d}" for i in range(n)],
                         "intake_date": [date(2024, 1, 1 + i) for i in range(n)]})


def test_latest_intakes_are_held_out_reproducibly():
    assert sorted(latest_intakes(patients(), 0.3).to_list()) == ["P07", "P08", "P09"]
    tied = patients(4).with_columns(pl.lit(date(2024, 1, 1)).alias("intake_date"))
    assert latest_intakes(tied, 0.5).to_list() == ["P03", "P02"]


def test_split_keeps_every_landmark_row_of_a_patient_on_one_side():
    landmarks = pl.DataFrame({"patient_id": [f"P{i % 10:02d}" for i in range(40)], "day": list(range(40))})
    cfg = small_model_config().model_copy(update={"validation": "temporal", "temporal_share": 0.2})
    dev, held = split(landmarks, patients(), cfg)
    assert set(held["patient_id"]) == {"P08", "P09"} and dev.height + held.height == 40
    assert not set(dev["patient_id"]) & set(held["patient_id"])
    assert split(landmarks, patients(), small_model_config())[1] is None


def test_held_out_rows_have_the_training_metrics_table_columns():
    # train.py stacks the two tables: the held-out rows must have the same columns and types
    oof = pl.DataFrame(schema={"patient_id": pl.String, "phase": pl.String, "label": pl.Float64,
                               "ipcw_weight": pl.Float64, "risk": pl.Float64, "risk_logistic": pl.Float64})
    assert metrics_table({}, oof, 1, 0).schema == pl.Schema(SCHEMA)


def test_a_phase_borrowing_the_shared_booster_is_measured_on_the_held_out_patients():
    import numpy as np

    from features.config import Phase
    from models.fits import PhaseData
    from models.training import fit_phases
    from pipeline.temporal import held_out_metrics
    from tests.models.synthetic import synthetic_phase

    def data(d, day, prefix):
        return PhaseData(d["X"], d["y"], d["w"], np.array([prefix + g for g in d["groups"]]),
                         np.full(d["y"].size, day))

    rich, sparse = synthetic_phase(n_patients=300, seed=0), synthetic_phase(n_patients=60, intercept=-4.5, seed=1)
    names = rich["feature_names"]
    trained = fit_phases({"acute": data(sparse, 7.0, "s"), "early": data(rich, 30.0, "e")}, names,
                         small_model_config(bootstrap_samples=20))
    assert trained.fits["acute"].status == "shared"  # too few events of its own: the shared booster alone
    later = {"acute": synthetic_phase(n_patients=200, intercept=-2.5, seed=5), "early": synthetic_phase(seed=6)}
    held = pl.concat([
        pl.DataFrame(d["X"], schema=names).with_columns(
            patient_id=pl.Series(d["groups"]).str.replace("^", f"h{phase}"), phase=pl.lit(phase),
            day=pl.lit(7 if phase == "acute" else 30), label=pl.Series(d["y"]), ipcw_weight=pl.Series(d["w"]),
            censored=pl.lit(False))
        for phase, d in later.items()
    ])
    phases = [Phase(name="acute", start_day=0, end_day=13), Phase(name="early", start_day=14, end_day=89)]
    table = held_out_metrics(trained, held, names, phases, small_model_config(bootstrap_samples=20))
    auroc = {r["phase"]: r for r in table.filter(pl.col("metric") == "auroc").to_dicts()}
    assert set(auroc) == {"acute", "early", "pooled"} and set(table["model"]) == {"temporal"}
    assert auroc["acute"]["estimate"] > 0.7 and auroc["acute"]["lo"] < auroc["acute"]["estimate"]  # ranked, not a rate
    assert not table["in_sample"].any()
