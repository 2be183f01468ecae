"""research rule 7: no feature at day t uses data after t (truncation test on real data)."""

import numpy as np
import pandas as pd
import pytest

from lib.data import features, sources
from lib.data.sources import DataError


@pytest.fixture(scope="module")
def real_bars():
    return {t: sources.load_embedded(t) for t in ("^GSPC", "^IXIC")}


@pytest.mark.parametrize("name", sorted(features.FEATURE_SETS))  # every registered set
def test_truncation_no_future_data(real_bars, name):
    full, _ = features.compute(name, real_bars, "^GSPC")
    idx = real_bars["^GSPC"].index
    # a Monday, a mid-week day, a Friday, a day before a holiday break, and the last day
    for t in ["2003-03-17", "2008-10-15", "2012-06-29", "2016-12-23", str(idx[-1].date())]:
        t = pd.Timestamp(t)
        cut = {k: v.loc[:t] for k, v in real_bars.items()}
        part, _ = features.compute(name, cut, "^GSPC")
        np.testing.assert_allclose(part.loc[t].to_numpy(), full.loc[t].to_numpy(), rtol=1e-9,
                                   err_msg=f"feature at {t.date()} changed with future data")


@pytest.mark.parametrize("ticker", ["AAPL", "RRC"])  # from $0.26; a close stuck for 20 days
def test_close_only_features_use_no_future_on_the_skfolio_panel(ticker):
    bars = {ticker: sources.load_skfolio(ticker)}
    full, _ = features.compute("sfc", bars, ticker)
    assert np.isfinite(full.to_numpy()).all()
    for t in ["1995-03-15", "2003-06-27", "2016-12-23", str(full.index[-1].date())]:
        t = full.index[full.index.searchsorted(pd.Timestamp(t))]
        part, _ = features.compute("sfc", {ticker: bars[ticker].loc[:t]}, ticker)
        np.testing.assert_allclose(part.loc[t].to_numpy(), full.loc[t].to_numpy(), rtol=1e-9,
                                   err_msg=f"sfc at {t.date()} changed with future data")


def test_weekly_features_use_previous_full_week(real_bars):
    df = real_bars["^GSPC"]
    full = features.a25(real_bars, "^GSPC")
    # all days of one week share the same weekly value, which changes only at the next week
    week = df.loc["2013-03-04":"2013-03-08"].index
    vals = full.loc[week, "rsi_14_weekly"]
    assert vals.nunique() == 1
    nxt = full.loc["2013-03-11", "rsi_14_weekly"]
    assert nxt != vals.iloc[0]


def test_a25_has_exactly_25_columns(real_bars):
    frame, dropped = features.compute("a25", real_bars, "^GSPC")
    assert frame.shape[1] == 25 and dropped > 0
    assert not frame.isna().any().any()


def test_scale_free_set_does_not_drift_with_the_price_level(real_bars):
    """Every column of 'sf' is a ratio, a return or a bounded level: multiplying every price
    (and not the volume) by 10 changes nothing, while a25's price columns scale with it."""
    frame, _ = features.compute("sf", real_bars, "^GSPC")
    assert frame.shape[1] == 28 and not frame.isna().any().any()
    scaled = {k: v.assign(**{c: v[c] * 10 for c in ("open", "high", "low", "close")})
              for k, v in real_bars.items()}
    again, _ = features.compute("sf", scaled, "^GSPC")
    np.testing.assert_allclose(again.to_numpy(), frame.to_numpy(), rtol=1e-6, atol=1e-9)
    a25, _ = features.compute("a25", scaled, "^GSPC")
    assert not np.allclose(a25["close"], features.compute("a25", real_bars, "^GSPC")[0]["close"])


def test_registry_errors(real_bars):
    with pytest.raises(DataError, match="unknown feature set 'a99'"):
        features.compute("a99", real_bars, "^GSPC")
    with pytest.raises(DataError, match="needs OHLCV bars for '\\^VIX'; missing"):
        features.compute("a25", {"^VIX": sources.load_embedded("^VIX")}, "^VIX")


def test_new_feature_set_is_one_function(real_bars):
    @features.register("close_only_test")
    def close_only(bars, target):
        return bars[target][["close"]].assign(ret=lambda d: np.log(d["close"]).diff())

    frame, dropped = features.compute("close_only_test", real_bars, "^GSPC")
    assert list(frame.columns) == ["close", "ret"] and dropped == 1
    del features.FEATURE_SETS["close_only_test"]
