"""The logistic link: log-odds <-> probability, with clipping so logits stay finite."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

LOGIT_EPS = 1e-6


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """Probability from log-odds (numerically stable).

    >>> float(sigmoid(0.0))
    0.5
    """
    return expit(np.asarray(x, dtype=np.float64))


def logit(p: np.ndarray | float, eps: float = LOGIT_EPS) -> np.ndarray:
    """Log-odds of `p` after clipping it to [eps, 1 - eps], so 0 and 1 map to finite values.

    >>> float(logit(0.5))
    0.0
    """
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return np.log(q) - np.log1p(-q)
