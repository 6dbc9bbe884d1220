"""Reading an XGBoost booster's JSON dump (`save_raw("json")`) for the shallow-tree TreeSHAP kernel.

Each tree becomes its internal nodes (feature, float32 threshold, default direction), numbered
in the order reached from the root, and its leaves with their paths and cover ratios; the base
margin is the objective's link applied to base_score, in float32 as XGBoost computes it. What
the kernel does not cover (categorical splits, vector leaves, several outputs, other objectives)
is refused with `UnsupportedBooster`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_LOGIT_OBJECTIVES = {"binary:logistic", "reg:logistic"}
_IDENTITY_OBJECTIVES = {"reg:squarederror", "reg:pseudohubererror", "reg:absoluteerror"}
_LOG_OBJECTIVES = {"count:poisson", "reg:gamma", "reg:tweedie"}


class UnsupportedBooster(ValueError):
    """The booster has a tree or setting this kernel does not cover; use `pred_contribs`.

    `unexpected` is True when the tables were built but disagreed with XGBoost on probe rows:
    a bug or a model-format change rather than a known limit, worth a warning.
    """

    def __init__(self, message: str, unexpected: bool = False) -> None:
        super().__init__(message)
        self.unexpected = unexpected


@dataclass
class ParsedTree:
    """One parsed tree: internal nodes renumbered 0..n-1 in the order reached from the root."""

    feature: np.ndarray  # [n] int
    threshold: np.ndarray  # [n] float32
    default_left: np.ndarray  # [n] bool
    leaves: list[tuple[float, list[tuple[int, bool, float]]]]  # (value, [(node, went_left, cover ratio)])


def base_margin(learner: dict) -> float:
    """The margin every row starts from (the objective's link applied to base_score), as XGBoost
    computes it in float32."""
    params = learner["learner_model_param"]
    if int(params.get("num_class", "0")) > 1 or int(params.get("num_target", "1")) != 1:
        raise UnsupportedBooster("the booster has more than one output")
    scores = params["base_score"].strip("[]").split(",")
    if len(scores) != 1:
        raise UnsupportedBooster("the booster has more than one base score")
    score = np.float32(float(scores[0]))
    objective = learner["objective"]["name"]
    one = np.float32(1.0)
    if objective in _LOGIT_OBJECTIVES:
        return float(np.float32(-np.log(one / score - one)))
    if objective in _IDENTITY_OBJECTIVES:
        return float(score)
    if objective in _LOG_OBJECTIVES:
        return float(np.float32(np.log(score)))
    raise UnsupportedBooster(f"objective {objective!r} is not covered")


def parse_tree(tree: dict) -> ParsedTree:
    """Internal nodes and leaf paths of one tree from `save_raw("json")`, checked for what the
    kernel assumes (numeric splits, scalar leaves, positive cover, finite thresholds)."""
    if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
        raise UnsupportedBooster("vector-leaf trees are not covered")
    left, right = tree["left_children"], tree["right_children"]
    split_index, condition = tree["split_indices"], tree["split_conditions"]
    default_left, cover, split_type = tree["default_left"], tree["sum_hessian"], tree["split_type"]
    features, thresholds, defaults = [], [], []  # of internal node k, numbered as reached from the root
    leaves: list[tuple[float, list[tuple[int, bool, float]]]] = []
    stack: list[tuple[int, list[tuple[int, bool, float]]]] = [(0, [])]
    while stack:
        nid, path = stack.pop()
        if left[nid] == -1:
            leaves.append((float(np.float32(condition[nid])), path))
            continue
        if split_type[nid] != 0:
            raise UnsupportedBooster("categorical splits are not covered")
        threshold = np.float32(condition[nid])
        if not np.isfinite(threshold):
            raise UnsupportedBooster("a split condition is not finite")
        parent_cover = float(np.float32(cover[nid]))
        if not parent_cover > 0:
            raise UnsupportedBooster("a node has no cover")
        k = len(features)
        features.append(int(split_index[nid]))
        thresholds.append(threshold)
        defaults.append(bool(default_left[nid]))
        for child, went_left in ((right[nid], False), (left[nid], True)):
            ratio = float(np.float32(cover[child])) / parent_cover
            stack.append((child, [*path, (k, went_left, ratio)]))
    return ParsedTree(np.array(features, dtype=np.intp), np.array(thresholds, dtype=np.float32),
                 np.array(defaults, dtype=bool), leaves)
