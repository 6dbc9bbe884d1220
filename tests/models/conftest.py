"""Shared fitted objects for the model tests, built once per session (they take a second)."""

from __future__ import annotations

import pytest

from models.config import ModelConfig
from models.training import PhaseFit, fit_phase
from tests.models.synthetic import small_model_config, synthetic_phase


@pytest.fixture(scope="session")
def model_config() -> ModelConfig:
    return small_model_config()


@pytest.fixture(scope="session")
def phase_data() -> dict:
    return synthetic_phase()


@pytest.fixture(scope="session")
def fitted_phase(phase_data: dict, model_config: ModelConfig) -> PhaseFit:
    d = phase_data
    return fit_phase(d["X"], d["y"], d["w"], d["groups"], d["feature_names"], model_config,
                     "early")
