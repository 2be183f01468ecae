"""Trainer for a binary classifier that outputs logits; knows nothing about the model or Optuna.

Like minGPT's ``trainer.py``: AdamW with decoupled weight decay, linear warm-up then cosine decay,
gradient clipping, micro-batches with gradient accumulation, early stopping on the validation
objective with the best epoch's weights restored before any metric is reported (research rule 9),
a per-epoch callback that may stop training (a search uses it to prune), and a dedicated error when
the loss stops being finite (rule 13). Training settings are read back from the live optimizer,
scheduler and model into the result (rule 2). :func:`train_many` trains K models of one
architecture together as one stack (:mod:`lib.model.ensemble`), each as it would be trained alone;
the pieces of a run live in :mod:`lib.train.steps`.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ..core.config import ModelConfig, TrainConfig
from ..core.hardware import available_memory, resolve_device
from ..model.ensemble import keep, stack, unstack
from ..model.memory import choose_micro_batch, memory_estimate
from ..model.model import set_noise
from .metrics import evaluate, sigmoid
from .steps import (
    BestEpoch,
    DivergenceError,
    Noise,
    TrainStep,
    generators,
    host_copy,
    make_step,
    run_epoch,
    seed_everything,
)


@dataclass
class TrainResult:
    """What training returns: the curve, the restored best epoch and its validation
    metrics, the settings read back."""

    curve: list[dict]  # per epoch: train_loss, val_loss, val_auc, lr, seconds, samples_per_s
    best_epoch: int  # 1-based epoch whose weights were restored
    objective: str  # val_logloss | val_auc
    best_objective: float  # objective at best_epoch, recomputed on the restored weights
    val: dict  # metrics on the validation block with the restored weights
    resolved: dict  # settings read back from the live optimizer, scheduler and model
    stop_reason: str  # early_stopping | max_epochs | callback
    seconds: float  # wall time of training
    peak_memory_mb: dict = field(default_factory=dict)  # device and/or process peaks
    oom_retries: int = 0  # micro-batch halvings after out-of-memory errors
    memory_plan: dict = field(default_factory=dict)  # how the micro-batch was chosen

    def to_dict(self) -> dict:
        return asdict(self)


def eval_batch(micro: int, batch: int) -> int:
    """Samples per inference pass: 1024, or 4 micro-batches when memory forced micro-batching
    (inference keeps no activations for backward)."""
    return 1024 if micro >= batch else max(4 * micro, 1)


@torch.no_grad()
def predict_logits(model: nn.Module, X: torch.Tensor, batch: int = 1024,
                   autocast: bool = False) -> torch.Tensor:
    """Logits of ``model`` in eval mode, ``batch`` samples at a time, without gradients; for a
    stack of K models (:mod:`lib.model.ensemble`) every model sees all of ``X``: logits
    ``[K, n]``."""
    model.eval()
    k = getattr(model, "members", 1)
    out = []
    for i in range(0, len(X), batch):
        xb = X[i:i + batch]
        if k > 1:  # xb: [K * rows, context_len, n_features], model-major
            xb = xb.unsqueeze(0).expand(k, *xb.shape).reshape(-1, *xb.shape[1:])
        with torch.autocast(X.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(xb).float()
        out.append(logits.reshape(k, -1) if k > 1 else logits)
    if not out:
        return torch.zeros((k, 0) if k > 1 else 0)
    return torch.cat(out, dim=-1)


def plan_micro_batch(model: nn.Module, batch: int, cfg: TrainConfig, device: torch.device,
                     autocast: bool, members: int = 1) -> tuple[int, dict]:
    """The micro-batch: the requested one, or the largest that the model's memory estimate
    (``model.cfg``, a ModelConfig) fits into the memory available on the device, which
    ``members`` models trained together share."""
    if cfg.micro_batch_size:
        return min(cfg.micro_batch_size, batch), {"source": "requested"}
    mcfg = getattr(model, "cfg", None)
    available, what = available_memory(device)
    if not isinstance(mcfg, ModelConfig) or available is None:
        why = what if available is None else "model has no memory estimate"
        return batch, {"source": f"full batch ({why})"}
    micro = choose_micro_batch(mcfg, batch, available / members, autocast, cfg.memory_headroom)
    est = members * memory_estimate(mcfg, micro, autocast_bf16=autocast)["total"]
    return micro, {"source": "estimate", "available_gb": available / 2**30, "available": what,
                   "estimate_gb": est / 2**30, "headroom": cfg.memory_headroom,
                   "models": members}


def compiled(model: nn.Module, backend: str) -> nn.Module:
    """``torch.compile(model)`` with ``backend``, or the model itself for ``off``."""
    if backend == "off":
        return model
    import torch._dynamo

    known = torch._dynamo.list_backends(exclude_tags=())
    if backend not in known:
        raise ValueError(f"unknown compile backend {backend!r}; choose off or one of "
                         f"{', '.join(sorted(known))}")
    return torch.compile(model, backend=backend)


def training_step(models: list[nn.Module], cfg: TrainConfig, seeds: list[int],
                  device: torch.device, total_steps: int, autocast: bool):
    """What K models of one architecture train as: the module (the model itself for K = 1, else
    their stack, :mod:`lib.model.ensemble`) with seed k's dropout noise for model k, its forward
    pass (compiled when ``cfg.compile`` says so), the optimizer step, and each seed's data-order
    generator. :func:`train_many`, ``make bench`` and ``bench/final_split.py`` all build their step
    here, so the benchmarks time the step that training takes.

    Returns:
        (net, forward, step, orders, noise): ``noise`` holds the K noise generators; a model
        that leaves the stack leaves its generator behind too.
    """
    net = models[0] if len(models) == 1 else stack(models)
    streams = [generators(s, device) for s in seeds]
    noise = Noise([g for _, g in streams])
    set_noise(net, noise)
    forward = compiled(net, cfg.compile)
    step = make_step(net, cfg, device, total_steps, autocast, forward)
    return net, forward, step, [o for o, _ in streams], noise


def _dropout_rates(model: nn.Module) -> list[float]:
    """Every dropout rate the live model uses (read back for rule 2)."""
    return sorted({m.p for m in model.modules() if isinstance(m, nn.Dropout)})


def resolved_settings(step: TrainStep, cfg: TrainConfig, batch: int, micro: int) -> dict:
    """The settings read back from the live optimizer, scheduler and model (research rule 2)."""
    group = step.optimizer.param_groups[0]
    schedule = step.scheduler.lr_lambdas[0]
    model = step.model
    return {
        "lr": group["initial_lr"], "weight_decay": group["weight_decay"],
        "betas": list(group["betas"]), "warmup_steps": schedule.warmup_steps,
        "total_steps": schedule.total_steps,
        "warmup_frac": schedule.warmup_steps / schedule.total_steps,
        "dropout": _dropout_rates(model), "batch_size": batch, "micro_batch_size": micro,
        "max_epochs": cfg.max_epochs, "grad_clip": step.grad_clip, "patience": cfg.patience,
        "pos_weight": None if step.loss_fn.pos_weight is None else float(step.loss_fn.pos_weight),
        "device": str(step.device), "autocast_bf16": step.autocast,
        "threads": torch.get_num_threads(), "seed": cfg.seed, "objective": cfg.objective,
        "compile": cfg.compile, "norm": getattr(getattr(model, "cfg", None), "norm", None),
    }


def train(model: nn.Module, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray,
          y_val: np.ndarray, cfg: TrainConfig,
          callback: Callable[[int, dict], bool | None] | None = None) -> TrainResult:
    """Train ``model`` in place and restore its best epoch.

    Args:
        X_train, X_val: [n, context_len, n_features] float32 windows; y_*: [n] labels in {0, 1}.
        callback: called after every epoch with (epoch, metrics); returning True stops training;
            an exception it raises (a pruning signal) propagates once the best weights are
            restored.
    """
    return train_many([model], X_train, y_train, X_val, y_val, cfg, [cfg.seed], callback)[0]


def train_many(models: list[nn.Module], X_train: np.ndarray, y_train: np.ndarray,
               X_val: np.ndarray, y_val: np.ndarray, cfg: TrainConfig, seeds: list[int],
               callback: Callable[[int, dict], bool | None] | None = None) -> list[TrainResult]:
    """Train K models of one architecture together, model k with ``seeds[k]`` (its data order
    and dropout; its initialisation is the caller's), each early-stopped on its own validation
    objective and restored to its own best epoch: the same results, within floating-point
    tolerance, as K calls of :func:`train` (``tests/train/test_together.py``). Two or more models
    run as one stacked module (:mod:`lib.model.ensemble`); a model that stops leaves the stack. Only
    a single model takes a ``callback``."""
    if len(models) != len(seeds) or not models:
        raise ValueError(f"need one seed per model: {len(models)} models, {len(seeds)} seeds")
    if callback is not None and len(models) > 1:
        raise ValueError("a per-epoch callback (pruning) needs models trained one at a time")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(seeds[0])
    device = resolve_device(cfg.device)
    autocast = cfg.bf16 and device.type == "cuda"
    k = len(models)
    for m in models:
        m.to(device)
    Xtr = torch.as_tensor(X_train, dtype=torch.float32, device=device)
    ytr = torch.as_tensor(y_train, dtype=torch.float32, device=device)
    Xva = torch.as_tensor(X_val, dtype=torch.float32, device=device)
    y_val_np = np.asarray(y_val)
    base_rate = float(np.mean(y_train))
    # an epoch: one pass, or train.epoch_windows windows drawn afresh each epoch
    n = min(len(Xtr), cfg.epoch_windows) if cfg.epoch_windows else len(Xtr)
    batch = min(cfg.batch_size, n)
    net, forward, step, orders, noise = training_step(
        models, cfg, seeds, device, math.ceil(n / batch) * cfg.max_epochs, autocast)
    micro, memory_plan = plan_micro_batch(models[0], batch, cfg, device, autocast, k)
    sign = 1.0 if cfg.objective == "val_logloss" else -1.0  # internal: lower is better
    best = [BestEpoch(cfg.min_delta) for _ in models]
    curves: list[list[dict]] = [[] for _ in models]
    stop = ["max_epochs"] * k
    active, oom_retries = list(range(k)), 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_start = time.perf_counter()

    def validate(epoch: int) -> list[dict]:
        logits = predict_logits(forward, Xva, eval_batch(micro, batch), autocast)
        if not torch.isfinite(logits).all():
            raise DivergenceError(epoch, "validation logits")
        rows = logits.reshape(len(active), -1).cpu()
        return [evaluate(y_val_np, sigmoid(r), base_rate, cfg.collapse_spread) for r in rows]

    def snapshot(j: int) -> Callable[[], dict]:
        return host_copy(net) if k == 1 else lambda: unstack(net, j)

    try:
        for epoch in range(1, cfg.max_epochs + 1):
            net.train()
            t0 = time.perf_counter()
            lr = step.optimizer.param_groups[0]["lr"]
            running, micro, halvings = run_epoch(step, Xtr, ytr, batch, micro, orders, epoch,
                                                 memory_plan, cfg.progress, n)
            oom_retries += halvings
            seconds = time.perf_counter() - t0
            stopped = []
            for j, (a, m) in enumerate(zip(active, validate(epoch), strict=True)):
                row = {"epoch": epoch, "train_loss": float(running[j]) / n,
                       "val_loss": m["logloss"], "val_auc": m["auc"], "val_skill": m["skill"],
                       "lr": lr, "seconds": seconds, "samples_per_s": n / seconds,
                       "models_together": len(active)}
                curves[a].append(row)
                value = sign * (m["logloss"] if sign > 0 else (m["auc"] or 0.0))
                best[a].update(value, epoch, snapshot(j))
                if callback is not None and callback(epoch, dict(row, objective=sign * value)):
                    stop[a] = "callback"
                elif best[a].bad_epochs >= cfg.patience:
                    stop[a] = "early_stopping"
                if stop[a] != "max_epochs":
                    stopped.append(j)
            if len(stopped) == len(active):
                break
            if stopped:  # the stopped models leave the stack; the others go on as they would
                going_on = [j for j in range(len(active)) if j not in stopped]
                keep(net, step.optimizer, going_on)
                orders = [orders[j] for j in going_on]
                noise.generators = [noise.generators[j] for j in going_on]
                active = [active[j] for j in going_on]
    finally:
        set_noise(net, None)
        for a, m in enumerate(models):
            best[a].restore(m)
    resolved = resolved_settings(step, cfg, batch, micro)
    peak = {"process_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        peak["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    seconds = time.perf_counter() - t_start
    results = []
    for a, m in enumerate(models):
        logits = predict_logits(m, Xva, eval_batch(micro, batch), autocast)  # the whole model
        val = evaluate(y_val_np, sigmoid(logits.cpu()), base_rate, cfg.collapse_spread)
        results.append(TrainResult(
            curve=curves[a], best_epoch=best[a].epoch, objective=cfg.objective,
            best_objective=val["logloss"] if cfg.objective == "val_logloss" else val["auc"],
            val=val, resolved=dict(resolved, seed=seeds[a], models_together=k),
            stop_reason=stop[a], seconds=seconds, peak_memory_mb=peak, oom_retries=oom_retries,
            memory_plan=memory_plan))
    return results
