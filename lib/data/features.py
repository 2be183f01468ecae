"""Indicator feature sets computed with TA-Lib, in a registry by name.

``a25`` is the original study's set: Open, High, Low, Close, Volume plus 20 indicators on the
target's bars. Every indicator at day t uses bars up to t only (research rule 7): TA-Lib's
indicators are causal, and the weekly indicators are computed on completed weekly bars (weeks
starting Monday) shifted one week before being aligned to days, so a day sees only the previous
full week.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import talib

from .sources import DataError

FeatureFn = Callable[[dict[str, pd.DataFrame], str], pd.DataFrame]
FEATURE_SETS: dict[str, FeatureFn] = {}

# Columns measured in price units (non-stationary over decades); the baselines make them scale-free.
PRICE_LEVEL = ("open", "high", "low", "close", "dema_9", "dema_10", "dema_20", "dema_25", "dema_90",
               "sma_12", "sma_50", "sma_100", "sma_200", "macd_12_26_9", "atr_14", "vwap_20")


def register(name: str) -> Callable[[FeatureFn], FeatureFn]:
    """Decorator: register a feature function under ``name`` (it then gets the look-ahead test)."""
    def deco(fn: FeatureFn) -> FeatureFn:
        FEATURE_SETS[name] = fn
        return fn
    return deco


def weekly(close: pd.Series, fn: Callable[[np.ndarray], np.ndarray]) -> pd.Series:
    """Indicator on weekly closes (weeks Monday..Sunday), shifted one week, aligned to days."""
    week = close.index.to_period("W-SUN")
    wclose = close.groupby(week).last()
    value = pd.Series(fn(wclose.to_numpy(dtype=float)), index=wclose.index).shift(1)
    return pd.Series(value.reindex(week).to_numpy(), index=close.index)


def _stochrsi_k(x: np.ndarray) -> np.ndarray:
    return talib.STOCHRSI(x, timeperiod=14, fastk_period=5, fastd_period=3)[0]


def _target_ohlcv(bars: dict[str, pd.DataFrame], target: str, name: str):
    """The target's bars and its open, high, low, close and volume as float arrays; a missing
    target, column or volume is a DataError naming the feature set."""
    if target not in bars:
        raise DataError(f"feature set {name}: target '{target}' not among tickers {list(bars)}")
    df = bars[target]
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in df.columns]
    if missing:
        raise DataError(f"feature set {name} needs OHLCV bars for '{target}'; missing {missing}")
    if df["volume"].isna().any():
        raise DataError(f"feature set {name} needs volume for '{target}'; it has missing values "
                        f"(first at {df.index[df['volume'].isna()][0].date()})")
    return df, tuple(df[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close",
                                                            "volume"))


@register("a25")
def a25(bars: dict[str, pd.DataFrame], target: str) -> pd.DataFrame:
    """OHLCV + DEMA 9/10/20/25/90, SMA 12/50/100/200, RSI 14, StochRSI fast-K, weekly RSI and
    StochRSI fast-K, MACD line, OBV, Chaikin A/D oscillator, ATR 14, ADX 14, Bollinger %B,
    VWAP 20."""
    df, (o, h, lo, c, v) = _target_ohlcv(bars, target, "a25")
    out = pd.DataFrame({"open": o, "high": h, "low": lo, "close": c, "volume": v}, index=df.index)
    for n in (9, 10, 20, 25, 90):
        out[f"dema_{n}"] = talib.DEMA(c, timeperiod=n)
    for n in (12, 50, 100, 200):
        out[f"sma_{n}"] = talib.SMA(c, timeperiod=n)
    out["rsi_14"] = talib.RSI(c, timeperiod=14)
    out["stochrsi_k"] = _stochrsi_k(c)
    out["rsi_14_weekly"] = weekly(df["close"], lambda x: talib.RSI(x, timeperiod=14))
    out["stochrsi_k_weekly"] = weekly(df["close"], _stochrsi_k)
    out["macd_12_26_9"] = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)[0]
    out["obv"] = talib.OBV(c, v)
    out["adosc_3_10"] = talib.ADOSC(h, lo, c, v, fastperiod=3, slowperiod=10)
    out["atr_14"] = talib.ATR(h, lo, c, timeperiod=14)
    out["adx_14"] = talib.ADX(h, lo, c, timeperiod=14)
    up, _, dn = talib.BBANDS(c, timeperiod=20, nbdevup=2, nbdevdn=2)
    out["bb_pctb_20_2"] = (c - dn) / (up - dn)
    out["vwap_20"] = talib.SUM(c * v, timeperiod=20) / talib.SUM(v, timeperiod=20)
    return out


@register("sf")
def sf(bars: dict[str, pd.DataFrame], target: str) -> pd.DataFrame:
    """Scale-free counterpart of ``a25``, whose price-level columns drift over decades: every
    column is a ratio, a return or a bounded level, so a model can use it without per-window
    normalisation (``norm: none`` or ``global``).

    Log returns over 1, 2, 5, 10, 20 days; the day's range log(High/Low), body log(Close/Open)
    and gap log(Open/previous Close); DEMA 9/20/90, SMA 12/50/200 and the 20-day VWAP relative to
    Close; ATR 14 and Bollinger width (20, 2) relative to Close, 20-day realised volatility;
    RSI 14, StochRSI fast-K, weekly RSI and StochRSI fast-K, ADX 14 on [0, 1], Bollinger %B;
    MACD line relative to Close; log volume against its 20-day mean, 20-day OBV change and the
    Chaikin oscillator relative to 20-day volume. All from bars up to day t (rule 7).
    """
    df, (o, h, lo, c, v) = _target_ohlcv(bars, target, "sf")
    close = df["close"].astype(float)
    logc = np.log(close)
    out = pd.DataFrame(index=df.index)
    for n in (1, 2, 5, 10, 20):
        out[f"ret_{n}"] = logc.diff(n).to_numpy()
    out["range"] = np.log(h / lo)
    out["body"] = np.log(c / o)
    out["gap"] = np.log(o / np.r_[np.nan, c[:-1]])
    for n in (9, 20, 90):
        out[f"dema_{n}_rel"] = talib.DEMA(c, timeperiod=n) / c - 1
    for n in (12, 50, 200):
        out[f"sma_{n}_rel"] = talib.SMA(c, timeperiod=n) / c - 1
    out["vwap_20_rel"] = talib.SUM(c * v, timeperiod=20) / talib.SUM(v, timeperiod=20) / c - 1
    out["atr_14_rel"] = talib.ATR(h, lo, c, timeperiod=14) / c
    up, mid, dn = talib.BBANDS(c, timeperiod=20, nbdevup=2, nbdevdn=2)
    out["bb_width_20"] = (up - dn) / mid
    out["bb_pctb_20_2"] = (c - dn) / (up - dn)
    out["rv_20"] = logc.diff().rolling(20).std().to_numpy()
    out["rsi_14"] = talib.RSI(c, timeperiod=14) / 100
    out["stochrsi_k"] = _stochrsi_k(c) / 100
    out["rsi_14_weekly"] = weekly(close, lambda x: talib.RSI(x, timeperiod=14)) / 100
    out["stochrsi_k_weekly"] = weekly(close, _stochrsi_k) / 100
    out["adx_14"] = talib.ADX(h, lo, c, timeperiod=14) / 100
    out["macd_rel"] = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)[0] / c
    logv = np.log(np.clip(v, 1, None))
    out["volume_rel"] = logv - talib.SMA(logv, timeperiod=20)
    vol20 = talib.SUM(v, timeperiod=20)
    out["obv_change_20"] = (talib.OBV(c, v) - np.r_[np.full(20, np.nan),
                                                   talib.OBV(c, v)[:-20]]) / vol20
    out["adosc_rel"] = talib.ADOSC(h, lo, c, v, fastperiod=3, slowperiod=10) / (vol20 / 20)
    return out


@register("sfc")
def sfc(bars: dict[str, pd.DataFrame], target: str) -> pd.DataFrame:
    """Scale-free features from the close alone, for series without open, high, low or volume
    (the skfolio panel): log returns over 1, 2, 5, 10, 20 days; SMA 12/50/200 relative to Close;
    Bollinger width and %B (20, 2); realised volatility over 20 and 60 days; RSI 14, StochRSI
    fast-K and weekly RSI on [0, 1]; MACD line relative to Close; the drawdown from the highest
    close of the last 250 days. All from closes up to day t (rule 7)."""
    if target not in bars:
        raise DataError(f"feature set sfc: target '{target}' not among tickers {list(bars)}")
    close = bars[target]["close"].astype(float)
    c = close.to_numpy()
    logc = np.log(close)
    out = pd.DataFrame(index=close.index)
    for n in (1, 2, 5, 10, 20):
        out[f"ret_{n}"] = logc.diff(n).to_numpy()
    for n in (12, 50, 200):
        out[f"sma_{n}_rel"] = talib.SMA(c, timeperiod=n) / c - 1
    up, mid, dn = talib.BBANDS(c, timeperiod=20, nbdevup=2, nbdevdn=2)
    out["bb_width_20"] = (up - dn) / mid
    width = up - dn  # a close stored to 3 decimals can sit still for 20 days: zero width, and
    with np.errstate(divide="ignore", invalid="ignore"):  # the close at the band's middle
        out["bb_pctb_20_2"] = np.where(width > 0, (c - dn) / width, 0.5)
    for n in (20, 60):
        out[f"rv_{n}"] = logc.diff().rolling(n).std().to_numpy()
    out["rsi_14"] = talib.RSI(c, timeperiod=14) / 100
    out["stochrsi_k"] = _stochrsi_k(c) / 100
    out["rsi_14_weekly"] = weekly(close, lambda x: talib.RSI(x, timeperiod=14)) / 100
    out["macd_rel"] = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)[0] / c
    out["drawdown_250"] = c / talib.MAX(c, timeperiod=250) - 1
    return out


@register("a25x")
def a25_cross(bars: dict[str, pd.DataFrame], target: str) -> pd.DataFrame:
    """a25 plus the 1-day log return of every other ticker (cross-asset context), as of day t."""
    out = a25(bars, target)
    for t, df in bars.items():
        if t == target:
            continue
        # forward-fill onto the target's calendar: a missing day repeats the last known close
        ret = np.log(df["close"].reindex(out.index, method="ffill")).diff()
        out[f"ret_{t.strip('^').lower()}"] = ret.to_numpy()
    return out


def columns_of(name: str, tickers: list[str], target: str) -> list[str]:
    """The columns feature set ``name`` computes for these tickers, found by running it on a
    synthetic random walk: a sweep file can be checked (its budgets' grids need the number of
    inputs) before any data exists."""
    if name not in FEATURE_SETS:
        raise DataError(f"unknown feature set '{name}' (registered: {', '.join(FEATURE_SETS)})")
    rng = np.random.default_rng(0)
    idx = pd.bdate_range("2000-01-03", periods=400, name="date")
    bars = {}
    for t in tickers:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(idx))))
        bars[t] = pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99,
                                "close": close, "volume": 1e6}, index=idx)
    return list(FEATURE_SETS[name](bars, target).columns)


def compute(name: str, bars: dict[str, pd.DataFrame], target: str) -> tuple[pd.DataFrame, int]:
    """Feature frame with warm-up rows (any NaN) dropped; returns (frame, n_dropped)."""
    if name not in FEATURE_SETS:
        raise DataError(f"unknown feature set '{name}' (registered: {', '.join(FEATURE_SETS)})")
    full = FEATURE_SETS[name](bars, target)
    ok = full.notna().all(axis=1).to_numpy()
    if not ok.any():
        raise DataError(f"feature set {name}: every row has a NaN (history too short for warm-up)")
    first = int(np.argmax(ok))
    if not ok[first:].all():
        bad = full.index[first:][~ok[first:]][0]
        raise DataError(f"feature set {name}: NaN after warm-up at {bad.date()}")
    return full.iloc[first:].astype("float64"), first
