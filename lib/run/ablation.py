"""Input ablation (``make ablation SWEEP=inputs``): input normalisations x feature sets, measured.

For every feature set, normalisation, budget and horizon of the sweep file's ``ablation``
section, the budget's closest architecture is trained with the same settings (the sweep file's
defaults) and the final evaluation's new seeds, early-stopped on validation, and scored on the
VALIDATION block with the final evaluation's statistics (hierarchical block-bootstrap intervals,
calibrated paired comparisons with logistic regression and gradient boosting fitted on the SAME
feature set). No test label is read and no test metric is computed or stored (research rule 26):
the ablation is an exploration, and its validation numbers are optimistic (early stopping saw the
same block). The choice is the (feature set, normalisation) with the highest drift-aware
validation skill, averaged over budgets and horizons. Each configuration's results are
written to ``outputs/sweeps/<sweep>/ablation/<feature set>-<norm>-<budget>-h<horizon>.json`` when
it finishes, so an interrupted ablation resumes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..core import paths
from ..core.config import ConfigError, SweepConfig
from ..core.provenance import now_iso, read_json, write_json
from ..data import dataset as ds
from ..search.sweepfile import load_sweep


def dataset_config(cfg: SweepConfig, feature_set: str):
    """The data section for one feature set: the sweep's data with that set, named after it."""
    return replace(cfg.data, feature_set=feature_set, name=f"{cfg.data.name}_{feature_set}")


def variant(cfg: SweepConfig, feature_set: str, norm: str) -> SweepConfig:
    """The sweep with one ablation variant's feature set (and dataset) and input normalisation."""
    return replace(cfg, data=dataset_config(cfg, feature_set), model=replace(cfg.model, norm=norm))


def configurations(cfg: SweepConfig) -> list[tuple[str, str, str, int]]:
    """Every (feature set, norm, budget, horizon) the ablation crosses."""
    a = cfg.ablation
    return [(fs, norm, b, h) for fs in a.feature_sets for norm in a.norms
            for b in (a.budgets or cfg.budgets) for h in cfg.horizons]


def folder(name: str) -> Path:
    """Where the ablation's records live: outputs/sweeps/<sweep>/ablation/."""
    return paths.SWEEPS / name / "ablation"


def record_path(name: str, fs: str, norm: str, budget: str, h: int) -> Path:
    """The record file of one ablation configuration."""
    return folder(name) / f"{fs}-{norm}-{budget}-h{h}.json"


def run_one(sweep: str, fs: str, norm: str, budget: str, h: int, root: str,
            threads: int = 1) -> str:
    """Train and evaluate one configuration with every final seed; returns its record path."""
    import torch

    from ..analysis.final import aggregate, comparisons, final_seeds, interval_for, seed_means
    from ..data.splits import make_splits
    from ..model.budget import base_model, budget_grid
    from ..search.study import default_params
    from ..train.baselines import cached_baselines
    from ..train.metrics import sigmoid
    from ..train.trainer import predict_logits
    from ..train.trial import arch_record, build, fit

    paths.set_root(root)
    torch.set_num_threads(threads)
    cfg = variant(load_sweep(sweep), fs, norm)
    name = Path(sweep).stem
    path = record_path(name, fs, norm, budget, h)
    if path.exists() and read_json(path).get("complete"):
        return str(path)
    df, manifest = ds.load_dataset(cfg.data.name)
    splits = make_splits(df, cfg.split, horizon=h)
    base = float(splits.train.y.mean())
    arch = budget_grid(budget, base_model(cfg, len(splits.columns)), cfg.grid)[0]
    params = default_params(cfg, arch)
    state = {"feature_set": fs, "norm": norm, "budget": budget, "horizon": h,
             "params": params, "dataset": {"id": cfg.data.name, "sha256": manifest["sha256"]},
             # the test block's statistics too stay unread: an exploration sees train and val
             "split": {k: v for k, v in splits.stats.to_dict().items() if k != "test"},
             "seeds": {}, "complete": False}
    for seed in final_seeds(cfg):
        model, mcfg = build(cfg, splits, arch, params, seed)
        result = fit(cfg, splits, model, params, seed, threads)
        X_val = torch.as_tensor(splits.val.X)
        state["arch"], state["n_params"] = arch_record(arch, mcfg, model)
        state["seeds"][str(seed)] = {
            "val": result.val, "best_epoch": result.best_epoch, "seconds": result.seconds,
            "p_val": sigmoid(predict_logits(model, X_val)).tolist()}
    y = splits.val.y
    b = cached_baselines(df, splits, paths.BASELINE_CACHE, seed=cfg.train.seed)
    probs = [np.asarray(s["p_val"]) for s in state["seeds"].values()]
    baseline_p = {k: v["p_val"] for k, v in b.items()}
    iv = interval_for(y, probs, baseline_p, h, cfg.final.bootstrap)
    state.update({
        "interval": iv, "aggregate": aggregate(y, probs, base, cfg.final.bootstrap,
                                               iv["block_length"]),
        "block": "val", "baselines": {k: {"val": v["val"]} for k, v in b.items()},
        "comparisons": comparisons(y, probs, baseline_p, ("logreg", "hgb"), h),
        "val_mean": seed_means([s["val"] for s in state["seeds"].values()]),
        "complete": True, "updated": now_iso()})
    write_json(path, state)
    return str(path)


def prepare(cfg: SweepConfig) -> None:
    """Build (or check) the dataset of every feature set before any training."""
    for fs in cfg.ablation.feature_sets:
        dc = dataset_config(cfg, fs)
        try:
            ds.check_request(dc)
        except ds.DatasetMissing:
            ds.build_dataset(dc)


def run(sweep: str, jobs: int | None = None, log=print) -> pd.DataFrame:
    """Every configuration not yet recorded, ``jobs`` at a time (one thread each); returns the
    table."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    cfg = load_sweep(sweep)
    if not cfg.ablation.feature_sets or not cfg.ablation.norms:
        raise ConfigError(f"{sweep}: the ablation section needs feature_sets and norms")
    name = Path(sweep).stem
    if cfg.data_sizes:
        log("note: the ablation trains every configuration on the whole history; the sweep's "
            "data_sizes are not used")
    prepare(cfg)
    todo = [c for c in configurations(cfg)
            if not (record_path(name, *c).exists() and read_json(record_path(name, *c))
                    .get("complete"))]
    jobs = max(1, jobs or cfg.jobs)
    log(f"ablation '{name}': {len(todo)} of {len(configurations(cfg))} configurations to run, "
        f"{jobs} at a time")
    t0 = time.time()
    if todo:
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(run_one, sweep, *c, str(paths.ROOT)): c for c in todo}
            for f in as_completed(futures):
                f.result()
                log(f"  {'-'.join(map(str, futures[f]))}: done ({time.time() - t0:.0f} s)")
    return table(sweep)


def _ci(v) -> list:
    return v if v else [None, None]


def table(sweep: str) -> pd.DataFrame:
    """One row per recorded configuration: validation numbers with intervals, beside the
    baselines fitted on the same feature set (no test number exists)."""
    cfg = load_sweep(sweep)
    name = Path(sweep).stem
    rows = []
    for fs, norm, budget, h in configurations(cfg):
        p = record_path(name, fs, norm, budget, h)
        if not p.exists():
            continue
        s = read_json(p)
        if not s.get("complete") or s.get("block") != "val":
            continue  # an unfinished record, or one from before the ablation was validation-only
        agg, bl, cmp_ = s["aggregate"], s["baselines"], s["comparisons"]
        rows.append({
            "feature_set": fs, "norm": norm, "budget": budget, "horizon": h,
            "arch": s["arch"]["id"], "n_params": s["n_params"]["measured"],
            "seeds": len(s["seeds"]), "val_logloss": s["val_mean"]["logloss"],
            "val_auc": s["val_mean"]["auc"], "val_skill_own": s["val_mean"]["skill_own"],
            "val_auc_ci": _ci(agg["auc"]["ci95"]), "val_skill_ci": _ci(agg["skill"]["ci95"]),
            "val_skill_own_ci": _ci(agg["skill_own"]["ci95"]),
            "logreg_val_skill_own": bl["logreg"]["val"].get("skill_own"),
            "logreg_val_auc": bl["logreg"]["val"]["auc"],
            "hgb_val_auc": bl["hgb"]["val"]["auc"],
            "hgb_val_skill_own": bl["hgb"]["val"].get("skill_own"),
            "auc_vs_logreg": cmp_["logreg"]["auc_diff"]["estimate"],
            "auc_vs_logreg_ci": _ci(cmp_["logreg"]["auc_diff"]["ci95"]),
            "block_length": s["interval"]["block_length"]})
    return pd.DataFrame(rows)


def choose(t: pd.DataFrame) -> dict:
    """The (feature set, normalisation) with the highest drift-aware VALIDATION skill, averaged
    over budgets and horizons; the ranking and per-horizon winners for context. No test number
    enters."""
    if not len(t):
        return {"feature_set": None, "norm": None, "ranking": []}
    mean = t.groupby(["feature_set", "norm"])["val_skill_own"].mean().sort_values(
        ascending=False)
    fs, norm = mean.index[0]
    per_h = {int(h): "/".join(g.groupby(["feature_set", "norm"])["val_skill_own"].mean()
                             .idxmax()) for h, g in t.groupby("horizon")}
    return {"feature_set": fs, "norm": norm,
            "rule": "highest mean drift-aware validation skill over budgets and horizons",
            "ranking": [{"feature_set": f, "norm": n, "val_skill_own": float(v)}
                        for (f, n), v in mean.items()],
            "best_per_horizon": per_h}


def gap_to_logreg(t: pd.DataFrame, choice: dict) -> pd.DataFrame:
    """Validation AUC and drift-aware skill of the chosen inputs beside logistic regression's on
    the same feature set, per horizon (mean over budgets), and the same for revin on a25 (the
    inputs before this ablation)."""
    rows = []
    for label, fs, norm in (("chosen", choice["feature_set"], choice["norm"]),
                            ("before (a25, revin)", "a25", "revin")):
        g = t[(t["feature_set"] == fs) & (t["norm"] == norm)]
        for h, gh in g.groupby("horizon"):
            rows.append({"inputs": f"{label}: {fs}, {norm}", "horizon": h,
                         "val_auc": gh["val_auc"].mean(),
                         "logreg_val_auc": gh["logreg_val_auc"].mean(),
                         "auc_gap": (gh["val_auc"] - gh["logreg_val_auc"]).mean(),
                         "val_skill_own": gh["val_skill_own"].mean(),
                         "logreg_val_skill_own": gh["logreg_val_skill_own"].mean(),
                         "skill_gap": (gh["val_skill_own"] - gh["logreg_val_skill_own"]).mean()})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    """``make ablation``: run what is missing, then execute and render notebook 05."""
    from . import notebook

    p = argparse.ArgumentParser(prog="python -m lib.run.ablation",
                                description=__doc__.splitlines()[0])
    p.add_argument("--sweep", default="inputs")
    p.add_argument("--jobs", type=int, default=None)
    a = p.parse_args(argv)
    name = Path(a.sweep).stem
    try:
        load_sweep(a.sweep)
        out = paths.SWEEPS / name / "05_input_ablation.ipynb"
        os.environ["OMP_NUM_THREADS"] = "1"  # the spawned workers train with one thread each
        notebook.execute(paths.NOTEBOOKS / "05_input_ablation.ipynb", out,
                         {"sweep": a.sweep, "jobs": a.jobs or 0})
        html = notebook.render_html(out, paths.REPORTS / name / "ablation.html")
        from ..reports.index import write_index

        print(f"report: {paths.rel(html)}; index: {paths.rel(write_index())}")
    except (ConfigError, ds.DataError) as e:
        print(f"error: {e}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
