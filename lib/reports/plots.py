"""Figures for the notebooks: one function per figure, each returning its matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg") if not matplotlib.get_backend().lower().startswith(
    ("module://matplotlib_inline", "inline")) else None
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator
from sklearn.calibration import calibration_curve

BLOCK_COLOURS = {"train": "#dddddd", "val": "#ffd59e", "test": "#a6d8ff"}


def price_with_blocks(df: pd.DataFrame, bounds: dict, title: str = "") -> plt.Figure:
    """The target's raw close (log scale) with the three blocks shaded."""
    fig, ax = plt.subplots(figsize=(11, 3.5))
    ax.plot(df.index, df["raw_close" if "raw_close" in df else "close"], lw=0.8, color="black")
    ax.set_ylabel("close (log scale)")
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
    """Correlation between every pair of features over the whole dataset."""
    fig, ax = plt.subplots(figsize=(9, 7.5))
    sns.heatmap(df.corr(), cmap="vlag", center=0, ax=ax, square=True, cbar_kws={"shrink": 0.7})
    ax.set_title("Feature correlation (whole dataset)")
    return fig


def learning_curves(curve: list[dict], best_epoch: int | None = None,
                    title: str = "") -> plt.Figure:
    """Training and validation loss, and validation AUC, per epoch; the best epoch marked."""
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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.legend(fontsize=8)
    axes[0].set_ylabel("log loss")
    axes[1].set_ylabel("AUC")
    axes[0].set_title(title or "Learning curves", fontsize=10)
    axes[1].set_title("Validation AUC per epoch", fontsize=10)
    fig.tight_layout()
    return fig


def confusion_heatmap(confusion: dict, title: str = "Confusion matrix at p = 0.5") -> plt.Figure:
    """A confusion matrix (tn, fp, fn, tp) as an annotated heatmap."""
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
    """Predicted probabilities, one histogram per true class."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for cls, colour in ((0, "tab:blue"), (1, "tab:orange")):
        ax.hist(p[y == cls], bins=30, alpha=0.6, color=colour, label=f"true {cls}")
    ax.set_xlabel("predicted probability")
    ax.set_title("Predicted probabilities by true class")
    ax.legend()
    return fig


def objective_by_arch(trials: pd.DataFrame, objective: str = "objective") -> plt.Figure:
    """One point per finished trial, architectures ordered best first."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    order = trials.groupby("arch")[objective].min().sort_values().index
    sns.stripplot(data=trials, x="arch", y=objective, hue="state", order=order, ax=ax, size=7)
    ax.tick_params(axis="x", rotation=40, labelsize=8)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.set_xlabel("architecture (d_model-layers-heads-ff ratio)")
    ax.set_ylabel("validation log loss")
    ax.set_title("Validation objective by architecture (one point per finished trial)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def _log2_axis(axis, values) -> None:
    """A log2 axis ticked at the values that occur (no overlapping, unreadable labels)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = sorted({int(v) for v in values if v == v})
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_minor_locator(NullLocator())
    axis.set_ticklabels([str(t) for t in ticks])


def depth_width(trials: pd.DataFrame) -> plt.Figure:
    """Width against depth of every complete trial, one panel per horizon, colour = validation
    log loss, the best of each cell ringed."""
    horizons = sorted(trials["horizon"].unique())
    fig, axes = plt.subplots(1, len(horizons), figsize=(4.3 * len(horizons), 3.8),
                             squeeze=False, sharey=True)
    best = trials.loc[trials.groupby("cell")["objective"].idxmin()]
    for ax, h in zip(axes[0], horizons, strict=True):
        g = trials[trials["horizon"] == h]
        pts = ax.scatter(g["d_model"], g["n_layers"], c=g["objective"], cmap="viridis_r", s=40)
        b = best[best["horizon"] == h]
        ax.scatter(b["d_model"], b["n_layers"], s=160, facecolors="none", edgecolors="red",
                   label="best of its cell")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        _log2_axis(ax.xaxis, trials["d_model"])
        _log2_axis(ax.yaxis, trials["n_layers"])
        ax.tick_params(axis="x", labelsize=7, rotation=45)
        ax.set_xlabel("d_model")
        ax.set_title(f"h={h}", fontsize=10)
        fig.colorbar(pts, ax=ax, label="validation log loss")
    axes[0][0].set_ylabel("layers")
    axes[0][0].legend(fontsize=7, loc="upper right")
    fig.suptitle("Depth against width: one point per complete trial", fontsize=10)
    fig.tight_layout()
    return fig


def compute(trials: pd.DataFrame) -> plt.Figure:
    """Seconds and peak memory of every finished trial against its parameter count."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    sns.scatterplot(data=trials, x="n_params", y="seconds", hue="state", ax=axes[0])
    sns.scatterplot(data=trials, x="n_params", y="peak_rss_mb", hue="state", ax=axes[1],
                    legend=False)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("parameters (total, measured)")
        ax.set_ylim(bottom=0)  # from 0: a 5% rise in memory must not look like a doubling
    axes[0].set_ylabel("seconds per trial")
    axes[1].set_ylabel("peak process memory (MB)")
    axes[0].set_title("Time per trial (one point per finished trial)", fontsize=10)
    axes[1].set_title("Peak memory per trial", fontsize=10)
    fig.tight_layout()
    return fig


def clipped(fig: plt.Figure) -> list[str]:
    """What a figure draws outside its axes' y-limits (bands, error bars, lines): one line per
    panel that clips, empty when everything drawn is visible. The report prints these, and the
    browser check fails on them."""
    out = []
    for ax in fig.axes:
        lo, hi = ax.get_ylim()
        ys = [p.vertices[:, 1] for c in ax.collections for p in c.get_paths()]
        ys += [np.asarray(line.get_ydata(), dtype=float) for line in ax.lines]
        ys = [y[np.isfinite(y)] for y in ys if len(y)]
        if ys and any(y.min() < lo - 1e-9 or y.max() > hi + 1e-9 for y in ys if len(y)):
            out.append(f"{ax.get_title() or 'a panel'}: drawn beyond the y axis "
                       f"[{lo:.3g}, {hi:.3g}]")
    return out


def scaling_curves(fits: dict, measure_label: str, n_label: str) -> plt.Figure:
    """One panel per horizon (each with its own y axis, so a small slope shows): the measure at
    each budget with error bars across the final seeds, the fitted law with its 95% bootstrap
    band where the fit is identified, and the prediction at the next budget. The axes follow the
    data, bands included: nothing is clipped."""
    n = max(len(fits), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4), squeeze=False)
    for ax, (h, e) in zip(axes[0], fits.items(), strict=False):
        N, L = np.array(e["N"]), np.array(e["L"])
        seeds = e.get("L_seeds")
        sd = np.array([np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in seeds]) if seeds \
            else np.zeros_like(L)
        ax.errorbar(N, L, yerr=sd, fmt="o", color="C0", capsize=3,
                    label="mean over seeds, +-1 sd across seeds")
        f = e.get("fit")
        if not f or not f["verdict"]["identified"]:
            ax.plot(N, L, ":", color="C0", lw=0.8)
            ax.set_title(f"h={h}: law not identified", fontsize=9)
        else:
            xs = np.geomspace(N.min(), e["next_N"], 50)
            ax.plot(xs, f["a"] * xs ** -f["alpha"] + f["c"], "-", color="C1",
                    label="fitted law")
            band = f["ci"].get("band")
            if band:
                ax.fill_between(band["N"], band["lo"], band["hi"], color="C1", alpha=0.2,
                                label="95% band")
            lo, hi = f["ci"].get("pred_next_ci95", [None, None])
            if lo is not None:
                ax.errorbar([e["next_N"]], [f["pred_next"]],
                            yerr=[[f["pred_next"] - lo], [hi - f["pred_next"]]], fmt="x",
                            color="C1", capsize=4, label="next budget, 95%")
            ax.set_title(f"h={h}: alpha {f['alpha']:.3f}", fontsize=9)
        ax.set_xscale("log")
        ax.set_xlabel(f"measured {n_label}")
    axes[0][0].set_ylabel(measure_label)
    fig.suptitle("Error against size, one panel per horizon (own y axis); a line only where the "
                 "law is identified", fontsize=9)
    # one legend under the panels: inside a panel it covers points
    seen: dict = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=len(seen), fontsize=8,
               frameon=False)
    return fig


def skill_by_horizon(results: pd.DataFrame, column: str = "test_skill_own") -> plt.Figure:
    """Test skill with 95% block-bootstrap intervals against non-embedding parameters, one line
    per horizon, logistic regression dotted."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for h, g in results.groupby("horizon"):
        pairs = zip(g[column], g[f"{column}_ci"], strict=True)
        err = np.array([[s - ci[0], ci[1] - s] for s, ci in pairs]).T
        (line,) = ax.plot([], [])
        ax.errorbar(g["n_non_embedding"], g[column], yerr=err, fmt="o-", capsize=3,
                    color=line.get_color(), label=f"h={h} transformer")
        base = "logreg_skill_own" if column == "test_skill_own" else "logreg_skill"
        ax.plot(g["n_non_embedding"], g[base], ":", color=line.get_color(),
                label=f"h={h} logistic regression")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("measured non-embedding parameters")
    ax.set_ylabel("drift-aware skill" if column == "test_skill_own" else "skill (train rate)")
    ax.set_title("Test skill per budget and horizon (95% block-bootstrap intervals)", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return fig


def ablation_skill(t: pd.DataFrame, column: str = "val_skill_own",
                   baseline: str = "logreg_val_skill_own") -> plt.Figure:
    """Per horizon, the drift-aware skill of every (feature set, normalisation), mean over the
    ablation's budgets; logistic regression on the same feature set as a tick on each bar."""
    horizons = sorted(t["horizon"].unique())
    fig, axes = plt.subplots(1, len(horizons), figsize=(4.2 * len(horizons), 3.8), sharey=True,
                             squeeze=False)
    for ax, h in zip(axes[0], horizons, strict=True):
        g = t[t["horizon"] == h].groupby(["feature_set", "norm"])[[column, baseline]].mean()
        labels = [f"{fs}\n{n}" for fs, n in g.index]
        ax.bar(range(len(g)), g[column], color="tab:blue", alpha=0.8, label="transformer")
        ax.scatter(range(len(g)), g[baseline], marker="_", s=300, color="black",
                   label="logistic regression (same features)")
        ax.set_xticks(range(len(g)), labels, fontsize=7)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(f"h={h}", fontsize=10)
    axes[0][0].set_ylabel(column.replace("_", " "))
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Validation drift-aware skill by inputs (mean over budgets): the choice is made "
                 "here", fontsize=10)
    fig.tight_layout()
    return fig
