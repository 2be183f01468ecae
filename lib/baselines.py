"""Baselines every score is read against (SCIENCE rule 11): base rate, logistic regression and
histogram gradient boosting on the last day's features, evaluated with the same metrics.

The baselines are fair, not straw men: price-level features (OHLC, moving averages, ATR, MACD, VWAP)
drift over decades, so they are made scale-free (relative to the day's close, or returns) using only
data up to t, then standardised with training statistics; a little regularisation is chosen on the
validation block. Nothing here reads the test block unless asked to evaluate on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .features import PRICE_LEVEL
from .metrics import evaluate
from .splits import Splits

LOGREG_C = (0.001, 0.01, 0.1, 1.0)
HGB_GRID = ({"max_depth": 2, "l2_regularization": 1.0}, {"max_depth": 3, "l2_regularization": 1.0},
            {"max_depth": 3, "l2_regularization": 10.0})


def scale_free(df: pd.DataFrame) -> pd.DataFrame:
    """Day-t features using data up to t only, with price levels turned into ratios or returns."""
    out = pd.DataFrame(index=df.index)
    close = df["close"]
    for col in df.columns:
        x = df[col]
        if col == "close":
            out["ret_1"] = np.log(close).diff()
            out["ret_5"] = np.log(close).diff(5)
        elif col in PRICE_LEVEL:
            out[col] = x / close - (0 if col in ("macd_12_26_9", "atr_14") else 1)
        elif col == "volume":
            lv = np.log(x.clip(lower=1))
            out["volume"] = lv - lv.rolling(20, min_periods=1).mean()
        elif col == "obv":
            out["obv"] = x.diff(20) / df["volume"].rolling(20, min_periods=1).sum()
        elif col == "adosc_3_10":
            out[col] = x / df["volume"].rolling(20, min_periods=1).mean()
        else:
            out[col] = x
    return out.fillna(0.0)


def last_day_features(df: pd.DataFrame, splits: Splits) -> dict[str, np.ndarray]:
    feats = scale_free(df[splits.columns]).to_numpy()
    return {b: feats[splits.block(b).ends] for b in ("train", "val", "test")}


def _select(make, grid, X, splits, base_rate, collapse):
    best = None
    for params in grid:
        model = make(params).fit(X["train"], splits.train.y)
        m = evaluate(splits.val.y, model.predict_proba(X["val"])[:, 1], base_rate, collapse)
        if best is None or m["logloss"] < best[2]["logloss"]:
            best = (params, model, m)
    return best


def run_baselines(df: pd.DataFrame, splits: Splits, *, evaluate_test: bool = False,
                  seed: int = 0, collapse_spread: float = 0.02) -> dict:
    """Fit on train, choose regularisation on validation; test metrics only if ``evaluate_test``.

    Returns {name: {"params": ..., "val": metrics, "test": metrics (optional), "p_test": ...}}.
    """
    X = last_day_features(df, splits)
    base = float(splits.train.y.mean())
    blocks = ("val", "test") if evaluate_test else ("val",)
    out = {"prior": {"params": {"p": base}}}
    for b in blocks:
        y = splits.block(b).y
        out["prior"][b] = evaluate(y, np.full(len(y), base), base, collapse_spread)

    def logreg(p):
        return make_pipeline(StandardScaler(), LogisticRegression(C=p["C"], max_iter=2000))

    def hgb(p):
        return HistGradientBoostingClassifier(learning_rate=0.05, max_iter=150,
                                              early_stopping=False, random_state=seed, **p)

    for name, make, grid in (("logreg", logreg, [{"C": c} for c in LOGREG_C]),
                             ("hgb", hgb, HGB_GRID)):
        params, model, val = _select(make, grid, X, splits, base, collapse_spread)
        out[name] = {"params": params, "val": val}
        if evaluate_test:
            p = model.predict_proba(X["test"])[:, 1]
            out[name]["test"] = evaluate(splits.test.y, p, base, collapse_spread)
            out[name]["p_test"] = p
    if evaluate_test:
        out["prior"]["p_test"] = np.full(len(splits.test.y), base)
    return out


def table(baselines: dict, block: str = "val") -> pd.DataFrame:
    keys = ("auc", "logloss", "skill", "brier", "f1", "spread")
    return pd.DataFrame({name: {k: b[block][k] for k in keys} for name, b in baselines.items()
                         if block in b}).T
