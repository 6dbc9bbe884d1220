"""Shared fitted objects for the model tests, built once per session (they take seconds)."""

from __future__ import annotations

import pytest

from models.config import ModelConfig
from models.fits import PhaseFit, TrainedPhases
from models.training import fit_phases
from tests.models.synthetic import small_model_config, synthetic_phase, synthetic_phases


@pytest.fixture(scope="session")
def model_config() -> ModelConfig:
    return small_model_config()


@pytest.fixture(scope="session")
def phase_data() -> dict:
    """The `early` phase's data as a dict (X, y, w, groups, feature_names)."""
    return synthetic_phase()


@pytest.fixture(scope="session")
def phases_data() -> dict:
    return synthetic_phases()


@pytest.fixture(scope="session")
def trained(phases_data: dict, model_config: ModelConfig) -> TrainedPhases:
    return fit_phases(phases_data["phases"], phases_data["feature_names"], model_config)


@pytest.fixture(scope="session")
def fitted_phase(trained: TrainedPhases) -> PhaseFit:
    return trained.fits["early"]
