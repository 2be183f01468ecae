"""Statistics for the final evaluation: DeLong's test for two AUCs on the same labels.

References: DeLong, DeLong & Clarke-Pearson (1988), Biometrics 44:837; the fast algorithm of
Sun & Xu (2014), IEEE Signal Processing Letters 21:1389.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def _midrank(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def delong(y: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> dict:
    """Paired DeLong test of AUC(p1) = AUC(p2) on the same labels; two-sided p-value."""
    y = np.asarray(y).astype(bool)
    pos, neg = np.asarray([p1, p2])[:, y], np.asarray([p1, p2])[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    aucs, v10, v01 = [], [], []
    for k in range(2):
        tx, ty = _midrank(pos[k]), _midrank(neg[k])
        tz = _midrank(np.concatenate([pos[k], neg[k]]))
        aucs.append(tz[:m].sum() / (m * n) - (m + 1) / (2 * n))
        v01.append((tz[:m] - tx) / n)  # structural components of positives
        v10.append(1 - (tz[m:] - ty) / m)  # of negatives
    s = np.cov(np.asarray(v01)) / m + np.cov(np.asarray(v10)) / n
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    diff = aucs[0] - aucs[1]
    z = diff / np.sqrt(var) if var > 0 else 0.0
    return {"auc_1": float(aucs[0]), "auc_2": float(aucs[1]), "diff": float(diff),
            "z": float(z), "p_value": float(2 * stats.norm.sf(abs(z)))}
