"""Recalibration of a model's probabilities: isotonic (step-wise monotone) or Platt (logistic
on the logit). Stored as plain numbers so a bundle needs no pickle."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression

from models.link import logit, sigmoid
from models.metrics import recalibration_line

# Calibrated risks are kept inside [RISK_FLOOR, 1 - RISK_FLOOR]: a step of the isotonic fit can
# be exactly 0 or 1, which is not a credible risk and has no finite log-odds.
RISK_FLOOR = 1e-4


class Calibrator:
    """Maps raw probabilities to calibrated ones, fitted on out-of-fold predictions.

    isotonic: the weighted isotonic regression of y on p, stored as its knots and read back
    by linear interpolation (flat beyond the end knots) - monotone non-decreasing.
    platt: logit(risk) = a + b * logit(p), a weighted logistic fit - monotone if b >= 0.

    >>> cal = Calibrator("platt").fit(np.array([0.1, 0.4, 0.6, 0.9]), np.array([0, 1, 0, 1]))
    >>> Calibrator.from_dict(cal.to_dict()).predict(np.array([0.5])).round(3).tolist()
    [0.5]
    """

    def __init__(self, method: Literal["isotonic", "platt"] = "isotonic"):
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
            a, b = recalibration_line(y, p, sample_weight)
            if not (np.isfinite(a) and np.isfinite(b)):
                raise ValueError("Platt scaling did not converge (a single class or separable)")
            self.a_, self.b_ = a, b
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, within [RISK_FLOOR, 1 - RISK_FLOOR]."""
        p = np.asarray(p, dtype=np.float64)
        if self.method == "isotonic":
            out = np.interp(p, self.x_, self.y_)
        else:
            out = sigmoid(self.a_ + self.b_ * logit(p))
        return np.clip(out, RISK_FLOOR, 1.0 - RISK_FLOOR)

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
