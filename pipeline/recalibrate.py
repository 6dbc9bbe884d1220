"""`relapse recalibrate`: adapt a registered model to a local population and register the result.

Per phase, closed testing (`models.recalibration.closed_test`) on the local labelled cohort
chooses between keeping the model, re-estimating its intercept, or intercept and slope. The
choice is stored as the bundle's `recalibration.json` layer (composed with any layer the parent
already had); the boosters and calibrators are the parent's bytes, so their SHA-256 in the new
bundle's manifest equal the parent's. The new version is tagged `parent_version`,
`recalibration_<phase>` and the local data fingerprint, described in words, and gets alias
`challenger`. The run logs the local cohort's metrics before (`before_…`) and after
(`after_…`): the "after" figures are in-sample (the layer was fitted on those rows); judge a
recalibrated model with `relapse evaluate` on a further cohort.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from models.recalibration import ALPHA, ClosedTest, Recalibration, closed_test
from pipeline import io, model_store, tracking, tracking_eval
from pipeline.artifacts import EVALUATION_METRICS, RECALIBRATION
from pipeline.config import Config
from pipeline.evaluate import (
    check_not_learned_from,
    check_not_trained_on,
    labelled_rows,
    lacking_tag,
    landmark_rows,
    read_cohort,
)
from pipeline.registry import version_description
from pipeline.reports.validation import count_rows, metric_names, validation_metrics
from pipeline.serving import LoadedModel, load_model
from pipeline.train import _example_output, _serving_example

Progress = Callable[[str], None]


@dataclass
class RecalibrateSummary:
    run_id: str
    version: str
    parent_version: str
    tests: dict[str, ClosedTest]
    before: pl.DataFrame
    after: pl.DataFrame
    synthetic: bool
    lacking: list[str]  # what the model reads that the local cohort lacked (`LoadedModel.lacking`)


def phase_tests(rows: pl.DataFrame, phases: list[str], min_events: int) -> dict[str, ClosedTest]:
    """The closed test of every phase on its labelled rows (no rows, or fewer than `min_events`
    patients with an event: the model is kept)."""
    tests = {}
    for phase in phases:
        part = rows.filter(pl.col("phase") == phase)
        tests[phase] = closed_test(part["label"].to_numpy(), part["risk"].to_numpy(), part["ipcw_weight"].to_numpy(),
                                   groups=part["patient_id"].to_numpy(), min_events=min_events)
    return tests


def recalibrated_model(model: LoadedModel, tests: dict[str, ClosedTest], fingerprint: str) -> LoadedModel:
    """The model with each phase's chosen layer composed after its existing one; the phase
    models (boosters, calibrators) are the same objects, so they serialise to the same bytes."""
    old = model.bundle.recalibration
    layer = {p: old.get(p, Recalibration()).then(t.chosen) for p, t in tests.items()}
    layer = {p: r for p, r in layer.items() if r.method != "none"}
    r = model.resolved
    lineage = {"parent_version": r.version if r else None, "data_fingerprint": fingerprint,
               "methods": {p: t.chosen.method for p, t in tests.items()}}
    if earlier := model.bundle.metadata.get("recalibration"):
        lineage["earlier"] = earlier  # the parent's own recalibration, and so on back to the trained version
    bundle = dataclasses.replace(model.bundle, recalibration=layer,
                                 metadata=model.bundle.metadata | {"recalibration": lineage})
    return LoadedModel.from_bundle(bundle, model.resolved)


def description(name: str | None, parent: str, fingerprint: str, tests: dict[str, ClosedTest]) -> str:
    methods = ", ".join(f"{p}: {t.chosen.method}" for p, t in tests.items())
    return (f"Site recalibration of {name} version {parent} on local data {fingerprint[:12]} by closed testing "
            f"(likelihood-ratio tests, alpha {ALPHA}): {methods}. Boosters and calibrators are version "
            f"{parent}'s, unchanged.")


def recalibrate(
    data_dir: Path, model_uri: str, config: Config, progress: Progress = lambda _: None
) -> RecalibrateSummary:
    tracking.check_reachable(config.mlflow)  # an unreachable store fails before any work
    progress("validating input tables")
    tables, hashes, synthetic = read_cohort(data_dir)
    fingerprint = io.data_fingerprint(hashes)
    with tempfile.TemporaryDirectory(prefix="relapse-recalibrate-") as tmp:
        work = Path(tmp)
        model = load_model(model_uri, work / "model", config.mlflow)
        parent = model.resolved.version if model.resolved else None
        if parent is None:
            raise ValueError(f"{model_uri}: not a registered model version; recalibrate needs models:/NAME/N or @alias")
        check_not_learned_from(model, fingerprint, data_dir, config)
        progress("building landmark rows and testing each phase")
        landmarks = landmark_rows(model, tables, config.model, config.shards.patients_per_shard)
        phases = [p.name for p in model.phases]
        before_rows = labelled_rows(model, landmarks, tables["patients"])
        check_not_trained_on(model, before_rows, data_dir, config, work / "trained")
        tests = phase_tests(before_rows, phases, config.model.min_events)
        new = recalibrated_model(model, tests, fingerprint)
        after_rows = labelled_rows(new, landmarks, tables["patients"])
        n_boot, seed = config.model.bootstrap_samples, config.model.seed
        constant = model.constant_phases
        before, after = (validation_metrics(r, phases, n_boot, seed, constant) for r in (before_rows, after_rows))
        counts = count_rows(before_rows, phases, constant)
        new.bundle.save(work / "bundle")
        artifacts = work / "artifacts"
        artifacts.mkdir()
        io.write_json({p: t.to_dict() for p, t in tests.items()}, artifacts / RECALIBRATION)
        io.write_frame(before.with_columns(pl.lit("before").alias("stage")).vstack(
            after.with_columns(pl.lit("after").alias("stage"))), artifacts / EVALUATION_METRICS)
        example = _serving_example(landmarks, model.spec, new.bundle)
        # what the parent was trained on and how it ranks: a recalibration keeps both (its layer is
        # strictly increasing), so the version carries them as every version does
        inherited = {k: v for k, v in model_store.registered_tags(config.mlflow, model.name, parent).items()
                     if k in ("data_fingerprint", "feature_groups") or k.startswith("auroc_")}
        lacking = model.lacking(tables)
        tags = {
            **inherited,
            **lacking_tag(lacking),
            "parent_version": parent,
            "parent_run_id": str(model.resolved.run_id),
            "recalibration_data_fingerprint": fingerprint,
            "synthetic_data": str(synthetic).lower(),
            **{f"recalibration_{p}": t.chosen.method for p, t in tests.items()},
            # the layer as composed with any earlier recalibration (the same as the above for a first one)
            **{f"recalibration_layer_{p}": new.bundle.recalibration.get(p, Recalibration()).method for p in tests},
        }
        record = tracking_eval.RecalibrationRecord(
            run_name=f"recalibrate-v{parent}",
            parent_version=parent,
            parent_run_id=model.resolved.run_id,
            tags=tags,
            description=f"{description(model.name, parent, fingerprint, tests)} "
                        f"{version_description(model.bundle.phases)}",
            metrics=metric_names(before, counts, "before_") | metric_names(after, counts, "after_"),
            artifact_dir=artifacts,
            bundle_dir=work / "bundle",
            input_example=example,
            output_example=_example_output(new.bundle, example, config),
            feature_names=list(model.bundle.feature_names),
        )
        progress("logging the run and registering the recalibrated version in MLflow")
        outcome = tracking.guarded(config.mlflow, "registering the recalibrated version",
                                   lambda: tracking_eval.register_recalibrated(config.mlflow, record))
    return RecalibrateSummary(outcome.run_id, outcome.version, parent, tests, before, after, synthetic, lacking)
