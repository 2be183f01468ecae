"""CUDA paths (run by bench/gpu_check.sh on a GPU machine; skipped without one)."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from lib.core.config import ModelConfig, TrainConfig
from lib.model.memory import memory_estimate
from lib.model.model import PatchTST
from lib.train.trainer import train

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
CFG = ModelConfig(d_model=64, n_heads=4, n_layers=2, d_ff=256)


def data(n=512):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 80, 25)).astype(np.float32)
    return X, (X[:, -1, 3] > 0).astype(np.float32)


@cuda
def test_bf16_autocast_and_fused_adamw_train_on_cuda():
    X, y = data()
    res = train(PatchTST(CFG), X, y, X, y, TrainConfig(max_epochs=3, device="cuda"))
    assert res.resolved["device"].startswith("cuda") and res.resolved["autocast_bf16"]
    assert res.val["auc"] > 0.6 and res.peak_memory_mb["cuda_max_allocated_mb"] > 0


@cuda
def test_memory_estimate_bounds_the_measured_peak():
    X, y = data(256)
    res = train(PatchTST(CFG), X, y, X, y, TrainConfig(max_epochs=1, device="cuda", bf16=False,
                                                       batch_size=256))
    est = memory_estimate(CFG, 256)["total"] / 2**20
    assert res.peak_memory_mb["cuda_max_allocated_mb"] < 3 * est


@cuda
def test_oom_fallback_on_a_real_device():
    class Tight(PatchTST):
        def forward(self, x):
            if self.training and x.shape[0] > 16:
                raise torch.OutOfMemoryError("simulated on CUDA")
            return super().forward(x)

    X, y = data(128)
    res = train(Tight(CFG), X, y, X, y, TrainConfig(max_epochs=1, device="cuda", batch_size=64))
    assert res.resolved["micro_batch_size"] == 16 and res.oom_retries == 2


@cuda
def test_seeded_cuda_runs_are_close():
    X, y = data(256)
    a = train(PatchTST(CFG), X, y, X, y, TrainConfig(max_epochs=2, device="cuda"))
    b = train(PatchTST(CFG), X, y, X, y, TrainConfig(max_epochs=2, device="cuda"))
    assert abs(a.val["logloss"] - b.val["logloss"]) < 1e-2


def test_cpu_fallback_when_cuda_is_missing():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(RuntimeError, match="no CUDA device is available"):
        X, y = data(32)
        train(PatchTST(replace(CFG, n_layers=1)), X, y, X, y, TrainConfig(device="cuda"))


@cuda
def test_estimate_bounds_the_measured_peak_in_bf16():
    """The plan's estimate (bf16 copies included) bounds the real peak of a training step."""
    big = ModelConfig(d_model=256, n_heads=8, n_layers=4, d_ff=1024)
    X, y = data(256)
    torch.cuda.empty_cache()
    res = train(PatchTST(big), X, y, X, y, TrainConfig(max_epochs=1, device="cuda",
                                                       batch_size=128))
    est = memory_estimate(big, res.resolved["micro_batch_size"], autocast_bf16=True)["total"]
    assert res.memory_plan["source"] == "estimate"
    assert res.peak_memory_mb["cuda_max_allocated_mb"] <= est / 2**20


@cuda
def test_micro_batch_planned_from_free_memory_on_cuda(monkeypatch):
    """Pretend the GPU has room for 16 samples only: the plan accumulates 4 micro-batches."""
    from lib.train import trainer

    tight = memory_estimate(CFG, 16, autocast_bf16=True)["total"] / 0.85 + 1
    monkeypatch.setattr(trainer, "available_memory", lambda device: (tight, "test"))
    X, y = data(256)
    res = train(PatchTST(CFG), X, y, X, y, TrainConfig(max_epochs=1, device="cuda", batch_size=64))
    assert res.resolved["micro_batch_size"] == 16 and res.resolved["batch_size"] == 64


@cuda
def test_models_trained_together_on_cuda_in_bf16_match_their_separate_runs():
    """The stacked path on CUDA with bf16 autocast: every model trains, and each lands close to
    its separate run (bf16 rounding: a looser tolerance than the CPU test's)."""
    from lib.train.trainer import train_many
    from tests.train.test_together import models

    X, y = data(512)
    cfg = replace(CFG, norm="global", dropout=0.1)
    tc = TrainConfig(max_epochs=3, device="cuda", patience=5)
    seeds = [5, 6, 7]
    together = train_many(models(cfg, X, seeds), X, y, X, y, tc, seeds)
    alone = [train(m, X, y, X, y, replace(tc, seed=s))
             for m, s in zip(models(cfg, X, seeds), seeds, strict=True)]
    for t, a in zip(together, alone, strict=True):
        assert t.resolved["autocast_bf16"] and t.resolved["models_together"] == 3
        assert abs(t.val["logloss"] - a.val["logloss"]) < 2e-2
        assert t.val["auc"] > 0.6
