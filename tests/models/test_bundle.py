"""Unit tests: the saved model bundle - round trip, integrity, no pickle, routing."""

import hashlib
import json

import numpy as np
import pytest

from models.bundle import BundleError, ModelBundle, PhaseModel
from models.explain import check_additivity, contributions, margin
from models.fits import with_day
from models.link import logit
from models.training import fit_phases
from tests.models.synthetic import ACUTE_DAY, EARLY_DAY, small_model_config, synthetic_phases

PHASES = [{"name": "acute", "start_day": 0, "end_day": 13},
          {"name": "early", "start_day": 14, "end_day": 89},
          {"name": "late", "start_day": 90, "end_day": 364},
          {"name": "rest", "start_day": 365, "end_day": 729}]
FALLBACK_RATE = 0.05


# shares the session fixture's one expensive build with the other tests of its group
pytestmark = pytest.mark.xdist_group("fitted_phase")


def make_bundle(trained, names) -> ModelBundle:
    models = {p: PhaseModel.from_fit(f) for p, f in trained.fits.items()}
    models["rest"] = PhaseModel("constant", fallback_rate=FALLBACK_RATE)
    return ModelBundle(
        phase_models=models, feature_names=names, phases=PHASES, feature_spec={"levels": {"sex": ["f", "m"]}},
        metadata={"trained_on": "2025-01-01", "n_rows": 1200}, shared=trained.shared)


@pytest.fixture
def bundle(trained, phase_data) -> ModelBundle:
    return make_bundle(trained, phase_data["feature_names"])


@pytest.fixture
def saved(bundle, tmp_path):
    folder = tmp_path / "bundle"
    bundle.save(folder)
    return folder


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_save_writes_the_documented_files(saved, bundle):
    own = {f"phases/{p}.ubj" for p, pm in bundle.phase_models.items() if pm.booster is not None}
    assert "phases/acute.ubj" in own
    assert set(_files(saved)) == {"shared.ubj", *own, "calibrators.json", "spec.json", "manifest.json"}
    manifest = json.loads((saved / "manifest.json").read_text())
    assert set(manifest) == {"shared.ubj", *own, "calibrators.json", "spec.json"}


def test_no_file_is_a_pickle(saved):
    for name, data in _files(saved).items():
        assert name.endswith((".json", ".ubj")), name
        assert data[:1] != b"\x80", f"{name} starts with the pickle protocol byte"


def test_round_trip_predicts_identically(bundle, saved, phase_data):
    X = phase_data["X"]
    phase_names = np.array(["acute", "early", "rest"], dtype=object)[np.arange(X.shape[0]) % 3]
    day = np.where(phase_names == "acute", ACUTE_DAY, EARLY_DAY)
    before = bundle.predict(X, phase_names, day)
    loaded = ModelBundle.load(saved)
    after = loaded.predict(X, phase_names, day)
    for key in ("risk", "raw_probability", "margin", "shap", "base"):
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    assert loaded.feature_spec == bundle.feature_spec and loaded.metadata == bundle.metadata
    assert loaded.phases == PHASES and loaded.feature_names == bundle.feature_names


def test_predict_routes_rows_to_their_phase(bundle, trained, phase_data):
    X = phase_data["X"][:40]
    out = bundle.predict(X, np.array(["rest"] * 20 + ["early"] * 20), np.full(40, EARLY_DAY))
    rest, early = slice(0, 20), slice(20, 40)
    np.testing.assert_array_equal(out["risk"][rest], FALLBACK_RATE)
    np.testing.assert_allclose(out["margin"][rest], logit(FALLBACK_RATE))
    assert not out["shap"][rest].any()
    np.testing.assert_allclose(out["risk"][early],
                               trained.fits["early"].calibrator.predict(out["raw_probability"][early]))
    check_additivity(out["shap"], out["base"], out["margin"])
    assert out["shap"].shape == X.shape


def test_shap_sums_both_boosters_and_adds_up_to_the_margin(bundle, trained, phases_data):
    acute = phases_data["phases"]["acute"]
    X, day = acute.X[:300], acute.day[:300]
    out = bundle.predict(X, np.full(300, "acute", dtype=object), day)
    own = trained.fits["acute"].booster
    Xd = with_day(X, day)
    np.testing.assert_allclose(out["margin"], margin(trained.shared, Xd) + margin(own, Xd), atol=1e-6)
    assert np.max(np.abs(out["base"] + out["shap"].sum(axis=1) - out["margin"])) < 1e-4
    shared_values, shared_base = contributions(trained.shared, Xd)
    own_values, own_base = contributions(own, Xd)
    np.testing.assert_allclose(out["shap"], (shared_values + own_values)[:, :-1], atol=1e-6)
    # the day column's value is folded into the base (an average patient at that day)
    np.testing.assert_allclose(out["base"], shared_base + own_base + (shared_values + own_values)[:, -1], atol=1e-6)
    assert np.abs(own_values).sum() > 0  # the phase's own trees do contribute


def test_a_phase_without_training_rows_is_refused(bundle, phase_data):
    assert not bundle.phase_models["late"].scorable
    with pytest.raises(ValueError, match="late"):
        bundle.predict(phase_data["X"][:2], np.array(["early", "late"], dtype=object), np.array([30.0, 100.0]))


def test_unknown_phase_is_rejected(bundle, phase_data):
    with pytest.raises(ValueError, match="relapsed"):
        bundle.predict(phase_data["X"][:2], np.array(["early", "relapsed"]), np.array([30.0, 30.0]))


@pytest.mark.parametrize("name", ["shared.ubj", "phases/acute.ubj", "calibrators.json", "spec.json"])
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


def test_same_data_and_seed_give_identical_bundle_bytes(tmp_path):
    d = synthetic_phases(seed=4)
    cfg = small_model_config(bootstrap_samples=0, n_folds=2)
    folders = []
    for i in range(2):
        trained = fit_phases(d["phases"], d["feature_names"], cfg)
        folders.append(tmp_path / f"b{i}")
        digest = make_bundle(trained, d["feature_names"]).save(folders[-1])
    assert _files(folders[0]) == _files(folders[1])
    assert digest == hashlib.sha256((folders[1] / "manifest.json").read_bytes()).hexdigest()


def test_phase_model_status_must_match_its_predictor():
    with pytest.raises(ValueError, match="fallback rate"):
        PhaseModel("constant")
    with pytest.raises(ValueError, match="own booster"):
        PhaseModel("phase_model")
    with pytest.raises(ValueError, match="unknown"):
        PhaseModel("guess")


def test_bundle_phases_must_match_models(fitted_phase):
    with pytest.raises(ValueError, match="do not match"):
        ModelBundle({"early": PhaseModel("constant", fallback_rate=0.1)}, ["f0"], PHASES)
    with pytest.raises(ValueError, match="shared booster"):
        ModelBundle({"early": PhaseModel("shared")}, ["f0"], PHASES[1:2])


def test_recalibration_is_a_separate_hashed_file(bundle, tmp_path, phase_data):
    from models.recalibration import Recalibration

    plain = tmp_path / "plain"
    bundle.save(plain)
    bundle.recalibration = {"early": Recalibration("intercept", 0.7, 1.0),
                            "rest": Recalibration("intercept", -0.4, 1.0)}
    recal = tmp_path / "recal"
    bundle.save(recal)
    before, after = (json.loads((f / "manifest.json").read_text()) for f in (plain, recal))
    assert {k: v for k, v in after.items() if k != "recalibration.json"} == before
    loaded = ModelBundle.load(recal)
    X = phase_data["X"][:30]
    phases = np.array(["early"] * 10 + ["acute"] * 10 + ["rest"] * 10, dtype=object)
    day = np.where(phases == "acute", ACUTE_DAY, EARLY_DAY)
    base, shifted = ModelBundle.load(plain).predict(X, phases, day), loaded.predict(X, phases, day)
    assert np.allclose(logit(shifted["risk"][:10]), logit(base["risk"][:10]) + 0.7)
    assert np.array_equal(shifted["risk"][10:20], base["risk"][10:20])
    assert np.allclose(logit(shifted["risk"][20:]), logit(base["risk"][20:]) - 0.4)
    for key in ("margin", "raw_probability", "shap", "base"):
        assert np.array_equal(shifted[key], base[key]), key
    (recal / "recalibration.json").write_text('{"early": {"method": "intercept", "a": 9, "b": 1}}')
    with pytest.raises(BundleError, match="recalibration.json"):
        ModelBundle.load(recal)


def test_recalibration_must_name_known_phases(bundle):
    from models.recalibration import Recalibration

    with pytest.raises(ValueError, match="unknown phase"):
        ModelBundle(bundle.phase_models, bundle.feature_names, PHASES, shared=bundle.shared,
                    recalibration={"later": Recalibration("intercept", 0.1, 1.0)})
