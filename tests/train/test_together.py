"""Rule 14: K models trained together (one stacked computation) give each model exactly what it
would get trained alone: the same curve, stopping epoch, restored weights and metrics."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from lib.core.config import ModelConfig, TrainConfig
from lib.model.ensemble import stack, unstack
from lib.model.model import PatchTST, fit_input_stats
from lib.train.trainer import predict_logits, train, train_many

CFG = ModelConfig(context_len=16, n_features=3, patch_len=4, stride=4, d_model=16, n_heads=2,
                  n_layers=2, d_ff=32, dropout=0.2)
TC = TrainConfig(max_epochs=7, batch_size=32, patience=1, lr=3e-3, threads=1, grad_clip=0.5,
                 weight_decay=0.05, warmup_frac=0.2)
SEEDS = [11, 12, 13, 14]


def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 16, 3)).astype(np.float32)
    y = (X[:, -1, 0] + rng.normal(scale=1.5, size=200) > 0).astype(np.float32)
    Xv = rng.normal(size=(96, 16, 3)).astype(np.float32)
    yv = (Xv[:, -1, 0] + rng.normal(scale=1.5, size=96) > 0).astype(np.float32)
    return X, y, Xv, yv


def models(cfg, X, seeds=SEEDS):
    """One ``PatchTST(cfg)`` per seed, initialised with it, with ``X``'s training statistics."""
    out = []
    for s in seeds:
        torch.manual_seed(s)
        m = PatchTST(cfg)
        fit_input_stats(m, X)
        out.append(m)
    return out


@pytest.mark.parametrize("norm,tokenizer", [("global", "mixed"), ("revin", "independent"),
                                            ("revin_stats", "mixed")])
def test_models_trained_together_equal_models_trained_alone(norm, tokenizer):
    cfg = replace(CFG, norm=norm, tokenizer=tokenizer)
    X, y, Xv, yv = data()
    alone_models = models(cfg, X)
    alone = [train(m, X, y, Xv, yv, replace(TC, seed=s))
             for m, s in zip(alone_models, SEEDS, strict=True)]
    together_models = models(cfg, X)
    together = train_many(together_models, X, y, Xv, yv, TC, SEEDS)
    # the case must exercise per-model early stopping (models leave the stack at different epochs)
    assert len({len(r.curve) for r in alone}) > 1, [len(r.curve) for r in alone]
    for a, t, ma, mt in zip(alone, together, alone_models, together_models, strict=True):
        assert t.best_epoch == a.best_epoch and t.stop_reason == a.stop_reason
        assert len(t.curve) == len(a.curve)
        for ra, rt in zip(a.curve, t.curve, strict=True):
            assert rt["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-4, abs=1e-5)
            assert rt["val_loss"] == pytest.approx(ra["val_loss"], rel=1e-4, abs=1e-5)
        for key in ("logloss", "auc", "brier"):
            assert t.val[key] == pytest.approx(a.val[key], rel=1e-4, abs=1e-5), key
        sa, st = ma.state_dict(), mt.state_dict()
        for name in sa:
            a_, t_ = sa[name], st[name]
            if name.endswith("qkv.bias"):  # the key bias shifts every score of a query alike,
                # softmax cancels it, its gradient is rounding noise that AdamW scales up: skip it
                d = CFG.d_model
                a_, t_ = torch.cat([a_[:d], a_[2 * d:]]), torch.cat([t_[:d], t_[2 * d:]])
            torch.testing.assert_close(t_, a_, rtol=1e-4, atol=1e-5, msg=name)
        assert t.resolved["seed"] == a.resolved["seed"] and t.resolved["models_together"] == 4


def test_stacked_forward_is_each_models_forward():
    X, *_ = data()
    ms = models(replace(CFG, norm="revin_stats", tokenizer="independent"), X)
    st = stack(ms)
    logits = predict_logits(st, torch.as_tensor(X[:50]))
    assert logits.shape == (4, 50)
    for k, m in enumerate(ms):
        torch.testing.assert_close(logits[k], predict_logits(m, torch.as_tensor(X[:50])),
                                   rtol=1e-5, atol=1e-5)
        assert unstack(st, k).keys() == m.state_dict().keys()


def test_models_with_different_training_statistics_are_refused():
    X, *_ = data()
    a, b = models(replace(CFG, norm="global"), X)[:2]
    fit_input_stats(b, X[:50])
    with pytest.raises(ValueError, match="equal buffers"):
        stack([a, b])

