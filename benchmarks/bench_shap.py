"""Benchmark: exact TreeSHAP by look-up tables against XGBoost's pred_contribs and plain predict.

Targets (performance issue, TreeSHAP kernel): on one thread, `explain.contributions` (the table
kernel) at most 3x a plain `predict(output_margin=True)` for depth-2 boosters and 6x for
depth 3, equal to `pred_contribs` (up to XGBoost's float32 rounding).

Boosters are trained like the project's (models.phase_model.fit_booster with the defaults in
configs/default.yaml, depth overridden, a fixed number of rounds in place of early stopping) on
synthetic rows with --features features, ~40% missing. Each repeat times the three side by side
on the same rows; the median is reported. XGBoost gets a fresh DMatrix per call (outside the
timing: a Booster caches predictions per DMatrix); the kernel is timed from the float64 array.

    .venv/bin/python benchmarks/bench_shap.py [--rows 200000] [--trees 300] [--depths 2 3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import xgboost

from models.explain import contributions, shallow_explainer
from models.phase_model import N_JOBS, Rows, fit_booster
from pipeline.config import load_config

TARGETS = {2: 3.0, 3: 6.0}


def synthetic_rows(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of k features, ~40% NaN, and labels from a logistic model with an interaction."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    X[rng.random(X.shape) < 0.4] = np.nan
    z = np.nan_to_num(X)
    eta = -1.5 + z[:, :10] @ np.linspace(0.8, -0.8, 10) + 0.5 * z[:, 10] * z[:, 11]
    return X, (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.float64)


def dmatrix(X: np.ndarray) -> xgboost.DMatrix:
    return xgboost.DMatrix(np.asarray(X, dtype=np.float32), missing=np.nan, nthread=N_JOBS)


def float64_margin(booster: xgboost.Booster, X: np.ndarray) -> np.ndarray:
    """The margin summed in float64: base margin plus each tree's leaf value (leaves from
    pred_leaf, values from the JSON model); XGBoost's own margin is a float32 sum."""
    model = json.loads(bytes(booster.save_raw("json")))["learner"]
    score = np.float32(model["learner_model_param"]["base_score"].strip("[]"))
    base = float(np.float32(-np.log(np.float32(1) / score - np.float32(1))))  # binary:logistic
    leaves = booster.predict(dmatrix(X), pred_leaf=True).astype(np.intp)
    values = [np.float32(t["split_conditions"]).astype(np.float64) for t in model["gradient_booster"]["model"]["trees"]]
    return base + sum(v[leaves[:, i]] for i, v in enumerate(values))


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def bench_depth(depth: int, args: argparse.Namespace, X_train, y_train, X) -> float:
    params = load_config().model.xgboost.model_copy(update={"max_depth": depth})
    rows = Rows(X_train, y_train, np.ones_like(y_train))
    seconds, (booster, _) = timed(lambda: fit_booster(params, 0, rows, rounds=args.trees))
    booster.set_param({"nthread": N_JOBS})
    build, explainer = timed(lambda: shallow_explainer(booster))
    assert explainer is not None, "the kernel does not cover this booster"
    print(f"depth {depth}: {booster.num_boosted_rounds()} trees (trained in {seconds:.1f} s); tables built and "
          f"verified in {build * 1e3:.0f} ms, {explainer.n_pairs} (tree, feature) look-ups per row", flush=True)
    times: dict[str, list[float]] = {"plain": [], "pred_contribs": [], "kernel": []}
    for r in range(args.repeats):  # plain and kernel back to back, so that both see the same load
        dm = dmatrix(X)
        t, margins = timed(lambda: booster.predict(dm, output_margin=True))  # noqa: B023 (called at once)
        times["plain"].append(t)
        t, (shap, base) = timed(lambda: contributions(booster, X))
        times["kernel"].append(t)
        if r < args.contrib_repeats:
            dm = dmatrix(X)
            t, reference = timed(lambda: booster.predict(dm, pred_contribs=True))  # noqa: B023
            times["pred_contribs"].append(t)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    for name, ts in times.items():
        print(f"  {name:<14} median {med[name]:7.3f} s ({med[name] / len(X) * 1e6:6.2f} us/row) "
              f"over {len(ts)}: {' '.join(f'{t:.3f}' for t in ts)}")
    paired = statistics.median(k / p for k, p in zip(times["kernel"], times["plain"], strict=True))
    diff = max(np.abs(shap - reference[:, :-1]).max(), np.abs(base - reference[:, -1]).max())
    additivity = np.abs(base + shap.sum(axis=1) - margins).max()
    xgb_additivity = np.abs(reference.sum(axis=1, dtype=np.float64) - margins).max()
    exact = float64_margin(booster, X[: args.exact_rows])
    exact_additivity = np.abs(base[: args.exact_rows] + shap[: args.exact_rows].sum(axis=1) - exact).max()
    ratio, xgb_ratio = med["kernel"] / med["plain"], med["pred_contribs"] / med["plain"]
    target = TARGETS.get(depth)
    verdict = f" ({'PASS' if ratio <= target else 'FAIL'}: target <= {target:g})" if target else ""
    print(f"  kernel / plain = {ratio:.2f}{verdict} (median of the per-repeat ratios {paired:.2f}); "
          f"pred_contribs / plain = {xgb_ratio:.2f}; "
          f"pred_contribs / kernel = {med['pred_contribs'] / med['kernel']:.1f}")
    print(f"  max |kernel - pred_contribs| = {diff:.2e} (pred_contribs is float32); "
          f"max |base + sum(shap) - margin| = {additivity:.2e} (pred_contribs' own: {xgb_additivity:.2e}); "
          f"against a float64 margin (first {min(args.exact_rows, len(X)):,} rows): {exact_additivity:.2e}",
          flush=True)
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows explained per call")
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=90)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of plain predict and the kernel")
    parser.add_argument("--exact-rows", type=int, default=20_000, help="rows checked against a float64 margin")
    parser.add_argument("--contrib-repeats", type=int, default=3, help="timed pred_contribs calls (the slow one)")
    args = parser.parse_args()
    X_train, y_train = synthetic_rows(args.train_rows, args.features, seed=1)
    X, _ = synthetic_rows(args.rows, args.features, seed=2)
    print(f"{args.rows:,} rows x {args.features} features ({np.isnan(X).mean():.0%} missing), "
          f"one thread (nthread={N_JOBS}), xgboost {xgboost.__version__}", flush=True)
    for depth in args.depths:
        bench_depth(depth, args, X_train, y_train, X)


if __name__ == "__main__":
    main()
