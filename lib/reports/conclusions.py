"""The scaling report's conclusions in full: sentences generated from the results table and the
fits (:mod:`lib.reports.report`), every choice made on validation and every test number reported
afterwards, each comparison with the family it was corrected over."""

from __future__ import annotations

import pandas as pd

from ..core.config import SweepConfig
from ..model.budget import fmt_count
from ..search.adequacy import CAVEAT_SHARE
from . import tables as T
from .evidence import adequacy_counts
from .report import COMPARED, MEASURES, N_AXES, _ci_text, choices
from .tables import span as span_of

BASELINE_WORDS = {"logreg": "logistic regression", "hgb": "gradient boosting"}


def significance(above: int, below: int) -> str:
    """'not significantly different in any', 'significantly above in 2', 'significantly above
    in 2 and below in 1'."""
    if not above and not below:
        return "not significantly different in any"
    parts = ([f"above in {above}"] if above else []) + ([f"below in {below}"] if below else [])
    return "significantly " + " and ".join(parts)


def verdict_line(h: int, e: dict) -> str:
    """The verdict of horizon ``h`` in one bullet: the decision in capitals, its reason, the
    smallest change the design detects, and the law's exponent (or "not identified")."""
    f = e.get("fit")
    if f is None:
        return f"**h={h}**: {e['verdict']['text']}."
    if f["verdict"]["identified"]:
        law = (f"alpha {T.interval(f['alpha'], f['ci']['alpha_ci95'])} ({f['form']}): "
               f"{f['verdict']['text']}")
    else:
        law = f"law {f['form']} not identified"
    d = e.get("decision") or {"code": "", "text": e.get("effect", "")}
    word = {"scales": "SCALES", "falls": "FALLS WITH SIZE", "no_meaningful_scaling":
            "NO MEANINGFUL SCALING", "inconclusive": "INCONCLUSIVE"}.get(d["code"], "")
    test = e.get("skill_test") or {}
    mde = (f" The smallest change this design detects with 80% power is "
           f"{test['mde80']:.4f} per decade." if test.get("mde80") is not None else "")
    reason = d["text"].split(": ", 1)[-1] if word else d["text"]  # the word is shown once
    return f"**h={h}: {word}**: {reason}.{mde} Law: {law}."


def bottom_line(h: int, e: dict, cfg: SweepConfig, cut: dict | None = None) -> str:
    """One plain sentence per horizon: what the verdict means for the question, with the number
    it rests on, and the search caveat when it applies."""
    d = e.get("decision")
    if not d:
        return f"At h={h}: {e['verdict']['text']}."
    est, (lo, hi) = e["skill_per_decade"], e["skill_per_decade_ci95"]
    thr = cfg.analysis.meaningful_skill_per_decade
    number = f"{est:+.4f} skill per decade of N, 95% interval [{lo:+.4f}, {hi:+.4f}]"
    zero = ("clear of 0 only before the Holm correction over the horizons, and not within"
            if lo > 0 or hi < 0 else "neither clear of 0 nor within")
    text = {
        "scales": f"At h={h} larger transformers predict better ({number}).",
        "falls": f"At h={h} larger transformers predict worse ({number}).",
        "no_meaningful_scaling": f"At h={h} size makes no meaningful difference: the change "
                                 f"stays within +-{thr:g} per decade ({number}).",
        "inconclusive": f"At h={h} the data cannot decide: {number}, {zero} +-{thr:g}; "
                        f"this design detects changes of "
                        f"{e['skill_test']['mde80']:.3f} or more.",
    }[d["code"]]
    if cut and cut["cut_short"] > CAVEAT_SHARE * cut["cells"]:
        text = text[:-1] + (f", and {cut['cut_short']} of {cut['cells']} selected models were "
                            f"cut short by the search.")
    return text


def write_verdict(sweep: str, results: pd.DataFrame, fits: dict, cfg: SweepConfig) -> None:
    """``outputs/sweeps/<sweep>/verdict.json``: the bottom line and each horizon's verdict code,
    for the index of reports (written by the scaling report when it renders)."""
    from pathlib import Path

    from ..core import paths
    from ..core.provenance import now_iso, write_json

    if not len(results):
        return
    cut = adequacy_counts(results)
    lines = [bottom_line(h, e, cfg, cut.get(h)) for h, e in fits.items()]
    write_json(paths.SWEEPS / Path(sweep).stem / "verdict.json", {
        "bottom_line": " ".join(lines), "lines": lines,
        "mde80": [(e.get("skill_test") or {}).get("mde80") for e in fits.values()],
        "codes": {str(h): (e.get("decision") or {}).get("code") for h, e in fits.items()},
        "written": now_iso()})


def conclusions(results: pd.DataFrame, fits: dict[int, dict], cfg: SweepConfig) -> list[str]:
    """Sentences generated from the numbers; choices from validation, test numbers reported."""
    if not len(results):
        return ["No cell has a complete final evaluation yet: nothing can be concluded."]
    out = []
    canary = sorted(set(results["canary"]) - {"none"})
    if canary:
        out.append(f"CANARY RUN ({', '.join(canary)}): this sweep checks the pipeline; its "
                   f"numbers are not a study.")
    inputs = sorted({f"{fs}/{n}" for fs, n in zip(results["feature_set"], results["norm"],
                                                  strict=True)})
    out.append(f"Inputs (feature set / input normalisation): {', '.join(inputs)}; the baselines "
               f"use the same feature set.")
    seeds = sorted(results["n_seeds"].unique())
    blocks = sorted({int(b) for b in results["block_length"].dropna()})
    out.append(
        f"Every test number is a mean over {', '.join(map(str, seeds))} re-training seed(s) "
        f"(never the search's seed). A model's own metrics carry a 95% hierarchical "
        f"block-bootstrap interval (mean block length {', '.join(map(str, blocks))} day(s), seeds "
        f"resampled with the days); differences to the baselines and the change of skill per "
        f"decade carry intervals calibrated for dependent days (HAC, fixed-b; make calibrate). "
        f"Each cell searched {span_of(results['trials_sampled'])} sampled trial(s)"
        + (f" plus {span_of(results['trials_enqueued'])} enqueued architecture probe(s)"
           if results["trials_enqueued"].max() > 0 else "")
        + ". Every choice below was made on the validation block.")
    for h, e in fits.items():
        f = e.get("fit")
        if f is None:
            out.append(f"Horizon {h}: {e['verdict']['text']}.")
            continue
        span = (f"{fmt_count(min(e['N']))}-{fmt_count(max(e['N']))} {N_AXES[e['n_axis']]}, "
                f"{len(e['N'])} budgets")
        if f["verdict"]["identified"]:
            law_txt = (f"alpha = {f['alpha']:.3f} ({f['form']}), 95% interval "
                       f"{_ci_text(f['ci']['alpha_ci95'])}: {f['verdict']['text']}")
        else:
            law_txt = f"the law {f['form']} is {f['verdict']['text']}"
        out.append(f"Horizon {h}: {MEASURES[e['measure']]} against {span}: {law_txt}. Skill "
                   f"per decade of N: {e['effect']} (p {e['skill_test']['p_value']:.3f}, Holm "
                   f"over horizons {e['skill_test']['p_holm']:.3f}; detectable with 80% power: "
                   f"{e['skill_test']['mde80']:.4f}).")
        pure = e.get("fit_pure")
        if pure:
            txt = (f"alpha = {pure['alpha']:.3f}, 95% interval "
                   f"{_ci_text(pure['ci']['alpha_ci95'])}: " if pure["verdict"]["identified"]
                   else "")
            out.append(f"Horizon {h}, pure power law as a check: {txt}"
                       f"{pure['verdict']['text']}.")
    pick = choices(results)
    alpha = cfg.analysis.alpha
    for h, cell in pick["best_budget"].items():
        r = results[results["cell"] == cell].iloc[0]
        g = results[results["horizon"] == h]
        counts = {b: (int(((g[f"auc_vs_{b}"] > 0) & (g[f"p_vs_{b}_holm"] < alpha)).sum()),
                      int(((g[f"auc_vs_{b}"] < 0) & (g[f"p_vs_{b}_holm"] < alpha)).sum()))
                  for b in COMPARED}
        out.append(
            f"Horizon {h}: validation chose {r['budget']} ({fmt_count(r['n_non_embedding'])} "
            f"non-embedding, {fmt_count(r['n_params'])} total parameters); its test AUC is "
            f"{r['test_auc']:.3f} {_ci_text(r['test_auc_ci'])} against logistic regression's "
            f"{r['logreg_auc']:.3f} (difference {r['auc_vs_logreg']:+.3f} "
            f"{_ci_text(r['auc_vs_logreg_ci'])}) and gradient boosting's {r['hgb_auc']:.3f} "
            f"(difference {r['auc_vs_hgb']:+.3f} {_ci_text(r['auc_vs_hgb_ci'])}). Across the "
            f"horizon's {len(g)} budget(s), the transformer's AUC "
            + "; ".join(f"against {BASELINE_WORDS[b]}: {significance(*counts[b])}"
                        for b in COMPARED)
            + f" (paired, calibrated for dependent days, Holm-adjusted over one family of "
              f"{results.attrs.get('comparison_family', 2 * len(results))} comparisons: every "
              f"cell against both baselines, at {alpha:g}).")
    h = pick["best_horizon"]
    r = results[results["cell"] == pick["best_budget"][h]].iloc[0]
    by_h = ", ".join(f"h{int(k)} {results[results['cell'] == c].iloc[0]['val_skill_own']:.3f}"
                     for k, c in pick["best_budget"].items())
    out.append(f"In drift-aware validation skill (against each block's own positive rate) the "
               f"best horizon is h={h} ({by_h}); its test skill is {r['test_skill_own']:.3f} "
               f"{_ci_text(r['test_skill_own_ci'])} drift-aware and {r['test_skill']:.3f} "
               f"{_ci_text(r['test_skill_ci'])} against the training positive rate.")
    drift = results.groupby("horizon")[["train_positive_rate", "test_positive_rate"]].first()
    out.append("Positive rate, training -> test block: " + ", ".join(
        f"h{int(k)} {v['train_positive_rate']:.3f} -> {v['test_positive_rate']:.3f}"
        for k, v in drift.iterrows()) + "; skill against the training rate mixes this drift "
        "with skill, the drift-aware skill does not.")
    if results["collapsed"].any():
        cells_ = ", ".join(results.loc[results["collapsed"], "cell"])
        out.append(f"Collapsed predictions (probability spread below the threshold) in: {cells_}.")
    return out
