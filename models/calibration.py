"""Recalibration of a model's probabilities: Platt (logistic on the logit, the default) or
isotonic (step-wise monotone). Stored as plain numbers so a bundle needs no pickle.

Why Platt by default: a clinic reads the calibrated number. Isotonic regression fitted on a few
dozen events is a staircase: it maps the top of the raw scale to exactly 1 and can jump from 16%
to 71% between neighbouring patients where events are sparse. Platt scaling is a smooth,
monotone map with two parameters, so it cannot overfit a sparse tail; its slope is capped at
`MAX_PLATT_SLOPE` (with the intercept refitted under the cap), so neighbouring margins 0.05
apart can never differ by more than MAX_PLATT_SLOPE * 0.05 / 4 = 0.075 in calibrated risk.
Every calibrated risk, of either method, lies in [RISK_FLOOR, RISK_CEILING]: a 30-day risk of
exactly 0 or 1 is not a credible statement from a model fitted on a cohort.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression

from models.link import logit, sigmoid
from models.metrics import offset_intercept, recalibration_line

RISK_FLOOR = 1e-3
RISK_CEILING = 0.98
MAX_PLATT_SLOPE = 6.0


class Calibrator:
    """Maps raw probabilities to calibrated ones, fitted on out-of-fold predictions.

    isotonic: the weighted isotonic regression of y on p, stored as its knots and read back
    by linear interpolation (flat beyond the end knots) - monotone non-decreasing.
    platt: logit(risk) = a + b * logit(p), a weighted logistic fit with 0 <= b <= MAX_PLATT_SLOPE
    (monotone non-decreasing; a fit outside the range is clamped and its intercept refitted).

    >>> cal = Calibrator("platt").fit(np.array([0.1, 0.4, 0.6, 0.9]), np.array([0, 1, 0, 1]))
    >>> Calibrator.from_dict(cal.to_dict()).predict(np.array([0.5])).round(3).tolist()
    [0.5]
    """

    def __init__(self, method: Literal["isotonic", "platt"] = "platt"):
        self.method = method

    def fit(
        self, p: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> Calibrator:
        if self.method not in ("isotonic", "platt"):
            raise ValueError(f"unknown calibration method {self.method!r}")
        p = np.asarray(p, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if p.size == 0 or p.shape != y.shape:
            raise ValueError("p and y must be non-empty arrays of the same length")
        if self.method == "isotonic":
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
            iso.fit(p, y, sample_weight=sample_weight)
            self.x_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
            self.y_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        else:
            self.a_, self.b_ = _platt(p, y, sample_weight)
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, within [RISK_FLOOR, RISK_CEILING]."""
        p = np.asarray(p, dtype=np.float64)
        if self.method == "isotonic":
            out = np.interp(p, self.x_, self.y_)
        else:
            out = sigmoid(self.a_ + self.b_ * logit(p))
        return np.clip(out, RISK_FLOOR, RISK_CEILING)

    @property
    def flat(self) -> bool:
        """Whether every raw probability maps to one calibrated risk (a Platt slope clamped to 0,
        when the out-of-fold risks ranked patients no better than chance or the wrong way round;
        or isotonic knots all at one level): then no feature changes the risk it reports."""
        if self.method == "isotonic":
            return bool(self.y_.max() == self.y_.min())
        return self.b_ == 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe parameters (plain floats and lists)."""
        if self.method == "isotonic":
            return {"method": "isotonic", "x": self.x_.tolist(), "y": self.y_.tolist()}
        return {"method": "platt", "a": self.a_, "b": self.b_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        cal = cls(data["method"])
        if cal.method == "isotonic":
            cal.x_ = np.asarray(data["x"], dtype=np.float64)
            cal.y_ = np.asarray(data["y"], dtype=np.float64)
            if cal.x_.size == 0 or cal.x_.shape != cal.y_.shape or np.any(np.diff(cal.x_) < 0) \
                    or np.any(np.diff(cal.y_) < 0):
                raise ValueError("isotonic calibrator knots must be non-empty and ascending")
        elif cal.method == "platt":
            cal.a_, cal.b_ = float(data["a"]), float(data["b"])
        else:
            raise ValueError(f"unknown calibration method {cal.method!r}")
        return cal


def _platt(p: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> tuple[float, float]:
    """(a, b) with b clamped to [0, MAX_PLATT_SLOPE]; `a` refitted whenever b was clamped.

    A fit that does not converge (one class, or perfectly separated data) is treated as the
    cap: the slope is bounded and the intercept is still the weighted maximum likelihood one.
    """
    if y.min() == y.max():
        raise ValueError("Platt scaling needs both outcome classes")
    a, b = recalibration_line(y, p, w)
    if np.isfinite(a) and np.isfinite(b) and 0.0 <= b <= MAX_PLATT_SLOPE:
        return a, b
    b = 0.0 if np.isfinite(b) and b < 0 else MAX_PLATT_SLOPE
    return offset_intercept(y, b * logit(p), w), b
