"""The registered `relapse-risk` pyfunc model, logged from code (no pickle).

MLflow runs this file when it loads the model: `set_model` names the object that serves it. The
model carries the project's packages (`code_paths`, see `pipeline.registry`), so it loads in any
environment built from its own requirements.

Input rows: `day` (whole days since intake; it picks the phase model) and the features of the
patients columns every patient has (age, sex: `FeatureSpec.required_inputs`) are required;
`patient_id`, `as_of` and the other feature columns are optional (a missing column or value
counts as unknown) and the identifiers are passed through; a feature group whose columns are all left out or null
counts as missing from the data, so it gives no reasons, as in batch scoring. Output: the
columns of `models.scoring.output_columns` with the risk bands, number of reasons and minimum
effect the model was trained with, then `model_name`, `model_version` and `run_id`. A request
the model cannot answer (a day outside every phase, a non-integer day, a value of the wrong type,
a day in a phase the training data never reached: `no_model_for_phase`) gets HTTP 400 with a
one-line reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mlflow
import pandas as pd
import polars as pl
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel


class BadRequest(MlflowException):
    """A request the model refuses (HTTP 400), answered with its one-line reason only.

    MLflow's scoring server rewrites the message of any error raised by `predict` to start with a
    dump of the whole input frame; this message keeps the reason alone, so the answer stays short.
    """

    def __init__(self, reason: str) -> None:
        self._reason = reason
        super().__init__(reason, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._reason

    @message.setter
    def message(self, _value: str) -> None:
        pass  # keep the reason; see the class docstring


class RelapseRiskModel(PythonModel):
    def load_context(self, context) -> None:
        # The project code is imported from the model's own folder, which may be the artifact store
        # itself: write no bytecode there (restored afterwards, for the rest of the process).
        before, sys.dont_write_bytecode = sys.dont_write_bytecode, True
        try:
            from features.time import phase_expr  # noqa: F401
            from models.bundle import ModelBundle
            from pipeline.registry import model_identity
            from pipeline.serving import LoadedModel, RequestError, check_request  # noqa: F401  (used in predict)
        finally:
            sys.dont_write_bytecode = before

        bundle_dir = Path(context.artifacts["bundle"])
        self.model = LoadedModel.from_bundle(ModelBundle.load(bundle_dir))
        self.identity = model_identity(bundle_dir.parents[1], self.model.name)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from features.reasons import DEFAULT_MIN_EFFECT
        from features.registry import feature_registry
        from features.time import phase_expr
        from pipeline.serving import RequestError, check_request

        phases = self.model.phases
        try:
            frame = check_request(pd.DataFrame(model_input).to_dict("list"), self.model.bundle.feature_names, phases,
                                  feature_registry(self.model.spec), self.model.spec.required_inputs())
        except RequestError as exc:
            raise BadRequest(str(exc)) from None
        frame = frame.with_columns(phase_expr(pl.col("day"), phases).alias("phase"))
        scorable = {p for p, pm in self.model.bundle.phase_models.items() if pm.scorable}
        unscorable = sorted(set(frame["phase"].drop_nulls()) - scorable)
        if unscorable:
            raise BadRequest(f"no model for phase(s) {unscorable}: the training data had no at-risk rows there "
                             "(no_model_for_phase)")
        scoring = self.model.bundle.metadata["scoring"]
        min_effect = scoring.get("min_effect", DEFAULT_MIN_EFFECT)
        # a group whose every column is left out or null in every row: its table was not there (the
        # counts of a table that is there are 0, not null), so it gives no reasons
        empty = [c for c in self.model.bundle.feature_names if frame[c].null_count() == frame.height]
        unavailable = self.model.policy.groups_of(empty)
        scores, _ = self.model.explain(frame, scoring["reasons"], scoring["risk_bands"], min_effect, unavailable)
        keys = [c for c in ("patient_id", "as_of", "day", "phase") if c in frame.columns]
        identity = [pl.lit(v, pl.String).alias(k) for k, v in self.identity.items()]
        answer = frame.select(keys).hstack(scores).with_columns(identity).to_pandas()
        return answer.astype(object).where(answer.notna(), None)  # missing reasons are JSON null, not "NaN"


mlflow.models.set_model(RelapseRiskModel())
