import numpy as np
import pytest

from lib.train.metrics import base_logloss, evaluate, hanley_mcneil_se, sigmoid


def test_single_sigmoid():
    np.testing.assert_allclose(sigmoid(np.array([0.0, 2.0])), [0.5, 1 / (1 + np.exp(-2))])


def test_metrics_on_a_known_case():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = evaluate(y, p, base_rate=0.5)
    assert m["auc"] == pytest.approx(0.75)
    assert m["confusion"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 1}
    assert m["accuracy"] == 0.5 and m["precision"] == 0.5 and m["recall"] == 0.5
    assert m["logloss_base"] == pytest.approx(np.log(2))
    assert m["skill"] == pytest.approx(1 - m["logloss"] / np.log(2))


def test_base_rate_prediction_has_zero_skill_and_is_flagged_collapsed():
    y = np.array([0, 1, 0, 0, 1, 0, 0, 0])
    m = evaluate(y, np.full(8, 0.25), base_rate=0.25)
    assert m["skill"] == pytest.approx(0.0, abs=1e-12) and m["collapsed"] and m["spread"] == 0
    assert base_logloss(y, 0.25) == pytest.approx(m["logloss"])


def test_spread_flag_threshold():
    y = np.array([0, 1] * 50)
    p = np.linspace(0.3, 0.7, 100)
    assert not evaluate(y, p, 0.5)["collapsed"]
    assert evaluate(y, 0.5 + (p - 0.5) * 0.01, 0.5)["collapsed"]


def test_hanley_mcneil():
    se = hanley_mcneil_se(0.5, 100, 300)
    assert 0.03 < se < 0.04
    assert hanley_mcneil_se(0.9, 100, 300) < se


@pytest.mark.parametrize("seed", range(6))
def test_fast_metrics_equal_evaluate(seed):
    """The numpy metrics of the bootstrap loops are scikit-learn's to rounding, ties included."""
    from lib.train.metrics import fast_metrics

    rng = np.random.default_rng(seed)
    n = 50 + 40 * seed
    y = rng.integers(0, 2, n)
    p = rng.random(n)
    if seed % 2:
        p = np.round(p, 1)  # many ties
    if seed == 4:
        p = p * 0.4  # nothing predicted positive: precision, recall and F1 are 0
    if seed == 5:
        y[:] = 1  # one class: no AUC
    base = float(rng.uniform(0.1, 0.9))
    ref, fast = evaluate(y, p, base), fast_metrics(y, p, base)
    for k, v in fast.items():
        if ref[k] is None:
            assert v is None, k
        else:
            assert v == pytest.approx(ref[k], rel=1e-9, abs=1e-12), k


def test_drift_aware_skill_does_not_reward_matching_a_drifted_base_rate():
    """Training rate 0.30, evaluated block's rate 0.15: predicting the block's own rate earns
    skill against the training rate (drift), and exactly none in the drift-aware skill."""
    y = np.array([1] * 15 + [0] * 85)
    m = evaluate(y, np.full(100, 0.15), base_rate=0.30)
    assert m["skill"] > 0.05
    assert m["skill_own"] == pytest.approx(0.0, abs=1e-12)
    assert m["logloss_base_own"] == pytest.approx(m["logloss"])
