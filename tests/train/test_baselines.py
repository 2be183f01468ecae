import numpy as np
import pandas as pd
import pytest

from lib.core.config import SplitConfig
from lib.data.splits import make_splits
from lib.train.baselines import run_baselines, scale_free


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


def test_cached_baselines_equal_a_fresh_run_and_are_reused(real_df, real_splits, tmp_path,
                                                            monkeypatch):
    from lib.train import baselines as bl

    fresh = bl.run_baselines(real_df, real_splits, seed=0)
    first = bl.cached_baselines(real_df, real_splits, tmp_path, seed=0)
    assert len(list(tmp_path.glob("*.json"))) == 1
    calls = []
    monkeypatch.setattr(bl, "run_baselines", lambda *a, **k: calls.append(1) or fresh)
    again = bl.cached_baselines(real_df, real_splits, tmp_path, seed=0)
    assert calls == []  # served from the cache
    for name in ("prior", "logreg", "hgb"):
        assert again[name]["params"] == fresh[name]["params"] == first[name]["params"]
        for m in ("auc", "logloss", "skill"):
            assert again[name]["val"][m] == pytest.approx(fresh[name]["val"][m], abs=1e-12)
    # another seed, or test metrics, are other runs
    bl.cached_baselines(real_df, real_splits, tmp_path, seed=1)
    bl.cached_baselines(real_df, real_splits, tmp_path, seed=0, evaluate_test=True)
    assert len(calls) == 2
    # a corrupt cache file is recomputed, not trusted
    for f in tmp_path.glob("*.json"):
        f.write_text("{not json")
    bl.cached_baselines(real_df, real_splits, tmp_path, seed=0)
    assert len(calls) == 3


def test_baseline_cache_key_reads_no_test_row_unless_asked(real_df, real_splits):
    from lib.train.baselines import cache_key

    poisoned = real_df.copy()
    test_rows = poisoned.index >= real_splits.stats.test.block_start
    poisoned.loc[test_rows] = poisoned.loc[test_rows].to_numpy() * 3.7
    kw = {"seed": 0, "collapse_spread": 0.02}
    assert (cache_key(real_df, real_splits, evaluate_test=False, **kw)
            == cache_key(poisoned, real_splits, evaluate_test=False, **kw))
    assert (cache_key(real_df, real_splits, evaluate_test=True, **kw)
            != cache_key(poisoned, real_splits, evaluate_test=True, **kw))
    val_rows = (poisoned.index >= real_splits.stats.val.block_start) & ~test_rows
    changed = real_df.copy()
    changed.loc[val_rows, real_splits.columns[0]] *= 1.01
    assert (cache_key(real_df, real_splits, evaluate_test=False, **kw)
            != cache_key(changed, real_splits, evaluate_test=False, **kw))
