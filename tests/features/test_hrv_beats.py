"""Raw beats: the artefact rule, and per-recording summaries that agree with NeuroKit2."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.config import HrvConfig
from features.hrv import artefact_mask, rr_recording_summaries
from tests.features.conftest import at, typed

CFG = HrvConfig(window_days=28, baseline_days=21, rr_min_ms=300, rr_max_ms=2000, rr_max_change=0.2)


def naive_mask(rr, start, lo, hi, change):
    """The rule written beat by beat, as documented."""
    keep, reference = [], None
    for value, first in zip(rr, start, strict=True):
        if first:
            reference = None
        ok = lo <= value <= hi and (reference is None or abs(value - reference) <= change * reference)
        keep.append(ok)
        if ok:
            reference = value
    return keep


@pytest.mark.parametrize(
    ("rr", "kept"),
    [
        # an ectopic beat is removed, and the next is compared with the last good beat
        ([800, 810, 1200, 820, 790], [1, 1, 0, 1, 1]),
        # out of range beats go first: 250 and 2100; bounds are kept
        ([250, 800, 2100, 300, 2000], [0, 1, 0, 0, 0]),
        # exactly 20% is kept, just over is removed
        ([1000, 1200, 1000, 1201], [1, 1, 1, 0]),
        # a recording that starts on an artefact keeps it as the reference
        ([500, 800, 820, 590], [1, 0, 0, 1]),
    ],
)
def test_artefact_rule(rr, kept):
    rr = np.array(rr, dtype=float)
    start = np.zeros(rr.size, bool)
    start[0] = True
    assert artefact_mask(rr, start, 300, 2000, 0.2).astype(int).tolist() == kept


beats = st.lists(st.floats(200, 3000, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(st.lists(beats, min_size=1, max_size=5))
def test_vectorised_rule_equals_the_beat_by_beat_rule(recordings):
    rr = np.concatenate([np.array(r) for r in recordings])
    start = np.concatenate([[True] + [False] * (len(r) - 1) for r in recordings])
    assert artefact_mask(rr, start, 300, 2000, 0.2).tolist() == naive_mask(rr, start, 300, 2000, 0.2)


def recording_frame(rng, n_recordings=12):
    rows = {"patient_id": [], "recording_id": [], "recorded_at": [], "rr_ms": []}
    for k in range(n_recordings):
        n = int(rng.integers(30, 300))
        rr = rng.normal(850, 45, n)
        hits = rng.random(n) < 0.03
        rr[hits] = rng.choice([280.0, 450.0, 1300.0, 2400.0], hits.sum())
        rows["patient_id"] += [f"p{k % 3}"] * n
        rows["recording_id"] += [f"r{k}"] * n
        rows["recorded_at"] += [at(k)] * n
        rows["rr_ms"] += np.clip(rr, 200, 3000).tolist()
    return typed("rr_intervals", rows)


def test_summaries_agree_with_neurokit2_on_the_kept_beats():
    nk = pytest.importorskip("neurokit2")  # test-only dependency, slow to import
    frame = recording_frame(np.random.default_rng(11))
    got = rr_recording_summaries(frame.lazy(), CFG).collect()
    assert got.height == 12
    for row in got.iter_rows(named=True):
        rr = frame.filter(pl.col("recording_id") == row["recording_id"])["rr_ms"].to_numpy()
        start = np.zeros(rr.size, bool)
        start[0] = True
        kept = rr[artefact_mask(rr, start, CFG.rr_min_ms, CFG.rr_max_ms, CFG.rr_max_change)]
        assert row["n_beats"] == rr.size and row["n_kept"] == kept.size
        ref = nk.hrv_time({"RRI": kept}).iloc[0]
        assert row["rmssd_ms"] == pytest.approx(ref["HRV_RMSSD"], rel=1e-6)
        assert row["sdnn_ms"] == pytest.approx(ref["HRV_SDNN"], rel=1e-6)  # ddof = 1, as NeuroKit2
        assert row["pnn50"] == pytest.approx(ref["HRV_pNN50"], rel=1e-6)  # over N intervals, as NeuroKit2
        assert row["mean_hr_bpm"] == pytest.approx(60_000 / ref["HRV_MeanNN"], rel=1e-6)


def test_interleaved_rows_keep_each_recordings_order_and_short_recordings_are_null():
    frame = typed(
        "rr_intervals",
        {
            "patient_id": ["p", "p", "p", "p", "p"],
            "recording_id": ["b", "a", "b", "a", "a"],
            "recorded_at": [at(1), at(0), at(1), at(0), at(0)],
            "rr_ms": [800.0, 700.0, 1500.0, 720.0, 760.0],
        },
    )
    got = rr_recording_summaries(frame.lazy(), CFG).collect()
    assert got["recording_id"].to_list() == ["a", "b"]
    assert got["n_kept"].to_list() == [3, 1]
    assert got["rmssd_ms"][0] == pytest.approx(np.sqrt((20**2 + 40**2) / 2))
    assert got.row(1, named=True)["rmssd_ms"] is None and got.row(1, named=True)["sdnn_ms"] is None


def test_a_recordings_summaries_are_the_same_bits_whatever_shares_the_frame():
    """Dropping other patients' recordings (as the as-of and at-risk filters do) must not move a
    recording's figures by a bit: found by the point-in-time property test on a two-beat SDNN."""
    def recording(patient, rr):
        return typed("rr_intervals", {"patient_id": [patient] * len(rr), "recording_id": ["r"] * len(rr),
                                      "recorded_at": [at(0)] * len(rr), "rr_ms": rr})

    two_beats = recording("q1", [931.5591023447093, 1117.0])
    alone = rr_recording_summaries(two_beats.lazy(), CFG).collect()
    others = [recording("q0", [250.0] * 3), recording("q2", [250.0] * 2), recording_frame(np.random.default_rng(5))]
    for company in ([others[0]], [others[1]], others):
        got = rr_recording_summaries(pl.concat([*company, two_beats]).lazy(), CFG).collect()
        assert_frame_equal(got.filter(pl.col("patient_id") == "q1"), alone, check_exact=True)
