"""Rules 1, 3, 5: horizon-explicit labels from raw prices, purged blocks, enough windows."""

import numpy as np
import pandas as pd
import pytest

from lib.core.config import SplitConfig
from lib.data.splits import BLOCKS, SplitError, make_labels, make_splits, walk_forward

CLOSE = np.array([100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0])
HIGH = np.array([100.0, 100.5, 100.2, 101.5, 100.0, 100.0, 100.0])


def test_labels_by_hand():
    np.testing.assert_array_equal(make_labels(CLOSE, HIGH, horizon=1)[:6], [0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(make_labels(CLOSE, HIGH, horizon=3)[:4], [1, 1, 1, 0])
    np.testing.assert_array_equal(make_labels(CLOSE, HIGH, horizon=5)[:2], [1, 1])
    for h in (1, 3, 5):
        y = make_labels(CLOSE, HIGH, horizon=h)
        assert np.isnan(y[-h:]).all() and not np.isnan(y[:-h]).any()


def test_close_variant_ignores_high():
    close = np.array([100.0, 100.5, 101.2, 99.0, 99.0])
    high = close * 1.02
    np.testing.assert_array_equal(make_labels(close, high, horizon=1, kind="close")[:4],
                                  [0, 0, 0, 0])
    np.testing.assert_array_equal(make_labels(close, high, horizon=2, kind="close")[:3],
                                  [1, 0, 0])
    np.testing.assert_array_equal(make_labels(close, high, horizon=1)[:4], [1, 1, 0, 1])


def test_threshold_is_inclusive_and_relative():
    close, high = np.array([200.0, 200.0]), np.array([200.0, 202.0])
    assert make_labels(close, high, horizon=1, threshold=0.01)[0] == 1
    assert make_labels(close, high, horizon=1, threshold=0.0101)[0] == 0


@pytest.mark.parametrize("h", [0, -1, 1.5])
def test_horizon_must_be_positive_integer(h):
    with pytest.raises(SplitError, match="horizon must be an integer >= 1"):
        make_labels(CLOSE, HIGH, horizon=h)


def test_positive_rates_differ_by_horizon_on_real_data(real_df):
    rates = {h: make_splits(real_df, SplitConfig(), horizon=h).stats.train.positive_rate
             for h in (1, 3, 5)}
    assert rates[1] < rates[3] < rates[5]


def test_horizon_has_no_default_and_reaches_split_stats(real_df):
    """Rule 1: a call site that forgets the horizon fails instead of falling back on h=1."""
    with pytest.raises(TypeError, match="horizon"):
        make_splits(real_df, SplitConfig())
    with pytest.raises(TypeError, match="horizon"):
        next(walk_forward(real_df, SplitConfig(), 1))
    assert make_splits(real_df, SplitConfig(), horizon=5).stats.horizon == 5


def test_purge_no_label_span_crosses_a_block(real_df):
    cfg = SplitConfig()
    for h in (1, 5):
        s = make_splits(real_df, cfg, horizon=h)
        dates = real_df.index
        starts = {b: dates.get_loc(pd.Timestamp(getattr(s.stats, b).block_start)) for b in BLOCKS}
        ends = {b: dates.get_loc(pd.Timestamp(getattr(s.stats, b).block_end)) for b in BLOCKS}
        for b in BLOCKS:
            blk = s.block(b)
            assert (blk.ends - cfg.context_len + 1 >= starts[b]).all()
            assert (blk.ends + h <= ends[b]).all()
        assert s.train.ends.max() + h < starts["val"] and s.val.ends.max() + h < starts["test"]


def test_windows_hold_raw_features_ending_at_t(real_df):
    s = make_splits(real_df, SplitConfig(), horizon=1)
    t = s.val.ends[10]
    assert not [c for c in s.columns if c.startswith("raw_")], "raw prices are never inputs"
    np.testing.assert_allclose(s.val.X[10, -1], real_df[s.columns].iloc[t].to_numpy(np.float32))
    np.testing.assert_allclose(s.val.X[10, 0],
                               real_df[s.columns].iloc[t - 79].to_numpy(np.float32))


def test_labels_come_from_raw_prices_whatever_the_features_scaling(real_df):
    """Rule 5: z-scoring (or any rescaling of) the stored features, price columns included,
    leaves every label unchanged; labels read the raw price columns only."""
    feats = [c for c in real_df.columns if not c.startswith("raw_")]
    scaled = real_df.copy()
    scaled[feats] = (real_df[feats] - real_df[feats].mean()) / real_df[feats].std()
    for h in (1, 5):
        a = make_splits(real_df, SplitConfig(), horizon=h)
        b = make_splits(scaled, SplitConfig(), horizon=h)
        for blk in BLOCKS:
            np.testing.assert_array_equal(a.block(blk).y, b.block(blk).y)
        assert not np.allclose(a.train.X, b.train.X)
    with pytest.raises(SplitError, match="raw price column raw_close"):
        make_splits(real_df.drop(columns=["raw_close"]), SplitConfig(), horizon=1)
    with pytest.raises(SplitError, match="label 'threshold' needs the day's High"):
        make_splits(real_df.drop(columns=["raw_high"]), SplitConfig(), horizon=1)
    close_only = make_splits(real_df.drop(columns=["raw_high"]), SplitConfig(label="close"),
                             horizon=1)  # the close label needs no High
    assert len(close_only.test.y) == len(make_splits(real_df, SplitConfig(), horizon=1).test.y)


def test_canaries_placebo_and_leak(real_df):
    clean = make_splits(real_df, SplitConfig(), horizon=3)
    placebo = make_splits(real_df, SplitConfig(canary="placebo"), horizon=3)
    for blk in ("train", "val"):  # permuted: same labels, other order
        assert sorted(placebo.block(blk).y) == sorted(clean.block(blk).y)
        assert (placebo.block(blk).y != clean.block(blk).y).any()
    np.testing.assert_array_equal(placebo.test.y, clean.test.y)  # the test labels stay real
    leak = make_splits(real_df, SplitConfig(canary="leak"), horizon=3)
    assert leak.columns[-1] == "canary_leak" and leak.stats.canary == "leak"
    from sklearn.metrics import roc_auc_score

    for blk in BLOCKS:  # the newest day carries a noisy view of its future, never the label
        x, y = leak.block(blk).X[:, -1, -1], clean.block(blk).y
        assert not np.isin(x, [0.0, 1.0]).all()
        assert 0.8 <= roc_auc_score(y, x) <= 0.97, roc_auc_score(y, x)


def test_minimum_windows_error_says_how_much_is_missing(real_df):
    cfg = SplitConfig(val_start="2016-06-01", test_start="2017-01-01")
    with pytest.raises(SplitError, match=r"validation block 2016-06-01\.\.2016-12-30 has \d+ "
                                         r"windows for context_len=80, horizon=1; needs at least "
                                         r"250 \(min_eval_windows\): \d+ missing"):
        make_splits(real_df, cfg, horizon=1)


def test_short_data_is_an_error(real_df):
    with pytest.raises(SplitError, match="needs at least 250"):
        make_splits(real_df.loc["2014-01-01":], SplitConfig(val_frac=0.3, test_frac=0.3), horizon=1)


def test_fraction_splits(real_df):
    s = make_splits(real_df, SplitConfig(val_start=None, test_start=None, val_frac=0.15,
                                         test_frac=0.15), horizon=3)
    assert s.stats.val.n_windows >= 250 and s.stats.test.n_windows >= 250


def test_walk_forward_folds_test_only_after_validation_and_never_overlap(real_df):
    """The folds' test blocks lie after the main validation block (which chose the
    configuration) and do not overlap; asking for more than fits is a clear error."""
    cfg = SplitConfig(val_start="2012-01-01", test_start="2014-01-01")
    folds = list(walk_forward(real_df, cfg, 3, horizon=5))
    assert len(folds) == 3
    prev_test_end = None
    for f in folds:
        st = f.stats
        assert st.train.block_end < st.val.block_start < st.val.block_end < st.test.block_start
        assert st.test.block_start >= "2014-01-01"
        if prev_test_end is not None:
            assert prev_test_end < st.test.block_start
        prev_test_end = st.test.block_end
        assert st.test.n_windows >= 250
    with pytest.raises(SplitError, match=r"needs 668 rows after the validation block \(from "
                                         r"2017-01-03\) for the folds' test blocks; the data has "
                                         r"502"):
        list(walk_forward(real_df, SplitConfig(), 2, horizon=5))


@pytest.mark.parametrize("h", [1, 5])
def test_rolling_origin_folds_cover_the_test_period_after_validation(real_df, h):
    """Rolling origin (split.fold_years): consecutive, non-overlapping test folds, all after the
    search's validation block; each fold trains on days before its early-stopping block, whose
    label days end before the fold; the first fold's training and validation blocks are the
    search's. On the shipped data (validation 2007-08) the test days grow five-fold."""
    from dataclasses import replace

    from lib.data.splits import test_folds

    cfg = SplitConfig(val_start="2007-01-01", test_start="2009-01-01", fold_years=2)
    folds = test_folds(real_df, cfg, horizon=h)
    main = make_splits(real_df, replace(cfg, fold_years=0), horizon=h)
    assert len(folds) == 5
    assert folds[0].stats.train == main.stats.train and folds[0].stats.val == main.stats.val
    prev_end = main.stats.val.block_end
    for f in folds:
        st = f.stats
        assert st.test.block_start > prev_end  # after validation, after the previous fold
        prev_end = st.test.block_end
        # the purge: no training label day reaches the fold's validation or test block
        assert real_df.index[f.train.ends[-1] + h] < pd.Timestamp(st.val.block_start)
        assert real_df.index[f.val.ends[-1] + h] < pd.Timestamp(st.test.block_start)
        assert st.test.n_windows >= 250
    assert folds[-1].stats.test.block_end == main.stats.test.block_end
    one_block = make_splits(real_df, SplitConfig(), horizon=h).stats.test.n_windows
    assert sum(f.stats.test.n_windows for f in folds) >= 4.9 * one_block


def test_a_fold_too_short_is_an_error_naming_it(real_df):
    from lib.data.splits import test_folds

    cfg = SplitConfig(val_start="2013-01-01", test_start="2015-01-01", fold_years=1)
    with pytest.raises(SplitError, match=r"rolling-origin fold 1 \(2015-01-01\.\.2015-12-31\): "
                                         r"test block .* needs at least 250"):
        test_folds(real_df, cfg, horizon=5)
