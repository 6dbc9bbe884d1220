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

    The rule: a beat outside [rr_min_ms, rr_max_ms] is dropped, and an in-range beat that differs
    from the last kept beat of its recording by more than `max_change` of it. Where the beat
    before is kept, "the last kept beat" is simply the one before, so the comparisons are made
    for all beats at once; only from a jump (a beat failing that comparison) is the recording
    walked beat by beat, until a beat is kept again, after which the two agree up to the next jump.

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
    values = rr_ms[idx]  # the in-range beats, in order; the walks read a few of them
    removed: list[int] = []
    decided = 0  # positions below this are settled by a walk
    for j, end in zip(jumps.tolist(), ends, strict=True):
        if j < decided:  # a jump met inside an earlier walk
            continue
        reference = float(values[j - 1])  # kept: no jump since the last walk ended on a kept beat
        k = j
        while k < end and abs(float(values[k]) - reference) > max_change * reference:
            removed.append(k)
            k += 1
        decided = k + 1  # beat k (if in the recording) is kept: in step again
    keep[idx[removed]] = False
    return keep


def recording_summaries(rr_ms: np.ndarray, recording_start: np.ndarray, kept: np.ndarray) -> dict[str, np.ndarray]:
    """Per recording, in the order of `recording_start`'s flags: counts and the four summaries.

    Every sum is taken beat by beat in file order (`np.bincount` accumulates sequentially), so a
    recording's figures depend on its own beats alone, to the last bit, whichever other recordings
    or patients share the frame. A recording with fewer than two kept beats gets NaN summaries.

    >>> rr = np.array([800., 810., 1200., 820., 900., 700.])
    >>> start = np.array([True, False, False, False, True, False])
    >>> out = recording_summaries(rr, start, np.array([True, True, False, True, True, False]))
    >>> out["n_beats"].tolist(), out["n_kept"].tolist(), out["rmssd_ms"][0].round(3).item()
    ([4, 2], [3, 1], 10.0)
    """
    recording = np.cumsum(np.asarray(recording_start, dtype=bool)) - 1
    n = int(recording[-1]) + 1 if recording.size else 0
    idx = np.flatnonzero(kept)
    of, values = recording[idx], np.asarray(rr_ms, dtype=np.float64)[idx]

    def per_recording(at: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(at, weights, minlength=n)

    n_kept = per_recording(of)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = per_recording(of, values) / n_kept
        deviation = values - mean[of]
        same = of[1:] == of[:-1]  # successive kept beats of one recording
        diff, diff_of = (values[1:] - values[:-1])[same], of[1:][same]
        enough = n_kept >= 2
        return {
            "n_beats": per_recording(recording),
            "n_kept": n_kept,
            "rmssd_ms": np.where(enough, np.sqrt(per_recording(diff_of, diff * diff) / (n_kept - 1)), np.nan),
            "sdnn_ms": np.where(enough, np.sqrt(per_recording(of, deviation * deviation) / (n_kept - 1)), np.nan),
            "pnn50": np.where(enough, 100.0 * per_recording(diff_of[np.abs(diff) > 50]) / n_kept, np.nan),
            "mean_hr_bpm": np.where(enough, 60_000.0 / mean, np.nan),
        }


def rr_recording_summaries(rr: pl.LazyFrame, cfg: HrvConfig) -> pl.LazyFrame:
    """One row per (patient_id, recording_id): recorded_at, beats, kept beats and the summaries.

    Beats keep their file order within a recording (a stable sort groups each recording's rows);
    the summaries are `recording_summaries` of the beats `artefact_mask` keeps, null for a
    recording with fewer than two kept beats.
    """
    schema = rr.collect_schema()
    out = {
        "patient_id": schema["patient_id"],
        "recording_id": schema["recording_id"],
        "recorded_at": schema["recorded_at"],
        "n_beats": pl.Int64,
        "n_kept": pl.Int64,
        **dict.fromkeys(SUMMARY_COLUMNS, pl.Float64),
    }

    def summarise(beats: pl.DataFrame) -> pl.DataFrame:
        patient, recording = beats["patient_id"], beats["recording_id"]
        start = ((patient != patient.shift(1)) | (recording != recording.shift(1))).fill_null(True).to_numpy()
        rr_ms = beats["rr_ms"].to_numpy()
        kept = artefact_mask(rr_ms, start, cfg.rr_min_ms, cfg.rr_max_ms, cfg.rr_max_change)
        first = np.flatnonzero(start)
        at = beats["recorded_at"]
        earliest = np.minimum.reduceat(at.to_physical().to_numpy(), first) if first.size else first
        return pl.DataFrame(
            {
                "patient_id": patient.gather(first),
                "recording_id": recording.gather(first),
                "recorded_at": pl.Series(earliest).cast(at.dtype),
                **recording_summaries(rr_ms, start, kept),
            }
        ).select(pl.col(name).cast(dtype) for name, dtype in out.items()).fill_nan(None)

    return rr.sort("patient_id", "recording_id", maintain_order=True).map_batches(summarise, schema=out)
