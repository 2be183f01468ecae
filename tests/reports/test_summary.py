"""The report's first screen reads as sentences for every count: none, one and several wins, equal
and differing trial counts, each verdict state; no garbled ranges ("8-8"), no "in 0", no interval
printed twice in one bullet, a bottom line per horizon."""

import re

import pandas as pd
import pytest

from lib.reports import summary
from lib.search.sweepfile import load_sweep

CFG = load_sweep("default")
ENTRY = {"target": "^GSPC", "first_date": "1999-01-04", "last_date": "2018-12-31", "id": "gspc_sf",
         "sha256": "0" * 64}


def results(wins: int, cells_per_h: int = 4, trials=(8, 8), cut: int = 0) -> pd.DataFrame:
    rows = []
    for h in (1, 5):
        for i in range(cells_per_h):
            win = i < wins
            rows.append({
                "cell": f"b{i}-h{h}", "budget": f"{10 * (i + 1)}k", "horizon": h, "canary": "none",
                "test_auc": 0.6, "test_auc_ci": [0.55, 0.65], "logreg_auc": 0.58,
                "auc_vs_logreg": 0.02 if win else -0.01, "auc_vs_logreg_ci": [0.01, 0.03],
                "p_vs_logreg_holm": 0.01 if win else 0.6, "hgb_auc": 0.57,
                "auc_vs_hgb": 0.03, "auc_vs_hgb_ci": [-0.01, 0.07], "p_vs_hgb_holm": 0.4,
                "logloss_vs_logreg": 0.004, "logloss_vs_logreg_ci": [-0.002, 0.010],
                "val_logloss": 0.6 - 0.01 * i, "val_skill_own": 0.01 * i,
                "test_skill_own": 0.02, "test_skill_own_ci": [0.0, 0.04],
                "feature_set": "sf", "norm": "global", "trials_sampled": trials[i % 2],
                "trials_enqueued": 0, "n_seeds": 4, "block_length": 5 if h == 1 else 8,
                "train_positive_rate": 0.4, "test_positive_rate": 0.35, "collapsed": False,
                "cut_short": i < cut, "edge_flags": ["epoch_cap"] if i < cut else [],
                "selected_startup": i == 0})
    return pd.DataFrame(rows)


def fit(code: str) -> dict:
    est, ci95, ci90 = {"scales": (0.03, [0.01, 0.05], [0.015, 0.045]),
                       "inconclusive": (0.004, [-0.011, 0.016], [-0.008, 0.013]),
                       "no_meaningful_scaling": (0.001, [-0.006, 0.008], [-0.005, 0.007]),
                       "falls": (-0.03, [-0.05, -0.01], [-0.045, -0.015])}[code]
    from lib.analysis.scaling import decide

    d = decide(est, ci95, ci90, 0.01)
    return {"measure": "test_logloss", "fit": None, "verdict": {"text": "pure law only"},
            "decision": d, "effect": d["text"], "skill_per_decade": est,
            "skill_per_decade_ci95": ci95, "skill_per_decade_ci90": ci90,
            "skill_test": {"mde80": 0.021, "p_value": 0.3, "p_holm": 0.6}, "test_days": 420}


@pytest.mark.parametrize("wins", [0, 1, 3])
@pytest.mark.parametrize("trials", [(8, 8), (6, 8)])
def test_counts_read_as_sentences(wins, trials):
    text = summary.scaling_summary(results(wins, trials=trials),
                                   {1: fit("inconclusive"), 5: fit("scales")}, CFG, ENTRY)
    assert not re.search(r"\b(\d+)-\1\b", text), "a range whose ends are equal"
    assert not re.search(r"\bin 0\b", text)
    assert bool(re.search(r"(?<![-\d])8 sampled trial\(s\)", text)) == (trials == (8, 8))
    assert ("6-8 sampled trial(s)" in text) == (trials == (6, 8))
    if wins == 0:
        assert "against logistic regression: not significantly different in any" in text
    else:
        assert f"significantly above in {wins}" in text
    assert "log loss minus logistic regression's" in text  # the verdict's metric, too


@pytest.mark.parametrize("code", ["scales", "falls", "inconclusive", "no_meaningful_scaling"])
def test_every_verdict_has_a_bottom_line_and_no_interval_twice(code):
    text = summary.scaling_summary(results(1), {1: fit(code), 5: fit(code)}, CFG, ENTRY)
    bottom = next(ln for ln in text.splitlines() if ln.startswith("**Bottom line**"))
    assert bottom.count("At h=") == 2
    for ln in text.splitlines():
        if ln.startswith("- **h="):
            intervals = re.findall(r"\[[-+0-9., ]+\]", ln)
            assert len(intervals) == len(set(intervals)), ln


def test_a_search_that_cut_models_short_is_said_in_the_bottom_line():
    text = summary.scaling_summary(results(0, cut=2), {1: fit("inconclusive"),
                                                       5: fit("inconclusive")}, CFG, ENTRY)
    assert "2 of 4 selected models were cut short by the search" in text
    assert "Search adequacy" in text and "may describe the search rather than the models" in text


def test_the_report_quotes_the_measured_coverage_of_every_interval_it_prints(fresh_root):
    """With `make calibrate`'s table present the test-block note quotes the paired intervals'
    and the exponent's measured coverage (the range over the cases, the method in use only)."""
    from lib.analysis.calibrate_law import LAW_CASES
    from lib.core import paths
    from lib.core.provenance import write_json
    from lib.reports.evidence import test_block_note

    assert "has not been measured" in test_block_note("default")
    cell = {"coverage": 0.95}
    write_json(paths.OUTPUTS / "calibration" / "coverage.json", {
        "rows": [{"method": "in use (HAC)", "repeats": 1000, "auc": {"coverage": 0.955},
                  "logloss": {"coverage": 0.937}},
                 {"method": "block bootstrap", "repeats": 200, "auc": {"coverage": 0.5},
                  "logloss": {"coverage": 0.5}}],
        "alpha": [{"case": c, "method": m, "repeats": 400, "all": dict(cell, coverage=v)}
                  for c, m, v in zip(LAW_CASES, ["Huber at 1.345 x noise (in use)",
                                                 "Huber delta 1e-3 (before)",
                                                 "Huber at 1.345 x noise (in use)"],
                                     [0.955, 0.1, 0.94], strict=False)]})
    note = test_block_note("default")
    assert "covered 95.5%-95.5% (AUC) and 93.7%-93.7% (log loss) over 1 cases" in note
    assert "it covered 94.0%-95.5% of the time over 2 cases" in note  # "before" left out


def test_an_interval_clear_of_0_only_before_holm_is_said_so():
    """The rolling sweep's h = 3: [+0.0016, +0.0150] excludes 0, the Holm-adjusted p is 0.055.
    The verdict stays 'inconclusive' and says why, not 'neither clear of 0'."""
    from lib.analysis.scaling import decide

    e = fit("inconclusive")
    e.update(skill_per_decade=0.0083, skill_per_decade_ci95=[0.0016, 0.015],
             skill_per_decade_ci90=[0.0027, 0.0139],
             decision=decide(0.0083, [0.0016, 0.015], [0.0027, 0.0139], 0.01, 0.055))
    text = summary.scaling_summary(results(0), {3: e}, CFG, ENTRY)
    assert "clear of 0 only before the Holm correction over the horizons, and not within +-0.01;" \
        in text
    assert "neither clear of 0" not in text and "neither excludes 0" not in text
