"""Figures for the notebooks: one function per figure, each returning its matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg") if not matplotlib.get_backend().lower().startswith(
    ("module://matplotlib_inline", "inline")) else None
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.calibration import calibration_curve

BLOCK_COLOURS = {"train": "#dddddd", "val": "#ffd59e", "test": "#a6d8ff"}


def price_with_blocks(df: pd.DataFrame, bounds: dict, title: str = "") -> plt.Figure:
    fig, ax = plt.subplots(figsize=(11, 3.5))
    ax.plot(df.index, df["close"], lw=0.8, color="black")
    for name, (s, e) in bounds.items():
        ax.axvspan(df.index[s], df.index[e - 1], color=BLOCK_COLOURS[name], alpha=0.6, label=name)
    ax.set_yscale("log")
    ax.set_title(title or "Close with train / validation / test blocks")
    ax.legend(loc="upper left")
    return fig


def positive_rate_bars(rates: pd.DataFrame) -> plt.Figure:
    """rates: index horizon, columns blocks."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    rates.plot.bar(ax=ax, color=[BLOCK_COLOURS[c] for c in rates.columns], edgecolor="black")
    ax.set_xlabel("horizon (trading days)")
    ax.set_ylabel("positive rate")
    ax.set_title("Share of windows whose label is 1, per block")
    return fig


def correlation_heatmap(df: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(9, 7.5))
    sns.heatmap(df.corr(), cmap="vlag", center=0, ax=ax, square=True, cbar_kws={"shrink": 0.7})
    ax.set_title("Feature correlation (whole dataset)")
    return fig


def learning_curves(curve: list[dict], best_epoch: int | None = None,
                    title: str = "") -> plt.Figure:
    c = pd.DataFrame(curve)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    if len(c):
        axes[0].plot(c["epoch"], c["train_loss"], "o-", label="train loss")
        axes[0].plot(c["epoch"], c["val_loss"], "o-", label="validation loss")
        axes[1].plot(c["epoch"], c["val_auc"], "o-", color="tab:green", label="validation AUC")
    for ax in axes:
        if best_epoch:
            ax.axvline(best_epoch, color="grey", ls="--", label="restored epoch")
        ax.set_xlabel("epoch")
        ax.legend()
    axes[0].set_title(title or "Learning curves")
    return fig


def confusion_heatmap(confusion: dict, title: str = "Confusion matrix at p = 0.5") -> plt.Figure:
    m = np.array([[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]])
    fig, ax = plt.subplots(figsize=(4, 3.5))
    sns.heatmap(m, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax,
                xticklabels=["pred 0", "pred 1"], yticklabels=["true 0", "true 1"])
    ax.set_title(title)
    return fig


def reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], bins: int = 10,
                title: str = "Reliability diagram", panel_of=None) -> plt.Figure:
    """curves: name -> (y, p). ``panel_of(name)`` splits them into side-by-side panels (for
    example one per horizon), so that a dozen curves stay readable."""
    groups: dict[str, dict] = {}
    for name, yp in curves.items():
        groups.setdefault(panel_of(name) if panel_of else "", {})[name] = yp
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 4.4), squeeze=False,
                             sharey=True)
    for ax, (panel, group) in zip(axes[0], groups.items(), strict=True):
        ax.plot([0, 1], [0, 1], ls=":", color="grey")
        for name, (y, p) in group.items():
            frac, mean = calibration_curve(y, p, n_bins=bins, strategy="quantile")
            ax.plot(mean, frac, "o-", ms=4, label=name)
        ax.set_xlabel("mean predicted probability")
        ax.set_title(panel or title, fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    axes[0][0].set_ylabel("observed positive rate")
    if panel_of:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def probability_histogram(y: np.ndarray, p: np.ndarray) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for cls, colour in ((0, "tab:blue"), (1, "tab:orange")):
        ax.hist(p[y == cls], bins=30, alpha=0.6, color=colour, label=f"true {cls}")
    ax.set_xlabel("predicted probability")
    ax.set_title("Predicted probabilities by true class")
    ax.legend()
    return fig


def objective_by_arch(trials: pd.DataFrame, objective: str = "objective") -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 3.5))
    if len(trials):
        order = trials.groupby("arch")[objective].min().sort_values().index
        sns.stripplot(data=trials, x="arch", y=objective, hue="state", order=order, ax=ax,
                      size=7)
        ax.tick_params(axis="x", rotation=45)
    ax.set_title("Objective by architecture")
    return fig
