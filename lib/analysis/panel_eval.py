"""A panel's evaluation per asset, beside the pooled one (:mod:`lib.analysis.final`).

Every asset's test windows are scored by the same models and baselines, which were trained on the
pooled training windows; per asset: windows, positive rate, the model's metrics (seed mean), each
baseline's, and the model's paired AUC and log-loss differences to each baseline with the
dependence-aware interval over that asset's days (:func:`lib.analysis.final.compare`). The pooled
metrics are the same functions on every window at once; ``tests/analysis/test_panel_eval.py``
checks both against a direct computation.
"""

from __future__ import annotations

import numpy as np

from ..train.metrics import evaluate


def per_asset(y: np.ndarray, probs: list[np.ndarray], baseline_p: dict, splits, base: float,
              horizon: int, compare) -> dict:
    """{asset: {"windows", "positive_rate", "model": metrics, baseline: metrics,
    "vs_<baseline>": paired differences}} over the panel's test windows (``splits.assets``);
    ``compare`` is :func:`lib.analysis.final.compare` (passed in: final imports this module)."""
    y = np.asarray(y)
    codes = np.asarray(splits.assets["test"])
    out = {}
    for i, name in enumerate(splits.names):
        rows = np.flatnonzero(codes == i)
        if not len(rows):
            continue
        ya = y[rows]
        per_seed = [evaluate(ya, np.asarray(p)[rows], base) for p in probs]
        model = {k: float(np.mean([m[k] for m in per_seed])) if all(
            m[k] is not None for m in per_seed) else None for k in ("auc", "logloss", "skill")}
        entry = {"windows": int(len(rows)), "positive_rate": float(ya.mean()), "model": model}
        for k, p in baseline_p.items():
            pb = np.asarray(p)[rows]
            m = evaluate(ya, pb, base)
            entry[k] = {key: m[key] for key in ("auc", "logloss", "skill")}
            if k != "prior":
                entry[f"vs_{k}"] = compare(ya, [np.asarray(q)[rows] for q in probs], pb, horizon)
        out[name] = entry
    return out


def window_dates(splits) -> np.ndarray | None:
    """A panel's date per test window, for statistics that count by date; None for a single
    series, whose windows are its days."""
    return splits.test.dates.values if getattr(splits, "assets", None) else None


def test_dates(state: dict) -> np.ndarray | None:
    """A panel cell's date per test window (a final evaluation's record), for statistics that
    count by date; None for a single series, whose windows are its days."""
    if not (state.get("split", {}).get("data") or {}).get("panel"):
        return None
    return np.asarray(state["test_dates"])
