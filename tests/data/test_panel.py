"""A panel of assets (lib/data/panel.py): per-asset statistics from the asset's own training block
only, every asset split on the same dates, levels of the data axis, the close-only label with its
price floor, and the skfolio source."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from lib.core.config import ConfigError, SweepConfig, from_dict
from lib.data import dataset as ds
from lib.data.panel import asset_config, panel_splits
from lib.data.splits import SplitError, make_labels
from lib.search.sweepfile import validate_sweep

ASSETS = ["AAA", "BBB", "CCC"]


def closes(seed: int, n: int = 3000, start: str = "1998-01-01", level: float = 50.0):
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range(start, periods=n, name="date")
    return pd.DataFrame({"close": level * np.exp(np.cumsum(rng.normal(0, 0.015, n)))}, index=idx)


def panel_cfg(csv_dir, **split) -> SweepConfig:
    cfg = from_dict(SweepConfig, {
        "budgets": ["10k"], "horizons": [1],
        "data": {"source": "csv", "csv_dir": str(csv_dir), "panel": True, "tickers": ASSETS,
                 "target": "AAA", "feature_set": "sfc", "name": "p3"},
        "split": {"context_len": 16, "label": "close", "val_start": "2007-01-01",
                  "test_start": "2008-01-01", "min_eval_windows": 100, **split},
        "model": {"patch_len": 8, "stride": 4, "norm": "none"},
        "data_sizes": [{"id": "d2ya1", "assets": 1, "years": 2}, {"id": "dall"}]})
    validate_sweep(cfg)
    return cfg


def write(csv_dir, frames: dict) -> None:
    csv_dir.mkdir(exist_ok=True)
    for t, df in frames.items():
        df.reset_index().to_csv(csv_dir / f"{t}.csv", index=False)


def build(cfg: SweepConfig) -> None:
    for t in cfg.data.tickers:
        ds.build_dataset(asset_config(cfg.data, t))


@pytest.fixture()
def panel(fresh_root):
    frames = {t: closes(i) for i, t in enumerate(ASSETS)}
    write(fresh_root / "csv", frames)
    cfg = panel_cfg(fresh_root / "csv")
    build(cfg)
    return cfg, frames


def by_asset(sp, block: str, name: str) -> np.ndarray:
    return sp.block(block).X[sp.assets[block] == sp.names.index(name)]


def test_every_asset_is_split_on_the_same_dates_and_scored_in_every_level(panel):
    cfg, _ = panel
    whole = panel_splits(cfg, 1, "dall")
    small = panel_splits(cfg, 1, "d2ya1")
    for b in ("val", "test"):  # validation and test: every asset, whatever the level
        for name in ASSETS:
            dates = whole.block(b).dates[whole.assets[b] == whole.names.index(name)]
            assert dates.min() == whole.block(b).dates.min() and len(dates) > 100
        np.testing.assert_array_equal(small.block(b).X, whole.block(b).X)
    assert set(np.unique(whole.assets["train"])) == {0, 1, 2}
    assert set(np.unique(small.assets["train"])) == {0}
    t = small.train.dates
    assert t.min() >= pd.Timestamp("2005-01-01") - pd.Timedelta(days=7)
    assert small.stats.data["windows"] == len(small.train.y) < len(whole.train.y) / 3


def test_per_asset_statistics_use_no_other_asset_and_no_later_day(panel, fresh_root):
    """The planted-future canary: another asset's whole series and this asset's days after its
    training block are replaced by wild values; this asset's inputs (all blocks) and its
    statistics stay exactly as they were, and only the changed asset's later inputs move."""
    cfg, frames = panel
    before = panel_splits(cfg, 1, "dall")
    planted = dict(frames)
    planted["CCC"] = frames["CCC"] * np.exp(np.random.default_rng(9).normal(0, 0.3, len(
        frames["CCC"])))[:, None]
    later = frames["BBB"].index >= pd.Timestamp("2007-01-01")
    planted["BBB"] = frames["BBB"].where(~later[:, None], frames["BBB"] * 7.0)
    write(fresh_root / "csv", planted)
    build(cfg)
    after = panel_splits(cfg, 1, "dall")
    stats0, stats1 = before.stats.data["input_stats"], after.stats.data["input_stats"]
    assert stats1["AAA"] == stats0["AAA"] and stats1["BBB"] == stats0["BBB"]
    assert stats1["CCC"] != stats0["CCC"]  # the canary has teeth: a changed series is seen
    for b in ("train", "val", "test"):
        np.testing.assert_array_equal(by_asset(after, b, "AAA"), by_asset(before, b, "AAA"))
    np.testing.assert_array_equal(by_asset(after, "train", "BBB"),
                                  by_asset(before, "train", "BBB"))


def test_a_pooled_statistic_would_turn_the_canary_red(panel, fresh_root, monkeypatch):
    """Mutation: statistics over the pooled training block (every asset) make asset AAA's inputs
    depend on CCC; the comparison the canary makes then fails."""
    import lib.data.panel as P

    cfg, frames = panel
    real = P.standardise

    def pooled_standardise(sp):  # the sd of every asset's returns, read anew each call
        every = np.concatenate([ds.load_dataset(asset_config(cfg.data, t).name)[0]["ret_1"]
                                .to_numpy() for t in ASSETS])
        out, stats = real(sp)
        return replace(out, train=replace(out.train, X=out.train.X / float(every.std()))), stats

    monkeypatch.setattr(P, "standardise", pooled_standardise)
    before = panel_splits(cfg, 1, "dall")
    planted = dict(frames, CCC=frames["CCC"] ** 1.5)
    write(fresh_root / "csv", planted)
    build(cfg)
    after = panel_splits(cfg, 1, "dall")
    assert not np.array_equal(by_asset(after, "train", "AAA"), by_asset(before, "train", "AAA"))


def test_assets_on_other_calendars_are_refused(fresh_root):
    frames = {t: closes(i) for i, t in enumerate(ASSETS)}
    frames["CCC"] = closes(2, start="1999-06-01")
    write(fresh_root / "csv", frames)
    cfg = panel_cfg(fresh_root / "csv")
    build(cfg)
    panel_splits(cfg, 1, "dall")  # a later start: the same block dates, fewer training windows
    frames["CCC"] = closes(2, n=2000)  # ends before the test block: no test windows
    write(fresh_root / "csv", frames)
    build(cfg)
    with pytest.raises(SplitError, match="panel asset CCC"):
        panel_splits(cfg, 1, "dall")


def test_close_label_has_no_look_ahead_beyond_h_and_ignores_later_days():
    c = closes(4, n=400)["close"].to_numpy()
    for h in (1, 3, 5):
        y = make_labels(c, c, horizon=h, kind="close")
        for t in (50, 200, 390 - h):
            cut = c.copy()
            cut[t + h + 1:] *= 3.0  # days after t + h change nothing
            assert make_labels(cut, cut, horizon=h, kind="close")[t] == y[t]
            moved = c.copy()
            moved[t + h] = c[t] * 1.02  # day t + h is inside the label's window
            assert make_labels(moved, moved, horizon=h, kind="close")[t] == 1.0


def test_the_price_floor_keeps_labels_that_rounding_cannot_flip():
    """Closes stored to 3 decimals (the skfolio panel): below $0.50 rounding flips many labels,
    at the $2 floor the sweep uses few; the floor leaves such windows out."""
    rng = np.random.default_rng(5)
    rates = {}
    for level in (0.3, 2.0, 20.0):  # log price AR(1) 0.99 around the level, daily sd 1.5%
        r, x = rng.normal(0, 0.015, 20000), np.zeros(20000)
        for i in range(1, len(x)):
            x[i] = 0.99 * x[i - 1] + r[i]
        c = level * np.exp(x)
        exact = make_labels(c, c, horizon=1, kind="close")[:-1]
        rounded = make_labels(np.round(c, 3), np.round(c, 3), horizon=1, kind="close")[:-1]
        rates[level] = float(np.mean(exact != rounded))
    # measured: 2.6% of labels flip at $0.30, 0.4% at $2, 0.04% at $20
    assert rates[0.3] > 0.015 and rates[2.0] < 0.008 and rates[20.0] < 0.001, rates


def test_min_price_leaves_out_windows_below_the_floor(fresh_root):
    frames = {t: closes(i) for i, t in enumerate(ASSETS)}
    frames["BBB"] = closes(1, level=1.0)  # wanders between $0.36 and $1.04
    write(fresh_root / "csv", frames)
    cfg = panel_cfg(fresh_root / "csv", min_price=0.6)
    build(cfg)
    df, _ = ds.load_dataset(asset_config(cfg.data, "BBB").name)
    from lib.data.splits import make_splits

    sp = make_splits(df, cfg.split, horizon=1)
    close = df["raw_close"].to_numpy()
    assert (close[sp.train.ends] >= 0.6).all()
    assert len(sp.train.ends) < int((close[: sp.train.ends.max() + 1] >= 0).sum()) - 100


def test_panel_settings_are_checked_before_any_data(fresh_root):
    with pytest.raises(ConfigError, match="data_sizes\\[0\\].assets: must lie in 1..3"):
        cfg = from_dict(SweepConfig, {
            "data": {"source": "csv", "csv_dir": "x", "panel": True, "tickers": ASSETS,
                     "target": "AAA", "feature_set": "sfc", "name": "p"},
            "split": {"label": "close"}, "data_sizes": [{"assets": 4}]})
        validate_sweep(cfg)
    with pytest.raises(ConfigError, match="keeps a panel's first k assets"):
        validate_sweep(from_dict(SweepConfig, {"data_sizes": [{"assets": 1}]}))
    with pytest.raises(ConfigError, match="rolling-origin folds are not built for a panel"):
        validate_sweep(from_dict(SweepConfig, {
            "data": {"source": "csv", "csv_dir": "x", "panel": True, "tickers": ASSETS,
                     "target": "AAA", "feature_set": "sfc", "name": "p"},
            "split": {"label": "close", "fold_years": 1}}))


def test_the_skfolio_source_is_the_real_panel():
    from lib.data.sources import DataError, fetch

    aapl = fetch("skfolio", "AAPL")
    assert list(aapl.columns) == ["close"]
    assert aapl.index[0] == pd.Timestamp("1990-01-02") and aapl.index[-1].year == 2022
    assert (np.round(aapl["close"], 3) == aapl["close"]).all()  # stored to 3 decimals
    with pytest.raises(DataError, match="skfolio source has no ticker 'ZZZ'"):
        fetch("skfolio", "ZZZ")
