"""Tables, fits and generated conclusions for the scaling report (notebooks/04_scaling_report).

Everything here reads the sweep's records back (``final.json`` per cell, trial records, storage);
nothing is typed by hand. Rules the conclusions keep:

- every CHOICE (the best budget of a horizon, the best horizon) is made on the validation block;
  the test numbers of the chosen cells are then reported, never used to choose;
- intervals are hierarchical block-bootstrap intervals (days in blocks, seeds resampled), and a
  statement about many cells is corrected for multiplicity (Holm) and says so;
- horizons are compared in base-rate-normalised skill, never in raw log loss (research rule 11),
  and in the drift-aware skill against each block's own positive rate;
- a law that is not identified prints no exponent; the change of skill per decade of N says how
  large any effect is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.panel_eval import test_dates
from ..analysis.scaling import (
    available_cpus,
    bootstrap_fits,
    decide,
    fit_law,
    law,
    noise_scale,
    per_decade,
    skill_per_decade,
    verdict,
)
from ..analysis.stats import hierarchical, holm
from ..core.config import SweepConfig
from ..core.provenance import read_json
from ..model.budget import parse_budget
from ..search.cells import cells
from ..train.metrics import fast_metrics

MEASURES = {"test_logloss": "test log loss",
            "test_skill_loss": "1 - drift-aware test skill (log loss / own-rate log loss)"}
N_AXES = {"non_embedding": "non-embedding parameters", "total": "total parameters"}


def load_finals(sweep: str, cfg: SweepConfig) -> list[dict]:
    """Every cell's final evaluation, with the cell's identity."""
    out = []
    for cell in cells(sweep, cfg):
        f = cell.dir / "final.json"
        if f.exists():
            state = read_json(f)
            if state.get("complete") and "comparisons" in state:
                out.append(state)
    return out


def sweep_records(sweep: str, cfg: SweepConfig) -> tuple[pd.DataFrame, list[dict]]:
    """The trial records (one DataFrame) and study summaries of the cells the sweep file names
    now; cells it no longer names (orphans, ``make status``) are left out."""
    from ..search import records

    current = cells(sweep, cfg)
    trials = [records.load_records(c.dir / "trials" / "trial_*.json") for c in current]
    trials = [t for t in trials if len(t)]
    summaries = [read_json(c.dir / "study_summary.json") for c in current
                 if (c.dir / "study_summary.json").exists()]
    return (pd.concat(trials, ignore_index=True) if trials else pd.DataFrame()), summaries


def recent_history(data: dict) -> bool:
    """Whether a data size is a cut to the most recent history (``windows`` or ``years``, not
    ``spread``): then a smaller size is also a later period."""
    h = data.get("history") or {}
    return bool((h.get("windows") or h.get("years")) and not h.get("spread"))


def largest_data(finals: list[dict]) -> list[dict]:
    """The cells the one-factor analysis in N reads: all of them in a two-axis sweep; with a data
    axis, per horizon those of the data size with the most training windows (the joint N x D
    analysis, notebooks/06_joint_scaling, reads every cell)."""
    if not any(s["cell"].get("data") for s in finals):
        return finals
    most: dict[int, tuple[int, str]] = {}
    for s in finals:
        d = (s["split"].get("data") or {}).get("windows", 0), s["cell"].get("data", "")
        h = s["cell"]["horizon"]
        most[h] = max(most.get(h, d), d)
    return [s for s in finals if s["cell"].get("data", "") == most[s["cell"]["horizon"]][1]]


def _best(state: dict) -> dict:
    return min(state["configs"].values(), key=lambda c: c["rank"])


def _seed_sum(config: dict, key: str) -> float | None:
    """Sum over a configuration's final seeds of their ``compute[key]``; None when a seed's
    record predates compute accounting."""
    seeds = list((config.get("seeds") or {}).values())
    if not seeds or any("compute" not in s for s in seeds):
        return None
    return float(sum(s["compute"][key] for s in seeds))


def n_of(state: dict, axis: str = "non_embedding") -> int:
    """Measured parameter count of a cell's selected configuration on the chosen axis."""
    n = _best(state)["n_params"]
    return int(n["measured_non_embedding"] if axis == "non_embedding" else n["measured"])


def results_table(finals: list[dict]) -> pd.DataFrame:
    """One row per cell: the selected configuration, validation and test numbers with
    intervals, the paired comparisons with every baseline, the search effort."""
    rows = []
    for s in finals:
        b = _best(s)
        agg, bl, cmp_ = b["aggregate"], s["baselines"], s["comparisons"]
        eff, iv = s.get("effort") or {}, s.get("interval") or {}
        data = s["split"].get("data") or {}
        rows.append({
            "cell": s["cell"]["id"], "budget": s["cell"]["budget"],
            "horizon": s["cell"]["horizon"], "data": s["cell"].get("data", ""),
            "D_windows": data.get("windows", s["split"]["train"]["n_windows"]),
            "D_tokens": data.get("tokens"), "arch": b["arch"]["id"],
            "data_recent": bool(data) and recent_history(data),
            "feature_set": (s.get("dataset") or {}).get("feature_set"),
            "norm": b["arch"].get("norm", "revin"),
            "n_params": b["n_params"]["measured"],
            "n_non_embedding": b["n_params"]["measured_non_embedding"],
            "val_objective": b["val_objective"],
            "val_logloss": (b.get("val_mean") or {}).get("logloss"),
            "val_skill_own": (b.get("val_mean") or {}).get("skill_own"),
            "test_auc": agg["auc"]["mean"], "test_auc_sd": agg["auc"]["sd"],
            "test_auc_ci": agg["auc"]["ci95"], "test_auc_ci_iid": agg["auc"]["ci95_iid"],
            "test_logloss": agg["logloss"]["mean"],
            "test_skill": agg["skill"]["mean"], "test_skill_ci": agg["skill"]["ci95"],
            "test_skill_own": agg["skill_own"]["mean"],
            "test_skill_own_ci": agg["skill_own"]["ci95"],
            "logreg_auc": bl["logreg"]["test"]["auc"],
            "logreg_skill": bl["logreg"]["test"]["skill"],
            "logreg_skill_own": bl["logreg"]["test"].get("skill_own"),
            "hgb_auc": bl["hgb"]["test"]["auc"], "prior_logloss": bl["prior"]["test"]["logloss"],
            "auc_vs_logreg": cmp_["logreg"]["auc_diff"]["estimate"],
            "auc_vs_logreg_ci": cmp_["logreg"]["auc_diff"]["ci95"],
            "p_vs_logreg": cmp_["logreg"]["auc_diff"]["p_value"],
            "logloss_vs_logreg": cmp_["logreg"]["logloss_diff"]["estimate"],
            "logloss_vs_logreg_ci": cmp_["logreg"]["logloss_diff"]["ci95"],
            "auc_vs_hgb": cmp_["hgb"]["auc_diff"]["estimate"],
            "auc_vs_hgb_ci": cmp_["hgb"]["auc_diff"]["ci95"],
            "p_vs_hgb": cmp_["hgb"]["auc_diff"]["p_value"],
            "p_delong_iid": cmp_["logreg"]["delong_iid"]["p_value"],
            "collapsed": agg["collapsed_any"], "spread": agg["spread"]["mean"],
            "n_seeds": agg["auc"]["n_seeds"], "seeds": s.get("seeds"),
            "block_length": iv.get("block_length"),
            "n_trials_searched": s["n_trials_searched"],
            "trials_sampled": eff.get("sampled"), "trials_enqueued": eff.get("enqueued"),
            "trials_pruned": eff.get("pruned"), "epochs_trained": eff.get("epochs_trained"),
            "search_train_flops": eff.get("train_flops"),
            "search_train_s": eff.get("trial_seconds"),
            "final_train_flops": _seed_sum(b, "train_flops"),
            "final_train_s": _seed_sum(b, "wall_s"),
            "architectures_offered": eff.get("architectures_offered"),
            "test_positive_rate": s["split"]["test"]["positive_rate"],
            "train_positive_rate": s["split"]["train"]["positive_rate"],
            "canary": s["split"].get("canary", "none"),
            **_adequacy_columns(s.get("adequacy"))})
    df = pd.DataFrame(rows)
    if len(df):
        df["budget_n"] = df["budget"].map(parse_budget)
        df = df.sort_values(["horizon", "budget_n"]).reset_index(drop=True)
        # one family: every paired AUC comparison the summary relies on (each cell against each
        # baseline), Holm-corrected together
        ps = {(c, b): p for b in COMPARED for c, p in zip(df["cell"], df[f"p_vs_{b}"],
                                                           strict=True)}
        fam = holm(ps)
        for b in COMPARED:
            df[f"p_vs_{b}_holm"] = [fam.get((c, b), {}).get("p_holm") for c in df["cell"]]
        df.attrs["comparison_family"] = len(ps)
    return df


COMPARED = ("logreg", "hgb")  # the baselines the transformer is tested against, one Holm family


def _adequacy_columns(a: dict | None) -> dict:
    """The search-adequacy record of a cell (:mod:`lib.search.adequacy`) as table columns; None
    for a final evaluation that predates it."""
    a = a or {}
    return {"selected_index": a.get("index"), "trials_complete": a.get("complete"),
            "selected_startup": a.get("selected_a_startup_trial"),
            "best_epoch": a.get("best_epoch"), "max_epochs": a.get("max_epochs"),
            "seeds_at_cap": a.get("final_seeds_at_epoch_cap"),
            "edge_flags": a.get("flags"), "cut_short": a.get("cut_short")}


def choices(results: pd.DataFrame) -> dict:
    """Choices made on VALIDATION only: per horizon the budget whose selected configuration has
    the lowest mean validation log loss over the final seeds, and the horizon whose chosen cell
    has the highest drift-aware validation skill. No test number enters."""
    if not len(results):
        return {"best_budget": {}, "best_horizon": None}
    best = {}
    for h, g in results.groupby("horizon"):
        best[int(h)] = str(g.loc[g["val_logloss"].idxmin(), "cell"])
    chosen = results[results["cell"].isin(best.values())]
    top = chosen.loc[chosen["val_skill_own"].idxmax()]
    return {"best_budget": best, "best_horizon": int(top["horizon"]),
            "rule": "lowest mean validation log loss per horizon; highest drift-aware validation "
                    "skill across horizons"}


def _measure_stat(measure: str, y: np.ndarray):
    """For :func:`stats.hierarchical`: the measure per budget, mean over that budget's seeds."""
    def value(yb, p):
        m = fast_metrics(yb, p, 0.5)
        if measure == "test_logloss":
            return m["logloss"]
        return 1 - m["skill_own"]

    def stat(yb, groups):
        return [float(np.mean([value(yb, p) for p in g])) for g in groups]
    return stat


def scaling_fits(finals: list[dict], cfg: SweepConfig, measure: str = "test_logloss",
                 resamples: int | None = None, seed: int = 0,
                 workers: int | None = None) -> dict[int, dict]:
    """Per horizon: measured N (the sweep's ``analysis.n_axis``), the measure, the fitted law
    (with c only from ``analysis.min_budgets_with_c`` budgets), its bootstrap intervals from the
    hierarchical block bootstrap (the same resampled days for every budget, each budget's seeds
    resampled), the identification check, the verdict and the change of skill per decade."""
    a = cfg.analysis
    resamples = resamples or cfg.final.bootstrap
    workers = workers or available_cpus()
    out = {}
    by_h: dict[int, list[dict]] = {}
    for s in finals:
        by_h.setdefault(s["cell"]["horizon"], []).append(s)
    for h, group in sorted(by_h.items()):
        group.sort(key=lambda s: n_of(s, a.n_axis))
        N = np.array([n_of(s, a.n_axis) for s in group], dtype=float)
        y = np.asarray(group[0]["y_test"], dtype=float)
        probs = [[np.asarray(v["p_test"]) for v in _best(s)["seeds"].values()] for s in group]
        stat = _measure_stat(measure, y)
        L = np.asarray(stat(y, [np.asarray(p) for p in probs]))
        per_seed = [[stat(y, [np.asarray([q])])[0] for q in p] for p in probs]
        block = max((s.get("interval") or {}).get("block_length") or h for s in group)
        entry = {"horizon": h, "budgets": [s["cell"]["budget"] for s in group],
                 "N": N.tolist(), "n_axis": a.n_axis, "measure": measure, "L": L.tolist(),
                 "L_seeds": per_seed,
                 "block_length": block, "resamples": resamples}
        if len(np.unique(N)) < 2:
            entry.update(fit=None, verdict={"code": "one_budget", "identified": False,
                                            "text": "one budget only: no scaling fit possible"})
            out[h] = entry
            continue
        dates = test_dates(group[0])  # a panel counts by date
        draws = hierarchical(y, probs, stat, block, resamples, seed, dates=dates)
        slope = per_decade(N, L)
        entry["per_decade"] = slope
        next_N = float(N[-1] * (N[-1] / N[-2]))
        entry["next_N"] = next_N
        with_c = len(np.unique(N)) >= a.min_budgets_with_c
        forms = [("fit", with_c)] + ([("fit_pure", False)] if with_c else [])
        scale = noise_scale(draws)
        entry["huber_scale"] = scale
        for key, c_form in forms:
            f = fit_law(N, L, c_form, scale)
            boot = bootstrap_fits(N, list(draws), c_form, next_N=next_N,
                                  grid_N=np.geomspace(N.min(), next_N, 40), workers=workers,
                                  scale=scale)
            v = verdict(f, boot, a.max_bound_share)
            entry[key] = dict(f, ci=boot, verdict=v,
                              pred_next=float(law(next_N, f["a"], f["alpha"], f["c"])))
        # skill against the training rate for log loss, the block's own rate for the skill loss
        rate = group[0]["base_rate"] if measure == "test_logloss" else float(np.mean(y))
        entry.update(skill_per_decade(N, y, probs, rate, h, dates))
        entry["verdict"] = entry["fit"]["verdict"]
        out[h] = entry
    # one family: the horizons' tests of "skill changes with N" are Holm-corrected together
    family = holm({h: e["skill_test"]["p_value"] for h, e in out.items() if "skill_test" in e},
                  a.alpha)
    for h, e in out.items():
        if "skill_test" in e:
            e["skill_test"]["p_holm"] = family[h]["p_holm"]
            e["decision"] = decide(e["skill_per_decade"], e["skill_per_decade_ci95"],
                                   e["skill_per_decade_ci90"], a.meaningful_skill_per_decade,
                                   family[h]["p_holm"], a.alpha)
            e["effect"] = e["decision"]["text"]
    return out


def _ci_text(ci, digits: int = 3) -> str:
    if not ci or ci[0] is None:
        return "unavailable"
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
