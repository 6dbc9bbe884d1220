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
        from models.bundle import ModelBundle
        from pipeline.serving import LoadedModel

        self.model = LoadedModel.from_bundle(ModelBundle.load(Path(context.artifacts["bundle"])))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from features.time import phase_expr

        bundle = self.model.bundle
        frame = pl.from_pandas(pd.DataFrame(model_input))
        missing = [c for c in bundle.feature_names if c not in frame.columns]
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in missing)
        frame = frame.with_columns(phase_expr(pl.col("day"), self.model.phases).alias("phase"))
        if frame["phase"].null_count():
            bad = frame.filter(pl.col("phase").is_null())["day"].to_list()[:5]
            raise ValueError(f"day outside every recovery phase: {bad}")
        scoring = bundle.metadata["scoring"]
        scores, _ = self.model.explain(frame, scoring["reasons"], scoring["risk_bands"])
        keys = [c for c in ("patient_id", "day", "phase") if c in frame.columns]
        answer = frame.select(keys).hstack(scores).to_pandas()
        return answer.astype(object).where(answer.notna(), None)  # missing reasons are JSON null, not "NaN"


mlflow.models.set_model(RelapseRiskModel())
