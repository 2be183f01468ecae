"""The final evaluation's statistics: new seeds, hierarchical block-bootstrap intervals beside the
i.i.d. ones, paired comparisons with baselines (research rules 10, 11)."""

import numpy as np
import pytest

from lib.analysis.final import aggregate, compare, final_seeds
from lib.core.config import ConfigError
from lib.search.sweepfile import load_sweep
from tests.analysis.test_stats import dependent_case


@pytest.mark.parametrize("name", ["default", "smoke", "phase6a"])
def test_final_seeds_never_include_the_search_seed(name):
    cfg = load_sweep(name)
    seeds = final_seeds(cfg)
    assert len(seeds) == cfg.final.seeds and cfg.train.seed not in seeds
    assert cfg.final.seeds >= (3 if name != "smoke" else 2)


def test_a_sweep_whose_final_seeds_include_the_search_seed_is_refused(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("budgets: ['10k']\ntrain:\n  seed: 1001\nfinal:\n  seeds: 3\n"
                 "  first_seed: 1000\n")
    with pytest.raises(ConfigError, match=r"final seeds \[1000, 1001, 1002\] include the search "
                                          r"seed train.seed = 1001"):
        load_sweep(p)


def test_aggregate_gives_block_and_iid_intervals():
    y, p = dependent_case(n=450)
    rng = np.random.default_rng(0)
    probs = [np.clip(p + rng.normal(0, 0.02, len(p)), 0.01, 0.99) for _ in range(3)]
    out = aggregate(y, probs, 0.5, 300, block=15)
    auc = out["auc"]
    assert auc["n_seeds"] == 3 and auc["sd"] > 0 and auc["n_resamples"] > 250
    assert auc["ci95"][0] < auc["mean"] < auc["ci95"][1]
    block_w = auc["ci95"][1] - auc["ci95"][0]
    iid_w = auc["ci95_iid"][1] - auc["ci95_iid"][0]
    assert block_w > 1.3 * iid_w
    assert set(out) >= {"skill", "skill_own", "logloss", "spread", "collapsed_any"}


def test_compare_is_paired_and_keeps_delong_as_secondary():
    y, p = dependent_case(n=450, seed=2)
    base = np.full(len(y), y.mean())
    out = compare(y, [p, p], base, horizon=5)
    assert out["auc_diff"]["estimate"] > 0.1 and out["auc_diff"]["ci95"][0] > 0
    assert out["logloss_diff"]["estimate"] is not None
    assert out["delong_iid"]["assumes"] == "independent test days"
    assert "fixed-b" in out["method"] and out["auc_diff"]["bandwidth"] >= 5


def test_job_slots_share_the_final_queue(tmp_path, monkeypatch):
    """Every cell is evaluated by exactly one of the slots that share a claims folder, in the
    order given (the driver gives the largest budgets first)."""
    import lib.run.final_stage as stage

    done = []
    monkeypatch.setattr(stage, "run_final", lambda cell, cfg, threads=None: done.append(cell.id))
    ids = ["320k-h1", "320k-h3", "10k-h1"]
    first = stage.final_cells("default", ids[:2], 1, claims=tmp_path)
    second = stage.final_cells("default", ids, 1, claims=tmp_path)
    assert first == second == 0 and done == ids  # the second slot took only the unclaimed one
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(ids)


def test_seeds_trained_together_count_their_share_of_the_wall_time(fresh_root):
    """Four seeds trained together in 10 s are 10 s of training, not 40 (the training share)."""
    import json

    from lib.run.upkeep import utilization
    from lib.search.cells import cells

    cfg = load_sweep("default")
    cell = cells("default", cfg)[0]
    cell.dir.mkdir(parents=True)
    seeds = {str(s): {"seconds": 10.0, "trained_together": 4, "finished_at": 1e12}
             for s in range(1000, 1004)}
    (cell.dir / "final.json").write_text(json.dumps({"configs": {"3": {"seeds": seeds}}}))
    use = utilization("default", cfg, 0.0, 20.0, 1, {"cells_s": 0.0})
    assert use["final_train_s"] == pytest.approx(10.0)
