"""Unit tests: the table-based TreeSHAP kernel equals XGBoost's pred_contribs.

XGBoost's own values are float32 sums, so it is compared to 1e-6 on small models; an
independent float64 brute force (the exponential definition of path-dependent TreeSHAP, over
the JSON dump) checks the kernel to 1e-12.
"""

import itertools
import json
import math
import warnings

import numpy as np
import pytest
import xgboost

from models import explain, treeshap
from models.explain import contributions, shallow_explainer
from models.treeshap import ShallowTreeExplainer, UnsupportedBooster

TOL = 1e-6


def _data(seed: int, n: int = 300, k: int = 6) -> dict[str, np.ndarray]:
    """Rows with ~30% NaN, an interaction, sample weights in [1, 3] and a per-row base margin."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    X[rng.random(X.shape) < 0.3] = np.nan
    z = np.nan_to_num(X)
    eta = z[:, 0] - 0.8 * z[:, 1] + z[:, 2] * z[:, 3] - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.float64)
    return {"X": X, "y": y, "w": rng.uniform(1.0, 3.0, n), "margin": rng.normal(0.0, 0.3, n)}


def _train(d: dict, depth: int, rounds: int = 15, base_margin: bool = False, **params) -> xgboost.Booster:
    dtrain = xgboost.DMatrix(d["X"], d["y"], weight=d["w"], base_margin=d["margin"] if base_margin else None)
    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": depth, "eta": 0.3,
              "subsample": 0.8, "colsample_bytree": 0.8, "nthread": 1, "seed": 0} | params
    return xgboost.train(params, dtrain, rounds)


def _reference(booster, X, base_margin=None, **kwargs):
    dm = xgboost.DMatrix(np.asarray(X, dtype=np.float32), missing=np.nan, base_margin=base_margin)
    contribs = booster.predict(dm, pred_contribs=True, **kwargs).astype(np.float64)
    margins = booster.predict(dm, output_margin=True, **kwargs).astype(np.float64)
    return contribs[:, :-1], contribs[:, -1], margins


def _assert_matches(shap, base, booster, X, base_margin=None, **kwargs):
    ref_shap, ref_base, margins = _reference(booster, X, base_margin, **kwargs)
    assert shap.dtype == base.dtype == np.float64
    assert shap.shape == X.shape and base.shape == (X.shape[0],)
    np.testing.assert_allclose(shap, ref_shap, rtol=0, atol=TOL)
    np.testing.assert_allclose(base, ref_base, rtol=0, atol=TOL)
    np.testing.assert_allclose(base + shap.sum(axis=1), margins, rtol=0, atol=TOL)


def _brute_force(booster: xgboost.Booster, X: np.ndarray) -> np.ndarray:
    """Path-dependent TreeSHAP by definition: v(S) follows x at splits on features in S and
    averages the children by cover elsewhere; Shapley values by enumerating subsets."""
    X32 = np.asarray(X, dtype=np.float32)
    out = np.zeros(X.shape)

    def value(node, x, S):
        if "leaf" in node:
            return float(np.float32(node["leaf"]))
        children = {c["nodeid"]: c for c in node["children"]}
        feature = int(node["split"][1:])
        if feature in S:
            xv = x[feature]
            nxt = node["missing"] if np.isnan(xv) else (
                node["yes"] if xv < np.float32(node["split_condition"]) else node["no"])
            return value(children[nxt], x, S)
        weighted = sum(float(np.float32(c["cover"])) * value(c, x, S) for c in node["children"])
        return weighted / float(np.float32(node["cover"]))

    for tree in (json.loads(t) for t in booster.get_dump(dump_format="json", with_stats=True)):
        features = sorted({int(s[1:]) for s in _splits(tree)})
        m = len(features)
        for r, x in enumerate(X32):
            v = {S: value(tree, x, set(S)) for size in range(m + 1) for S in itertools.combinations(features, size)}
            for j in features:
                others = [f for f in features if f != j]
                for size in range(m):
                    weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
                    for S in itertools.combinations(others, size):
                        out[r, j] += weight * (v[tuple(sorted((*S, j)))] - v[S])
    return out


def _splits(node):
    if "leaf" not in node:
        yield node["split"]
        for child in node["children"]:
            yield from _splits(child)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_equals_pred_contribs(depth, seed):
    d = _data(seed)
    booster = _train(d, depth, base_margin=seed == 2)
    explainer = ShallowTreeExplainer.from_booster(booster)
    shap, base = explainer.shap_values(d["X"])
    _assert_matches(shap, base, booster, d["X"])
    # a base margin given at predict time shifts base only
    shap_m, base_m = explainer.shap_values(d["X"], base_margin=d["margin"])
    np.testing.assert_array_equal(shap_m, shap)
    _assert_matches(shap_m, base_m, booster, d["X"], base_margin=d["margin"])


def test_a_row_gets_the_same_bits_in_any_batch(monkeypatch):
    """Scoring in patient batches must not change a row's SHAP values: one row alone, a last
    block of one row and the whole set give the same bits (many trees share each feature)."""
    d = _data(1, n=400, k=8)
    explainer = ShallowTreeExplainer.from_booster(_train(d, depth=2, rounds=200))
    whole, _ = explainer.shap_values(d["X"])
    for start, stop in ((0, 1), (7, 8), (0, 3), (100, 399), (398, 400)):
        np.testing.assert_array_equal(explainer.shap_values(d["X"][start:stop])[0], whole[start:stop])
    monkeypatch.setattr(treeshap, "_ROW_BLOCK_ELEMENTS", 1)  # blocks of 16 rows
    np.testing.assert_array_equal(explainer.shap_values(d["X"][:17])[0], whole[:17])  # last block: 1 row


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_equals_the_definition_in_float64(depth):
    d = _data(10 + depth, k=5)
    booster = _train(d, depth, rounds=4)
    shap, _ = ShallowTreeExplainer.from_booster(booster).shap_values(d["X"][:25])
    np.testing.assert_allclose(shap, _brute_force(booster, d["X"][:25]), rtol=0, atol=1e-12)


def test_float32_comparison_and_default_directions():
    """Values at a threshold go right, the float32 just below goes left, float64 values that
    round onto a threshold go right, NaN follows default_left; the probe rows hit all of them."""
    d = _data(3)
    booster = _train(d, 3)
    explainer = ShallowTreeExplainer.from_booster(booster)
    probe = explainer._probe_rows(200).astype(np.float64)
    nudged = probe - np.abs(probe) * 1e-9  # below the threshold in float64, onto it in float32
    assert np.array_equal(nudged.astype(np.float32), probe.astype(np.float32), equal_nan=True)
    for X in (probe, nudged):
        _assert_matches(*explainer.shap_values(X), booster, X)


def test_trees_without_a_split():
    d = _data(4)
    splitting = _train(d, 2, rounds=5)
    # gamma this large forbids every split: the later trees are single leaves
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 2, "gamma": 1e9, "nthread": 1},
                            xgboost.DMatrix(d["X"], d["y"], weight=d["w"]), 4, xgb_model=splitting)
    dumps = booster.get_dump(dump_format="json")
    assert sum('"leaf"' in t and '"split"' not in t for t in dumps) == 4
    _assert_matches(*ShallowTreeExplainer.from_booster(booster).shap_values(d["X"]), booster, d["X"])
    only_leaves = xgboost.train({"objective": "binary:logistic", "gamma": 1e9, "nthread": 1},
                                xgboost.DMatrix(d["X"], d["y"]), 3)
    shap, base = ShallowTreeExplainer.from_booster(only_leaves).shap_values(d["X"])
    assert not shap.any()
    _assert_matches(shap, base, only_leaves, d["X"])


def test_early_stopped_classifier_uses_all_rounds_like_booster_predict():
    d = _data(5, n=400)
    clf = xgboost.XGBClassifier(n_estimators=200, max_depth=2, learning_rate=0.3, tree_method="hist",
                                early_stopping_rounds=5, n_jobs=1, random_state=0)
    clf.fit(d["X"][:300], d["y"][:300], sample_weight=d["w"][:300],
            eval_set=[(d["X"][300:], d["y"][300:])], verbose=False)
    booster = clf.get_booster()
    best = int(clf.best_iteration)
    assert booster.num_boosted_rounds() > best + 1  # the rounds after the best one are kept
    _assert_matches(*ShallowTreeExplainer.from_booster(booster).shap_values(d["X"]), booster, d["X"])
    explainer = ShallowTreeExplainer.from_booster(booster, iteration_range=(0, best + 1))
    _assert_matches(*explainer.shap_values(d["X"]), booster, d["X"], iteration_range=(0, best + 1))
    with pytest.raises(ValueError, match="iteration_range"):
        ShallowTreeExplainer.from_booster(booster, iteration_range=(1, best + 1))


@pytest.mark.parametrize("objective", ["reg:logistic", "reg:squarederror", "reg:pseudohubererror",
                                       "reg:absoluteerror", "count:poisson", "reg:gamma", "reg:tweedie"])
def test_other_objectives_base_margin(objective):
    d = _data(6)
    d["y"] = d["y"] + 0.5 if objective in ("count:poisson", "reg:gamma", "reg:tweedie") else d["y"]
    booster = _train(d, 2, objective=objective)
    _assert_matches(*ShallowTreeExplainer.from_booster(booster, verify=True).shap_values(d["X"]), booster, d["X"])


def test_contributions_uses_the_cached_tables_and_falls_back_for_deep_trees():
    d = _data(7)
    booster = _train(d, 2)
    explainer = shallow_explainer(booster)
    assert explainer is not None and shallow_explainer(booster) is explainer
    _assert_matches(*contributions(booster, d["X"]), booster, d["X"])
    _assert_matches(*contributions(booster, d["X"], base_margin=d["margin"]), booster, d["X"], d["margin"])
    booster.update(xgboost.DMatrix(d["X"], d["y"]), booster.num_boosted_rounds())  # one more round
    assert shallow_explainer(booster) is not explainer
    _assert_matches(*contributions(booster, d["X"]), booster, d["X"])
    deep = _train(d, 8, rounds=3, eta=1.0, subsample=1.0, colsample_bytree=1.0, min_child_weight=0.0)
    depth = max(len(line) - len(line.lstrip("\t")) for line in deep.get_dump()[0].splitlines())
    assert depth > treeshap.MAX_LEAF_PATH  # a leaf deeper than the tables cover
    with pytest.raises(UnsupportedBooster):
        ShallowTreeExplainer.from_booster(deep)
    assert shallow_explainer(deep) is None
    _assert_matches(*contributions(deep, d["X"], base_margin=d["margin"]), booster=deep, X=d["X"],
                    base_margin=d["margin"])


def test_disagreement_with_xgboost_warns_and_falls_back(monkeypatch):
    d = _data(8)
    booster = _train(d, 2)

    def broken(cls, booster, iteration_range):
        explainer = original(booster, iteration_range)
        explainer.tree_expected_value += 0.01
        explainer.expected_value += 0.01
        return explainer

    original = ShallowTreeExplainer._parse
    monkeypatch.setattr(ShallowTreeExplainer, "_parse", classmethod(broken))
    with pytest.warns(UserWarning, match="disagree"):
        assert shallow_explainer(booster) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_matches(*contributions(booster, d["X"]), booster, d["X"])  # cached fallback, no new warning
    assert booster in explain._EXPLAINERS


def test_an_unreadable_model_warns_and_falls_back(monkeypatch):
    d = _data(8)
    booster = _train(d, 2)

    def unreadable(cls, booster, iteration_range):
        raise KeyError("split_conditions")

    monkeypatch.setattr(ShallowTreeExplainer, "_parse", classmethod(unreadable))
    with pytest.warns(UserWarning, match="could not tabulate"):
        _assert_matches(*contributions(booster, d["X"]), booster, d["X"])


def test_row_blocks_give_the_same_values(monkeypatch):
    d = _data(11, n=700)
    explainer = ShallowTreeExplainer.from_booster(_train(d, 3))
    whole = explainer.shap_values(d["X"])
    monkeypatch.setattr(treeshap, "_ROW_BLOCK_ELEMENTS", 1)  # blocks of 256 rows, the last one shorter
    blocks = explainer.shap_values(d["X"])
    np.testing.assert_array_equal(blocks[0], whole[0])
    np.testing.assert_array_equal(blocks[1], whole[1])
    one_row = explainer.shap_values(d["X"][5:6])  # numpy may sum a single column in another order
    np.testing.assert_allclose(one_row[0], whole[0][5:6], rtol=0, atol=1e-14)


def test_rows_are_checked_and_empty_input_works():
    d = _data(9)
    explainer = ShallowTreeExplainer.from_booster(_train(d, 2))
    with pytest.raises(ValueError, match="must be"):
        explainer.shap_values(d["X"][:, :-1])
    shap, base = explainer.shap_values(d["X"][:0])
    assert shap.shape == (0, d["X"].shape[1]) and base.shape == (0,)
