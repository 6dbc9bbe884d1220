"""Per-recording HRV summaries from raw beats (`rr_intervals`), after artefact filtering.

Artefact rule, applied to each recording's beats in their file order:
1. a beat outside [rr_min_ms, rr_max_ms] (inclusive bounds kept) is removed;
2. a beat whose interval differs from the previous *kept* beat's by more than
   rr_max_change × that previous interval (|rr − prev| > rr_max_change · prev) is removed; the
   first in-range beat of a recording has no previous beat and is kept. Because the comparison
   is with the previous kept beat, a removed ectopic beat does not become the reference, and
   the beat after it is compared with the last good one. (A consequence: if a recording starts
   on an artefact that passes rule 1, it is the reference until a beat within the limit of it.)

On the kept beats, taken as one successive series (a difference spans a removed beat), with
N kept intervals and the N − 1 successive differences d:
- `rmssd_ms` = sqrt(mean(d²)); `sdnn_ms` = standard deviation with ddof = 1 (sample SD, as
  NeuroKit2's `hrv_time`); `mean_hr_bpm` = 60 000 / mean(kept intervals);
- `pnn50` = 100 · #(|d| > 50 ms) / N, NeuroKit2's `hrv_time` convention (the count over the
  number of NN intervals, as the 1996 Task Force worded it, not over N − 1 differences).
A recording with fewer than two kept beats has null summaries. These agree with NeuroKit2's
`hrv_time({"RRI": kept})` to within floating-point rounding (tested to 1e-6 relative).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from features.config import HrvConfig

SUMMARY_COLUMNS = ("rmssd_ms", "sdnn_ms", "pnn50", "mean_hr_bpm")


def artefact_mask(
    rr_ms: np.ndarray,
    recording_start: np.ndarray,
    rr_min_ms: float,
    rr_max_ms: float,
    max_change: float,
) -> np.ndarray:
    """True for each beat the artefact rule keeps; `recording_start` flags recordings' first rows.

    Vectorised for clean stretches; only a recording with a suspicious jump is walked beat by
    beat, from its first jump on.

    >>> rr = np.array([800., 810., 1200., 820., 100., 830., 800.])
    >>> start = np.array([True, False, False, False, False, False, True])
    >>> artefact_mask(rr, start, 300, 2000, 0.2).tolist()
    [True, True, False, True, False, True, True]
    """
    rr_ms = np.asarray(rr_ms, dtype=np.float64)
    keep = (rr_ms >= rr_min_ms) & (rr_ms <= rr_max_ms)
    recording = np.cumsum(np.asarray(recording_start, dtype=bool))
    idx = np.flatnonzero(keep)
    if idx.size < 2:
        return keep
    prev, cur = rr_ms[idx[:-1]], rr_ms[idx[1:]]
    same = recording[idx[1:]] == recording[idx[:-1]]
    jumps = np.flatnonzero(same & (np.abs(cur - prev) > max_change * prev)) + 1  # positions in idx
    if jumps.size == 0:
        return keep
    rec_of = recording[idx]
    ends = np.searchsorted(rec_of, rec_of[jumps], side="right").tolist()  # rec_of is non-decreasing
    values = rr_ms[idx].tolist()  # the in-range beats, in order; plain floats for the walk
    removed: list[int] = []
    done_end = -1
    for j, end in zip(jumps.tolist(), ends, strict=True):
        if end == done_end:  # a later jump of a recording already walked
            continue
        done_end = end
        reference = values[j - 1]  # every beat before a recording's first jump is kept
        for k in range(j, end):
            value = values[k]
            if abs(value - reference) > max_change * reference:
                removed.append(k)
            else:
                reference = value
    keep[idx[removed]] = False
    return keep


def rr_recording_summaries(rr: pl.LazyFrame, cfg: HrvConfig) -> pl.LazyFrame:
    """One row per (patient_id, recording_id): recorded_at, beats, kept beats and the summaries.

    Beats keep their file order within a recording (a stable sort groups each recording's rows).
    """
    ordered = rr.sort("patient_id", "recording_id", maintain_order=True)
    start = (
        (pl.col("patient_id") != pl.col("patient_id").shift(1))
        | (pl.col("recording_id") != pl.col("recording_id").shift(1))
    ).fill_null(True)
    marked = ordered.with_columns(
        pl.struct(pl.col("rr_ms"), start.alias("start"))
        .map_batches(
            lambda s: pl.Series(
                artefact_mask(
                    s.struct.field("rr_ms").to_numpy(),
                    s.struct.field("start").to_numpy(),
                    cfg.rr_min_ms,
                    cfg.rr_max_ms,
                    cfg.rr_max_change,
                )
            ),
            return_dtype=pl.Boolean,
        )
        .alias("_kept")
    )
    kept = pl.col("rr_ms").filter(pl.col("_kept"))
    diff = kept.diff().drop_nulls()
    n_kept = pl.col("_kept").sum().cast(pl.Int64)
    enough = n_kept >= 2
    summaries = marked.group_by("patient_id", "recording_id", maintain_order=True).agg(
        pl.col("recorded_at").min(),
        pl.len().cast(pl.Int64).alias("n_beats"),
        n_kept.alias("n_kept"),
        pl.when(enough).then((diff * diff).mean().sqrt()).alias("rmssd_ms"),
        pl.when(enough).then(kept.std(ddof=1)).alias("sdnn_ms"),
        pl.when(enough).then(100.0 * (diff.abs() > 50).sum() / n_kept).alias("pnn50"),
        pl.when(enough).then(60_000.0 / kept.mean()).alias("mean_hr_bpm"),
    )
    return summaries.sort("patient_id", "recording_id")
