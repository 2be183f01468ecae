"""Validation of every source, with the exact messages; nothing partial is written on error."""

import json

import numpy as np
import pandas as pd
import pytest

from lib.core import paths
from lib.data import sources
from lib.data.sources import DataError, get_raw, load_csv, validate_ohlcv
from tests.conftest import synthetic_bars


def csv_dir(tmp_path, df, name="TEST", **kw):
    d = tmp_path / "csv"
    d.mkdir(exist_ok=True)
    df.to_csv(d / f"{name}.csv", **kw)
    return d


def test_embedded_real_data():
    df = sources.load_embedded("^GSPC")
    assert str(df.index[0].date()) == "1999-01-04" and str(df.index[-1].date()) == "2018-12-31"
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    vix = sources.load_embedded("^VIX")
    assert list(vix.columns) == ["close"]


def test_csv_any_case_adj_close_and_float_volume(tmp_path):
    df = synthetic_bars(50).reset_index()
    df.columns = ["Date", "OPEN", "High", "low", "Close", "Volume"]
    df["Adj Close"] = df["Close"]
    df["Volume"] = df["Volume"].astype(float)
    out = load_csv("TEST", csv_dir(tmp_path, df, index=False))
    assert list(out.columns) == ["open", "high", "low", "close", "volume"] and len(out) == 50


def test_csv_volume_may_be_missing(tmp_path):
    df = synthetic_bars(30).reset_index().drop(columns="volume")
    out = load_csv("VIXLIKE", csv_dir(tmp_path, df, "VIXLIKE", index=False))
    assert "volume" not in out.columns


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.drop(columns="low"), "missing column 'low'"),
    (lambda d: d.drop(columns="close"), "missing column 'close'"),
    (lambda d: d.assign(close=d["close"].astype(object).where(d.index != 5, "abc")),
     r"row 2000-01-10: column 'close' is not numeric \('abc'\)"),
    (lambda d: d.assign(date=d["date"].where(d.index != 5, d["date"][4])),
     "row 2000-01-07: duplicate date"),
    (lambda d: d.iloc[[0, 1, 3, 2, 4]], "row 2000-01-05: dates not increasing"),
    (lambda d: d.assign(high=d["high"].where(d.index != 7, d["low"] * 0.9)),
     "row 2000-01-12: High below max"),
    (lambda d: d.assign(close=d["close"].where(d.index != 3, np.nan)),
     "row 2000-01-06: NaN in 'close'"),
    (lambda d: d.assign(open=d["open"].where(d.index != 2, -1.0)),
     "row 2000-01-05: non-positive 'open'"),
    (lambda d: d.assign(date="not a date"), "unparseable date"),
])
def test_bad_csv_rejected_with_file_row_and_rule(tmp_path, mutate, message):
    df = mutate(synthetic_bars(12).reset_index())
    d = csv_dir(tmp_path, df, index=False)
    with pytest.raises(DataError, match=message) as e:
        load_csv("TEST", d)
    assert "TEST.csv" in str(e.value)


def test_empty_csv(tmp_path):
    d = tmp_path / "csv"
    d.mkdir()
    (d / "EMPTY.csv").write_text("")
    with pytest.raises(DataError, match=r"EMPTY\.csv: empty file"):
        load_csv("EMPTY", d)
    (d / "HEADER.csv").write_text("date,open,high,low,close,volume\n")
    with pytest.raises(DataError, match=r"HEADER\.csv: no rows"):
        load_csv("HEADER", d)


def test_low_above_open_close():
    df = synthetic_bars(5)
    df.iloc[2, df.columns.get_loc("low")] = df["high"].iloc[2] * 2
    df.iloc[2, df.columns.get_loc("high")] = df["high"].iloc[2] * 3
    with pytest.raises(DataError, match="row 2000-01-05: Low above min"):
        validate_ohlcv(df, "x")


def test_error_leaves_nothing_written(fresh_root, tmp_path):
    good = synthetic_bars(20).reset_index()
    bad = good.copy()
    bad.loc[3, "close"] = np.nan
    d = csv_dir(tmp_path, good, "GOOD", index=False)
    csv_dir(tmp_path, bad, "BAD", index=False)
    get_raw("csv", ["GOOD"], csv_dir=str(d))
    before = paths.RAW_MANIFEST.read_bytes()
    with pytest.raises(DataError, match="NaN in 'close'"):
        get_raw("csv", ["GOOD", "BAD"], csv_dir=str(d), refresh=True)
    assert paths.RAW_MANIFEST.read_bytes() == before
    assert not (paths.RAW / "csv" / "BAD.parquet").exists()


def test_raw_manifest_and_checksum_mismatch(fresh_root):
    frames, digests = get_raw("embedded", ["^GSPC"])
    manifest = json.loads(paths.RAW_MANIFEST.read_text())
    entry = manifest["files"]["data/raw/embedded/^GSPC.parquet"]
    assert entry["sha256"] == digests["^GSPC"] and entry["rows"] == len(frames["^GSPC"])
    assert entry["first_date"] == "1999-01-04" and "retrieved_at" in entry
    assert not any(k.startswith("/") for k in manifest["files"])
    path = paths.RAW / "embedded" / "^GSPC.parquet"
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(DataError, match="checksum mismatch"):
        get_raw("embedded", ["^GSPC"])


# ---- yfinance, through recorded responses (no test touches the network) ---------------------

def recorded_response(ticker: str) -> pd.DataFrame:
    """A response in the shape yf.download returns (MultiIndex columns Price x Ticker)."""
    path = __import__("pathlib").Path(__file__).parents[1] / "fixtures" / "yfinance_spy.csv"
    df = pd.read_csv(path, index_col="Date", parse_dates=True)
    df.columns = pd.MultiIndex.from_product([df.columns, [ticker]], names=["Price", "Ticker"])
    return df


def test_yfinance_recorded_response(monkeypatch):
    import yfinance as yf

    calls = []
    monkeypatch.setattr(yf, "download", lambda t, **kw: calls.append(t) or recorded_response(t))
    df = sources.load_yfinance("SPY")
    assert calls == ["SPY"] and len(df) > 10
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]


def test_yfinance_empty_answer_is_error_after_retries(monkeypatch):
    import yfinance as yf

    calls = []
    monkeypatch.setattr(yf, "download", lambda t, **kw: calls.append(t) or pd.DataFrame())
    monkeypatch.setattr(sources.time, "sleep", lambda s: None)
    with pytest.raises(DataError, match=r"yfinance:NOPE: no data for ticker 'NOPE' after 3 tries"):
        sources.load_yfinance("NOPE")
    assert len(calls) == 3


def test_yfinance_partial_answer(monkeypatch):
    import yfinance as yf

    monkeypatch.setattr(yf, "download",
                        lambda t, **kw: recorded_response(t).drop(columns="Low", level=0))
    with pytest.raises(DataError, match=r"partial answer, missing \['low'\]"):
        sources.load_yfinance("SPY")


def test_unknown_source_and_ticker():
    with pytest.raises(DataError, match="unknown data source 'ftp'"):
        sources.fetch("ftp", "X")
    with pytest.raises(DataError, match="embedded source has no ticker 'SPY'"):
        sources.fetch("embedded", "SPY")
