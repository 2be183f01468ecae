import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lib.stats import delong


def test_delong_matches_sklearn_aucs_and_detects_a_real_difference():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = y + rng.normal(0, 0.7, 400)
    weak = y + rng.normal(0, 3.0, 400)
    r = delong(y, good, weak)
    assert r["auc_1"] == pytest.approx(roc_auc_score(y, good))
    assert r["auc_2"] == pytest.approx(roc_auc_score(y, weak))
    assert r["diff"] > 0 and r["p_value"] < 0.001


def test_delong_identical_predictions_give_no_difference():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = rng.random(200)
    r = delong(y, p, p)
    assert r["diff"] == 0 and r["p_value"] == 1.0
