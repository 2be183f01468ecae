"""Tables, fits and generated conclusions for the scaling report (notebooks/04_scaling_report).

Everything here reads the sweep's records back (``final.json`` per cell, trial records, storage);
nothing is typed by hand. Horizons are compared in base-rate-normalised skill, never in raw log loss
(SCIENCE rule 11).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from .config import SweepConfig
from .model import fmt_count, parse_budget
from .provenance import read_json
from .scaling import available_cpus, bootstrap_alpha, fit_law, law, verdict
from .search import cells

MEASURES = {"test_logloss": "test log loss", "one_minus_auc": "1 - test AUC",
            "val_objective": "validation objective of the best trial"}


def load_finals(sweep: str, cfg: SweepConfig) -> list[dict]:
    out = []
    for cell in cells(sweep, cfg):
        f = cell.dir / "final.json"
        if f.exists():
            state = read_json(f)
            if state.get("complete"):
                out.append(state)
    return out


def _best(state: dict) -> dict:
    return min(state["configs"].values(), key=lambda c: c["rank"])


def results_table(finals: list[dict]) -> pd.DataFrame:
    rows = []
    for s in finals:
        b = _best(s)
        agg, bl = b["aggregate"], s["baselines"]
        rows.append({
            "cell": s["cell"]["id"], "budget": s["cell"]["budget"],
            "horizon": s["cell"]["horizon"], "arch": b["arch"]["id"],
            "n_params": b["n_params"]["measured"], "val_objective": b["val_objective"],
            "test_auc": agg["auc"]["mean"], "test_auc_sd": agg["auc"]["sd"],
            "test_auc_ci": agg["auc"]["ci95"], "test_logloss": agg["logloss"]["mean"],
            "test_skill": agg["skill"]["mean"], "test_skill_ci": agg["skill"]["ci95"],
            "logreg_auc": bl["logreg"]["test"]["auc"],
            "logreg_skill": bl["logreg"]["test"]["skill"],
            "hgb_auc": bl["hgb"]["test"]["auc"], "prior_logloss": bl["prior"]["test"]["logloss"],
            "p_vs_logreg": s["vs_logreg"]["p_value"], "collapsed": agg["collapsed_any"],
            "spread": agg["spread"]["mean"], "n_seeds": agg["auc"]["n_seeds"],
            "n_trials_searched": s["n_trials_searched"],
            "test_positive_rate": s["split"]["test"]["positive_rate"]})
    df = pd.DataFrame(rows)
    if len(df):
        df["budget_n"] = df["budget"].map(parse_budget)
        df = df.sort_values(["horizon", "budget_n"]).reset_index(drop=True)
    return df


def _logloss(y, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _measure(name: str, y: np.ndarray, p: np.ndarray) -> float | None:
    if name == "test_logloss":
        return _logloss(y, p)
    if len(np.unique(y)) < 2:
        return None
    return 1 - float(roc_auc_score(y, p))


def scaling_fits(finals: list[dict], measure: str = "test_logloss", resamples: int = 300,
                 seed: int = 0, workers: int | None = None) -> dict[int, dict]:
    """Per horizon: measured N, the error measure, the fitted law, alpha's interval, a verdict.

    ``workers``: processes for the bootstrap fits (default: the CPUs this process may use)."""
    workers = workers or available_cpus()
    out = {}
    by_h: dict[int, list[dict]] = {}
    for s in finals:
        by_h.setdefault(s["cell"]["horizon"], []).append(s)
    for h, group in sorted(by_h.items()):
        group.sort(key=lambda s: _best(s)["n_params"]["measured"])
        N = np.array([_best(s)["n_params"]["measured"] for s in group], dtype=float)
        budgets = [s["cell"]["budget"] for s in group]
        entry = {"horizon": h, "budgets": budgets, "N": N.tolist(), "measure": measure}
        if measure == "val_objective":
            L = np.array([_best(s)["val_objective"] for s in group], dtype=float)
            sampler = None
        else:
            y = np.asarray(group[0]["y_test"], dtype=float)
            probs = [[np.asarray(v["p_test"]) for v in _best(s)["seeds"].values()] for s in group]
            L = np.array([np.mean([_measure(measure, y, p) for p in ps]) for ps in probs])

            def sampler(rng, y=y, probs=probs):
                idx = rng.integers(0, len(y), len(y))
                vals = []
                for ps in probs:
                    chosen = [ps[i] for i in rng.integers(0, len(ps), len(ps))]
                    m = [_measure(measure, y[idx], p[idx]) for p in chosen]
                    if any(v is None for v in m):
                        return None
                    vals.append(np.mean(m))
                return np.array(vals)
        entry["L"] = L.tolist()
        if len(np.unique(N)) < 2:
            entry["fit"] = None
            entry["verdict"] = "one budget only: no scaling fit possible"
            out[h] = entry
            continue
        next_N = float(N[-1] * (N[-1] / N[-2]))
        entry["next_N"] = next_N
        # the chosen form (with c where 4+ budgets allow it) and, as a robustness check, the pure
        # power law on the same points
        for key, with_c in (("fit", None), ("fit_pure", False)):
            f = fit_law(N, L, with_c)
            if key == "fit_pure" and f["form"] == entry["fit"]["form"]:
                break
            if sampler is None:
                ci = {"alpha_ci95": [None, None], "n": 0,
                      "note": "one validation number per budget: no bootstrap interval"}
            else:
                ci = bootstrap_alpha(N, sampler, resamples, seed, with_c=with_c, next_N=next_N,
                                     grid_N=np.geomspace(N.min(), next_N, 40), workers=workers)
            entry[key] = dict(f, ci=ci, pred_next=float(law(next_N, f["a"], f["alpha"], f["c"])),
                              verdict=verdict(f["alpha"], ci["alpha_ci95"]))
        entry["ci"], entry["pred_next"] = entry["fit"]["ci"], entry["fit"]["pred_next"]
        entry["verdict"] = entry["fit"]["verdict"]
        out[h] = entry
    return out


def fits_table(fits: dict[int, dict]) -> pd.DataFrame:
    rows = []
    for h, e in fits.items():
        for key in ("fit", "fit_pure"):
            f = e.get(key)
            if f is None and key == "fit_pure":
                continue
            f = f or {}
            ci = (f.get("ci") or {}).get("alpha_ci95", [None, None])
            rows.append({"horizon": h, "measure": MEASURES[e["measure"]], "points": len(e["N"]),
                         "form": f.get("form"), "alpha": f.get("alpha"), "alpha_lo": ci[0],
                         "alpha_hi": ci[1], "a": f.get("a"), "c": f.get("c"),
                         "next_N": fmt_count(e["next_N"]) if "next_N" in e else None,
                         "pred_next": f.get("pred_next"),
                         "pred_next_ci": (f.get("ci") or {}).get("pred_next_ci95"),
                         "verdict": f.get("verdict", e["verdict"])})
    return pd.DataFrame(rows)


def conclusions(results: pd.DataFrame, fits: dict[int, dict]) -> list[str]:
    """Sentences generated from the numbers."""
    out = []
    if not len(results):
        return ["No cell has a complete final evaluation yet: nothing can be concluded."]
    seeds = sorted(results["n_seeds"].unique())
    out.append(f"Every test number rests on {', '.join(map(str, seeds))} seed(s) per cell and "
               f"on {int(results['n_trials_searched'].min())}-"
               f"{int(results['n_trials_searched'].max())} searched trials per cell; selection "
               f"used the validation block only.")
    for h, e in fits.items():
        f = e.get("fit")
        if f is None:
            out.append(f"Horizon {h}: {e['verdict']}.")
            continue
        ci = e["ci"]["alpha_ci95"]
        ci_txt = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci[0] is not None else "unavailable"
        out.append(f"Horizon {h}: {MEASURES[e['measure']]} against measured parameters "
                   f"({fmt_count(min(e['N']))}-{fmt_count(max(e['N']))}, {len(e['N'])} budgets) "
                   f"gives alpha = {f['alpha']:.3f} ({f['form']}), 95% interval {ci_txt}: "
                   f"{e['verdict']}.")
        pure = e.get("fit_pure")
        if pure:
            pci = pure["ci"]["alpha_ci95"]
            pci_txt = f"[{pci[0]:.3f}, {pci[1]:.3f}]" if pci[0] is not None else "unavailable"
            out.append(f"Horizon {h}, pure power law as a check: alpha = {pure['alpha']:.3f}, "
                       f"95% interval {pci_txt}: {pure['verdict']}.")
    for h, g in results.groupby("horizon"):
        best = g.loc[g["test_auc"].idxmax()]
        beats = (g["test_auc"] > g["logreg_auc"]).sum()
        sig = ((g["test_auc"] > g["logreg_auc"]) & (g["p_vs_logreg"] < 0.05)).sum()
        out.append(f"Horizon {h}: best test AUC {best['test_auc']:.3f} ({best['budget']}, "
                   f"{fmt_count(best['n_params'])} parameters) against logistic regression's "
                   f"{best['logreg_auc']:.3f}; the transformer beats logistic regression in "
                   f"{beats} of {len(g)} budgets, significantly (DeLong p < 0.05) in {sig}.")
    skill = results.groupby("horizon")["test_skill"].max()
    out.append("In base-rate-normalised skill (1 - logloss/logloss_base) the best horizon is "
               f"h={int(skill.idxmax())} ({skill.max():.3f}); by horizon: "
               + ", ".join(f"h{int(h)} {v:.3f}" for h, v in skill.items()) + ".")
    if results["collapsed"].any():
        cells_ = ", ".join(results.loc[results["collapsed"], "cell"])
        out.append(f"Collapsed predictions (probability spread below the threshold) in: {cells_}.")
    return out
