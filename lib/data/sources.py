"""Daily OHLCV from three sources behind one interface, validated, stored with a raw manifest.

Sources:
- ``embedded``: the ``arch`` package's real S&P 500 (^GSPC) and NASDAQ Composite (^IXIC) daily bars,
  1999-01-04..2018-12-31, and the VIX close for 2014-2018 (works offline; the default).
- ``skfolio``: the ``skfolio`` package's daily closes of 20 S&P 500 stocks (AAPL .. XOM),
  1990-01-02..2022-12-28, split- and dividend-adjusted, rounded to 3 decimals (close only; offline;
  BSD-3). Stocks that are large today: a survivor panel.
- ``yfinance``: Yahoo Finance through ``yf.download``; offline it returns an EMPTY frame without
  raising, which is treated as an error naming the ticker.
- ``csv``: a folder with ``<TICKER>.csv`` per ticker; date/open/high/low/close/volume in any case.

Every frame is validated (:func:`validate_ohlcv`) before anything is written.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..core import paths
from ..core.provenance import (
    atomic_write_bytes,
    now_iso,
    package_versions,
    read_json,
    sha256_file,
    write_json,
)

COLUMNS = ["open", "high", "low", "close", "volume"]
PRICE_TOL = 1e-6  # relative tolerance for High >= max(Open, Close) and Low <= min(Open, Close)
EMBEDDED = {"^GSPC": "sp500", "^IXIC": "nasdaq", "^VIX": "vix"}


class DataError(ValueError):
    """Market data that breaks a rule; the message names the file, the row (date) and the rule."""


def check_gaps(df: pd.DataFrame, name: str, max_gap_days: int) -> None:
    """A DataError naming the dates of the longest gap when a series (indexed by date) misses
    more than ``max_gap_days`` weekdays between two bars: windows, indicators and labels would
    run across it as if the days were adjacent. Weekends and market holidays (a few weekdays at
    most, 4 after 11 September 2001) stay well below the default of 10."""
    if len(df) < 2:
        return
    days = df.index.values.astype("datetime64[D]")
    missing = np.busday_count(days[:-1], days[1:]) - 1
    worst = int(np.argmax(missing))
    if missing[worst] > max_gap_days:
        raise DataError(
            f"{name}: {int(missing[worst])} weekdays without a bar between "
            f"{df.index[worst].date()} and {df.index[worst + 1].date()} (at most "
            f"data.max_gap_days = {max_gap_days}): windows and labels would span the gap as if "
            f"the days were adjacent. Fill the series, start it after the gap (data.start or "
            f"a shorter CSV), or raise data.max_gap_days if that is what you want")


def validate_ohlcv(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Check and normalise a daily OHLCV frame; returns it indexed by ``date``.

    Rules: parseable, unique, increasing dates; positive prices; no NaN in OHLC;
    High >= max(Open, Close) and Low <= min(Open, Close) within a small tolerance. A price-only
    series (an index such as VIX) may lack open/high/low and volume.
    """
    if df is None or len(df) == 0:
        raise DataError(f"{name}: no rows")
    df = df.copy()
    if "date" in df.columns:
        df = df.set_index("date")
    try:
        idx = pd.to_datetime(df.index, errors="raise")
    except (ValueError, TypeError) as e:
        raise DataError(f"{name}: unparseable date: {e}") from None
    idx = idx.tz_localize(None) if idx.tz is not None else idx
    df.index = pd.DatetimeIndex(idx.normalize(), name="date")
    if "close" not in df.columns:
        raise DataError(f"{name}: missing column 'close' (have: {', '.join(map(str, df.columns))})")
    has_bars = any(c in df.columns for c in ("open", "high", "low"))
    if has_bars:
        for col in ("open", "high", "low"):
            if col not in df.columns:
                raise DataError(f"{name}: missing column '{col}'")
    for col in [c for c in COLUMNS if c in df.columns]:
        if not pd.api.types.is_numeric_dtype(df[col]):
            conv = pd.to_numeric(df[col], errors="coerce")
            bad = conv.isna() & df[col].notna()
            if bad.any():
                d = df.index[bad.values.argmax()].date()
                raise DataError(f"{name}: row {d}: column '{col}' is not numeric "
                                f"({df[col][bad].iloc[0]!r})")
            df[col] = conv
        df[col] = df[col].astype(float)
    dup = df.index.duplicated()
    if dup.any():
        raise DataError(f"{name}: row {df.index[dup][0].date()}: duplicate date")
    if not df.index.is_monotonic_increasing:
        pos = int(np.argmax(np.diff(df.index.values) < np.timedelta64(0)))
        raise DataError(f"{name}: row {df.index[pos + 1].date()}: dates not increasing "
                        f"(follows {df.index[pos].date()})")
    prices = [c for c in ("open", "high", "low", "close") if c in df.columns]
    for col in [*prices, *(["volume"] if "volume" in df.columns else [])]:
        bad = np.isinf(df[col].to_numpy(dtype=float))
        if bad.any():
            raise DataError(f"{name}: row {df.index[bad][0].date()}: infinite '{col}' "
                            f"({df[col][bad].iloc[0]})")
    for col in prices:
        nan = df[col].isna()
        if nan.any():
            raise DataError(f"{name}: row {df.index[nan][0].date()}: NaN in '{col}'")
        bad = df[col] <= 0
        if bad.any():
            raise DataError(f"{name}: row {df.index[bad][0].date()}: non-positive '{col}' "
                            f"({df[col][bad].iloc[0]})")
    if has_bars:
        top = df[["open", "close"]].max(axis=1)
        bad = df["high"] < top * (1 - PRICE_TOL)
        if bad.any():
            d = df.index[bad][0]
            raise DataError(f"{name}: row {d.date()}: High below max(Open, Close) "
                            f"({df.at[d, 'high']} < {top[d]})")
        bot = df[["open", "close"]].min(axis=1)
        bad = df["low"] > bot * (1 + PRICE_TOL)
        if bad.any():
            d = df.index[bad][0]
            raise DataError(f"{name}: row {d.date()}: Low above min(Open, Close) "
                            f"({df.at[d, 'low']} > {bot[d]})")
    if "volume" in df.columns and (df["volume"] < 0).any():
        d = df.index[(df["volume"] < 0).values][0]
        raise DataError(f"{name}: row {d.date()}: negative volume")
    return df[[c for c in COLUMNS if c in df.columns]]


def _normalise_columns(df: pd.DataFrame) -> pd.DataFrame:
    def norm(c):
        return re.sub(r"[\s_]+", " ", str(c).strip().lower())

    df = df.rename(columns={c: norm(c) for c in df.columns})
    df = df.drop(columns=[c for c in df.columns if c == "adj close"])
    if df.index.name is not None and norm(df.index.name) == "date":
        df.index.name = "date"
        df = df.reset_index()
    return df


def load_embedded(ticker: str) -> pd.DataFrame:
    """Real daily bars shipped with the ``arch`` package (offline)."""
    if ticker not in EMBEDDED:
        raise DataError(f"embedded source has no ticker '{ticker}' (available: "
                        f"{', '.join(EMBEDDED)})")
    import importlib

    module = importlib.import_module(f"arch.data.{EMBEDDED[ticker]}")
    df = _normalise_columns(module.load())
    if "vix" in df.columns:
        # arch's VIX series lists market holidays as NaN rows: they are not trading days
        df = df.rename(columns={"vix": "close"}).dropna(subset=["close"])
    return validate_ohlcv(df, f"embedded:{ticker}")


def load_skfolio(ticker: str) -> pd.DataFrame:
    """One stock's adjusted daily closes from the ``skfolio`` package's S&P 500 panel (offline)."""
    from skfolio.datasets import load_sp500_dataset

    panel = load_sp500_dataset()
    if ticker not in panel.columns:
        raise DataError(f"skfolio source has no ticker '{ticker}' (available: "
                        f"{', '.join(panel.columns)})")
    df = panel[[ticker]].rename(columns={ticker: "close"}).dropna()
    return validate_ohlcv(df.rename_axis("date"), f"skfolio:{ticker}")


def load_yfinance(ticker: str, start: str | None = None, end: str | None = None,
                  retries: int = 3, backoff_s: float = 2.0) -> pd.DataFrame:
    """Download daily bars from Yahoo Finance; an empty or partial answer is an error."""
    import yfinance as yf

    last = None
    for attempt in range(retries):
        try:
            raw = yf.download(ticker, start=start, end=end, auto_adjust=False, progress=False,
                              actions=False, threads=False)
        except Exception as e:  # yfinance wraps network errors in many types
            last = f"{type(e).__name__}: {e}"
            raw = None
        if raw is not None and len(raw) > 0:
            if isinstance(raw.columns, pd.MultiIndex):
                raw = raw.xs(ticker, axis=1, level=-1) if ticker in raw.columns.get_level_values(
                    -1) else raw.droplevel(-1, axis=1)
            df = _normalise_columns(raw)
            missing = [c for c in ("open", "high", "low", "close") if c not in df.columns]
            if missing:
                raise DataError(f"yfinance:{ticker}: partial answer, missing {missing}")
            return validate_ohlcv(df, f"yfinance:{ticker}")
        last = last or "empty answer"
        if attempt < retries - 1:
            time.sleep(backoff_s * 2**attempt)
    raise DataError(f"yfinance:{ticker}: no data for ticker '{ticker}' after {retries} tries "
                    f"({last}; unknown ticker, or offline)")


def load_csv(ticker: str, folder: str | Path) -> pd.DataFrame:
    """Validated daily OHLCV of ``ticker`` from ``<folder>/<ticker>.csv`` (any column case)."""
    path = Path(folder) / f"{ticker}.csv"
    if not path.exists():
        raise DataError(f"{path}: file not found for ticker '{ticker}'")
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: malformed CSV: {e}") from None
    df = _normalise_columns(df)
    if "date" not in df.columns:
        raise DataError(f"{path}: missing column 'date' (have: {', '.join(df.columns)})")
    return validate_ohlcv(df, str(path))


def fetch(source: str, ticker: str, csv_dir: str | None = None, start: str | None = None,
          end: str | None = None) -> pd.DataFrame:
    """Validated daily OHLCV of ``ticker`` from the named source."""
    if source == "embedded":
        return load_embedded(ticker)
    if source == "yfinance":
        return load_yfinance(ticker, start, end)
    if source == "skfolio":
        return load_skfolio(ticker)
    if source == "csv":
        if not csv_dir:
            raise DataError("source 'csv' needs csv_dir (a folder with <TICKER>.csv files)")
        return load_csv(ticker, csv_dir)
    raise DataError(f"unknown data source '{source}' (embedded, skfolio, yfinance, csv)")


def raw_path(source: str, ticker: str) -> Path:
    return paths.RAW / source / f"{ticker}.parquet"


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf)
    return buf.getvalue()


def _read_manifest(path: Path) -> dict:
    return read_json(path) if path.exists() else {"files": {}}


def request(source: str, ticker: str, csv_dir: str | None = None, start: str | None = None,
            end: str | None = None) -> dict:
    """What a raw file is made from: its identity in the cache. A CSV is identified by its
    resolved path and its content's sha256, the shipped data by the ``arch`` version, a download
    by its date range."""
    key: dict = {"source": source, "ticker": ticker}
    if source == "csv":
        if not csv_dir:
            raise DataError("source 'csv' needs csv_dir (a folder with <TICKER>.csv files)")
        path = Path(csv_dir) / f"{ticker}.csv"
        if not path.exists():
            raise DataError(f"{path}: file not found for ticker '{ticker}'")
        key.update(csv_file=str(path.resolve()), csv_sha256=sha256_file(path))
    elif source in ("embedded", "skfolio"):
        pkg = "arch" if source == "embedded" else "skfolio"
        key[pkg] = package_versions((pkg,))[pkg]
    else:
        key.update(start=start, end=end)
    return key


def store_raw(source: str, frames: dict[str, pd.DataFrame],
              requests: dict[str, dict] | None = None) -> dict:
    """Write validated frames and update the raw manifest; returns the manifest entries written."""
    manifest = _read_manifest(paths.RAW_MANIFEST)
    versions = package_versions(("pandas", "pyarrow", "arch", "skfolio", "yfinance"))
    entries = {}
    for ticker, df in frames.items():
        path = raw_path(source, ticker)
        atomic_write_bytes(path, parquet_bytes(df))
        entries[paths.rel(path)] = {
            "ticker": ticker, "source": source, "sha256": sha256_file(path), "rows": len(df),
            "first_date": str(df.index[0].date()), "last_date": str(df.index[-1].date()),
            "retrieved_at": now_iso(), "library_versions": versions,
            "request": (requests or {}).get(ticker),
        }
    manifest["files"].update(entries)
    write_json(paths.RAW_MANIFEST, manifest)
    return entries


def read_raw(source: str, ticker: str, key: dict | None = None) -> tuple[pd.DataFrame, str]:
    """Read a stored raw file made from request ``key`` and verify its checksum; returns
    (frame, sha256). ``FileNotFoundError`` when there is none, or it was made from another
    request (another CSV file or content, another date range): it must be fetched again."""
    path = raw_path(source, ticker)
    entry = _read_manifest(paths.RAW_MANIFEST)["files"].get(paths.rel(path))
    if entry is None or not path.exists():
        raise FileNotFoundError(path)
    if key is not None and entry.get("request") != key:
        raise FileNotFoundError(f"{path}: made from another request")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise DataError(f"{paths.rel(path)}: checksum mismatch (manifest {entry['sha256'][:12]}…, "
                        f"file {digest[:12]}…): the file changed after it was recorded")
    return pd.read_parquet(path), digest


def load_raw(source: str, tickers: list[str], csv_dir: str | None = None,
             start: str | None = None, end: str | None = None, refresh: bool = False
             ) -> tuple[dict[str, pd.DataFrame], dict[str, dict], list[str]]:
    """Frames for ``tickers``: from data/raw when a file made from the same request is recorded
    there, else fetched and validated. Nothing is written here (the caller stores the fetched
    frames once everything built from them succeeded). Returns (frames, requests, fetched)."""
    frames, requests, fetched = {}, {}, []
    for t in tickers:
        requests[t] = request(source, t, csv_dir, start, end)
        try:
            if refresh:
                raise FileNotFoundError
            frames[t], _ = read_raw(source, t, requests[t])
        except FileNotFoundError:
            frames[t] = fetch(source, t, csv_dir, start, end)
            fetched.append(t)
    return frames, requests, fetched


def get_raw(source: str, tickers: list[str], csv_dir: str | None = None, start: str | None = None,
            end: str | None = None, refresh: bool = False) -> tuple[dict[str, pd.DataFrame], dict]:
    """:func:`load_raw`, then store what was fetched (all validated first, then all written, so
    an error leaves nothing partial). Returns (frames, {ticker: sha256})."""
    frames, requests, fetched = load_raw(source, tickers, csv_dir, start, end, refresh)
    store_raw(source, {t: frames[t] for t in fetched}, requests)
    return frames, raw_digests(source, tickers)


def raw_digests(source: str, tickers: list[str]) -> dict[str, str]:
    """sha256 of each ticker's cached raw file, from the raw manifest."""
    files = _read_manifest(paths.RAW_MANIFEST)["files"]
    return {t: files[paths.rel(raw_path(source, t))]["sha256"] for t in tickers}
