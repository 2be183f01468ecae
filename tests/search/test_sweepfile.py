"""Sweep files: the shipped ones load; unknown keys, wrong types, impossible values, missing or
malformed files are one clear error naming the key and the file."""

import re

import pytest

from lib.core.config import ConfigError
from lib.search.sweepfile import load_sweep


def write(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("name", ["default", "smoke", "phase6a"])
def test_shipped_sweeps_load(name):
    cfg = load_sweep(name)
    assert cfg.budgets and cfg.horizons


def test_unknown_key_names_key_and_file(tmp_path):
    p = write(tmp_path, "budgets: ['10k']\nsearch:\n  n_trails: 3\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: search: unknown key 'n_trails'"):
        load_sweep(p)


def test_wrong_type_names_key_and_file(tmp_path):
    p = write(tmp_path, "budgets: ['10k']\nsearch:\n  n_trials: three\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: search\.n_trials: expected an integer, got "
                                          r"str 'three'"):
        load_sweep(p)


def test_impossible_values_rejected(tmp_path):
    with pytest.raises(ConfigError, match="horizon must be >= 1"):
        load_sweep(write(tmp_path, "horizons: [0, 1]\n"))
    with pytest.raises(ConfigError, match="budgets: budget 'lots'"):
        load_sweep(write(tmp_path, "budgets: [lots]\n"))
    with pytest.raises(ConfigError, match="search.pruner"):
        load_sweep(write(tmp_path, "search:\n  pruner: sometimes\n"))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="sweep file not found"):
        load_sweep(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_sweep(write(tmp_path, "budgets: [10k\n"))


def test_a_sweep_file_may_not_set_what_the_sweep_sets(tmp_path):
    from lib.core.config import ConfigError
    from lib.search.sweepfile import load_sweep

    for section, key, hint in [("model", "d_model: 128", "grid.d_model"),
                               ("model", "context_len: 60", "split.context_len"),
                               ("model", "n_features: 9", "data.feature_set"),
                               ("split", "horizon: 3", "horizons")]:
        p = tmp_path / "s.yaml"
        p.write_text(f"{section}:\n  {key}\n")
        with pytest.raises(ConfigError, match=rf"{section}\.{key.split(':')[0]}: set by the sweep "
                                              rf".*{re.escape(hint)}"):
            load_sweep(p)


def test_an_unknown_sweep_lists_the_sweep_files_that_exist():
    with pytest.raises(ConfigError, match=r"sweeps in params/sweeps: .*default.*smoke"):
        load_sweep("nonexistent")


@pytest.mark.parametrize("name", ["scaling_nd", "scaling_nd_spread", "scaling_nd_gpu", "phase6a"])
def test_every_study_sweep_uses_the_inputs_chosen_on_validation(name):
    """The input ablation chose the inputs on validation (docs/search.md); the default sweep uses
    them, and so must every study sweep, the GPU-sized ones included (phase6a trained a25 with
    per-window RevIN after the choice was made). The smoke and ablation sweeps are not studies."""
    chosen, cfg = load_sweep("default"), load_sweep(name)
    assert (cfg.data.feature_set, cfg.model.norm) == (chosen.data.feature_set, chosen.model.norm)


def test_the_panel_sweeps_share_their_data_inputs_and_blocks():
    """The GPU-sized panel study is the 2-core one scaled up: the same assets, close-only inputs
    (the single-series choice 'sf' needs high, low and volume), label, price floor and blocks, so
    its verdicts answer the same question."""
    small, big = load_sweep("panel"), load_sweep("panel_gpu")
    assert small.data == big.data and small.split == big.split
    assert (small.data.feature_set, small.model.norm, small.split.label) == ("sfc", "none", "close")
    assert small.data.panel and len(small.data.tickers) == 20
    assert {s.id for s in small.data_sizes} <= {s.id for s in big.data_sizes}
