"""Baselines every score is read against (research rule 11): base rate, logistic regression and
histogram gradient boosting on the last day's features, evaluated with the same metrics.

The baselines are fair, not straw men: price-level features (OHLC, moving averages, ATR, MACD, VWAP)
drift over decades, so they are made scale-free (relative to the day's close, or returns) using only
data up to t, then standardised with training statistics; a little regularisation is chosen on the
validation block. Nothing here reads the test block unless asked to evaluate on it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..core.provenance import write_json
from ..data.features import PRICE_LEVEL
from ..data.splits import LEAK_COLUMN, Splits
from .metrics import evaluate

LOGREG_C = (0.001, 0.01, 0.1, 1.0)
HGB_GRID = ({"max_depth": 2, "l2_regularization": 1.0}, {"max_depth": 3, "l2_regularization": 1.0},
            {"max_depth": 3, "l2_regularization": 10.0})


def scale_free(df: pd.DataFrame) -> pd.DataFrame:
    """Day-t features using data up to t only, with price levels turned into ratios or returns."""
    out = pd.DataFrame(index=df.index)
    close = df["close"] if "close" in df.columns else None  # a scale-free set has no levels
    if close is None and any(c in PRICE_LEVEL for c in df.columns):
        raise ValueError("price-level features without a 'close' column cannot be made "
                         "scale-free")
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


def stored_columns(df: pd.DataFrame, splits: Splits) -> list[str]:
    """The model's input columns that the dataset stores (a canary's leak feature is not)."""
    return [c for c in splits.columns if c in df.columns]


def train_parts(df: pd.DataFrame, splits: Splits) -> list[tuple[pd.DataFrame, np.ndarray]]:
    """Where the training windows' days are: (frame, rows) per series, in stacking order. One
    part, the target's frame, unless a data level pools series
    (:class:`lib.data.data_axis.AxisSplits`), each of whose windows has its day t in its own
    ticker's frame."""
    parts = getattr(splits, "train_parts", None)
    if parts:
        return [(frame, ends) for _, frame, ends in parts]
    return [(df, splits.train.ends)]


def last_day_features(df: pd.DataFrame, splits: Splits) -> dict[str, np.ndarray]:
    """Scale-free features of each window's last day, per block: what the baselines see (a
    pooled series' from its own frame)."""
    if getattr(splits, "assets", None):  # a panel: its inputs are scale-free and standardised
        return panel_features(splits)  # per asset already (lib/data/panel.py)
    cols = stored_columns(df, splits)
    feats = scale_free(df[cols]).to_numpy()
    out = {b: feats[splits.block(b).ends] for b in ("val", "test")}
    out["train"] = np.concatenate([(feats if f is df else scale_free(f[cols]).to_numpy())[rows]
                                   for f, rows in train_parts(df, splits)])
    return out


def panel_features(splits: Splits) -> dict[str, np.ndarray]:
    """A panel's last-day features per block: the model's own inputs on day t (each asset
    standardised by its own training block), without a canary's leak column."""
    keep = [i for i, c in enumerate(splits.columns) if c != LEAK_COLUMN]
    return {b: splits.block(b).X[:, -1, keep] for b in ("train", "val", "test")}


def _select(make, grid, X, splits, base_rate, collapse):
    best = None
    for params in grid:
        model = make(params).fit(X["train"], splits.train.y)
        p = model.predict_proba(X["val"])[:, 1]
        m = evaluate(splits.val.y, p, base_rate, collapse)
        if best is None or m["logloss"] < best[2]["logloss"]:
            best = (params, model, m, p)
    return best


def run_baselines(df: pd.DataFrame, splits: Splits, *, evaluate_test: bool = False,
                  seed: int = 0, collapse_spread: float = 0.02) -> dict:
    """Fit on train, choose regularisation on validation; test metrics only if ``evaluate_test``.

    Returns {name: {"params": ..., "val": metrics, "p_val": validation probabilities,
    "test": metrics and "p_test" (only with ``evaluate_test``)}}.
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
        params, model, val, p_val = _select(make, grid, X, splits, base, collapse_spread)
        out[name] = {"params": params, "val": val, "p_val": p_val}
        if evaluate_test:
            p = model.predict_proba(X["test"])[:, 1]
            out[name]["test"] = evaluate(splits.test.y, p, base, collapse_spread)
            out[name]["p_test"] = p
    out["prior"]["p_val"] = np.full(len(splits.val.y), base)
    if evaluate_test:
        out["prior"]["p_test"] = np.full(len(splits.test.y), base)
    return out


def cache_key(df: pd.DataFrame, splits: Splits, *, evaluate_test: bool, seed: int,
              collapse_spread: float) -> str:
    """Identity of a baseline run: the rows and labels it reads (no test row unless
    ``evaluate_test``), the settings, and the source of this module and of the metrics."""
    blocks = ("train", "val", "test") if evaluate_test else ("train", "val")
    h = hashlib.sha256()
    if getattr(splits, "assets", None):  # a panel: the features it reads are its inputs
        feats = panel_features(splits)
        for b in blocks:
            h.update(np.ascontiguousarray(feats[b]).tobytes())
            h.update(np.ascontiguousarray(splits.assets[b]).tobytes())
        df = df.iloc[:0]
    cols = stored_columns(df, splits)
    parts = train_parts(df, splits)
    last = max([int(splits.block(b).ends.max()) for b in blocks[1:] if len(splits.block(b).ends)]
               + [int(rows.max()) for f, rows in parts if f is df and len(rows)])
    h.update(pd.util.hash_pandas_object(df[cols].iloc[: last + 1]).to_numpy().tobytes())
    for f, rows in parts:  # a pooled series: the rows its training windows read
        if f is not df:
            h.update(pd.util.hash_pandas_object(f[cols].iloc[: int(rows.max()) + 1])
                     .to_numpy().tobytes())
            h.update(np.ascontiguousarray(rows).tobytes())
    for b in blocks:
        h.update(np.ascontiguousarray(splits.block(b).y).tobytes())
        h.update(np.ascontiguousarray(splits.block(b).ends).tobytes())
    h.update(json.dumps([cols, evaluate_test, seed, collapse_spread]).encode())
    here = Path(__file__).parent
    for src in ("baselines.py", "metrics.py"):
        h.update((here / src).read_bytes())
    return h.hexdigest()


def cached_baselines(df: pd.DataFrame, splits: Splits, cache_dir: Path, *,
                     evaluate_test: bool = False, seed: int = 0,
                     collapse_spread: float = 0.02) -> dict:
    """:func:`run_baselines`, computed once per key (:func:`cache_key`) and kept in ``cache_dir``.

    The grid's cells of one horizon share their baselines (every budget has the same split), so a
    sweep of B budgets fits them once per horizon instead of B times. A cache file that cannot be
    read is recomputed and rewritten."""
    key = cache_key(df, splits, evaluate_test=evaluate_test, seed=seed,
                    collapse_spread=collapse_spread)
    path = Path(cache_dir) / f"{key[:24]}.json"
    try:
        out = json.loads(path.read_text())
        if out.pop("_key") == key:
            for v in out.values():
                for k in ("p_val", "p_test"):
                    if k in v:
                        v[k] = np.asarray(v[k], dtype=float)
            return out
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    out = run_baselines(df, splits, evaluate_test=evaluate_test, seed=seed,
                        collapse_spread=collapse_spread)
    try:
        write_json(path, {"_key": key, **out})
    except OSError:
        pass  # a cache that cannot be written only costs time
    return out


def table(baselines: dict, block: str = "val") -> pd.DataFrame:
    """The baselines' metrics on ``block`` as a table, one row per baseline."""
    keys = ("auc", "logloss", "skill", "skill_own", "brier", "f1", "spread")
    return pd.DataFrame({name: {k: b[block][k] for k in keys} for name, b in baselines.items()
                         if block in b}).T
