"""What the logged model carries: its requirements, its code, its description, its identity."""

from __future__ import annotations

from importlib.metadata import version

from pipeline import registry


def test_requirements_pin_every_third_party_package_the_served_code_imports():
    pins = dict(line.split("==") for line in registry.pip_requirements())
    assert {"mlflow", "polars", "xgboost", "scikit-learn", "pydantic", "pyyaml", "pandas", "pyarrow"} <= set(pins)
    assert pins["polars"] == version("polars")


def test_project_code_is_staged_without_bytecode(tmp_path):
    paths = registry.stage_code(tmp_path)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["features", "models", "pipeline"]
    assert (tmp_path / "pipeline" / "served_model.py").is_file() and (tmp_path / "models" / "bundle.py").is_file()
    assert not list(tmp_path.rglob("__pycache__")) and not list(tmp_path.rglob("*.pyc"))


def test_description_says_what_when_and_how_to_use_it_and_each_version_names_its_phases():
    for words in ("relapse in the next 30 days", "Decision support only", "synthetic_data=true"):
        assert words in registry.MODEL_DESCRIPTION, words
    assert "acute" not in registry.MODEL_DESCRIPTION  # versions may differ: phases are each version's own
    phases = [{"name": "acute", "start_day": 0, "end_day": 13}, {"name": "early", "start_day": 14, "end_day": 89}]
    assert "acute (days 0-13), early (days 14-89)" in registry.version_description(phases)


def test_identity_reads_the_run_id_from_the_model_and_needs_a_registry_for_the_version(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "MLmodel").write_text("run_id: abc123\nartifact_path: model\n")
    assert registry.model_identity(tmp_path, "relapse-risk") == {
        "model_name": "relapse-risk", "model_version": None, "run_id": "abc123"
    }
    assert registry.model_identity(tmp_path / "nowhere", None)["run_id"] is None
