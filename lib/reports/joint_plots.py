"""Figures of the joint N x D analysis (notebooks/06_joint_scaling), one function per figure,
each returning its matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from ..analysis.joint import joint_law
from ..model.budget import fmt_count
from . import plots  # noqa: F401 -- selects the headless backend outside a notebook


def skill_heatmaps(results: pd.DataFrame, column: str = "test_skill_own") -> plt.Figure:
    """Per horizon, budget (rows) x data size (columns) of ``column``; a star marks a 95%
    interval that excludes 0 (the intervals are in the grid table beside it)."""
    hs = sorted(results["horizon"].unique())
    fig, axes = plt.subplots(1, len(hs), figsize=(5.2 * len(hs), 3.8), squeeze=False)
    lim = float(np.nanmax(np.abs(results[column]))) or 1.0
    for ax, h in zip(axes[0], hs, strict=True):
        g = results[results["horizon"] == h]
        rows = g.sort_values("budget_n")["budget"].unique().tolist()
        cols = g.groupby("data")["D_windows"].mean().sort_values().index.tolist()
        M = np.full((len(rows), len(cols)), np.nan)
        for _, r in g.iterrows():
            i, j = rows.index(r["budget"]), cols.index(r["data"])
            M[i, j] = r[column]
            ci = r.get(f"{column}_ci") or [None, None]
            star = "*" if ci[0] is not None and (ci[0] > 0 or ci[1] < 0) else ""
            ax.text(j, i, f"{r[column]:.3f}{star}", ha="center", va="center", fontsize=8)
        im = ax.imshow(M, cmap="RdBu", vmin=-lim, vmax=lim, origin="lower", aspect="auto")
        ax.set_xticks(range(len(cols)), [f"{c}\n{fmt_count(g[g['data'] == c]['D_windows'].mean())}"
                                         for c in cols], fontsize=8)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel("data size (training windows)")
        if ax is axes[0][0]:
            ax.set_ylabel("budget")
        ax.set_title(f"h={h}: {column.replace('_', ' ')} (*: 95% interval excludes 0)",
                     fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    return fig


def surfaces(fits: dict) -> plt.Figure:
    """Per horizon, the fitted L(N, D) as iso-loss contours over log N x log D, with the
    observed cells coloured by their measured loss on the same scale."""
    hs = list(fits)
    fig, axes = plt.subplots(1, len(hs), figsize=(5.2 * len(hs), 4), squeeze=False)
    for ax, h in zip(axes[0], hs, strict=True):
        e = fits[h]
        N, D, L = (np.asarray(e[k], dtype=float) for k in ("N", "D", "L"))
        sc = ax.scatter(N, D, c=L, cmap="viridis", edgecolor="black", s=60, zorder=3)
        f = e.get("fit")
        if f is not None:
            n = np.geomspace(N.min() / 2, N.max() * 2, 60)
            d = np.geomspace(D.min() / 2, D.max() * 2, 60)
            nn, dd = np.meshgrid(n, d)
            z = joint_law(nn, dd, f["E"], f["A"], f["alpha"], f["B"], f["beta"])
            cs = ax.contour(nn, dd, z, levels=np.quantile(L, [0.1, 0.3, 0.5, 0.7, 0.9]),
                            colors="grey", linewidths=0.8)
            ax.clabel(cs, fmt="%.3f", fontsize=7)
            sub = (f"alpha {f['alpha']:.2f}, beta {f['beta']:.2f}: "
                   f"{e['limited']['code'].replace('_', ' ')}")
        else:
            sub = "no joint fit"
        fr = e.get("frontier")
        if fr:
            ax.plot(fr["N"], fr["D"], color="crimson", lw=1.5, label="compute-optimal")
            ax.legend(loc="upper left", fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"N ({e['n_axis'].replace('_', '-')} parameters)")
        ax.set_ylabel("D (training tokens)")
        ax.set_title(f"h={h}: {sub}", fontsize=9)
        fig.colorbar(sc, ax=ax, label=e["measure"].replace("_", " "))
    fig.tight_layout()
    return fig


def frontier(fits: dict) -> plt.Figure | None:
    """Compute-optimal N and D against C = 6 N D with 95% bands, the observed compute range
    shaded; None when no horizon has both exponents scaling."""
    have = {h: e["frontier"] for h, e in fits.items() if e.get("frontier")}
    if not have:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for h, fr in have.items():
        for ax, k in zip(axes, ("N", "D"), strict=True):
            line, = ax.plot(fr["C"], fr[k], label=f"h={h}")
            if f"{k}_lo" in fr:
                ax.fill_between(fr["C"], fr[f"{k}_lo"], fr[f"{k}_hi"], alpha=0.2,
                                color=line.get_color())
            inside = np.asarray(fr["inside"])
            if inside.any():
                C = np.asarray(fr["C"])[inside]
                ax.axvspan(C.min(), C.max(), color="#dddddd", alpha=0.3)
    for ax, k in zip(axes, ("optimal N (parameters)", "optimal D (tokens)"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("C = 6 N D")
        ax.set_ylabel(k)
        ax.legend(fontsize=8)
    fig.suptitle("Compute-optimal split (grey: the optimum lies inside the observed ranges)")
    fig.tight_layout()
    return fig
