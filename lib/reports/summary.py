"""What the rendered reports say first, and the tables they show: generated from the records.

``scaling_summary`` is the first screen of the scaling report (the question, the verdict per
horizon with its interval, the transformer against the baselines, the data and the effort, the
caveats); ``cell_summary`` opens a cell report. The ``*_table`` functions turn the analysis
frames of :mod:`lib.reports.report` into tables for people (:mod:`lib.reports.tables`).
"""

from __future__ import annotations

import pandas as pd

from ..core.config import SweepConfig
from ..model.budget import fmt_count
from ..search.adequacy import CAVEAT_SHARE
from . import tables as T
from .conclusions import BASELINE_WORDS, bottom_line, significance, verdict_line
from .evidence import adequacy_counts
from .report import COMPARED, MEASURES, N_AXES, choices


def _wins(g: pd.DataFrame, baseline: str, alpha: float) -> tuple[int, int]:
    """Cells of ``g`` significantly above and below ``baseline`` after Holm."""
    d, p = g[f"auc_vs_{baseline}"], g[f"p_vs_{baseline}_holm"]
    return int(((d > 0) & (p < alpha)).sum()), int(((d < 0) & (p < alpha)).sum())

QUESTION = ("Does a transformer's out-of-sample skill at predicting a 1% rise within h days grow "
            "with its size, and how does that depend on the horizon h?")
MIN_TRIALS_FOR_IMPORTANCES = 20  # fewer complete trials cannot rank six settings


def scaling_summary(results: pd.DataFrame, fits: dict, cfg: SweepConfig, entry: dict) -> str:
    """Markdown: the answer first, then what it rests on and its caveats."""
    if not len(results):
        return (f"**{QUESTION}**\n\nNo cell has a complete final evaluation yet: run "
                f"`make final` (part of `make sweep`). Nothing can be concluded.")
    lines = [f"**{QUESTION}**", ""]
    canary = sorted(set(results["canary"]) - {"none"})
    if canary:
        lines += [f"> CANARY RUN ({', '.join(canary)}): these numbers check the pipeline and "
                  f"answer nothing.", ""]
    lines += ["**Bottom line**: " + " ".join(bottom_line(h, e, cfg, adequacy_counts(results)
                                                      .get(h)) for h, e in fits.items()), ""]
    lines.append("**Verdict per horizon** on the change of skill per decade of N ("
                 + MEASURES[next(iter(fits.values()))["measure"]]
                 + f" against measured {N_AXES[cfg.analysis.n_axis]}; smallest effect of "
                 f"interest {cfg.analysis.meaningful_skill_per_decade:g} skill per decade; "
                 f"intervals calibrated for dependent test days, Holm over horizons):")
    lines += [f"- {verdict_line(h, e)}" for h, e in fits.items()]
    pick = choices(results)
    lines += ["", "**Against the baselines** (the budget chosen on validation; test AUC, paired "
              "differences on the same days):"]
    for h, cell in pick["best_budget"].items():
        r = results[results["cell"] == cell].iloc[0]
        g = results[results["horizon"] == h]
        counts = [f"against {BASELINE_WORDS[b]}: "
                  + significance(*_wins(g, b, cfg.analysis.alpha)) for b in COMPARED]
        lines.append(
            f"- **h={h}**: {r['budget']} transformer AUC "
            f"{T.interval(r['test_auc'], r['test_auc_ci'])}; logistic regression "
            f"{T.num(r['logreg_auc'])} (difference "
            f"{T.interval(r['auc_vs_logreg'], r['auc_vs_logreg_ci'], sign=True)}), gradient "
            f"boosting {T.num(r['hgb_auc'])} (difference "
            f"{T.interval(r['auc_vs_hgb'], r['auc_vs_hgb_ci'], sign=True)}); log loss minus "
            f"logistic regression's "
            f"{T.interval(r['logloss_vs_logreg'], r['logloss_vs_logreg_ci'], 4, sign=True)} "
            f"(below 0 is better). Over the horizon's {len(g)} budget(s): "
            + "; ".join(counts) + ".")
    lines.append(f"- p-values are Holm-adjusted over one family of "
                 f"{results.attrs.get('comparison_family', 2 * len(results))} comparisons (every "
                 f"cell against both baselines); the horizons' scaling verdicts form a second "
                 f"family.")
    best = results[results["cell"] == pick["best_budget"][pick["best_horizon"]]].iloc[0]
    lines.append(f"- Best horizon on validation: h={pick['best_horizon']}, drift-aware test skill "
                 f"{T.interval(best['test_skill_own'], best['test_skill_own_ci'])}.")
    inputs = sorted({f"{fs} / {n}" for fs, n in zip(results["feature_set"], results["norm"],
                                                    strict=True)})
    what = (f"a panel of {len(cfg.data.tickers)} assets from {cfg.data.source} "
            f"({', '.join(cfg.data.tickers[:4])}, ...), each its own dataset like "
            f"{entry['target']}'s:" if cfg.data.panel else f"{entry['target']}")
    lines += ["", "**Data and effort**: "
              f"{what} daily bars {entry['first_date']}..{entry['last_date']} "
              f"(dataset {entry['id']}, sha256 {entry['sha256'][:12]}); inputs "
              f"{', '.join(inputs)}; {results['budget'].nunique()} budgets x "
              f"{results['horizon'].nunique()} horizons; "
              f"{T.span(results['trials_sampled'])} sampled trial(s) per cell"
              + (f" (+ {T.span(results['trials_enqueued'])} enqueued probes)"
                 if results["trials_enqueued"].max() > 0 else "") + "; "
              f"{int(results['n_seeds'].min())} re-training seeds per cell, never the search's; "
              f"mean block length {T.span(results['block_length'])} days."]
    cut = adequacy_counts(results)
    if cut:
        lines += ["", "**Search adequacy** (the selected configuration per cell): " + "; ".join(
            f"h={h}: {c['cut_short']} of {c['cells']} cut short (best epoch at the epoch cap "
            f"{c['epoch_cap']}, best epoch 1 {c['best_epoch_1']}), {c['startup']} selected "
            f"among the pruner's startup trials" for h, c in cut.items()) + "."]
    caveats = []
    short = [h for h, c in cut.items() if c["cut_short"] > CAVEAT_SHARE * c["cells"]]
    if short:
        caveats.append(f"at h={', '.join(map(str, short))} more than {CAVEAT_SHARE:.0%} of the "
                       f"selected configurations stopped while still improving or after one "
                       f"epoch: those verdicts may describe the search rather than the models "
                       f"(a longer epoch range would tell)")
    unident = [h for h, e in fits.items() if e.get("fit") and not e["fit"]["verdict"]["identified"]]
    if unident:
        caveats.append(f"the scaling law is not identified at h={', '.join(map(str, unident))}: "
                       f"no exponent is reported there")
    if results["budget"].nunique() < cfg.analysis.min_budgets_with_c:
        caveats.append(f"{results['budget'].nunique()} budgets: the pure power law only (an "
                       f"asymptote needs {cfg.analysis.min_budgets_with_c})")
    inconclusive = [h for h, e in fits.items()
                    if (e.get("decision") or {}).get("code") == "inconclusive"]
    if inconclusive:
        caveats.append(f"intervals too wide to rule a meaningful effect in or out at "
                       f"h={', '.join(map(str, inconclusive))} "
                       f"(threshold {cfg.analysis.meaningful_skill_per_decade:g} skill per "
                       f"decade; the design table says what would decide it)")
    if results["collapsed"].any():
        caveats.append("collapsed predictions in " + ", ".join(
            results.loc[results["collapsed"], "cell"]))
    drift = results.groupby("horizon")[["train_positive_rate", "test_positive_rate"]].first()
    caveats.append("the positive rate drifts from training to test (" + ", ".join(
        f"h{int(h)} {v['train_positive_rate']:.2f} -> {v['test_positive_rate']:.2f}"
        for h, v in drift.iterrows()) + "): skill is also shown against the test block's own rate")
    lines += ["", "**Caveats**: " + "; ".join(caveats) + "."]
    return "\n".join(lines)


def results_table(results: pd.DataFrame):
    """Per cell: architecture, inputs, counts, test metrics with intervals, beside the baselines."""
    rows = [{"cell": r["cell"], "architecture": r["arch"], "inputs": f"{r['feature_set']} / "
             f"{r['norm']}",
             "N non-emb. / total": f"{fmt_count(r['n_non_embedding'])} / "
                                   f"{fmt_count(r['n_params'])}",
             "val log loss": T.num(r["val_logloss"]),
             "test AUC [95%]": T.interval(r["test_auc"], r["test_auc_ci"]),
             "test skill, drift-aware [95%]": T.interval(r["test_skill_own"],
                                                         r["test_skill_own_ci"]),
             "test skill vs train rate": T.num(r["test_skill"]),
             "logistic reg. AUC": T.num(r["logreg_auc"]), "gradient boost. AUC":
             T.num(r["hgb_auc"]), "collapsed": T.num(bool(r["collapsed"])),
             "seeds": int(r["n_seeds"])} for _, r in results.iterrows()]
    return T.show(pd.DataFrame(rows), "Test block, each cell's configuration chosen on "
                  "validation, mean over seeds")


def comparisons_table(results: pd.DataFrame):
    """Per cell: paired differences to the baselines with intervals and Holm-adjusted p-values."""
    rows = [{"cell": r["cell"],
             "AUC - logistic reg. [95%]": T.interval(r["auc_vs_logreg"], r["auc_vs_logreg_ci"],
                                                     sign=True),
             "p": T.pvalue(r["p_vs_logreg"]), "p, Holm": T.pvalue(r["p_vs_logreg_holm"]),
             "log loss - logistic reg. [95%]": T.interval(r["logloss_vs_logreg"],
                                                          r["logloss_vs_logreg_ci"], sign=True),
             "AUC - gradient boost. [95%]": T.interval(r["auc_vs_hgb"], r.get("auc_vs_hgb_ci"),
                                                       sign=True),
             "p (vs gradient boost.)": T.pvalue(r["p_vs_hgb"]),
             "p, Holm (vs gradient boost.)": T.pvalue(r["p_vs_hgb_holm"]),
             "p, DeLong (assumes independent days)": T.pvalue(r["p_delong_iid"])}
            for _, r in results.iterrows()]
    return T.show(pd.DataFrame(rows), "Transformer minus baseline on the same test days: paired "
                  "intervals calibrated for dependent days (HAC, fixed-b); Holm over every cell "
                  "and both baselines")


def effort_table(results: pd.DataFrame):
    """Per cell: sampled trials, probes, pruned trials, epochs, compute (analytic training FLOPs
    and wall time of the search and of the final seeds) and seeds: the effort behind each
    number."""
    effort = [{"cell": r["cell"], "sampled trials": int(r["trials_sampled"]),
               "enqueued probes": int(r["trials_enqueued"]), "pruned": int(r["trials_pruned"]),
               "epochs trained": int(r["epochs_trained"]),
               "search FLOPs": T.flops(r.get("search_train_flops")),
               "search (s)": T.num(r.get("search_train_s"), 0),
               "final FLOPs": T.flops(r.get("final_train_flops")),
               "final (s)": T.num(r.get("final_train_s"), 0),
               "architectures offered": int(r["architectures_offered"] or 0)}
              for _, r in results.iterrows()]
    # two tables rather than one of 13 columns: each fits a 1280-pixel page without scrolling
    method = [{"cell": r["cell"], "final seeds": ", ".join(map(str, r["seeds"] or [])),
               "block length (days)": int(r["block_length"]),
               "test AUC, block [95%]": T.interval(r["test_auc"], r["test_auc_ci"]),
               "test AUC, i.i.d. [95%] (for comparison)": T.interval(r["test_auc"],
                                                                     r["test_auc_ci_iid"])}
              for _, r in results.iterrows()]
    return T.show(pd.DataFrame(effort), "Search effort and compute per cell (training FLOPs "
                  "analytic, seconds measured)"), \
        T.show(pd.DataFrame(method), "Final seeds and interval method per cell")


SHORT_MEASURES = {"test_logloss": "test log loss", "test_skill_loss": "1 - drift-aware skill"}


def fits_table(fits_by_measure: dict[str, dict]):
    """Per measure and horizon: the law fit, its intervals, identification and effect per decade."""
    rows = []
    for measure, fits in fits_by_measure.items():
        for h, e in fits.items():
            for key, label in (("fit", "chosen"), ("fit_pure", "pure, a check")):
                f = e.get(key)
                if f is None:
                    continue
                ok = f["verdict"]["identified"]
                rows.append({
                    "h": h, "measure": SHORT_MEASURES.get(measure, measure),
                    "form": f"{f['form']} ({label})",
                    "budgets": len(e["N"]),
                    "alpha [95%]": T.interval(f["alpha"], f["ci"]["alpha_ci95"]) if ok
                    else "not identified",
                    "fits on a bound": f"{f['ci']['bound_share']:.0%}"
                    if f["ci"].get("bound_share") is not None else "-",
                    "skill per decade of N [95%]": T.interval(
                        e["skill_per_decade"], e["skill_per_decade_ci95"], 4, sign=True),
                    "verdict": f["verdict"]["text"].split(" (")[0],
                    "effect": e["effect"].split(":")[0]})
    return T.show(pd.DataFrame(rows), "Scaling fits: a blank exponent means the points do not "
                  "determine it")


def provenance_table(entry: dict, prov: dict):
    """Data, code, packages and hardware behind a report, as two columns."""
    code = prov.get("code") or {}
    hw = prov.get("hardware") or {}
    return T.two_columns([
        ("dataset", f"{entry['id']} ({entry['feature_set']} features, target {entry['target']})"),
        ("dataset sha256", entry["sha256"]),
        ("rows, dates", f"{entry['rows']:,}, {entry['first_date']}..{entry['last_date']}"),
        ("code commit", f"{code.get('commit')}" + (" (uncommitted changes)" if code.get("dirty")
                                                   else "")),
        ("hardware", f"{hw.get('cpu')}, {hw.get('logical_cpus')} logical CPUs, "
                     f"{hw.get('memory_gb')} GB" + (f", {hw.get('gpu')}" if hw.get("gpu")
                                                    else "")),
        ("packages", ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items()
                               if v))], "Provenance")


def importances_table(summaries: list[dict]):
    """Optuna's importances only where enough trials exist to rank the settings; otherwise the
    reason (equal importances from 5 trials look like a finding and are noise)."""
    rows = []
    for s in summaries:
        n = (s.get("counts") or {}).get("complete", 0)
        imp = s.get("importances")
        if imp and n >= MIN_TRIALS_FOR_IMPORTANCES:
            rows.append({"cell": s["cell"]["id"], **{k: T.num(v, 2) for k, v in imp.items()}})
    if not rows:
        n = max(((s.get("counts") or {}).get("complete", 0) for s in summaries), default=0)
        return T.say(f"Hyperparameter importances not shown: at most {n} complete trials per "
                     f"cell, and ranking the searched settings needs at least "
                     f"{MIN_TRIALS_FOR_IMPORTANCES}.")
    return T.show(pd.DataFrame(rows), "Hyperparameter importances (Optuna's default evaluator), "
                  "per cell")


def cell_summary(cell: dict, summary: dict, preflight: dict, status: dict) -> str:
    """Markdown opening a cell report."""
    c = summary.get("counts") or {}
    e = summary.get("effort") or {}
    lines = [f"**Cell {cell['id']}**: budget {cell['budget']}, horizon {cell['horizon']} "
             f"trading days. Status: {status['finished']}/{status['target']} trials finished "
             f"({e.get('sampled', c.get('sampled'))} sampled, {e.get('enqueued', 0)} enqueued "
             f"probes; {c.get('pruned', 0)} pruned, {c.get('failed', 0)} failed), "
             f"{e.get('epochs_trained', 0)} epochs trained."]
    best = summary.get("best")
    bl = (summary.get("baselines") or {}).get("logreg") or {}
    if best:
        n = best.get("n_params") or {}
        lines.append(f"Best trial {best['number']}: {best['params'].get('arch')} "
                     f"({fmt_count(n.get('measured_non_embedding') or 0)} non-embedding, "
                     f"{fmt_count(n.get('measured') or n.get('total') or 0)} total parameters), "
                     f"validation log loss {T.num(best['objective'])}, AUC {T.num(best['auc'])}, "
                     f"skill {T.num(best['skill'])}; logistic regression on the same features: "
                     f"AUC {T.num(bl.get('auc'))}, skill {T.num(bl.get('skill'))} (validation).")
    else:
        lines.append("No complete trial yet.")
    warn = preflight.get("warnings") or []
    lines.append("Pre-flight: " + ("passed" if preflight.get("ok") else "FAILED")
                 + (f", warnings: {'; '.join(warn)}" if warn else ", no warnings") + ".")
    lines.append("Validation only: the test block is read by the final evaluation, reported in "
                 "the scaling report.")
    return "\n\n".join(lines)


def preflight_table(report: dict):
    """The pre-flight checks and what each found."""
    rows = []
    for name, check in (report.get("checks") or {}).items():
        detail = {k: v for k, v in check.items() if k not in ("ok",) and v not in (None, [], {})}
        text = ", ".join(f"{k} {T.num(v) if isinstance(v, float) else v}" for k, v in
                         detail.items())
        rows.append({"check": name, "ok": T.num(bool(check.get("ok"))), "detail": text[:160]})
    return T.show(pd.DataFrame(rows), "Pre-flight checks")


def trials_table(trials: pd.DataFrame):
    """A cell's trials for people: state, probe, architecture, counts, objective, settings."""
    cols = [("number", "trial", lambda v: int(v)), ("state", "state", str),
            ("enqueued", "probe", lambda v: T.num(bool(v))), ("arch", "architecture", str),
            ("n_params", "parameters", T.count), ("objective", "val log loss", T.num),
            ("val_auc", "val AUC", T.num), ("epochs", "epochs", lambda v: int(v)),
            ("lr", "learning rate", lambda v: f"{v:.2e}"), ("batch_size", "batch", int),
            ("dropout", "dropout", lambda v: T.num(v, 2)), ("seconds", "seconds",
                                                            lambda v: T.num(v, 1))]
    if not len(trials):
        return T.say("No finished trial.")
    t = trials.sort_values("objective", na_position="last")
    rows = [{label: (f(r[key]) if key in r and pd.notna(r[key]) else "-")
             for key, label, f in cols} for _, r in t.iterrows()]
    return T.show(pd.DataFrame(rows), "Finished trials, best first")
