"""What the evidence can bear, for the scaling report: the design (what it detects and what would
decide it), the search's adequacy (selected configurations the search cut short), and how often
the test block and the holdout were read, with the measured coverage of the intervals."""

from __future__ import annotations

import pandas as pd

from ..core.config import SweepConfig
from . import tables as T


def design_table(fits: dict, cfg: SweepConfig):
    """Per horizon: what the design can detect now and how much more test data would bring the
    minimum detectable effect (80% power) down to the smallest effect of interest (the standard
    error falls as one over the square root of the test days)."""
    target = cfg.analysis.meaningful_skill_per_decade
    rows = []
    for h, e in fits.items():
        t = e.get("skill_test")
        if not t:
            continue
        factor = (t["mde80"] / target) ** 2
        days = e["test_days"]
        rows.append({"h": h, "verdict": (e.get("decision") or {}).get("code", "-"),
                     "skill per decade [95%]": T.interval(e["skill_per_decade"],
                                                          e["skill_per_decade_ci95"], 4,
                                                          sign=True),
                     "p (Holm over horizons)": T.pvalue(t.get("p_holm")),
                     "detectable now (80% power)": T.num(t["mde80"], 4),
                     "smallest effect of interest": T.num(target, 4),
                     "test days now": days,
                     "test days needed": f"{days * factor:,.0f} ({days * factor / 252:.0f} "
                                         f"years)" if factor > 1 else "enough"})
    return T.show(pd.DataFrame(rows), "The design: what it can decide, and what would decide it "
                  "(more test days; or more seeds and budgets, which shrink the same error)")


def adequacy_counts(results: pd.DataFrame) -> dict[int, dict]:
    """Per horizon: cells, selected configurations cut short (and why), selected among the
    pruner's startup trials. Empty for final evaluations that predate the adequacy record."""
    if "cut_short" not in results or results["cut_short"].isna().all():
        return {}
    out = {}
    for h, g in results.groupby("horizon"):
        flags = [f or [] for f in g["edge_flags"]]
        out[int(h)] = {"cells": len(g), "cut_short": int(g["cut_short"].fillna(False).sum()),
                       "epoch_cap": sum("epoch_cap" in f for f in flags),
                       "best_epoch_1": sum("best_epoch_1" in f for f in flags),
                       "startup": int(g["selected_startup"].fillna(False).sum())}
    return out


def adequacy_table(results: pd.DataFrame):
    """Per cell: where the selected trial sits in the search and which edges it touches."""
    if "cut_short" not in results or results["cut_short"].isna().all():
        return T.say("These final evaluations predate the search-adequacy record: run make final.")
    rows = [{"cell": r["cell"],
             "selected trial (index of counted)": f"{int(r['selected_index'])} of "
                                                   f"{int(r['n_trials_searched'])}",
             "completed trials": int(r["trials_complete"]),
             "a startup trial": T.num(bool(r["selected_startup"])),
             "best epoch / cap": f"{r['best_epoch']} / {r['max_epochs']}",
             "final seeds at the cap": f"{r['seeds_at_cap']} of {int(r['n_seeds'])}",
             "edges": ", ".join(x.replace("_", " ") for x in r["edge_flags"]) or "-"}
            for _, r in results.iterrows()]
    return T.show(pd.DataFrame(rows), "Search adequacy: the selected configuration's place in the "
                  "search and the edges of the ranges it sits at")


def test_block_note(sweep: str) -> str:
    """Markdown: how often the sweep's test block was read (the ledger, research rule 26) and
    how well the paired intervals cover on simulated dependent days (``make calibrate``)."""
    from pathlib import Path

    from ..analysis import ledger
    from ..core import paths
    from ..core.provenance import read_json

    s = ledger.summary(sweep)
    days = "; ".join(f"{a}..{b}" for a, b in s["blocks"] if a) or "none read yet"
    lines = [f"**The test block** ({days}) was read {s['reads']} time(s) by the final "
             f"evaluation, {s['reads_with_new_predictions']} of them scoring models for the "
             f"first time ({s['configurations_scored']} configuration(s) in {s['cells']} "
             f"cell(s)) since the ledger began ({(s['first'] or '-')[:10]}); every read is "
             f"listed in `outputs/sweeps/{Path(sweep).stem}/test_reads/`. "
             f"On the shipped S&P 500 data the 2017-18 test block has also been looked at "
             f"while this workbench was developed: it is not an untouched holdout."]
    held = sorted((paths.SWEEPS / Path(sweep).stem / "holdout").glob("*.json"))
    if held:
        results = [read_json(f) for f in held]
        lines.append(f"**The holdout block** was scored once for {len(results)} cell(s) "
                     f"(`make holdout`, after the test evaluation; {s['holdout_reads']} read(s) in "
                     f"the ledger): " + "; ".join(
                         f"{r['cell']['id']} {r['block']['block_start']}..{r['block']['block_end']}"
                         f" AUC {r['model']['mean_probability']['auc']:.3f} (test block "
                         f"{r['test_block_result']['auc']:.3f}), minus logistic regression "
                         f"{r['comparisons']['logreg']['auc_diff']['estimate']:+.3f} "
                         f"[{r['comparisons']['logreg']['auc_diff']['ci95'][0]:+.3f}, "
                         f"{r['comparisons']['logreg']['auc_diff']['ci95'][1]:+.3f}]"
                         for r in results) + ".")
    cal = paths.OUTPUTS / "calibration" / "coverage.json"
    if cal.exists():
        rows = [r for r in read_json(cal)["rows"] if r["method"].startswith("in use")]
        if rows:
            auc = [r["auc"]["coverage"] for r in rows]
            ll = [r["logloss"]["coverage"] for r in rows]
            lines.append(f"**Paired intervals** (transformer - baseline): nominal 95%; on "
                         f"simulated test blocks with persistent volatility, overlapping labels "
                         f"and dependent errors they covered {min(auc):.1%}-{max(auc):.1%} (AUC) "
                         f"and {min(ll):.1%}-{max(ll):.1%} (log loss) over {len(rows)} cases "
                         f"(`make calibrate`, {rows[0]['repeats']} blocks each).")
        alphas = [a for a in read_json(cal).get("alpha") or []
                  if a["method"].endswith("(in use)")]
        if alphas:
            cov = [a["all"]["coverage"] for a in alphas]
            lines.append(f"**The exponent's interval** (over every bootstrap fit): on simulated "
                         f"points of a known law with known noise it covered {min(cov):.1%}-"
                         f"{max(cov):.1%} of the time over {len(alphas)} cases (4 and 5 budgets, "
                         f"with and without an asymptote; {alphas[0]['repeats']} sets each).")
    else:
        lines.append("**Paired intervals**: their coverage has not been measured on this machine "
                     "(`make calibrate`; docs/search.md gives the measured table).")
    return "\n\n".join(lines)
