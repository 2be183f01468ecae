"""The data axis (lib/data/data_axis.py): history length, pooled series, cell names, equal
optimisation for small data sizes, and the sweep file's checks."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from lib.core.config import ConfigError, DataSizeConfig, SweepConfig
from lib.data import dataset
from lib.data.cell_data import cell_splits
from lib.data.data_axis import pool_config, size_id
from lib.data.splits import SplitError, make_labels, make_splits
from lib.search.cells import Cell, cells, check_cell
from lib.search.sweepfile import load_sweep, validate_sweep
from lib.train import baselines, trial

IXIC = "^IXIC"


def axis_cfg(*sizes: DataSizeConfig) -> SweepConfig:
    """The default configuration (the a25 dataset of the test root) with these data sizes."""
    return SweepConfig(budgets=["8k"], horizons=[1, 3], data_sizes=list(sizes))


@pytest.fixture(scope="module")
def pooled(wb_root):
    """The test root with ^IXIC's dataset built as a pooled series is."""
    cfg = axis_cfg(DataSizeConfig(pool=[IXIC]))
    dataset.build_dataset(pool_config(cfg.data, IXIC))
    return cfg


def splits_of(cfg: SweepConfig, data: str, h: int):
    return cell_splits(cfg, Cell("t", "8k", h, data))


def same_block(a, b) -> bool:
    return (np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
            and np.array_equal(a.ends, b.ends) and a.dates.equals(b.dates))


def test_history_length_keeps_the_most_recent_training_windows(root, real_df):
    cfg = axis_cfg(DataSizeConfig(windows=500), DataSizeConfig(years=2.0))
    for h in (1, 3):
        full = make_splits(real_df, cfg.split, horizon=h)
        _, _, last = splits_of(cfg, "d500", h)
        assert np.array_equal(last.train.ends, full.train.ends[-500:])
        assert np.array_equal(last.train.y, full.train.y[-500:])
        assert last.stats.data["windows"] == last.stats.train.n_windows == 500
        _, _, years = splits_of(cfg, "d2y", h)
        cutoff = pd.Timestamp(full.stats.val.block_start) - pd.DateOffset(days=730)
        assert (years.train.dates > cutoff).all()
        assert len(years.train.y) == int((full.train.dates > cutoff).sum())
        for sp in (last, years):  # validation and test are the whole history's
            assert same_block(sp.val, full.val) and same_block(sp.test, full.test)


def test_pooled_windows_have_their_own_labels_and_features(root, pooled):
    pdf, _ = dataset.load_dataset(pool_config(pooled.data, IXIC).name)
    for h in (1, 3):
        _, _, sp = splits_of(pooled, "dallx2", h)
        ends = sp.train_parts[1][2]
        assert [t for t, _, _ in sp.train_parts] == [pooled.data.target, IXIC]
        n0 = sp.stats.data["tickers"][pooled.data.target]
        y_own = make_labels(pdf["raw_close"].to_numpy(), pdf["raw_high"].to_numpy(), horizon=h,
                            threshold=pooled.split.threshold)
        assert np.array_equal(sp.train.y[n0:], y_own[ends])
        # the last day of each pooled window is that ticker's own feature row
        cols = sp.columns
        assert np.allclose(sp.train.X[n0:, -1, :], pdf[cols].to_numpy(dtype=np.float32)[ends])
        # ... not the target's prices on those days
        gspc, _ = dataset.load_dataset(pooled.data.name)
        at = gspc.index.get_indexer(pdf.index[ends])
        assert not np.allclose(sp.train.X[n0:, -1, :], gspc[cols].to_numpy()[at])
        assert sp.stats.data["tickers"][IXIC] == len(ends) == len(sp.train.y) - n0


def test_pooling_leaves_validation_and_test_untouched_and_stops_before_validation(root, pooled,
                                                                                 real_df):
    for h in (1, 3):
        full = make_splits(real_df, pooled.split, horizon=h)
        _, _, sp = splits_of(pooled, "dallx2", h)
        assert same_block(sp.val, full.val) and same_block(sp.test, full.test)
        assert same_block(replace(sp.train, X=sp.train.X[:len(full.train.y)],
                                  y=sp.train.y[:len(full.train.y)],
                                  ends=sp.train.ends[:len(full.train.y)],
                                  dates=sp.train.dates[:len(full.train.y)]), full.train)
        frame, ends = sp.train_parts[1][1], sp.train_parts[1][2]
        label_days = frame.index[ends + h]  # the last day each pooled label looks at
        assert (label_days < pd.Timestamp(sp.stats.val.block_start)).all()


def test_baselines_read_pooled_windows_from_their_own_series(root, pooled):
    df, _, sp = splits_of(pooled, "dallx2", 1)
    X = baselines.last_day_features(df, sp)
    assert len(X["train"]) == len(sp.train.y)
    frame, ends = sp.train_parts[1][1], sp.train_parts[1][2]
    cols = baselines.stored_columns(df, sp)
    own = baselines.scale_free(frame[cols]).to_numpy()[ends]
    assert np.allclose(X["train"][-len(ends):], own)


def test_more_windows_than_a_series_has_is_an_error_naming_it(root):
    cfg = axis_cfg(DataSizeConfig(windows=100_000))
    with pytest.raises(SplitError, match=r"asks for 100000 training windows of \^GSPC"):
        splits_of(cfg, "d100k", 1)


def test_a_small_data_size_trains_several_passes_per_epoch(root, monkeypatch):
    cfg = axis_cfg(DataSizeConfig(windows=500))
    _, _, sp = splits_of(cfg, "d500", 1)
    whole = make_splits(dataset.load_dataset(cfg.data.name)[0], cfg.split, horizon=1)
    passes = sp.stats.data["passes_per_epoch"]
    assert passes == round(len(whole.train.y) / 500) > 1
    seen = {}
    monkeypatch.setattr(trial, "train_many", lambda models, X, y, *a, **k: seen.update(n=len(X)))
    trial.fit_many(cfg, sp, [None], {"lr": 1e-3, "weight_decay": 0.0, "warmup_frac": 0.0,
                                     "batch_size": 64, "max_epochs": 1}, [0])
    assert seen["n"] == passes * 500
    rec = trial.compute_record(trial.model_config(cfg, _arch(), 0.0, 3), 500, 2, 1.0, passes)
    assert rec["windows_seen"] == 2 * passes * 500
    assert rec["train_flops"] == rec["flops_per_window"] * rec["windows_seen"]


def _arch():
    from lib.model.budget import Arch

    return Arch(id="d16-L1-h1-ff2", d_model=16, n_layers=1, n_heads=1, d_ff=32, n_params=0)


def test_cells_are_named_budget_data_horizon_and_two_axis_names_stay():
    nd = load_sweep("scaling_nd")
    ids = [c.id for c in cells("scaling_nd", nd)]
    assert len(ids) == len(nd.budgets) * len(nd.data_sizes) * len(nd.horizons) == len(set(ids))
    assert "100k-d1k-h1" in ids and "320k-dallx2-h5" in ids
    default = load_sweep("default")
    assert [c.id for c in cells("default", default)][:2] == ["10k-h1", "10k-h3"]
    assert Cell("default", "10k", 1).as_dict().get("data") is None
    with pytest.raises(ConfigError, match="does not fit sweep 'default'"):
        check_cell(Cell("default", "10k", 1, "d1k"), default)
    with pytest.raises(ConfigError, match="d500, d1k"):
        check_cell(Cell("scaling_nd", "10k", 1), nd)
    assert [size_id(DataSizeConfig(**k)) for k in ({"windows": 2500}, {"years": 4.0}, {},
                                                    {"pool": [IXIC]})] == \
        ["d2.5k", "d4y", "dall", "dallx2"]


@pytest.mark.parametrize("sizes, key, message", [
    ([{"pool": ["^VIX"]}], "data_sizes[0].pool", "not among data.tickers"),
    ([{"pool": ["^GSPC"]}], "data_sizes[0].pool", "is the target"),
    ([{"windows": 500}, {"windows": 500}], "data_sizes[1].id", "also data_sizes[0]"),
    ([{"id": "d-1"}], "data_sizes[0].id", "starts with 'd'"),
    ([{"windows": 0}], "data_sizes[0].windows", ">= 1"),
])
def test_bad_data_sizes_are_refused_by_name(sizes, key, message):
    cfg = SweepConfig(budgets=["10k"], data_sizes=[DataSizeConfig(**s) for s in sizes])
    with pytest.raises(ConfigError, match=re.escape(key) + ": .*" + re.escape(message)):
        validate_sweep(cfg)
    cfg = SweepConfig(budgets=["10k"], data_sizes=[DataSizeConfig(windows=500)])
    cfg.final.walk_forward_folds = 2
    with pytest.raises(ConfigError, match="walk_forward_folds"):
        validate_sweep(cfg)


def test_the_index_lists_cells_in_the_sweeps_order_not_alphabetically():
    from pathlib import Path

    from lib.reports.index import cell_order

    names = ["100k-d1k-h1", "10k-dallx2-h1", "10k-d500-h3", "10k-d2k-h1", "10k-dall-h1",
             "10k-d500-h1", "100k-h1", "10k-h5"]
    got = sorted(names, key=lambda n: cell_order(Path(f"{n}.html")))
    assert got == ["10k-h5", "10k-d500-h1", "10k-d500-h3", "10k-d2k-h1", "10k-dall-h1",
                   "10k-dallx2-h1", "100k-h1", "100k-d1k-h1"]


def test_spread_windows_cover_the_whole_history_evenly(root, real_df):
    cfg = axis_cfg(DataSizeConfig(windows=500, spread=True))
    full = make_splits(real_df, cfg.split, horizon=1)
    _, _, sp = splits_of(cfg, "d500s", 1)
    assert len(sp.train.y) == 500 == len(np.unique(sp.train.ends))
    assert sp.train.ends[0] == full.train.ends[0] and sp.train.ends[-1] == full.train.ends[-1]
    gaps = np.diff(sp.train.ends)
    assert gaps.max() - gaps.min() <= 1  # evenly spaced
    assert same_block(sp.val, full.val) and same_block(sp.test, full.test)
    with pytest.raises(ConfigError, match="spread"):
        validate_sweep(SweepConfig(budgets=["10k"], data_sizes=[DataSizeConfig(spread=True)]))


def test_only_a_cut_to_the_recent_history_is_flagged_as_a_later_period():
    from lib.reports.report import recent_history

    assert recent_history({"history": {"windows": 500, "years": None, "spread": False}})
    assert recent_history({"history": {"windows": None, "years": 4.0, "spread": False}})
    assert not recent_history({"history": {"windows": 500, "years": None, "spread": True}})
    assert not recent_history({"history": {"windows": None, "years": None, "spread": False}})
