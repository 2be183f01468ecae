"""Rules 2, 9, 13, 14: settings reach training, best weights restored, divergence, seeds."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from lib.core.config import ModelConfig, TrainConfig
from lib.model.model import PatchTST
from lib.train.trainer import DivergenceError, predict_logits, train

CFG = ModelConfig(context_len=16, n_features=3, patch_len=4, stride=4, d_model=16, n_heads=2,
                  n_layers=1, d_ff=32, dropout=0.1)
TC = TrainConfig(max_epochs=3, batch_size=32, patience=10, lr=3e-3, threads=1)


def toy(n=256, seed=0, signal=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 16, 3)).astype(np.float32)
    y = (X[:, -1, 0] > 0).astype(np.float32) if signal else rng.integers(0, 2, n).astype(
        np.float32)
    return X, y


def fit(cfg=CFG, tc=TC, seed_model=0, **kw):
    X, y = toy()
    Xv, yv = toy(128, seed=1)
    torch.manual_seed(seed_model)
    model = PatchTST(cfg)
    return model, train(model, X, y, Xv, yv, tc, **kw)


def test_tiny_model_overfits_tiny_batch():
    X, y = toy(32)
    model = PatchTST(replace(CFG, dropout=0.0))
    res = train(model, X, y, X, y, replace(TC, max_epochs=150, batch_size=32, lr=1e-2,
                                          warmup_frac=0.0, weight_decay=0.0))
    assert res.val["logloss"] < 0.1 and res.val["auc"] > 0.99


def test_best_epoch_weights_restored():
    """Rule 9, in a case where the best epoch is NOT the last: the validation labels are the
    opposite of the training rule, so every epoch of learning makes validation worse. The model
    that comes back must be the best epoch's (its weights and its validation loss), not the
    last one's."""
    X, y = toy()
    Xv, yv = toy(128, seed=1)
    yv = 1 - (Xv[:, -1, 0] > 0).astype(np.float32)
    snapshots = {}
    torch.manual_seed(0)
    model = PatchTST(CFG)

    def keep(epoch, row):
        snapshots[epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    res = train(model, X, y, Xv, yv, replace(TC, max_epochs=5, lr=1e-2, patience=10),
                callback=keep)
    assert res.best_epoch < len(res.curve) == 5
    best_row, last_row = res.curve[res.best_epoch - 1], res.curve[-1]
    assert last_row["val_loss"] > best_row["val_loss"] + 1e-3
    assert res.best_objective == pytest.approx(best_row["val_loss"], rel=1e-6)
    assert res.val["logloss"] == pytest.approx(best_row["val_loss"], rel=1e-6)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, snapshots[res.best_epoch][k])
    p = torch.sigmoid(predict_logits(model, torch.as_tensor(Xv)).double()).numpy()
    from lib.train.metrics import evaluate

    assert evaluate(yv, p, float(y.mean()))["logloss"] == pytest.approx(best_row["val_loss"],
                                                                         rel=1e-5)


def test_early_stopping_patience():
    _, res = fit(tc=replace(TC, max_epochs=40, patience=2, lr=5e-2))
    assert res.stop_reason == "early_stopping"
    assert len(res.curve) == res.best_epoch + 2


def test_divergence_error():
    class Boom(PatchTST):
        def forward(self, x):
            return super().forward(x) * float("nan")

    X, y = toy()
    with pytest.raises(DivergenceError, match="non-finite in epoch 1") as e:
        train(Boom(CFG), X, y, X, y, TC)
    assert e.value.epoch == 1


def test_settings_read_back_from_live_objects():
    tc = replace(TC, lr=2e-3, weight_decay=0.05, warmup_frac=0.25, batch_size=64, max_epochs=2)
    _, res = fit(cfg=replace(CFG, dropout=0.2), tc=tc)
    r = res.resolved
    assert r["lr"] == 2e-3 and r["weight_decay"] == 0.05 and r["batch_size"] == 64
    assert r["dropout"] == [0.2] and r["max_epochs"] == 2
    assert r["warmup_steps"] == round(0.25 * r["total_steps"]) and r["total_steps"] == 2 * 4


@pytest.mark.parametrize("field, a, b", [
    ("lr", 1e-3, 5e-3), ("weight_decay", 0.0, 0.5), ("warmup_frac", 0.0, 0.5),
    ("batch_size", 32, 64), ("max_epochs", 2, 3), ("dropout", 0.0, 0.4)])
def test_every_searched_setting_changes_training(field, a, b):
    """Rule 2: each hyperparameter the search samples demonstrably changes the trained weights."""
    outs = []
    for v in (a, b):
        cfg, tc = CFG, TC
        if field == "dropout":
            cfg = replace(CFG, dropout=v)
        else:
            tc = replace(TC, **{field: v})
        model, _ = fit(cfg, tc)
        outs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert not torch.allclose(outs[0], outs[1]), f"{field} did not change training"


def test_seeded_runs_reproduce():
    a = fit()[1]
    b = fit()[1]
    assert [r["val_loss"] for r in a.curve] == [r["val_loss"] for r in b.curve]
    c = fit(tc=replace(TC, seed=1), seed_model=1)[1]
    assert [r["val_loss"] for r in a.curve] != [r["val_loss"] for r in c.curve]


def test_micro_batches_give_the_same_gradients():
    X, y = toy(64)
    grads = []
    for micro in (64, 16):
        torch.manual_seed(0)
        model = PatchTST(replace(CFG, dropout=0.0))
        loss_fn = torch.nn.BCEWithLogitsLoss()
        model.zero_grad()
        xt, yt = torch.as_tensor(X), torch.as_tensor(y)
        for i in range(0, 64, micro):
            (loss_fn(model(xt[i:i + micro]), yt[i:i + micro]) * micro / 64).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)
    # and through the trainer: accumulation reproduces the full-batch run
    runs = [fit(cfg=replace(CFG, dropout=0.0), tc=replace(TC, micro_batch_size=m))[1]
            for m in (None, 8)]
    np.testing.assert_allclose([r["val_loss"] for r in runs[0].curve],
                               [r["val_loss"] for r in runs[1].curve], rtol=1e-4)


def test_out_of_memory_halves_the_micro_batch():
    class Tight(PatchTST):
        def forward(self, x):
            if self.training and x.shape[0] > 8:
                raise torch.OutOfMemoryError("simulated: batch too large")
            return super().forward(x)

    X, y = toy(64)
    res = train(Tight(CFG), X, y, X, y, replace(TC, max_epochs=1, batch_size=32))
    assert res.resolved["micro_batch_size"] == 8 and res.oom_retries == 2
    assert res.resolved["batch_size"] == 32
    # each halving is recorded with where it happened
    assert [h["micro_batch"] for h in res.memory_plan["oom_halvings"]] == [16, 8]
    assert res.memory_plan["oom_halvings"][0] == {"epoch": 1, "step": 0, "micro_batch": 16}


def test_callback_sees_every_epoch_and_can_stop():
    seen = []
    _, res = fit(tc=replace(TC, max_epochs=5), callback=lambda e, m: seen.append(e) or e == 2)
    assert seen == [1, 2] and res.stop_reason == "callback"


def test_pos_weight_reaches_loss():
    _, res = fit(tc=replace(TC, pos_weight=3.0, max_epochs=1))
    assert res.resolved["pos_weight"] == 3.0


def test_predict_logits_are_unbounded():
    model, _ = fit()
    X, _ = toy(64)
    out = predict_logits(model, torch.as_tensor(X))
    assert out.shape == (64,) and (out < 0).any()


def test_micro_batch_is_chosen_from_the_memory_estimate(monkeypatch):
    """With little memory the trainer picks the largest micro-batch the estimate allows,
    accumulates to the requested batch and reproduces the full-batch run."""
    from lib.model.memory import memory_estimate
    from lib.train import trainer

    cfg = replace(CFG, dropout=0.0)
    full = fit(cfg=cfg, tc=replace(TC, micro_batch_size=None))[1]
    assert full.memory_plan["source"] == "estimate"  # plenty of memory here: the whole batch
    assert full.resolved["micro_batch_size"] == 32
    tight = memory_estimate(cfg, 8)["total"] / TC.memory_headroom + 1  # fits 8, not 16
    monkeypatch.setattr(trainer, "available_memory", lambda device: (tight, "test"))
    small = fit(cfg=cfg, tc=replace(TC, micro_batch_size=None))[1]
    assert small.resolved["micro_batch_size"] == 8 and small.resolved["batch_size"] == 32
    assert small.memory_plan["estimate_gb"] * 2**30 <= TC.memory_headroom * tight
    np.testing.assert_allclose([r["val_loss"] for r in full.curve],
                               [r["val_loss"] for r in small.curve], rtol=1e-4)
    # not even one sample fits: a clear error before any training
    monkeypatch.setattr(trainer, "available_memory", lambda device: (1000.0, "test"))
    with pytest.raises(MemoryError, match="needs .* GiB at micro-batch 1"):
        fit(cfg=cfg)


def test_compile_flag_trains_through_torch_compile():
    """torch.compile (aot_eager backend: the graph capture and autograd of the compiled path,
    without a C++ build) trains to the eager run's losses; an unknown backend is refused."""
    cfg = replace(CFG, dropout=0.0)
    tc = replace(TC, max_epochs=2)
    eager = fit(cfg=cfg, tc=tc)[1]
    comp = fit(cfg=cfg, tc=replace(tc, compile="aot_eager"))[1]
    assert comp.resolved["compile"] == "aot_eager"
    np.testing.assert_allclose([r["val_loss"] for r in eager.curve],
                               [r["val_loss"] for r in comp.curve], rtol=1e-4)
    with pytest.raises(ValueError, match="unknown compile backend 'turbo'"):
        fit(cfg=cfg, tc=replace(tc, compile="turbo"))


def test_an_epoch_of_epoch_windows_draws_a_fresh_sample():
    """train.epoch_windows: each epoch trains on that many windows, drawn anew (a panel's largest
    data level stays affordable and every level gets as many optimizer steps)."""
    seen: list[list[float]] = []

    class Counting(PatchTST):
        def forward(self, x):
            if self.training:
                seen[-1].extend(x[:, 0, 0].tolist())  # each toy window's first value is its id
            return super().forward(x)

    X, y = toy(256)
    model = Counting(CFG)

    def new_epoch(epoch, row):
        seen.append([])

    seen.append([])
    res = train(model, X, y, X[:64], y[:64], replace(TC, max_epochs=3, epoch_windows=64),
                callback=lambda e, r: new_epoch(e, r))
    epochs = [set(s) for s in seen[:3]]
    assert [len(s) for s in seen[:3]] == [64, 64, 64] and all(len(e) == 64 for e in epochs)
    assert len(epochs[0] | epochs[1] | epochs[2]) > 100  # not the same 64 each time
    assert res.curve[0]["samples_per_s"] > 0 and len(res.curve) == 3
