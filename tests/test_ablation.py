"""The input ablation: configurations crossed as the sweep file says, the choice on validation
only, baselines on the same feature set."""

import pandas as pd

from lib import ablation
from lib.config import load_sweep


def test_configurations_cross_feature_sets_norms_budgets_and_horizons():
    cfg = load_sweep("inputs")
    confs = ablation.configurations(cfg)
    assert len(confs) == 2 * 4 * 2 * 3 and len(set(confs)) == len(confs)
    assert {c[1] for c in confs} == {"revin", "revin_stats", "global", "none"}
    assert cfg.final.seeds >= 3
    assert ablation.dataset_config(cfg, "sf").feature_set == "sf"


def test_choice_uses_validation_only():
    t = pd.DataFrame([
        {"feature_set": fs, "norm": n, "budget": b, "horizon": h,
         "val_skill_own": v + 0.01 * h, "test_skill_own": -v, "test_auc": 1 - v}
        for (fs, n, v) in [("a25", "revin", 0.10), ("sf", "none", 0.20), ("sf", "global", 0.15)]
        for b in ("10k", "100k") for h in (1, 3)])
    choice = ablation.choose(t)
    assert (choice["feature_set"], choice["norm"]) == ("sf", "none")
    poisoned = t.assign(test_skill_own=9.0, test_auc=0.0)
    assert ablation.choose(poisoned) == choice
    assert [r["norm"] for r in choice["ranking"]] == ["none", "global", "revin"]
