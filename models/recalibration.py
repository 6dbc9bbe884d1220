"""Site recalibration of a trained model by closed testing (Vergouwe et al. 2017, Stat Med).

A separate layer applied to the logit of the model's calibrated risk, after whatever calibrator
each phase has, so the boosters and calibrators of the parent model stay byte-identical:

    none:            risk' = risk
    intercept:       logit(risk') = a + logit(risk)          (b = 1)
    intercept_slope: logit(risk') = a + b * logit(risk)

Closed testing on the local labelled rows of one phase, with IPCW-weighted log-likelihoods
(weights rescaled to mean 1, so the statistics are on the scale of the row count):
1. LR = 2 (LL[intercept_slope] - LL[none]) against chi-square(2). Not rejected at `alpha`: keep
   the model as it is ("none").
2. Otherwise LR = 2 (LL[intercept_slope] - LL[intercept]) against chi-square(1). Rejected:
   "intercept_slope"; not rejected: "intercept".
When the slope cannot be estimated (constant predictions, as from a fallback phase, or a single
outcome class), step 1 compares intercept against none with chi-square(1) and step 2 is skipped.

Guards (the first two stated in the test's `note` when they decide):
- A slope of zero or below is never chosen: it would rank the local patients the other way round
  (or all alike), and reasons that raise the model's risk would lower the reported one. A model
  that ranks a cohort no better than chance, or inverted, is not fixed by recalibration; the
  test falls back to the intercept alone and says so.
- A phase with fewer than `min_events` patients with an event keeps the model: five events give
  a slope of 4 or an intercept of +5 as easily as the truth.
- A recalibrated risk lies in [RISK_FLOOR, RISK_CEILING], as every calibrated risk does.

Caveat: landmark rows of one patient are correlated (an event is seen by several weekly
landmarks), so treating rows as independent makes the tests somewhat anti-conservative; with
the simple models tested (one or two parameters) this errs towards updating a model that needed
little, which is the cheaper error for a clinic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import chi2

from models.calibration import RISK_CEILING, RISK_FLOOR
from models.link import logit, sigmoid
from models.metrics import calibration_intercept, recalibration_line

Method = Literal["none", "intercept", "intercept_slope"]
METHODS: tuple[str, ...] = ("none", "intercept", "intercept_slope")
ALPHA = 0.05


@dataclass(frozen=True)
class Recalibration:
    """One phase's recalibration layer: logit(risk') = a + b * logit(risk)."""

    method: Method = "none"
    a: float = 0.0
    b: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown recalibration method {self.method!r}; expected one of {METHODS}")
        if not (np.isfinite(self.a) and np.isfinite(self.b)):
            raise ValueError("recalibration coefficients must be finite")
        if self.method == "none" and (self.a != 0.0 or self.b != 1.0):
            raise ValueError("recalibration 'none' must have a = 0 and b = 1")
        if self.method == "intercept" and self.b != 1.0:
            raise ValueError("recalibration 'intercept' must have b = 1")
        if self.b <= 0:
            raise ValueError("a recalibration slope must be positive: a slope of 0 or below reverses the ranking")

    def apply(self, risk: np.ndarray) -> np.ndarray:
        risk = np.asarray(risk, dtype=np.float64)
        if self.method == "none":
            return risk
        return np.clip(sigmoid(self.a + self.b * logit(risk)), RISK_FLOOR, RISK_CEILING)

    def then(self, later: Recalibration) -> Recalibration:
        """This layer followed by `later`, as one layer (used when a recalibrated model is
        recalibrated again): a = a2 + b2 a1, b = b2 b1."""
        if later.method == "none":
            return self
        method = "intercept_slope" if "intercept_slope" in (self.method, later.method) else "intercept"
        b = later.b * self.b
        return Recalibration(method, later.a + later.b * self.a, 1.0 if method == "intercept" else b)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": float(self.a), "b": float(self.b)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recalibration:
        return cls(data["method"], float(data["a"]), float(data["b"]))


@dataclass(frozen=True)
class ClosedTest:
    """The outcome of closed testing on one phase: the choice and the evidence behind it."""

    chosen: Recalibration
    log_likelihood: dict[str, float]  # per candidate method (NaN where not estimable)
    p_overall: float  # step 1 p-value
    p_slope: float | None  # step 2 p-value; None when step 2 was not reached or not possible
    n_rows: int
    n_events: int
    note: str = ""  # why a guard (module docstring) decided, when one did

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.chosen.method,
            "a": self.chosen.a,
            "b": self.chosen.b,
            "log_likelihood": self.log_likelihood,
            "p_overall": self.p_overall,
            "p_slope": self.p_slope,
            "n_rows": self.n_rows,
            "n_events": self.n_events,
            "note": self.note,
        }


def log_likelihood(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    """Weighted Bernoulli log-likelihood sum(w [y log p + (1 - y) log(1 - p)])."""
    z = logit(p)
    return float(np.sum(w * (y * z - np.logaddexp(0.0, z))))


def closed_test(y: np.ndarray, risk: np.ndarray, w: np.ndarray | None = None, alpha: float = ALPHA,
                groups: np.ndarray | None = None, min_events: int = 0) -> ClosedTest:
    """Choose none / intercept / intercept_slope for one phase (see the module docstring).

    y: 0/1 labels; risk: the model's calibrated risk for the same rows; w: IPCW weights; groups:
    each row's patient, to count patients with an event against `min_events` (without groups,
    rows are counted). Rows with no events or no non-events keep the model ("none"): nothing can
    be tested.
    """
    y = np.asarray(y, dtype=np.float64)
    risk = np.asarray(risk, dtype=np.float64)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=np.float64)
    if not (y.shape == risk.shape == w.shape) or y.ndim != 1:
        raise ValueError("y, risk and w must be 1-D arrays of one length")
    n, events = int(y.size), int(np.sum(y == 1))
    untested = {m: float("nan") for m in METHODS}
    if n == 0 or events in (0, n) or w.sum() <= 0:
        return ClosedTest(Recalibration(), untested, 1.0, None, n, events)
    event_patients = events if groups is None else int(np.unique(np.asarray(groups)[y == 1]).size)
    if event_patients < min_events:
        return ClosedTest(Recalibration(), untested, 1.0, None, n, events,
                          f"kept: {event_patients} patient(s) with an event, fewer than min_events ({min_events})")
    w = w * (n / w.sum())
    a_int = calibration_intercept(y, risk, w)
    a_line, b_line = recalibration_line(y, risk, w)
    estimable = np.isfinite(a_line) and np.isfinite(b_line) and np.ptp(risk) > 0
    note = ""
    if estimable and b_line <= 0:
        estimable = False
        note = (f"slope {b_line:.3f} not used: the model ranks these patients no better than chance or the "
                "wrong way round, which recalibration cannot fix")
    candidates = {
        "none": Recalibration(),
        "intercept": Recalibration("intercept", a_int, 1.0) if np.isfinite(a_int) else None,
        "intercept_slope": Recalibration("intercept_slope", a_line, b_line) if estimable else None,
    }
    ll = {m: log_likelihood(y, c.apply(risk), w) if c else float("nan") for m, c in candidates.items()}

    def chose(method: str, p1: float, p2: float | None = None) -> ClosedTest:
        return ClosedTest(candidates[method], ll, p1, p2, n, events, note)

    if candidates["intercept_slope"] is None:
        if candidates["intercept"] is None:
            return chose("none", 1.0)
        p1 = float(chi2.sf(max(2 * (ll["intercept"] - ll["none"]), 0.0), df=1))
        return chose("intercept" if p1 < alpha else "none", p1)
    p1 = float(chi2.sf(max(2 * (ll["intercept_slope"] - ll["none"]), 0.0), df=2))
    if p1 >= alpha:
        return chose("none", p1)
    if candidates["intercept"] is None:
        return chose("intercept_slope", p1)
    p2 = float(chi2.sf(max(2 * (ll["intercept_slope"] - ll["intercept"]), 0.0), df=1))
    return chose("intercept_slope" if p2 < alpha else "intercept", p1, p2)
