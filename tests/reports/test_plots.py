"""The scaling figure: one panel per horizon, error bars across seeds, and axes that hold every
band and interval drawn (the old figure clipped them to the points' range)."""

import matplotlib

matplotlib.use("Agg")

from lib.reports.plots import clipped, scaling_curves  # noqa: E402


def entry(identified: bool) -> dict:
    N = [1e4, 3e4, 1e5, 3e5]
    fit = {"a": 2.0, "alpha": 0.1, "c": 0.0, "verdict": {"identified": identified},
           "pred_next": 0.6, "ci": {"band": {"N": [1e4, 1e6], "lo": [0.2, 0.1],
                                             "hi": [1.5, 2.5]},
                                    "pred_next_ci95": [0.05, 3.0]}}
    return {"N": N, "L": [0.69, 0.68, 0.685, 0.67], "next_N": 1e6, "fit": fit,
            "L_seeds": [[0.68, 0.70], [0.67, 0.69], [0.68, 0.69], [0.66, 0.68]]}


def test_one_panel_per_horizon_with_nothing_clipped():
    fig = scaling_curves({1: entry(True), 3: entry(False), 5: entry(True)}, "test log loss",
                         "non-embedding parameters")
    axes = fig.axes
    assert len(axes) == 3
    for ax in axes:
        lo, hi = ax.get_ylim()
        for coll in ax.collections:  # bands and error bars
            for path in coll.get_paths():
                ys = path.vertices[:, 1]
                assert lo <= ys.min() + 1e-9 and ys.max() <= hi + 1e-9, (ax.get_title(), lo, hi)
    assert any(len(ax.lines) and ax.containers for ax in axes)  # error bars across seeds


def test_clipping_is_found_where_an_axis_cuts_a_band():
    fig = scaling_curves({1: entry(True), 5: entry(True)}, "test log loss", "parameters")
    assert clipped(fig) == []
    fig.axes[1].set_ylim(0.6, 0.7)  # the old figure's limits: the points' range
    problems = clipped(fig)
    assert len(problems) == 1 and "beyond the y axis" in problems[0]
