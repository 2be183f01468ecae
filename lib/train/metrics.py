"""Evaluation metrics from scikit-learn, and the one place logits become probabilities.

Every evaluation records the base-rate log loss and the skill 1 - logloss/logloss_base (research
rule 11) and the spread of predicted probabilities with a collapse flag (rule 12). Skill comes
twice (rule 20): against the training block's positive rate (``skill``: what a forecaster knew in
advance) and against the evaluated block's own rate (``skill_own``: drift-aware). When the positive
rate drifts between blocks, a model can earn ``skill`` merely by matching the new rate;
``skill_own`` removes that, so horizons are compared on it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn import metrics as skm


def sigmoid(logits: torch.Tensor | np.ndarray) -> np.ndarray:
    """The single sigmoid of the workbench (research rule 8): logits -> probabilities."""
    t = torch.as_tensor(logits, dtype=torch.float64)
    return torch.sigmoid(t).numpy()


def base_logloss(y: np.ndarray, base_rate: float) -> float:
    """Log loss of always predicting ``base_rate`` (the training positive rate)."""
    p = float(np.clip(base_rate, 1e-7, 1 - 1e-7))
    return float(skm.log_loss(y, np.full(len(y), p), labels=[0, 1]))


def evaluate(y: np.ndarray, p: np.ndarray, base_rate: float, collapse_spread: float = 0.02) -> dict:
    """Metrics of probabilities ``p`` for labels ``y``; ``base_rate``: training positive rate."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    if not np.isfinite(p).all():
        raise ValueError("probabilities contain NaN or infinite values")
    pred = (p >= 0.5).astype(int)
    ll = float(skm.log_loss(y, p, labels=[0, 1]))
    ll0 = base_logloss(y, base_rate)
    ll_own = base_logloss(y, float(y.mean()))
    both = len(np.unique(y)) == 2
    p5, p50, p95 = (float(v) for v in np.percentile(p, [5, 50, 95]))
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {
        "n": int(len(y)), "positive_rate": float(y.mean()), "base_rate": float(base_rate),
        "logloss": ll, "logloss_base": ll0, "skill": 1 - ll / ll0 if ll0 > 0 else None,
        "logloss_base_own": ll_own, "skill_own": 1 - ll / ll_own if ll_own > 0 else None,
        "auc": float(skm.roc_auc_score(y, p)) if both else None,
        "brier": float(skm.brier_score_loss(y, p)),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "p5": p5, "p50": p50, "p95": p95, "spread": p95 - p5,
        "collapsed": bool(p95 - p5 < collapse_spread),
    }


def _sorted_ranks(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``p`` sorted, and the average rank (1-based, ties share their mean rank) of every element
    of ``p`` in its original order: ``scipy.stats.rankdata``'s 'average' method without its
    input handling, which cost half of each bootstrap replicate."""
    n = len(p)
    order = np.argsort(p, kind="mergesort")
    ps = p[order]
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(ps[1:], ps[:-1], out=first[1:])
    group = np.cumsum(first) - 1  # tie group of each sorted element
    bounds = np.append(np.flatnonzero(first), n)  # where each tie group starts, and n
    ranks = np.empty(n)
    ranks[order] = 0.5 * (bounds[group] + bounds[group + 1] + 1)
    return ps, ranks


def _percentile(ps: np.ndarray, q: float) -> float:
    """``np.percentile(p, q)`` (linear method) from the sorted ``ps``, with numpy's own
    interpolation formula, so both give the same number."""
    pos = q / 100 * (len(ps) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(ps) - 1)
    t = pos - lo
    a, b = ps[lo], ps[hi]
    return float(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)


def fast_metrics(y: np.ndarray, p: np.ndarray, base_rate: float) -> dict:
    """AUC, log loss, both skills, Brier, precision, recall, F1 and spread exactly as
    :func:`evaluate` computes them, in plain numpy, for bootstrap loops: scikit-learn's input
    validation made each call ~20 ms, so a 300-resample interval cost 30 s per cell
    (bench/NOTES.md sections 7 and 11). One sort gives the AUC's ranks and the spread's
    percentiles. A test holds the two functions equal."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    pos = y == 1
    ll = float(-np.mean(np.where(pos, np.log(p), np.log1p(-p))))
    b = float(np.clip(base_rate, 1e-7, 1 - 1e-7))
    ll0 = float(-np.mean(np.where(pos, math.log(b), math.log1p(-b))))
    n_pos = int(pos.sum())
    own = min(max(n_pos / len(y), 1e-7), 1 - 1e-7)
    ll_own = -(n_pos * math.log(own) + (len(y) - n_pos) * math.log1p(-own)) / len(y)
    n_neg = len(y) - n_pos
    ps, ranks = _sorted_ranks(p)
    auc = None
    if n_pos and n_neg:  # Mann-Whitney U with average ranks for ties = the ROC area
        auc = float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    pred = p >= 0.5
    tp = int(np.count_nonzero(pred & pos))
    fp = int(np.count_nonzero(pred)) - tp
    fn = n_pos - tp
    return {"auc": auc, "logloss": ll, "skill": 1 - ll / ll0 if ll0 > 0 else None,
            "skill_own": 1 - ll / ll_own if ll_own > 0 else None,
            "brier": float(np.mean((p - y) ** 2)),
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / n_pos if n_pos else 0.0,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
            "spread": _percentile(ps, 95) - _percentile(ps, 5)}


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of a ROC AUC (Hanley & McNeil, 1982)."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg)
    return math.sqrt(max(var, 0.0))
