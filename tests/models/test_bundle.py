"""Unit tests: the saved model bundle - round trip, integrity, no pickle, routing."""

import hashlib
import json

import numpy as np
import pytest

from models.bundle import BundleError, ModelBundle, PhaseModel
from models.explain import check_additivity
from models.link import logit
from models.training import fit_phase
from tests.models.synthetic import synthetic_phase

PHASES = [{"name": "acute", "start_day": 0, "end_day": 13},
          {"name": "early", "start_day": 14, "end_day": 89}]
FALLBACK_RATE = 0.05


# shares the session fixture's one expensive build with the other tests of its group
pytestmark = pytest.mark.xdist_group("fitted_phase")


def make_bundle(fit, names) -> ModelBundle:
    return ModelBundle(
        phase_models={"early": PhaseModel.from_fit(fit),
                      "acute": PhaseModel(booster=None, fallback_rate=FALLBACK_RATE,
                                          calibrator=None)},
        feature_names=names, phases=PHASES, feature_spec={"levels": {"sex": ["f", "m"]}},
        metadata={"trained_on": "2025-01-01", "n_rows": 1200})


@pytest.fixture
def bundle(fitted_phase, phase_data) -> ModelBundle:
    return make_bundle(fitted_phase, phase_data["feature_names"])


@pytest.fixture
def saved(bundle, tmp_path):
    folder = tmp_path / "bundle"
    bundle.save(folder)
    return folder


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_save_writes_the_documented_files(saved):
    assert set(_files(saved)) == {"phases/early.ubj", "calibrators.json", "spec.json",
                                  "manifest.json"}
    manifest = json.loads((saved / "manifest.json").read_text())
    assert set(manifest) == {"phases/early.ubj", "calibrators.json", "spec.json"}


def test_no_file_is_a_pickle(saved):
    for name, data in _files(saved).items():
        assert name.endswith((".json", ".ubj")), name
        assert data[:1] != b"\x80", f"{name} starts with the pickle protocol byte"


def test_round_trip_predicts_identically(bundle, saved, phase_data):
    X = phase_data["X"]
    phase_names = np.where(np.arange(X.shape[0]) % 3 == 0, "acute", "early")
    before = bundle.predict(X, phase_names)
    loaded = ModelBundle.load(saved)
    after = loaded.predict(X, phase_names)
    for key in ("risk", "raw_probability", "margin", "shap", "base"):
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    assert loaded.feature_spec == bundle.feature_spec and loaded.metadata == bundle.metadata
    assert loaded.phases == PHASES and loaded.feature_names == bundle.feature_names


def test_predict_routes_rows_to_their_phase(bundle, fitted_phase, phase_data):
    X = phase_data["X"][:40]
    out = bundle.predict(X, np.array(["acute"] * 20 + ["early"] * 20))
    acute, early = slice(0, 20), slice(20, 40)
    np.testing.assert_array_equal(out["risk"][acute], FALLBACK_RATE)
    np.testing.assert_allclose(out["margin"][acute], logit(FALLBACK_RATE))
    assert not out["shap"][acute].any()
    np.testing.assert_allclose(out["risk"][early],
                               fitted_phase.calibrator.predict(out["raw_probability"][early]))
    check_additivity(out["shap"], out["base"], out["margin"])
    assert out["shap"].shape == X.shape


def test_unknown_phase_is_rejected(bundle, phase_data):
    with pytest.raises(ValueError, match="relapsed"):
        bundle.predict(phase_data["X"][:2], np.array(["early", "relapsed"]))


@pytest.mark.parametrize("name", ["phases/early.ubj", "calibrators.json", "spec.json"])
def test_a_changed_byte_fails_load_naming_the_file(saved, name):
    path = saved / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=name.replace(".", r"\.")):
        ModelBundle.load(saved)


def test_a_changed_manifest_fails_load(saved):
    path = saved / "manifest.json"
    path.write_text(path.read_text().replace('"', "'", 1))
    with pytest.raises(BundleError, match=r"manifest\.json"):
        ModelBundle.load(saved)


def test_missing_or_extra_files_fail_load(saved):
    (saved / "extra.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(BundleError, match="extra.pkl"):
        ModelBundle.load(saved)
    (saved / "extra.pkl").unlink()
    (saved / "calibrators.json").unlink()
    with pytest.raises(BundleError, match="calibrators.json"):
        ModelBundle.load(saved)


def test_save_refuses_a_non_empty_folder(bundle, saved):
    with pytest.raises(BundleError, match="not empty"):
        bundle.save(saved)


def test_same_data_and_seed_give_identical_bundle_bytes(model_config, tmp_path):
    d = synthetic_phase(n_patients=200, seed=4)
    folders = []
    for i in range(2):
        fit = fit_phase(d["X"], d["y"], d["w"], d["groups"], d["feature_names"],
                        model_config.model_copy(update={"bootstrap_samples": 0}), "early")
        folders.append(tmp_path / f"b{i}")
        digest = make_bundle(fit, d["feature_names"]).save(folders[-1])
    assert _files(folders[0]) == _files(folders[1])
    assert digest == hashlib.sha256((folders[1] / "manifest.json").read_bytes()).hexdigest()


def test_phase_model_needs_exactly_one_predictor():
    with pytest.raises(ValueError, match="either"):
        PhaseModel(booster=None, fallback_rate=None, calibrator=None)


def test_bundle_phases_must_match_models(fitted_phase):
    with pytest.raises(ValueError, match="do not match"):
        ModelBundle({"early": PhaseModel.from_fit(fitted_phase)}, ["f0"], PHASES)
