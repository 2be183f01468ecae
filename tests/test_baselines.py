import numpy as np
import pandas as pd

from lib.baselines import run_baselines, scale_free
from lib.config import SplitConfig
from lib.splits import make_splits


def test_scale_free_features_are_causal(real_df):
    full = scale_free(real_df)
    t = real_df.index[3000]
    part = scale_free(real_df.loc[:t])
    pd.testing.assert_series_equal(full.loc[t], part.loc[t], check_names=False)


def test_scale_free_removes_price_levels(real_df):
    sf = scale_free(real_df)
    for col in ("open", "sma_200", "vwap_20"):
        assert sf[col].abs().max() < 1.0  # ratios to the close, not index points (~1000s)


def test_baselines_on_a_planted_signal(real_df):
    df = real_df.copy()
    s0 = make_splits(df, SplitConfig(), horizon=1)
    y_all = np.full(len(df), np.nan)
    for b in ("train", "val", "test"):
        y_all[s0.block(b).ends] = s0.block(b).y
    df["rsi_14"] = np.nan_to_num(y_all) * 10 + np.random.default_rng(0).normal(0, 1, len(df))
    s = make_splits(df, SplitConfig(), horizon=1)
    out = run_baselines(df, s, evaluate_test=True)
    assert out["logreg"]["val"]["auc"] > 0.95 and out["hgb"]["test"]["auc"] > 0.95
    assert out["prior"]["params"]["p"] == s.train.y.mean()
    assert out["prior"]["val"]["skill"] == 0 or abs(out["prior"]["val"]["skill"]) < 0.2


def test_baselines_do_not_read_test_unless_asked(real_df, real_splits):
    out = run_baselines(real_df, real_splits)
    assert all("test" not in v for v in out.values())
    assert out["logreg"]["params"]["C"] in (0.001, 0.01, 0.1, 1.0)
