"""Final evaluation of a cell (SCIENCE rule 10): the selected configurations, re-trained with
several seeds (early stopping on validation), evaluated ONCE on the untouched test block, beside
baselines.

Selection uses only the study (validation); the test block is read here and nowhere in the search.
Results go to ``final.json`` in the cell folder after every seed, so an interrupted evaluation
resumes where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import optuna
import torch
from optuna.trial import TrialState

from . import dataset as ds
from . import paths
from .baselines import cached_baselines
from .config import SweepConfig
from .metrics import evaluate, fast_metrics, sigmoid
from .model import budget_grid
from .provenance import now_iso, read_json, write_json
from .search import Cell, arch_record, build, fit, open_storage, storage_url
from .splits import make_splits, walk_forward
from .stats import delong
from .trainer import predict_logits

METRICS = ("auc", "logloss", "skill", "brier", "precision", "recall", "f1", "spread")


def select(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
    return sorted(done, key=lambda t: sign * t.value)[:k]


def aggregate(y: np.ndarray, probs: list[np.ndarray], base: float, resamples: int,
              seed: int = 0) -> dict:
    """Mean and sd over seeds; bootstrap 95% intervals over test windows of the seed-mean."""
    per_seed = [evaluate(y, p, base) for p in probs]
    rng = np.random.default_rng(seed)
    boot = {k: [] for k in METRICS}
    for _ in range(resamples):
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) < 2:
            continue
        ms = [fast_metrics(y[idx], p[idx], base) for p in probs]
        for k in METRICS:
            boot[k].append(float(np.mean([m[k] for m in ms])))
    out = {}
    for key in METRICS:
        vals = [m[key] for m in per_seed if m[key] is not None]
        ci = np.percentile(boot[key], [2.5, 97.5]).tolist() if boot[key] else [None, None]
        out[key] = {"mean": float(np.mean(vals)) if vals else None,
                    "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
                    "ci95": ci, "n_seeds": len(vals), "n_resamples": len(boot[key])}
    out["collapsed_any"] = any(m["collapsed"] for m in per_seed)
    return out


def test_probabilities(model, splits) -> np.ndarray:
    """The selected model's probabilities on the test block: the one place the test is read."""
    X = torch.as_tensor(splits.test.X, device=next(model.parameters()).device)
    return sigmoid(predict_logits(model, X).cpu())


def run_final(cell: Cell, cfg: SweepConfig, threads: int | None = None) -> dict:
    path = cell.dir / "final.json"
    state = read_json(path) if path.exists() else {}
    study = optuna.load_study(study_name=cell.study_name, storage=open_storage(
        storage_url(cell.sweep), cfg.search.heartbeat_s, cfg.search.max_retry))
    chosen = select(study, cfg.final.top_k)
    if not chosen:
        raise RuntimeError(f"{cell.id}: no complete trial to evaluate")
    df, manifest = ds.load_dataset(cfg.data.name)
    splits = make_splits(df, cfg.split, horizon=cell.horizon)
    base = float(splits.train.y.mean())
    y_test = splits.test.y
    grid = {a.id: a for a in budget_grid(cell.budget, replace(
        cfg.model, context_len=cfg.split.context_len, n_features=len(splits.columns)), cfg.grid)}
    state.update({"cell": cell.as_dict(), "n_trials_searched": sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        for t in study.get_trials(deepcopy=False)), "seeds": cfg.final.seeds,
        "dataset": {"id": cfg.data.name, "sha256": manifest["sha256"]},
        "split": splits.stats.to_dict(), "complete": False})
    runs = state.setdefault("configs", {})
    for rank, t in enumerate(chosen):
        entry = runs.setdefault(str(t.number), {"rank": rank, "trial": t.number,
                                                "val_objective": t.value, "params": t.params,
                                                "seeds": {}})
        arch = grid[t.params["arch"]]
        for seed in range(cfg.final.seeds):
            if str(seed) in entry["seeds"]:
                continue
            model, mcfg = build(cfg, splits, arch, t.params, seed)
            result = fit(cfg, splits, model, t.params, seed, threads)
            p = test_probabilities(model, splits)
            entry["arch"], entry["n_params"] = arch_record(arch, mcfg, model)
            entry["seeds"][str(seed)] = {"test": evaluate(y_test, p, base), "val": result.val,
                                         "best_epoch": result.best_epoch,
                                         "seconds": result.seconds, "p_test": p.tolist(),
                                         "finished_at": time.time(),
                                         "learning_curve": result.curve}
            state["updated"] = now_iso()
            write_json(path, state)
        probs = [np.asarray(s["p_test"]) for s in entry["seeds"].values()]
        entry["aggregate"] = aggregate(y_test, probs, base, cfg.final.bootstrap)
    if "baselines" not in state:
        b = cached_baselines(df, splits, paths.BASELINE_CACHE, evaluate_test=True,
                             seed=cfg.train.seed)
        state["baselines"] = {k: {"params": v["params"], "val": v["val"], "test": v["test"],
                                  "p_test": np.asarray(v["p_test"]).tolist()} for k, v in b.items()}
    best = runs[str(chosen[0].number)]
    p_model = np.mean([np.asarray(s["p_test"]) for s in best["seeds"].values()], axis=0)
    p_lr = np.asarray(state["baselines"]["logreg"]["p_test"])
    state["vs_logreg"] = dict(delong(y_test, p_model, p_lr), method="DeLong, seed-mean "
                              "probabilities of the best configuration vs logistic regression")
    state["y_test"] = y_test.astype(int).tolist()
    state["base_rate"] = base
    if cfg.final.walk_forward_folds > 0 and "walk_forward" not in state:
        folds = []
        for k, sp in enumerate(walk_forward(df, cfg.split, cfg.final.walk_forward_folds,
                                            horizon=cell.horizon)):
            model, _ = build(cfg, sp, grid[chosen[0].params["arch"]], chosen[0].params, 0)
            fit(cfg, sp, model, chosen[0].params, 0, threads)
            p = test_probabilities(model, sp)
            folds.append({"fold": k, "split": sp.stats.to_dict(),
                          "test": evaluate(sp.test.y, p, float(sp.train.y.mean()))})
        state["walk_forward"] = folds
    state["complete"] = True
    state["updated"] = now_iso()
    write_json(path, state)
    return state
