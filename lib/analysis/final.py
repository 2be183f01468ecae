"""Final evaluation of a cell (research rule 10): the selected configurations, re-trained with
several NEW seeds (never the search's seed; early stopping on validation), evaluated once on the
untouched test block, beside baselines.

Selection uses only the study (validation); the test block is read here and nowhere in the search.
Intervals resample blocks of test days with the seeds (:mod:`lib.analysis.stats`; neighbouring
labels share future days, so single days would make them too narrow; the i.i.d. interval is kept,
labelled, for comparison). Each baseline is compared with the model by HAC intervals of the paired
AUC and log-loss differences, DeLong's test (assumes independence) beside them; a panel counts by
date. The seeds of a configuration train together as one stacked model (``final.together``; each
seed's result equals its own run). Results go to ``final.json`` after every group of seeds, so an
interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import time

import numpy as np
import optuna
import torch

from ..core import paths
from ..core.config import SweepConfig
from ..core.provenance import now_iso, read_json, write_json
from ..data.cell_data import cell_splits
from ..data.splits import Splits, test_folds, walk_forward
from ..model.budget import base_model, budget_grid
from ..search import records
from ..search.adequacy import adequacy
from ..search.cells import Cell, open_storage, storage_url
from ..search.contract import final_settings, validation_choice
from ..train.baselines import cached_baselines
from ..train.metrics import evaluate, fast_metrics, sigmoid
from ..train.trainer import predict_logits
from ..train.trial import arch_record, build, compute_record, fit, fit_many, passes_per_epoch
from . import ledger
from .panel_eval import per_asset, window_dates
from .stats import (
    HAC_RULE,
    auc_influence,
    block_length,
    by_date,
    day_loss,
    delong,
    hac_interval,
    hierarchical,
    percentile_ci,
)

METRICS = ("auc", "logloss", "skill", "skill_own", "brier", "precision", "recall", "f1",
           "spread")
COMPARED = ("auc", "logloss")  # paired differences model - baseline
BASELINES = ("logreg", "hgb", "prior")


def final_seeds(cfg: SweepConfig) -> list[int]:
    """The re-training seeds: ``final.first_seed`` onwards, never the search's ``train.seed``
    (the config loader refuses an overlap)."""
    return list(range(cfg.final.first_seed, cfg.final.first_seed + cfg.final.seeds))


def _all_metrics(base: float):
    def stat(y, groups):
        per = [fast_metrics(y, p, base) for p in groups[0]]
        vals = [[m[k] for m in per] for k in METRICS]
        return None if any(v is None for vs in vals for v in vs) else [np.mean(v) for v in vals]
    return stat


def aggregate(y: np.ndarray, probs: list[np.ndarray], base: float, resamples: int,
              block: int, seed: int = 0, dates: np.ndarray | None = None) -> dict:
    """Per metric: mean and sd over seeds, the 95% interval of the seed-mean from the
    hierarchical block bootstrap (days in blocks, seeds with replacement) and, for comparison
    only, the i.i.d. interval over single days with fixed seeds."""
    per_seed = [evaluate(y, p, base) for p in probs]
    block_draws = hierarchical(y, [probs], _all_metrics(base), block, resamples, seed,
                               dates=dates)
    iid_draws = hierarchical(y, [probs], _all_metrics(base), 1, resamples, seed, iid=True,
                             dates=dates)
    out = {}
    for i, key in enumerate(METRICS):
        vals = [m[key] for m in per_seed if m[key] is not None]
        out[key] = {"mean": float(np.mean(vals)) if vals else None,
                    "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
                    "ci95": percentile_ci(block_draws[:, i]) if len(block_draws) else [None, None],
                    "ci95_iid": percentile_ci(iid_draws[:, i]) if len(iid_draws) else
                    [None, None],
                    "n_seeds": len(vals), "n_resamples": int(len(block_draws))}
    out["collapsed_any"] = any(m["collapsed"] for m in per_seed)
    return out


def compare(y: np.ndarray, probs: list[np.ndarray], p_base: np.ndarray, horizon: int,
            dates: np.ndarray | None = None) -> dict:
    """Model (per-seed probabilities) against one baseline on the same days: differences model -
    baseline in AUC and log loss with calibrated 95% intervals and p-values for dependent days
    (:func:`lib.analysis.stats.hac_interval`), and DeLong's test on the seed-mean probabilities
    (assumes independence). A panel's windows (``dates``) count by date, each with its whole
    cross-section (:func:`lib.analysis.stats.by_date`)."""
    y = np.asarray(y)
    p_base = np.asarray(p_base, dtype=float)
    if y.min() == y.max():
        return {f"{k}_diff": {"estimate": None, "ci95": [None, None], "p_value": None}
                for k in COMPARED} | {"delong_iid": {"p_value": None}, "method": HAC_RULE}
    loss = [day_loss(y, p) - day_loss(y, p_base) for p in probs]
    d = np.mean(loss, axis=0)
    auc_base, psi_base = auc_influence(y, p_base)
    seeds = [auc_influence(y, p) for p in probs]
    psi = np.mean([s[1] for s in seeds], axis=0) - psi_base
    auc_seeds = np.asarray([s[0] for s in seeds]) - auc_base
    out = {"auc_diff": hac_interval(by_date(psi, dates), float(auc_seeds.mean()), horizon,
                                    auc_seeds),
           "logloss_diff": hac_interval(by_date(d, dates), float(d.mean()), horizon,
                                        np.asarray([x.mean() for x in loss]))}
    out["delong_iid"] = delong(y, np.mean(probs, axis=0), p_base)
    out["method"] = HAC_RULE + "; DeLong's test assumes independent days"
    return out


def interval_for(y, probs: list[np.ndarray], baseline_p: dict[str, np.ndarray], horizon: int,
                 resamples: int, dates: np.ndarray | None = None) -> dict:
    """Block length for a cell: from the labels, the configuration's per-day log loss (seed-mean
    probabilities) and its per-day log-loss difference to every baseline but the prior."""
    p = np.mean([np.asarray(q) for q in probs], axis=0)
    series = [y.astype(float), day_loss(y, p)] + [day_loss(y, p) - day_loss(y, b)
                                                  for k, b in baseline_p.items() if k != "prior"]
    return dict(block_length(horizon, [by_date(s, dates) for s in series]), resamples=resamples,
                unit="date (every asset of the date)" if dates is not None else "day")


def comparisons(y, probs: list[np.ndarray], baseline_p: dict[str, np.ndarray], names,
                horizon: int, dates: np.ndarray | None = None) -> dict:
    """:func:`compare` against each named baseline."""
    return {k: compare(y, probs, np.asarray(baseline_p[k]), horizon, dates) for k in names}


def test_probabilities(model, splits) -> np.ndarray:
    """The selected model's probabilities on the test block: the one place the test is read."""
    X = torch.as_tensor(splits.test.X, device=next(model.parameters()).device)
    return sigmoid(predict_logits(model, X).cpu())


def seed_means(vals: list[dict], keys=("logloss", "auc", "skill", "skill_own")) -> dict:
    """Mean over seeds of each metric that every seed has."""
    return {k: float(np.mean([v[k] for v in vals])) for k in keys
            if all(v.get(k) is not None for v in vals)}


def train_and_score(cfg: SweepConfig, folds: list[Splits], arch, params: dict,
                    group: list[int], threads: int | None) -> tuple[dict, dict, dict]:
    """Train ``group``'s seeds (together) on every fold and score each fold's test block: per
    seed the test probabilities in date order and its record (validation, best epoch, curve of
    the first fold, whose blocks are the search's; seconds and compute summed over folds, each
    fold's own in ``folds``); and the architecture's record."""
    out = {seed: {"p": [], "folds": []} for seed in group}
    for k, sp in enumerate(folds):
        built = [build(cfg, sp, arch, params, seed) for seed in group]
        models = [m for m, _ in built]
        results = fit_many(cfg, sp, models, params, group, threads)
        if k == 0:
            arch_rec = arch_record(arch, built[0][1], models[0])
        for seed, model, result in zip(group, models, results, strict=True):
            out[seed]["p"].append(test_probabilities(model, sp))
            out[seed]["folds"].append({
                "val": result.val, "best_epoch": result.best_epoch, "seconds": result.seconds,
                "learning_curve": result.curve, "test_block": [str(sp.test.dates[0].date()),
                                                               str(sp.test.dates[-1].date())],
                "compute": compute_record(built[0][1], len(sp.train.y), len(result.curve),
                                          result.seconds / len(group), passes_per_epoch(sp),
                                          cfg.train.epoch_windows)})
    scores = {}
    for seed, r in out.items():
        first = r["folds"][0]
        compute = dict(first["compute"])
        for key in ("windows_seen", "tokens_seen", "train_flops", "wall_s"):
            compute[key] = sum(f["compute"][key] for f in r["folds"])
        record = {"val": first["val"], "best_epoch": first["best_epoch"],
                  "seconds": sum(f["seconds"] for f in r["folds"]),
                  "compute": compute, "learning_curve": first["learning_curve"]}
        if len(folds) > 1:
            record["folds"] = [{k: v for k, v in f.items() if k != "learning_curve"}
                               for f in r["folds"]]
        scores[seed] = {"p": np.concatenate(r["p"]), "record": record}
    return scores, *arch_rec


def pooled_stats(splits: Splits, folds: list[Splits]) -> dict:
    """The split's statistics; with rolling-origin folds the test entry describes every fold's
    test days together and each fold's blocks are listed."""
    out = splits.stats.to_dict()
    if len(folds) > 1 or folds[0] is not splits:
        ys = [f.test.y for f in folds]
        out["test"] = dict(out["test"], n_windows=int(sum(len(y) for y in ys)),
                           positive_rate=float(np.concatenate(ys).mean()),
                           block_start=folds[0].stats.test.block_start,
                           block_end=folds[-1].stats.test.block_end)
        out["folds"] = [f.stats.to_dict() for f in folds]
    return out


def run_final(cell: Cell, cfg: SweepConfig, threads: int | None = None) -> dict:
    """Re-train the cell's validation choice with new seeds and evaluate it on the test block
    with block-bootstrap intervals; resumes seed by seed (``final.json``)."""
    path = cell.dir / "final.json"
    state = read_json(path) if path.exists() else {}
    study = optuna.load_study(study_name=cell.study_name, storage=open_storage(
        storage_url(cell.sweep), cfg.search.heartbeat_s, cfg.search.max_retry))
    chosen = validation_choice(study, cfg.final.top_k)
    if not chosen:
        raise RuntimeError(f"{cell.id}: no complete trial to evaluate")
    seeds = final_seeds(cfg)
    if state.get("seeds") != seeds:  # another seed list (or an older file): start again
        state = {}
    evaluated = [{"trial": t.number, "params": t.params, "val_objective": t.value}
                 for t in chosen]
    if state.get("evaluated") != evaluated:
        # the validation choice moved (more trials, say): configurations no longer chosen and
        # everything computed from the old best go; seeds of one still chosen are kept
        keep = {str(t.number) for t in chosen}
        state["configs"] = {n: e for n, e in state.get("configs", {}).items() if n in keep}
        state.pop("walk_forward", None)
    df, manifest, splits = cell_splits(cfg, cell)
    # rolling origin (split.fold_years): the test days of every fold in date order, each fold
    # scored by models trained before it; otherwise the one test block
    folds = test_folds(df, cfg.split, horizon=cell.horizon) if cfg.split.fold_years else [splits]
    y_test = np.concatenate([f.test.y for f in folds])
    base = float(np.average([f.train.y.mean() for f in folds],
                            weights=[len(f.test.y) for f in folds]))
    grid = {a.id: a for a in budget_grid(cell.budget, base_model(cfg, len(splits.columns)),
                                         cfg.grid)}
    counts = records.counts(study.get_trials(deepcopy=False))
    state.update({"cell": cell.as_dict(), "n_trials_searched": counts["finished"],
                  "effort": records.effort(study), "seeds": seeds,
                  "search_seed": cfg.train.seed,
                  "seeds_differ_from_search_seed": cfg.train.seed not in seeds,
                  "dataset": {"id": cfg.data.name, "sha256": manifest["sha256"],
                              "feature_set": manifest.get("feature_set")},
                  "split": pooled_stats(splits, folds), "complete": False,
                  "evaluated": evaluated, "final_settings": final_settings(cfg)})
    runs = state.setdefault("configs", {})
    scored: dict[int, list[int]] = {}  # seeds scored on the test block for the first time
    for rank, t in enumerate(chosen):
        entry = runs.setdefault(str(t.number), {"trial": t.number, "val_objective": t.value,
                                                "params": t.params, "seeds": {}})
        entry["rank"] = rank
        arch = grid[t.params["arch"]]
        todo = [s for s in seeds if str(s) not in entry["seeds"]]
        size = cfg.final.together or len(seeds)
        for group in (todo[i:i + size] for i in range(0, len(todo), size)):
            scores, entry["arch"], entry["n_params"] = train_and_score(cfg, folds, arch,
                                                                       t.params, group, threads)
            for seed, r in scores.items():
                scored.setdefault(t.number, []).append(seed)
                entry["seeds"][str(seed)] = {
                    "test": evaluate(y_test, r["p"], base), **r["record"],
                    "trained_together": len(group), "p_test": r["p"].tolist(),
                    "finished_at": time.time()}
            state["updated"] = now_iso()
            write_json(path, state)
        entry["val_mean"] = seed_means([s["val"] for s in entry["seeds"].values()])
    baselines_scored = "baselines" not in state
    if baselines_scored:
        parts = [cached_baselines(df, f, paths.BASELINE_CACHE, evaluate_test=True,
                                  seed=cfg.train.seed) for f in folds]
        state["baselines"] = {}
        for k, v in parts[0].items():  # fitted per fold on that fold's training block
            p = np.concatenate([np.asarray(b[k]["p_test"]) for b in parts])
            state["baselines"][k] = {"params": v["params"], "val": v["val"],
                                     "test": evaluate(y_test, p, base), "p_test": p.tolist(),
                                     "folds": len(parts)}
    probs = {n: [np.asarray(s["p_test"]) for s in e["seeds"].values()] for n, e in runs.items()}
    best = probs[str(chosen[0].number)]
    baseline_p = {k: v["p_test"] for k, v in state["baselines"].items()}
    dates = window_dates(splits)  # a panel counts by date
    interval = interval_for(y_test, best, baseline_p, cell.horizon, cfg.final.bootstrap, dates)
    state["interval"] = interval
    for n, entry in runs.items():
        entry["aggregate"] = aggregate(y_test, probs[n], base, cfg.final.bootstrap,
                                       interval["block_length"], dates=dates)
    state["comparisons"] = comparisons(y_test, best, baseline_p, BASELINES, cell.horizon,
                                       dates)
    if cfg.data.panel:
        state["per_asset"] = per_asset(y_test, best, baseline_p, splits, base, cell.horizon,
                                       compare)
    state["adequacy"] = adequacy(study, chosen[0], cfg, [
        s["best_epoch"] for s in runs[str(chosen[0].number)]["seeds"].values()])
    block = {"first": str(folds[0].test.dates.min().date()),
             "last": str(folds[-1].test.dates.max().date()), "windows": int(len(y_test)),
             "folds": len(folds)}
    ledger.record(cell.name, cell.id, block, [t.number for t in chosen], scored,
                  baselines_scored)
    state.pop("vs_logreg", None)
    state["y_test"] = y_test.astype(int).tolist()
    state["test_dates"] = [str(d.date()) for f in folds for d in f.test.dates]
    state["base_rate"] = base
    if cfg.final.walk_forward_folds > 0 and "walk_forward" not in state:
        folds = []
        for k, sp in enumerate(walk_forward(df, cfg.split, cfg.final.walk_forward_folds,
                                            horizon=cell.horizon)):
            model, _ = build(cfg, sp, grid[chosen[0].params["arch"]], chosen[0].params, seeds[0])
            fit(cfg, sp, model, chosen[0].params, seeds[0], threads)
            p = test_probabilities(model, sp)
            folds.append({"fold": k, "seed": seeds[0], "split": sp.stats.to_dict(),
                          "test": evaluate(sp.test.y, p, float(sp.train.y.mean()))})
        state["walk_forward"] = folds
        ledger.record(cell.name, cell.id, {"walk_forward_folds": len(folds)},
                      [chosen[0].number], {chosen[0].number: [seeds[0]] * len(folds)}, False)
    state["complete"] = True
    state["updated"] = now_iso()
    write_json(path, state)
    return state
