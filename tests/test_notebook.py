import pytest

from lib.config import ConfigError
from lib.notebook import validate


def ns(**extra):
    g = {"__annotations__": {"horizon": int, "budget": "str", "lr": float, "smoke": bool},
         "horizon": 1, "budget": "1M", "lr": 1e-3, "smoke": False}
    g.update(extra)
    return g


def test_declared_parameters_pass():
    assert validate(ns(), start=set()) == {"horizon": 1, "budget": "1M", "lr": 0.001,
                                           "smoke": False}


def test_unknown_parameter_is_an_error():
    with pytest.raises(ConfigError, match="unknown notebook parameter 'horizn'"):
        validate(ns(horizn=3), start=set())


def test_wrong_type_is_an_error():
    with pytest.raises(ConfigError, match="'horizon' must be int, got str '3'"):
        validate(ns(horizon="3"), start=set())
    with pytest.raises(ConfigError, match="'horizon' must be int, got bool"):
        validate(ns(horizon=True), start=set())


def test_int_accepted_for_float():
    assert validate(ns(lr=1), start=set())["lr"] == 1.0
