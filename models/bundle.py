"""The trained artefact: the shared booster, per-phase boosters that continue from its margin
(XGBoost UBJ), constant-rate fallbacks, calibrators and the feature spec, saved as a folder of
plain files - no pickle anywhere - with a SHA-256 manifest that `load` checks before it trusts
a byte.

Folder layout:
    shared.ubj           the booster shared by all phases (features, then day since intake)
    phases/<phase>.ubj   a phase's own trees, for phases that added any
    calibrators.json     {phase: calibrator parameters or null}
    recalibration.json   {phase: {method, a, b}}: a site recalibration (`models.recalibration`)
                         applied to the logit of the calibrated risk; only in recalibrated
                         bundles, so a recalibrated version's boosters and calibrators are the
                         parent's bytes
    spec.json            feature names, feature spec, phases, phase status, fallback rates, metadata
    manifest.json        {relative path: sha256 hex} for every other file

A phase's margin is margin(shared) + margin(phase booster), both on [features, day]. Its exact
TreeSHAP values are the sum of both boosters' values; the day column's value is folded into
`base` (the baseline of an average patient at that day of treatment), so `shap` has one column
per feature, reasons are about the patient, and base + shap.sum(axis=1) == margin still holds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xgboost

from features.config import PHASE_NAME
from models.calibration import RISK_CEILING, RISK_FLOOR, Calibrator
from models.explain import contributions, margin
from models.fits import STATUSES, PhaseFit, with_day
from models.link import logit, sigmoid
from models.recalibration import Recalibration

BUNDLE_FORMAT = 2
MANIFEST = "manifest.json"


class BundleError(ValueError):
    """A bundle folder that cannot be trusted or read; the message names the file."""


@dataclass
class PhaseModel:
    """One phase's predictor and its status (models.training): `phase_model` (shared booster plus
    `booster`), `shared` (shared booster alone), `constant` (`fallback_rate`), `no_data`."""

    status: str
    booster: xgboost.Booster | None = None
    fallback_rate: float | None = None
    calibrator: Calibrator | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown phase status {self.status!r}")
        if (self.booster is not None) != (self.status == "phase_model"):
            raise ValueError("a phase has its own booster exactly when its status is phase_model")
        if (self.fallback_rate is not None) != (self.status == "constant"):
            raise ValueError("a phase has a fallback rate exactly when its status is constant")
        if self.fallback_rate is not None and not 0 <= self.fallback_rate <= 1:
            raise ValueError(f"fallback rate {self.fallback_rate} is not a probability")

    @classmethod
    def from_fit(cls, fit: PhaseFit) -> PhaseModel:
        return cls(status=fit.status, booster=fit.booster, fallback_rate=fit.fallback_rate,
                   calibrator=fit.calibrator)

    @property
    def scorable(self) -> bool:
        return self.status != "no_data"

    @property
    def explains(self) -> bool:
        """Whether its features can move the risk it reports, so that reasons mean something: not a
        constant rate, nor a calibrator that maps every raw risk to one (`Calibrator.flat`)."""
        return self.status != "constant" and not (self.calibrator is not None and self.calibrator.flat)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


@dataclass
class ModelBundle:
    """Per-phase models with the feature names, phases, feature spec and metadata that make
    them usable at scoring time; see the module docstring for the folder it saves to."""

    phase_models: dict[str, PhaseModel]
    feature_names: list[str]
    phases: list[dict[str, Any]]
    feature_spec: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    shared: xgboost.Booster | None = None
    recalibration: dict[str, Recalibration] = field(default_factory=dict)

    @property
    def constant_phases(self) -> list[str]:
        """The phases whose model is a constant fallback rate (status `constant`)."""
        return [p for p, pm in self.phase_models.items() if pm.status == "constant"]

    def __post_init__(self) -> None:
        # accept config Phase objects or plain mappings; store plain dicts (JSON-safe)
        self.phases = [p.model_dump() if hasattr(p, "model_dump") else dict(p)
                       for p in self.phases]
        self.feature_names = list(self.feature_names)
        names = [p["name"] for p in self.phases]
        if sorted(names) != sorted(self.phase_models):
            raise ValueError(f"phase models {sorted(self.phase_models)} do not match the "
                             f"phases {names}")
        for name in names:
            if not PHASE_NAME.fullmatch(name):
                raise ValueError(f"phase name {name!r} is not safe as a file name")
        needs_shared = any(pm.status in ("phase_model", "shared") for pm in self.phase_models.values())
        if needs_shared and self.shared is None:
            raise ValueError("phases borrow from a shared booster, but the bundle has none")
        if unknown := sorted(set(self.recalibration) - set(names)):
            raise ValueError(f"recalibration for unknown phase(s) {unknown}")

    def _files(self) -> dict[str, bytes]:
        files = {}
        if self.shared is not None:
            files["shared.ubj"] = bytes(self.shared.save_raw("ubj"))
        for name, pm in self.phase_models.items():
            if pm.booster is not None:
                files[f"phases/{name}.ubj"] = bytes(pm.booster.save_raw("ubj"))
        files["calibrators.json"] = _json_bytes(
            {n: pm.calibrator.to_dict() if pm.calibrator else None
             for n, pm in self.phase_models.items()})
        if self.recalibration:
            files["recalibration.json"] = _json_bytes(
                {n: r.to_dict() for n, r in self.recalibration.items()})
        files["spec.json"] = _json_bytes({
            "bundle_format": BUNDLE_FORMAT,
            "xgboost_version": xgboost.__version__,
            "feature_names": list(self.feature_names),
            "feature_spec": self.feature_spec,
            "phases": self.phases,
            "fallbacks": {n: pm.fallback_rate for n, pm in self.phase_models.items()},
            "phase_status": {n: pm.status for n, pm in self.phase_models.items()},
            "metadata": self.metadata,
        })
        return files

    def save(self, folder: Path | str) -> str:
        """Write the bundle into `folder` (created; must be empty if it exists).

        Returns the SHA-256 of manifest.json, which fingerprints the whole bundle.
        """
        folder = Path(folder)
        if folder.exists() and any(folder.iterdir()):
            raise BundleError(f"{folder}: bundle folder is not empty")
        files = self._files()  # serialise everything first: a failure writes nothing
        manifest = _json_bytes({path: _sha256(data) for path, data in files.items()})
        (folder / "phases").mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            (folder / path).write_bytes(data)
        (folder / MANIFEST).write_bytes(manifest)
        return _sha256(manifest)

    @classmethod
    def load(cls, folder: Path | str) -> ModelBundle:
        """Read a bundle, refusing it if any file is missing, extra or altered."""
        files = _read_verified(Path(folder))
        spec = _parse_json(files, "spec.json")
        calibrators = _parse_json(files, "calibrators.json")
        if spec.get("bundle_format") != BUNDLE_FORMAT:
            raise BundleError(f"spec.json: unsupported bundle_format {spec.get('bundle_format')}")
        phase_models = {}
        for phase in spec["phases"]:
            name = phase["name"]
            status = spec["phase_status"].get(name)
            cal = calibrators.get(name)
            try:
                phase_models[name] = PhaseModel(
                    status=status,
                    booster=_booster(files, f"phases/{name}.ubj") if status == "phase_model" else None,
                    fallback_rate=spec["fallbacks"].get(name),
                    calibrator=Calibrator.from_dict(cal) if cal is not None else None)
            except ValueError as exc:
                raise BundleError(f"spec.json: phase '{name}': {exc}") from None
        shared = _booster(files, "shared.ubj") if "shared.ubj" in files else None
        recalibration = {}
        if "recalibration.json" in files:
            try:
                recalibration = {n: Recalibration.from_dict(r) for n, r in
                                 _parse_json(files, "recalibration.json").items()}
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise BundleError(f"recalibration.json: invalid ({exc})") from None
        try:
            return cls(phase_models=phase_models, feature_names=spec["feature_names"],
                       phases=spec["phases"], feature_spec=spec["feature_spec"],
                       metadata=spec["metadata"], shared=shared, recalibration=recalibration)
        except ValueError as exc:
            raise BundleError(f"spec.json: {exc}") from None

    def predict(self, X: np.ndarray, phase_names: np.ndarray, day: np.ndarray) -> dict[str, np.ndarray]:
        """Route each row to its phase's model; `day` is the day since intake.

        Returns risk (calibrated probability, then the phase's site recalibration if any),
        raw_probability, margin (log-odds), shap [n, k] and base [n], with
        base + shap.sum(axis=1) == margin (see the module docstring). Constant phases: raw = the
        rate (within the calibrated bounds; risk too, unless recalibrated), margin = base = its
        log-odds, shap all zero. Rows of a `no_data` phase are refused.
        """
        X = np.asarray(X, dtype=np.float64)
        phase_names = np.asarray(phase_names, dtype=object)
        day = np.asarray(day, dtype=np.float64)
        n, k = X.shape[0], len(self.feature_names)
        if X.ndim != 2 or X.shape[1] != k or phase_names.shape != (n,) or day.shape != (n,):
            raise ValueError(f"X must be [n, {k}] with one phase name and one day per row")
        present = set(phase_names.tolist())
        unknown = present - set(self.phase_models)
        unscorable = sorted(p for p in present - unknown if not self.phase_models[p].scorable)
        if unknown or unscorable:
            raise ValueError(f"no model for phase(s) {sorted(map(str, unknown)) + unscorable}")
        out = {"risk": np.empty(n), "raw_probability": np.empty(n), "margin": np.empty(n),
               "shap": np.zeros((n, k)), "base": np.empty(n)}
        for name, pm in self.phase_models.items():
            rows = np.flatnonzero(phase_names == name)
            if rows.size == 0:
                continue
            if pm.status == "constant":
                rate = float(np.clip(pm.fallback_rate, RISK_FLOOR, RISK_CEILING))
                out["margin"][rows] = out["base"][rows] = logit(rate)
                out["raw_probability"][rows] = out["risk"][rows] = rate
                self._recalibrate(out["risk"], rows, name)
                continue
            shap_values, base, m = self._explain(pm, with_day(X[rows], day[rows]))
            out["shap"][rows], out["base"][rows], out["margin"][rows] = shap_values, base, m
            raw = sigmoid(m)
            out["raw_probability"][rows] = raw
            out["risk"][rows] = pm.calibrator.predict(raw) if pm.calibrator else raw
            self._recalibrate(out["risk"], rows, name)
        return out

    def _recalibrate(self, risk: np.ndarray, rows: np.ndarray, phase: str) -> None:
        if phase in self.recalibration:
            risk[rows] = self.recalibration[phase].apply(risk[rows])

    def _explain(self, pm: PhaseModel, Xd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shap [n, k], base, margin) of shared + phase booster, the day column folded into base."""
        values, base = contributions(self.shared, Xd)
        m = margin(self.shared, Xd)
        if pm.booster is not None:
            own_values, own_base = contributions(pm.booster, Xd)
            values, base, m = values + own_values, base + own_base, m + margin(pm.booster, Xd)
        return values[:, :-1], base + values[:, -1], m


def _booster(files: dict[str, bytes], path: str) -> xgboost.Booster:
    if path not in files:
        raise BundleError(f"{path}: missing booster")
    booster = xgboost.Booster()
    booster.load_model(bytearray(files[path]))
    return booster


def _read_verified(folder: Path) -> dict[str, bytes]:
    """Every file listed in the manifest, each checked against its SHA-256."""
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_bytes())
    except FileNotFoundError:
        raise BundleError(f"{manifest_path}: missing; not a model bundle") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path}: corrupted ({exc})") from None
    if not isinstance(manifest, dict) or not all(
            isinstance(v, str) for v in manifest.values()):
        raise BundleError(f"{manifest_path}: not a mapping of file -> sha256")
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    extra = present - set(manifest) - {MANIFEST}
    if extra:
        raise BundleError(f"{folder}: files not in {MANIFEST}: {sorted(extra)}")
    files = {}
    for rel, expected in manifest.items():
        path = folder / rel
        if not path.resolve().is_relative_to(folder.resolve()):
            raise BundleError(f"{MANIFEST}: path {rel!r} points outside the bundle")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BundleError(f"{path}: listed in {MANIFEST} but missing") from None
        if _sha256(data) != expected:
            raise BundleError(f"{path}: SHA-256 does not match {MANIFEST}; the bundle was "
                              "altered or corrupted")
        files[rel] = data
    return files


def _parse_json(files: dict[str, bytes], name: str) -> Any:
    if name not in files:
        raise BundleError(f"{name}: missing from the bundle manifest")
    try:
        return json.loads(files[name])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{name}: not valid JSON ({exc})") from None
