"""The panel report (notebooks/07_panel_report): a panel sweep's verdicts first, then the model
against the baselines pooled and per asset, and the holdout when it has been scored.

Per horizon the cell is the one validation chose (lowest mean validation log loss over the
budget x data-size grid); its test windows are every asset's, scored by models trained on the
pooled windows of that cell's data level. Per asset: the model's AUC and log loss (mean over its
seeds) beside logistic regression's and gradient boosting's, both trained on the same pooled
windows, and the paired log-loss difference to logistic regression with its interval over that
asset's days (:mod:`lib.analysis.panel_eval`). Counting "significantly better" over 20 assets is
done with Holm's correction over the assets.
"""

from __future__ import annotations

import pandas as pd

from ..analysis.stats import holm
from ..core import paths
from ..core.provenance import read_json
from . import tables


def chosen_cells(finals: list[dict]) -> dict[int, dict]:
    """Per horizon, the final evaluation of the cell with the lowest mean validation log loss."""
    out: dict[int, dict] = {}
    for s in finals:
        best = min(s["configs"].values(), key=lambda c: c["rank"])
        v = (best.get("val_mean") or {}).get("logloss")
        h = s["cell"]["horizon"]
        if v is not None and (h not in out or v < out[h][0]):
            out[h] = (v, s)
    return {h: s for h, (_, s) in sorted(out.items())}


def asset_table(state: dict, alpha: float = 0.05) -> pd.DataFrame:
    """One row per asset of a cell's ``per_asset`` evaluation, with the Holm-adjusted p-value of
    its log-loss difference to logistic regression (over the assets)."""
    per = state.get("per_asset") or {}
    fam = holm({a: e["vs_logreg"]["logloss_diff"]["p_value"] for a, e in per.items()}, alpha)
    rows = []
    for a, e in per.items():
        d = e["vs_logreg"]["logloss_diff"]
        rows.append({"asset": a, "test windows": e["windows"],
                     "positive rate": tables.num(e["positive_rate"]),
                     "model AUC": tables.num(e["model"]["auc"]),
                     "logreg AUC": tables.num(e["logreg"]["auc"]),
                     "hgb AUC": tables.num(e["hgb"]["auc"]),
                     "model log loss": tables.num(e["model"]["logloss"], 4),
                     "minus logreg (log loss)": tables.interval(d["estimate"], d["ci95"], 4,
                                                                sign=True),
                     "p (Holm over assets)": tables.pvalue(fam[a]["p_holm"]),
                     "_diff": d["estimate"], "_p": fam[a]["p_holm"]})
    return pd.DataFrame(rows)


def asset_summary(h: int, state: dict, alpha: float = 0.05) -> str:
    """One sentence per horizon: the chosen cell, pooled against the baselines, and how many
    assets the model beats or trails logistic regression on in log loss after Holm."""
    t = asset_table(state, alpha)
    c = state["comparisons"]["logreg"]["logloss_diff"]
    g = state["comparisons"]["hgb"]["logloss_diff"]
    better = int(((t["_diff"] < 0) & (t["_p"] < alpha)).sum()) if len(t) else 0
    worse = int(((t["_diff"] > 0) & (t["_p"] < alpha)).sum()) if len(t) else 0
    assets = f"{len(t)} asset{'s' if len(t) != 1 else ''}"
    return (f"h={h} ({state['cell']['id']}, chosen on validation): pooled test log loss minus "
            f"logistic regression's {tables.interval(c['estimate'], c['ci95'], 4, sign=True)}, "
            f"minus gradient boosting's {tables.interval(g['estimate'], g['ci95'], 4, sign=True)}"
            f" (negative: the transformer is better); per asset, significantly better than "
            f"logistic regression on {better} and worse on {worse} of {assets} (Holm over the "
            f"assets, {alpha:g}).")


def holdout_results(sweep: str) -> pd.DataFrame:
    """The holdout results scored so far (``make holdout``), one row per cell."""
    rows = []
    for f in sorted((paths.SWEEPS / sweep / "holdout").glob("*.json")):
        r = read_json(f)
        m, c = r["model"]["mean_probability"], r["comparisons"]["logreg"]["logloss_diff"]
        rows.append({"cell": f.stem, "block": f"{r['block']['block_start']}.."
                                              f"{r['block']['block_end']}",
                     "windows": r["block"]["n_windows"], "AUC": tables.num(m["auc"]),
                     "test-block AUC": tables.num(r["test_block_result"]["auc"]),
                     "log loss minus logreg": tables.interval(c["estimate"], c["ci95"], 4,
                                                              sign=True),
                     "scored": r["scored_at"][:10]})
    return pd.DataFrame(rows)
