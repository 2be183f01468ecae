"""Configuration dataclasses: strict construction from plain data, defaults filled in."""

import pytest

from lib.core.config import ConfigError, SweepConfig, TrainConfig, from_dict


def test_bool_is_not_an_int():
    with pytest.raises(ConfigError, match="max_epochs: expected an integer"):
        from_dict(TrainConfig, {"max_epochs": True})


def test_nested_defaults_fill_in():
    cfg = from_dict(SweepConfig, {"budgets": ["10k"], "train": {"lr": 0.01}})
    assert cfg.train.lr == 0.01 and cfg.train.patience == TrainConfig().patience


