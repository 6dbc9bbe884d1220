"""Figures for the audit report, returned as base64 PNG data URIs (no files, no network).

Each figure is a `matplotlib.figure.Figure` built directly (Agg rendering, no pyplot, so no
global figure registry to leak into) at a fixed DPI, drawn into memory and cleared. SHAP plots
are drawn here rather than with `shap.plots` so they are deterministic and need no pyplot state.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import numpy as np
import polars as pl
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

DPI = 100
RED, BLUE, GREY, INK = "#c0392b", "#2e6fbb", "#9aa0a6", "#222222"
VALUE_CMAP = "coolwarm"


def to_data_uri(fig: Figure) -> str:
    """The figure as a `data:image/png;base64,...` URI; the figure is cleared afterwards."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    fig.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def format_value(value: float | None) -> str:
    """A feature value for labels: "missing" for null/NaN, integers without decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    value = float(value)
    return f"{value:.0f}" if value.is_integer() else f"{value:.3g}"


def calibration_bins(y, p, w=None, bins: int = 10) -> pl.DataFrame:
    """Quantile bins of predicted risk: weighted mean predicted and observed rate, and n."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    w = np.ones_like(p) if w is None else np.asarray(w, dtype=float)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)[1:-1])) if p.size else []
    index = np.searchsorted(edges, p, side="left")
    rows = []
    for b in np.unique(index):
        m = index == b
        total = w[m].sum()
        rows.append(
            {
                "predicted": float((w[m] * p[m]).sum() / total),
                "observed": float((w[m] * y[m]).sum() / total),
                "n": int(m.sum()),
            }
        )
    return pl.DataFrame(
        rows, schema={"predicted": pl.Float64, "observed": pl.Float64, "n": pl.Int64}
    )


def calibration_band(y, p, w=None, groups=None, bins: int = 10, n_boot: int = 100, seed: int = 0) -> np.ndarray:
    """[2, n_bins]: the 2.5% and 97.5% points of each bin's observed rate over patient-bootstrap
    resamples (whole patients, by `groups`; rows when None), with the bins of `calibration_bins`
    held fixed."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    w = np.ones_like(p) if w is None else np.asarray(w, dtype=float)
    _, patient = np.unique(np.arange(p.size) if groups is None else np.asarray(groups), return_inverse=True)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)[1:-1])) if p.size else []
    index = np.searchsorted(edges, p, side="left")
    n_patients = int(patient.max()) + 1 if p.size else 0
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_patients, np.full(n_patients, 1 / max(n_patients, 1)), size=n_boot)
    W = draws[:, patient] * w[None, :]
    rates = []
    for b in np.unique(index):
        m = index == b
        with np.errstate(invalid="ignore", divide="ignore"):
            rates.append((W[:, m] @ y[m]) / W[:, m].sum(axis=1))
    return np.nanquantile(np.array(rates), [0.025, 0.975], axis=1) if rates else np.empty((2, 0))


def curve_with_band(y, p, w=None, groups=None, bins: int = 10, n_boot: int = 100, seed: int = 0) -> pl.DataFrame:
    """`calibration_bins` with the 95% patient-bootstrap band of each bin's observed rate as
    columns `lo` and `hi` (`calibration_band`): the curve `calibration_figure` draws."""
    band = calibration_band(y, p, w, groups, bins, n_boot, seed)
    return calibration_bins(y, p, w, bins).with_columns(
        pl.Series("lo", band[0], pl.Float64), pl.Series("hi", band[1], pl.Float64))


def calibration_figure(curve: pl.DataFrame, p, title: str = "") -> Figure:
    """Binned predicted vs observed (IPCW-weighted) with its 95% bootstrap band, the diagonal and
    a histogram of the predicted risks `p`, over the whole range of predicted risk.

    `curve` has columns predicted, observed, lo and hi, one row per bin: `curve_with_band`
    (training's out-of-fold predictions, the audit) or `pipeline.reports.validation.
    calibration_curve` (an evaluation run); NaN bounds (a bin too thin to resample) leave a gap
    in the band. The axes reach the highest predicted risk, observed rate and upper bound.
    """
    p = np.asarray(p, dtype=float)
    fig = Figure(figsize=(4.6, 4.4))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    values = np.r_[p, curve["observed"].to_numpy(), curve["hi"].fill_null(np.nan).to_numpy()]
    values = values[np.isfinite(values)]
    limit = min(1.0, 1.05 * float(values.max())) if values.size else 0.05
    top.plot([0, limit], [0, limit], ls="--", color=GREY, lw=1, label="perfect calibration")
    if curve.height:
        top.fill_between(curve["predicted"], curve["lo"], curve["hi"], color=BLUE, alpha=0.2, lw=0,
                         label="95% bootstrap band")
    top.plot(curve["predicted"], curve["observed"], "-o", color=BLUE, ms=5, label="model (binned)")
    top.set(xlim=(0, limit), ylim=(0, limit), ylabel="observed 30-day relapse rate", title=title)
    top.legend(loc="upper left", fontsize=8, frameon=False)
    bottom.hist(p, bins=40, range=(0, limit), color=GREY)
    bottom.set(xlabel="predicted risk", ylabel="rows")
    fig.align_ylabels()
    return fig


def decision_curve_figure(curve: pl.DataFrame, title: str = "", points: pl.DataFrame | None = None) -> Figure:
    """Net benefit of the model against treat-all and treat-none across thresholds; `points`
    (from `intervals.net_benefit_intervals`) marks the model's 95% interval at those thresholds."""
    fig = Figure(figsize=(4.6, 3.6))
    ax = fig.subplots()
    x = curve["threshold"].to_numpy()
    model = curve["net_benefit_model"].to_numpy()
    ax.plot(x, model, color=BLUE, lw=2, label="model")
    ax.plot(x, curve["net_benefit_treat_all"].to_numpy(), color=RED, lw=1, label="treat all")
    ax.plot(
        x, curve["net_benefit_treat_none"].to_numpy(), color=INK, lw=1, ls=":", label="treat none"
    )
    if points is not None and points.height:
        est = points["net_benefit_model"].to_numpy()
        err = np.abs(np.vstack([est - points["net_benefit_model_lo"].to_numpy(),
                                points["net_benefit_model_hi"].to_numpy() - est]))
        ax.errorbar(points["threshold"].to_numpy(), est, yerr=np.nan_to_num(err), fmt="o", color=BLUE,
                    ms=4, capsize=3, label="95% CI at band thresholds")
    high = max(float(np.nanmax(model)), float(curve["net_benefit_treat_all"].max()), 0.01)
    ax.set(
        xlim=(x.min(), x.max()),
        ylim=(-0.25 * high, 1.1 * high),
        xlabel="threshold risk",
        ylabel="net benefit",
        title=title,
    )
    ax.legend(fontsize=8, frameon=False)
    return fig


def ablation_figure(table: pl.DataFrame, metric: str = "delta_auroc", title: str = "") -> Figure:
    """A forest plot of `metric` (with CIs) per phase and feature group: below 0 (for ΔAUROC)
    means the model is worse without the group."""
    rows = table.filter(pl.col("metric") == metric)
    fig = Figure(figsize=(5.6, 0.32 * max(rows.height, 4) + 1.2))
    ax = fig.subplots()
    labels = [f"{r['phase']}: without {r['group']}" for r in rows.iter_rows(named=True)]
    y = np.arange(rows.height)[::-1]
    est, lo, hi = (rows[c].to_numpy() for c in ("estimate", "lo", "hi"))
    ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", color=BLUE, ms=4, capsize=2)
    ax.axvline(0, color=GREY, ls="--", lw=1)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set(xlabel=f"{metric} (without − full, 95% paired CI)", title=title)
    return fig


def top_features(values: np.ndarray, feature_names: Sequence[str], top: int) -> list[int]:
    """Column indices of the `top` features by mean |SHAP|, largest first."""
    importance = np.abs(np.asarray(values, dtype=float)).mean(axis=0)
    return [int(i) for i in np.argsort(-importance, kind="stable")[:top]]


def shap_bar_figure(values, feature_names: Sequence[str], title: str = "", top: int = 15) -> Figure:
    """Mean |SHAP| per feature (log-odds), largest at the top."""
    values = np.asarray(values, dtype=float)
    order = top_features(values, feature_names, top)[::-1]
    fig = Figure(figsize=(5.0, 0.32 * len(order) + 1.0))
    ax = fig.subplots()
    ax.barh([feature_names[i] for i in order], np.abs(values[:, order]).mean(axis=0), color=BLUE)
    ax.set(xlabel="mean |SHAP| (log-odds)", title=title)
    ax.tick_params(axis="y", labelsize=8)
    return fig


def _swarm_offsets(shap: np.ndarray, rng: np.random.Generator, bins: int = 80) -> np.ndarray:
    """Vertical offsets that stack points sharing a SHAP bin, alternating above and below."""
    span = shap.max() - shap.min()
    quantised = np.round(bins * (shap - shap.min()) / (span + 1e-12))
    order = np.argsort(quantised + rng.normal(0, 1e-6, shap.size), kind="stable")
    offsets, layer, last = np.zeros(shap.size), 0, None
    for i in order:
        layer = 0 if quantised[i] != last else layer + 1
        offsets[i] = math.ceil(layer / 2) * (1 if layer % 2 else -1)
        last = quantised[i]
    return 0.4 * offsets / max(np.abs(offsets).max(), 1.0)


def shap_beeswarm_figure(
    values,
    features,
    feature_names: Sequence[str],
    title: str = "",
    top: int = 15,
    max_points: int = 1500,
    seed: int = 0,
) -> Figure:
    """One row per top feature: each dot a landmark row, x = SHAP, colour = feature value."""
    values, features = np.asarray(values, dtype=float), np.asarray(features, dtype=float)
    rng = np.random.default_rng(seed)
    if values.shape[0] > max_points:
        keep = np.sort(rng.choice(values.shape[0], max_points, replace=False))
        values, features = values[keep], features[keep]
    order = top_features(values, feature_names, top)[::-1]
    fig = Figure(figsize=(6.0, 0.38 * len(order) + 1.3))
    ax = fig.subplots()
    cmap = colormaps[VALUE_CMAP]
    for row, j in enumerate(order):
        shap, value = values[:, j], features[:, j]
        y = row + _swarm_offsets(shap, rng)
        present = np.isfinite(value)
        lo, hi = np.nanpercentile(value, [5, 95]) if present.any() else (0.0, 1.0)
        norm = Normalize(lo, hi if hi > lo else lo + 1e-9)
        ax.scatter(shap[~present], y[~present], s=6, color=GREY, alpha=0.6, lw=0)
        ax.scatter(
            shap[present],
            y[present],
            s=6,
            c=cmap(norm(np.clip(value[present], lo, hi))),
            alpha=0.8,
            lw=0,
        )
    ax.axvline(0, color=GREY, lw=0.8)
    ax.set_yticks(range(len(order)), [feature_names[j] for j in order], fontsize=8)
    ax.set(xlabel="SHAP value (log-odds; > 0 raises risk)", title=title)
    scale = ScalarMappable(norm=Normalize(0, 1), cmap=cmap)
    bar = fig.colorbar(scale, ax=ax, pad=0.01, aspect=30)
    bar.set_ticks([0, 1], labels=["low", "high"])
    bar.set_label("feature value (grey: missing)", fontsize=8)
    return fig


def dependence_figure(
    values,
    features,
    feature_names: Sequence[str],
    selected: Sequence[str],
    title: str = "",
    max_points: int = 3000,
    seed: int = 0,
) -> Figure:
    """Feature value against its SHAP value, one panel per selected feature (missing left out)."""
    values, features = np.asarray(values, dtype=float), np.asarray(features, dtype=float)
    if values.shape[0] > max_points:
        keep = np.sort(
            np.random.default_rng(seed).choice(values.shape[0], max_points, replace=False)
        )
        values, features = values[keep], features[keep]
    columns = min(3, len(selected))
    rows = math.ceil(len(selected) / columns)
    fig = Figure(figsize=(3.3 * columns, 2.7 * rows + 0.4))
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    for ax, name in zip(axes, selected, strict=False):
        j = list(feature_names).index(name)
        present = np.isfinite(features[:, j])
        ax.scatter(features[present, j], values[present, j], s=5, color=BLUE, alpha=0.5, lw=0)
        ax.axhline(0, color=GREY, lw=0.8)
        missing = int((~present).sum())
        ax.set_title(name + (f"\n({missing} missing, not shown)" if missing else ""), fontsize=8)
        ax.set_xlabel("feature value", fontsize=8)
        ax.set_ylabel("SHAP (log-odds)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(selected) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def waterfall_figure(
    shap_values,
    feature_values,
    feature_names: Sequence[str],
    base_value: float,
    title: str = "",
    top: int = 10,
) -> Figure:
    """How each feature moves one patient's margin from the base value (log-odds)."""
    shap_values = np.asarray(shap_values, dtype=float)
    order = list(np.argsort(-np.abs(shap_values), kind="stable"))
    shown, rest = (order[: top - 1], order[top - 1 :]) if len(order) > top else (order, [])
    labels = [f"{feature_names[i]} = {format_value(feature_values[i])}" for i in shown]
    steps = [float(shap_values[i]) for i in shown]
    if rest:
        labels.append(f"{len(rest)} other features")
        steps.append(float(shap_values[rest].sum()))
    labels, steps = labels[::-1], steps[::-1]  # drawn bottom-up: largest effect on top
    starts = base_value + np.concatenate([[0.0], np.cumsum(steps)[:-1]])
    fig = Figure(figsize=(6.6, 0.36 * len(steps) + 1.4))
    ax = fig.subplots()
    colours = [RED if s > 0 else BLUE for s in steps]
    ax.barh(range(len(steps)), steps, left=starts, color=colours, height=0.6)
    for k, (start, step) in enumerate(zip(starts, steps, strict=True)):
        ax.text(
            start + step,
            k,
            f" {step:+.3f}" if step > 0 else f"{step:+.3f} ",
            va="center",
            ha="left" if step > 0 else "right",
            fontsize=7,
        )
    margin = base_value + float(shap_values.sum())
    ax.axvline(base_value, color=GREY, lw=0.8, ls="--")
    ax.axvline(margin, color=INK, lw=0.8)
    ax.set_yticks(range(len(steps)), labels, fontsize=8)
    ends = np.concatenate([starts, starts + np.asarray(steps), [base_value]])
    pad = 0.22 * max(ends.max() - ends.min(), 1e-3)
    ax.set_xlim(ends.min() - pad, ends.max() + pad)
    ax.set(xlabel=f"log-odds: base {base_value:.3f} → margin {margin:.3f}", title=title)
    return fig
