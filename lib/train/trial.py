"""One trial's pieces, shared by the search, the final evaluation and the ablation.

:func:`build` makes the seeded model for an architecture and sampled settings (a ``global`` model
gets the training block's statistics only), :func:`fit` trains it on the training block with early
stopping on validation (the test block is never read), :func:`check_resolved` compares the sampled
settings with those read back from the live objects (research rule 2), and :func:`arch_record`
records analytic beside measured parameter counts (rule 4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace

import numpy as np

from ..core.config import ModelConfig, SweepConfig, TrainConfig
from ..data.splits import Splits
from ..model.budget import Arch, base_model
from ..model.model import (
    PatchTST,
    count_params,
    fit_input_stats,
    flops_per_sample,
    measured_breakdown,
    window_tokens,
)
from .trainer import TrainResult, train_many


def model_config(cfg: SweepConfig, arch: Arch, dropout: float, n_features: int,
                 norm: str | None = None) -> ModelConfig:
    """The trial's model: the architecture, the sampled dropout and (when searched) norm."""
    return arch.apply(replace(base_model(cfg, n_features), dropout=dropout,
                              norm=norm or cfg.model.norm))


def train_config(cfg: SweepConfig, params: dict, seed: int, threads: int | None) -> TrainConfig:
    """The sweep's training settings with the trial's sampled ones and ``seed``."""
    return replace(cfg.train, lr=params["lr"], weight_decay=params["weight_decay"],
                   warmup_frac=params["warmup_frac"], batch_size=params["batch_size"],
                   max_epochs=params["max_epochs"], seed=seed, threads=threads)


def check_resolved(params: dict, result: TrainResult) -> dict:
    """Compare sampled values with those read back from the live objects (research rule 2)."""
    r = result.resolved
    tol = 1.0 / max(r["total_steps"], 1)
    checks = {"lr": np.isclose(r["lr"], params["lr"]),
              "weight_decay": np.isclose(r["weight_decay"], params["weight_decay"]),
              "warmup_frac": abs(r["warmup_frac"] - params["warmup_frac"]) <= tol,
              "dropout": all(np.isclose(d, params["dropout"]) for d in r["dropout"]),
              "batch_size": r["batch_size"] == params["batch_size"] or r["batch_size"] < params[
                  "batch_size"],
              "max_epochs": r["max_epochs"] == params["max_epochs"]}
    if "norm" in params:
        checks["norm"] = r.get("norm") == params["norm"]
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise AssertionError(f"sampled settings did not reach training: {bad} (resolved {r})")
    return {k: bool(v) for k, v in checks.items()}


def build(cfg: SweepConfig, splits: Splits, arch: Arch, params: dict,
          seed: int) -> tuple[PatchTST, ModelConfig]:
    """The seeded model for ``arch`` with the sampled dropout and norm; a ``global`` model gets
    the training block's statistics (never validation's or test's)."""
    import torch

    mcfg = model_config(cfg, arch, params["dropout"], len(splits.columns), params.get("norm"))
    torch.manual_seed(seed)
    model = PatchTST(mcfg)
    fit_input_stats(model, splits.train.X)
    return model, mcfg


def fit(cfg: SweepConfig, splits: Splits, model: PatchTST, params: dict, seed: int,
        threads: int | None = None, callback: Callable | None = None) -> TrainResult:
    """Train ``model`` on the training block, early-stopping on validation (test never read)."""
    return fit_many(cfg, splits, [model], params, [seed], threads, callback)[0]


def fit_many(cfg: SweepConfig, splits: Splits, models: list[PatchTST], params: dict,
             seeds: list[int], threads: int | None = None,
             callback: Callable | None = None) -> list[TrainResult]:
    """:func:`fit` for models of one configuration with ``seeds``, trained together
    (:func:`lib.train.trainer.train_many`: each result equals its own :func:`fit`)."""
    r = passes_per_epoch(splits)
    X, y = splits.train.X, splits.train.y
    if r > 1:  # a small data level's epoch: r passes, shuffled as one set (lib.data.data_axis)
        X, y = np.concatenate([X] * r), np.concatenate([y] * r)
    return train_many(models, X, y, splits.val.X, splits.val.y,
                      train_config(cfg, params, seeds[0], threads), seeds, callback)


def passes_per_epoch(splits: Splits) -> int:
    """Passes over the training windows in one epoch: 1, or a small data level's
    ``passes_per_epoch`` (:mod:`lib.data.data_axis`)."""
    return int((getattr(splits.stats, "data", None) or {}).get("passes_per_epoch", 1))


def arch_record(arch: Arch, mcfg: ModelConfig, model) -> tuple[dict, dict]:
    """The architecture and its parameter counts: analytic (total, embedding, encoder, head,
    non-embedding) beside measured total and non-embedding (research rule 4)."""
    counts = count_params(mcfg)
    m = measured_breakdown(model)
    n_params = dict(counts, **m, analytic_matches=m["measured"] == counts["total"]
                    and m["measured_non_embedding"] == counts["non_embedding"])
    return dict(asdict(arch), tokenizer=mcfg.tokenizer, norm=mcfg.norm, patch_len=mcfg.patch_len,
                stride=mcfg.stride, context_len=mcfg.context_len,
                n_features=mcfg.n_features), n_params


def compute_record(mcfg: ModelConfig, n_train: int, epochs: int, seconds: float,
                   passes: int = 1, epoch_windows: int | None = None) -> dict:
    """What a training run cost: windows seen (``epochs`` passes over the ``n_train`` training
    windows), tokens seen, training FLOPs (the model's analytic forward + backward FLOPs per
    window, :func:`lib.model.model.flops_per_sample`, times windows seen) and wall time. The data
    size D is the training block: windows, and tokens (patch tokens per window, every channel for
    the channel-independent tokenizer). An epoch of a small data level is ``passes`` passes,
    capped at ``epoch_windows`` windows drawn (``train.epoch_windows``)."""
    tokens = window_tokens(mcfg)
    per_window = flops_per_sample(mcfg, training=True)
    per_epoch = passes * n_train
    seen = epochs * (min(per_epoch, epoch_windows) if epoch_windows else per_epoch)
    return {"train_windows": n_train, "train_tokens": n_train * tokens,
            "tokens_per_window": tokens, "epochs": epochs, "passes_per_epoch": passes,
            "epoch_windows": epoch_windows,
            "windows_seen": seen, "tokens_seen": seen * tokens, "flops_per_window": per_window,
            "train_flops": per_window * seen, "wall_s": seconds,
            "flops_method": "analytic matmul FLOPs, training = 3x forward (lib.model.model)"}
