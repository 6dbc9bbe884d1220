"""The registered `relapse-risk` pyfunc model, logged from code (no pickle).

MLflow runs this file when it loads the model: `set_model` names the object that serves it.
Input rows: `day` (days since intake; it picks the phase model) and the feature columns
(missing ones are treated as unknown); `patient_id` is passed through when given. Output: the
columns of `models.scoring.output_columns`, with the risk bands and number of reasons the
model was trained with.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import polars as pl
from mlflow.pyfunc import PythonModel


class RelapseRiskModel(PythonModel):
    def load_context(self, context) -> None:
        from features.registry import describe
        from features.spec import FeatureSpec
        from models.bundle import ModelBundle

        self.bundle = ModelBundle.load(Path(context.artifacts["bundle"]))
        spec = FeatureSpec.from_dict(self.bundle.feature_spec)
        self.describe = lambda name, value, row: describe(name, value, spec=spec, row=row)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from features.config import Phase
        from features.time import phase_expr
        from models.scoring import explain_scores

        frame = pl.from_pandas(pd.DataFrame(model_input))
        missing = [c for c in self.bundle.feature_names if c not in frame.columns]
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in missing)
        phases = [Phase(**p) for p in self.bundle.phases]
        frame = frame.with_columns(phase_expr(pl.col("day"), phases).alias("phase"))
        if frame["phase"].null_count():
            bad = frame.filter(pl.col("phase").is_null())["day"].to_list()[:5]
            raise ValueError(f"day outside every recovery phase: {bad}")
        scoring = self.bundle.metadata["scoring"]
        scores, _ = explain_scores(self.bundle, frame, scoring["reasons"], scoring["risk_bands"], self.describe)
        keys = [c for c in ("patient_id", "day", "phase") if c in frame.columns]
        answer = frame.select(keys).hstack(scores).to_pandas()
        return answer.astype(object).where(answer.notna(), None)  # missing reasons are JSON null, not "NaN"


mlflow.models.set_model(RelapseRiskModel())
