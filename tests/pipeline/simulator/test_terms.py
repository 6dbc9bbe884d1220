"""The per-day lookups the daily steps read."""

from __future__ import annotations

import numpy as np

from pipeline.simulator.terms import daily_terms, simulated_days


def test_days_run_to_the_last_landmark_plus_the_horizon(config):
    assert simulated_days(config.cohort) == 728 + 30 + 1


def test_days_past_the_last_phase_keep_its_rates(config):
    terms = daily_terms(config, 800)
    first, last = config.phases[0], config.phases[-1]
    assert terms.log_relapse[0] == np.log(first.daily_relapse_rate)
    assert (terms.log_relapse[last.start_day :] == np.log(last.daily_relapse_rate)).all()
    assert (terms.emdr_on[13], terms.emdr_on[14]) == (0.0, 1.0)
