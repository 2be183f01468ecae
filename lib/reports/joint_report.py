"""The joint analysis of a sweep with a data axis (notebooks/06_joint_scaling): parameters N and
training data D together, per horizon.

For every horizon the cells' test losses (mean over the final seeds of each cell's configuration
chosen on validation) are fitted with ``L(N, D) = E + A / N^alpha + B / D^beta``
(:mod:`lib.analysis.joint`); N is the measured parameter count on the sweep's ``analysis.n_axis``, D
the training tokens (windows x patch tokens per window; the exponents are the same in windows). The
intervals come from the hierarchical block bootstrap of :mod:`lib.analysis.stats`: one resample of
test days shared by every cell of the horizon (the cells are scored on the same days, whatever their
training data) with each cell's seeds resampled, and the joint law refitted per replicate.

Beside the joint law, the one-factor laws it generalises: L against N at the largest data size,
and L against D at the largest budget (pure power laws, :func:`lib.analysis.scaling.fit_law`). From
the joint fit: whether the largest observed (N, D) is data-limited, size-limited, neither or not
identified (:func:`lib.analysis.joint.limited_by`), and, when both exponents show scaling, the
compute-optimal N and D for C = 6 N D with bootstrap bands, marked as extrapolation where they
leave the observed ranges. Every choice (the best cell of a horizon) is made on validation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.joint import (
    EXPONENT_PARTS,
    FLOPS_PER_PARAM_TOKEN,
    bootstrap_joint,
    exponent_verdicts,
    fit_joint,
    limited_by,
    optimal_split,
)
from ..analysis.panel_eval import test_dates
from ..analysis.scaling import (
    bootstrap_fits,
    decide,
    fit_law,
    noise_scale,
    skill_per_decade,
    verdict,
)
from ..analysis.stats import hierarchical, holm
from ..core.config import SweepConfig
from ..model.budget import fmt_count
from . import tables
from .report import _best, _ci_text, _measure_stat, n_of

AXIS_WORDS = {"N": "model size", "D": "data size"}


def d_of(state: dict) -> tuple[int, int]:
    """A cell's training data D: (windows, tokens)."""
    data = state["split"].get("data") or {}
    windows = int(data.get("windows") or state["split"]["train"]["n_windows"])
    per = data.get("tokens_per_window")
    if per is None:  # a two-axis record: tokens from the compute record of a final seed
        seed = next(iter(_best(state)["seeds"].values()))
        per = (seed.get("compute") or {}).get("tokens_per_window", 1)
    return windows, windows * int(per)


def _one_factor(x, L, draws, axis: str, max_bound_share: float) -> dict:
    """A pure power law of L in one variable with bootstrap intervals and a verdict."""
    if len(np.unique(x)) < 3:
        return {"axis": axis, "fit": None, "text": f"fewer than 3 distinct {AXIS_WORDS[axis]}s: "
                                                   f"no one-factor law"}
    scale = noise_scale(draws)
    f = fit_law(x, L, with_c=False, scale=scale)
    boot = bootstrap_fits(x, list(draws), with_c=False, scale=scale)
    v = verdict(f, boot, max_bound_share)
    text = v["text"].replace("model size", AXIS_WORDS[axis]).replace("alpha", "the exponent")
    ci = boot["alpha_ci95"]
    if v["identified"]:
        text = f"exponent {f['alpha']:.3f} {_ci_text(ci)}: {text}"
    return {"axis": axis, "x": np.asarray(x).tolist(), "L": np.asarray(L).tolist(),
            "fit": f, "ci": ci, "verdict": dict(v, text=text)}


def _frontier(fit: dict, boot: dict, C: np.ndarray) -> dict:
    """Compute-optimal N and D over budgets C, with 95% bands over the bootstrap fits whose
    exponents are both interior and positive."""
    best = optimal_split(fit, C)
    draws = []
    for f in boot["fits"]:
        inner = not set(sum(EXPONENT_PARTS.values(), ())) & set(f["at_bound"])
        if inner and f["alpha"] > 0 and f["beta"] > 0:
            s = optimal_split(f, C)
            draws.append((s["N"], s["D"]))
    out = {"C": C.tolist(), "N": best["N"].tolist(), "D": best["D"].tolist(),
           "L": best["L"].tolist(), "n_draws": len(draws)}
    if draws:
        arr = np.asarray(draws)  # [n, 2, len(C)]
        for i, k in enumerate(("N", "D")):
            lo, hi = np.percentile(arr[:, i], [2.5, 97.5], axis=0)
            out[f"{k}_lo"], out[f"{k}_hi"] = lo.tolist(), hi.tolist()
    return out


def joint_fits(finals: list[dict], cfg: SweepConfig, measure: str = "test_logloss",
               resamples: int | None = None, seed: int = 0) -> dict[int, dict]:
    """Per horizon: the points (N, D, L), the joint fit with bootstrap intervals and per-exponent
    verdicts, what limits the largest observed model, the frontier when both exponents scale, and
    the one-factor fits beside it."""
    a = cfg.analysis
    resamples = resamples or cfg.final.bootstrap
    by_h: dict[int, list[dict]] = {}
    for s in finals:
        by_h.setdefault(s["cell"]["horizon"], []).append(s)
    out = {}
    for h, group in sorted(by_h.items()):
        group.sort(key=lambda s: (n_of(s, a.n_axis), d_of(s)[1]))
        N = np.array([n_of(s, a.n_axis) for s in group], dtype=float)
        Dw = np.array([d_of(s)[0] for s in group], dtype=float)
        D = np.array([d_of(s)[1] for s in group], dtype=float)
        y = np.asarray(group[0]["y_test"], dtype=float)
        probs = [[np.asarray(v["p_test"]) for v in _best(s)["seeds"].values()] for s in group]
        stat = _measure_stat(measure, y)
        L = np.asarray(stat(y, [np.asarray(p) for p in probs]))
        block = max((s.get("interval") or {}).get("block_length") or h for s in group)
        entry = {"horizon": h, "cells": [s["cell"]["id"] for s in group], "N": N.tolist(),
                 "D": D.tolist(), "D_windows": Dw.tolist(), "L": L.tolist(), "measure": measure,
                 "n_axis": a.n_axis, "block_length": block, "resamples": resamples,
                 "N_decades": float(np.log10(N.max() / N.min())),
                 "D_decades": float(np.log10(D.max() / D.min()))}
        out[h] = entry
        dates = test_dates(group[0])  # a panel counts by date
        draws = hierarchical(y, probs, stat, block, resamples, seed, dates=dates)
        scale = noise_scale(draws)
        at_n = np.array([s["cell"]["budget_n"] for s in group]) == max(
            s["cell"]["budget_n"] for s in group)
        if len(np.unique(D[at_n])) >= 2:  # the change of skill per decade of D, largest N
            # (skill against the test block's own rate: the levels' training rates differ)
            entry["skill_D"] = skill_per_decade(D[at_n], y, [p for p, k in zip(
                probs, at_n, strict=True) if k], float(np.mean(y)), h, dates)
        try:
            fit = fit_joint(N, D, L, scale)
        except ValueError as e:
            entry.update(fit=None, limited={"code": "not_identified",
                                             "text": f"not identified: {e}"})
            continue
        boot = bootstrap_joint(N, D, list(draws), scale)
        verdicts = exponent_verdicts(fit, boot, a.max_bound_share)
        i_max = int(np.argmax(N * D))
        entry.update(fit=fit, verdicts=verdicts, E_ci95=boot["E"]["ci95"],
                     ci95={k: boot[k]["ci95"] for k in EXPONENT_PARTS},
                     bound_share={k: boot[k]["bound_share"] for k in EXPONENT_PARTS},
                     n_boot=boot["n"],
                     limited=limited_by(fit, boot, verdicts, N.max(), D.max()),
                     limited_at={"N": float(N.max()), "D": float(D.max()),
                                 "cell": entry["cells"][i_max]})
        if all(v["code"] == "scaling" for v in verdicts.values()):
            c_obs = FLOPS_PER_PARAM_TOKEN * N * D
            C = np.geomspace(c_obs.min(), c_obs.max() * 100, 25)
            fr = _frontier(fit, boot, C)
            fr["inside"] = [bool(N.min() <= n <= N.max() and D.min() <= d <= D.max())
                            for n, d in zip(fr["N"], fr["D"], strict=True)]
            entry["frontier"] = fr
        # the one-factor laws: in N across the budgets at the largest data size, in D across the
        # data sizes at the largest budget (measured N differs between a budget's cells)
        ids = np.array([s["cell"].get("data", "") for s in group])
        at_d = ids == ids[int(np.argmax(D))]
        entry["one_factor"] = {
            "N": _one_factor(N[at_d], L[at_d], draws[:, at_d], "N", a.max_bound_share),
            "D": _one_factor(D[at_n], L[at_n], draws[:, at_n], "D", a.max_bound_share)}
    family = holm({h: e["skill_D"]["skill_test"]["p_value"] for h, e in out.items()
                   if "skill_D" in e}, a.alpha)  # the horizons' tests in D: one family
    for h, e in out.items():
        if "skill_D" in e:
            t = e["skill_D"]
            t["skill_test"]["p_holm"] = family[h]["p_holm"]
            t["decision"] = decide(t["skill_per_decade"], t["skill_per_decade_ci95"],
                                   t["skill_per_decade_ci90"], a.meaningful_skill_per_decade,
                                   family[h]["p_holm"], a.alpha, axis="D")
    return out


def d_verdict_line(h: int, e: dict) -> str:
    """The three-state verdict in D of one horizon, with the D range and the detectable effect."""
    t = e.get("skill_D")
    if not t:
        return f"h={h}: no verdict in D (fewer than 2 data sizes at the largest budget)"
    return (f"h={h}: {t['decision']['text']}; D {fmt_count(min(e['D_windows']))}-"
            f"{fmt_count(max(e['D_windows']))} windows ({e['D_decades']:.1f} decades); "
            f"detectable with 80% power: {t['skill_test']['mde80']:.4f} per decade")


def write_joint_verdict(sweep: str, fits: dict) -> None:
    """``outputs/sweeps/<sweep>/joint_verdict.json``: each horizon's verdict in D (for the index
    and the end of ``make sweep``)."""
    from pathlib import Path

    from ..core import paths
    from ..core.provenance import now_iso, write_json

    write_json(paths.SWEEPS / Path(sweep).stem / "joint_verdict.json", {
        "lines": [d_verdict_line(h, e) for h, e in fits.items()],
        "codes": {str(h): ((e.get("skill_D") or {}).get("decision") or {}).get("code")
                  for h, e in fits.items()}, "written": now_iso()})


def grid_table(results: pd.DataFrame, value: str = "test_skill_own") -> pd.DataFrame:
    """Budget x data size per horizon: ``value`` with its 95% interval, as text (a data size's
    windows, which the purge makes differ by a few between horizons, are in :func:`data_table`)."""
    rows = []
    for (h, _), g in results.groupby(["horizon", "budget_n"], sort=True):
        row = {"horizon": int(h), "budget": g["budget"].iloc[0]}
        for _, r in g.sort_values("D_windows").iterrows():
            row[r["data"]] = tables.interval(r[value], r.get(f"{value}_ci"))
        rows.append(row)
    return pd.DataFrame(rows)


def choices_nd(results: pd.DataFrame) -> dict[int, str]:
    """Per horizon, the cell (budget x data size) with the lowest mean validation log loss over
    its final seeds. No test number enters."""
    return {int(h): str(g.loc[g["val_logloss"].idxmin(), "cell"])
            for h, g in results.groupby("horizon")}


def conclusions_nd(results: pd.DataFrame, fits: dict[int, dict]) -> list[str]:
    """Sentences generated from the joint fits: per horizon the verdict (data-limited,
    size-limited, neither, not identified), the exponents with intervals, the one-factor laws,
    the frontier and the range it rests on, and the cell validation chose."""
    if not len(results):
        return ["No cell has a complete final evaluation yet: nothing can be concluded."]
    out = []
    for h, e in fits.items():
        span = (f"N {fmt_count(min(e['N']))}-{fmt_count(max(e['N']))} "
                f"({e['N_decades']:.1f} decades), D {fmt_count(min(e['D_windows']))}-"
                f"{fmt_count(max(e['D_windows']))} windows ({e['D_decades']:.1f} decades), "
                f"{len(e['N'])} cells")
        out.append(f"Horizon {h}, change of skill per decade of training data at the largest "
                   f"budget: {d_verdict_line(h, e).split(': ', 1)[1]}.")
        if e.get("fit") is None:
            out.append(f"Horizon {h}: {e['limited']['text']} ({span}).")
            continue
        f = e["fit"]
        exps = "; ".join(v["text"] for v in e["verdicts"].values())
        out.append(f"Horizon {h}: joint law over {span}: {exps}; E = {f['E']:.4f} "
                   f"{_ci_text(e['E_ci95'], 4)}. Verdict at the largest model and data "
                   f"({e['limited_at']['cell']}): {e['limited']['text']}.")
        one = e["one_factor"]
        out.append(f"Horizon {h}, one-factor laws for comparison: in N at the largest D: "
                   f"{one['N'].get('verdict', one['N'])['text']}; in D at the largest N: "
                   f"{one['D'].get('verdict', one['D'])['text']}.")
        fr = e.get("frontier")
        if fr:
            inside = sum(fr["inside"])
            out.append(f"Horizon {h}: compute-optimal split for C = 6 N D: at C = "
                       f"{fr['C'][-1]:.2g}, N = {fmt_count(fr['N'][-1])}, D = "
                       f"{fmt_count(fr['D'][-1])} tokens; {inside} of {len(fr['C'])} budgets "
                       f"shown put the optimum inside the observed N and D ranges, the others "
                       f"are extrapolation the data cannot support.")
    for h, cell in choices_nd(results).items():
        r = results[results["cell"] == cell].iloc[0]
        out.append(f"Horizon {h}: validation chose {cell} ({fmt_count(r['n_non_embedding'])} "
                   f"non-embedding parameters, {fmt_count(r['D_windows'])} training windows); "
                   f"its drift-aware test skill is {r['test_skill_own']:.3f} "
                   f"{_ci_text(r['test_skill_own_ci'])}, test AUC {r['test_auc']:.3f} against "
                   f"logistic regression's {r['logreg_auc']:.3f} trained on the same windows.")
    rates = "; ".join(f"h{int(h)} " + ", ".join(
        f"{r['data']} {r['train_positive_rate']:.3f}" for _, r in
        g.drop_duplicates("data").sort_values("D_windows").iterrows())
        for h, g in results.groupby("horizon"))
    if results["data_recent"].any():
        why = ("A shorter history is a more recent one: part of any effect of D is the regime "
               "the windows come from, not only their number (data sizes with spread: true hold "
               "the regime fixed).")
    else:
        why = ("No data size here is a cut to the recent history (the smaller ones are spread "
               "over the whole training block), so the regime is held fixed across D.")
    out.append(f"Training positive rate by data size: {rates}. {why}")
    return out


def fits_table(fits: dict[int, dict]) -> pd.DataFrame:
    """One row per horizon: the joint law's exponents and floor with 95% intervals, the share of
    bootstrap fits on a bound, the verdicts."""
    rows = []
    for h, e in fits.items():
        f = e.get("fit")
        row = {"horizon": h, "cells": len(e["N"]), "N decades": f"{e['N_decades']:.2f}",
               "D decades": f"{e['D_decades']:.2f}"}
        if f is None:
            rows.append(dict(row, verdict=e["limited"]["text"]))
            continue
        for k in ("alpha", "beta"):
            v = e["verdicts"][k]
            row[k] = f"{f[k]:.3f} {_ci_text(e['ci95'][k])}" if v["identified"] else "-"
            row[f"{k} on a bound"] = f"{e['bound_share'][k]:.0%}"
            row[f"{k} verdict"] = v["code"].replace("_", " ")
        row["E"] = f"{f['E']:.4f} {_ci_text(e['E_ci95'], 4)}"
        row["verdict"] = e["limited"]["code"].replace("_", " ")
        rows.append(row)
    return pd.DataFrame(rows)


def series_text(tickers: dict, most: int = 4) -> str:
    """The series a cell trained on, with their windows; a long panel as its first ``most`` and a
    count (the table stays readable at 20 assets)."""
    if not tickers:
        return "target"
    items = [f"{t} {n}" for t, n in tickers.items()]
    if len(items) <= most:
        return ", ".join(items)
    return f"{len(items)} series: " + ", ".join(items[:most]) + f", ... ({len(items) - most} more)"


def data_table(finals: list[dict]) -> pd.DataFrame:
    """One row per cell: its training data (windows, tokens, series, passes per epoch, positive
    rate) and the compute its search and final seeds spent."""
    rows = []
    for s in sorted(finals, key=lambda s: (s["cell"]["horizon"], s["cell"]["budget_n"],
                                           d_of(s)[0])):
        data = s["split"].get("data") or {}
        b = _best(s)
        final_flops = sum((v.get("compute") or {}).get("train_flops", 0.0)
                          for v in b["seeds"].values())
        rows.append({"cell": s["cell"]["id"], "windows": d_of(s)[0], "tokens": d_of(s)[1],
                     "series": series_text(data.get("tickers") or {}),
                     "passes/epoch": data.get("passes_per_epoch", 1),
                     "train positive rate": tables.num(s["split"]["train"]["positive_rate"]),
                     "first window": s["split"]["train"]["first_window_end"],
                     "search FLOPs": tables.flops((s.get("effort") or {}).get("train_flops")),
                     "final FLOPs": tables.flops(final_flops or None)})
    return pd.DataFrame(rows)
