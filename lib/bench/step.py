"""Benchmarks of one training step (``make bench``): throughput, model FLOP rate, MFU, peak memory
and where a step's time goes.

MFU = achieved model FLOP rate (analytic FLOPs of forward + backward, ``model.flops_per_sample``)
divided by the matrix-multiply rate measured in the same run on the same device (fp32 on CPU,
bf16 on CUDA). Targets (2-core CPU, mixed tokenizer): MFU >= 45% at about 2M parameters and >= 55%
at about 20M. :func:`time_split` says where a step's time goes: matrix products, the attention
kernel and everything else, and the ceiling that split puts on any speed-up that leaves those two
kernels as they are.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time

import torch

from ..core.config import GridConfig, ModelConfig
from ..model.model import PatchTST, flops_per_sample

BASE = ModelConfig(context_len=80, n_features=25, patch_len=16, stride=8, dropout=0.0)
GRID = GridConfig(d_model=[32, 64, 128, 256, 512, 1024, 2048, 4096],
                  n_layers=[1, 2, 3, 4, 6, 8, 12, 16], n_heads=[4, 8, 16], ff_ratio=[4],
                  tolerance=0.35)
TOGETHER = 4  # models per stack in the batched rows (the default sweep's final seeds)
SMALL_GRID = GridConfig(d_model=[8, 12, 16, 24, 32], n_layers=[1, 2, 3, 4], n_heads=[1, 2, 4],
                        ff_ratio=[2, 4], tolerance=0.35)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device: torch.device, n: int = 2048, seconds: float = 2.0) -> float:
    """Sustained matrix-multiply rate in FLOP/s (fp32 on CPU, bf16 on CUDA)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    n = 8192 if device.type == "cuda" else n
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    _sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


class Timer:
    """Wall time of GPU work by CUDA events (recorded in the stream, read after a synchronise);
    ``time.perf_counter`` on the CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __enter__(self) -> Timer:
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self._end.record()
            self._end.synchronize()
            self.seconds = self._start.elapsed_time(self._end) / 1000
        else:
            self.seconds = time.perf_counter() - self._t0


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def time_split(step, n: int = 3) -> dict:
    """Where ``n`` calls of ``step`` spend their time on the CPU: the self time of every operator
    (``torch.profiler``) in matrix products (``MATMUL_OPS``), the attention kernel
    (``scaled_dot_product_*``) and everything else (elementwise work, norms, dropout's noise,
    copies, the optimizer), as shares. ``ceiling`` = 1 / (matmul + attention): how many times
    faster the step could become if everything else took no time at all, the two kernels
    unchanged. Python's own time between operators is not in the shares."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            step()
    parts = {"matmul": 0.0, "attention": 0.0, "other": 0.0}
    for e in prof.key_averages():
        part = ("matmul" if e.key in MATMUL_OPS else
                "attention" if "scaled_dot_product" in e.key else "other")
        parts[part] += e.self_cpu_time_total
    total = sum(parts.values()) or 1.0
    shares = {k: v / total for k, v in parts.items()}
    kernels = shares["matmul"] + shares["attention"]
    return {**shares, "ceiling": 1 / kernels if kernels else None}


def train_throughput(cfg: ModelConfig, device: torch.device, batch: int = 64,
                     seconds: float = 3.0, min_steps: int = 2,
                     compile_backend: str = "off", members: int = 1) -> dict:
    """Samples/s of full training steps (forward, backward, AdamW step) on random data, with the
    trainer's settings: bf16 autocast and fused AdamW on CUDA, the micro-batch planned from the
    memory estimate (gradients accumulated to ``batch``). ``members`` > 1 trains that many models
    together as one stack (:mod:`lib.model.ensemble`); samples count every model's."""
    from ..core.config import TrainConfig
    from ..core.hardware import available_memory
    from ..model.memory import choose_micro_batch
    from ..model.model import fit_input_stats
    from ..train.trainer import training_step

    torch.manual_seed(0)
    x = torch.randn(batch, cfg.context_len, cfg.n_features, device=device)
    with torch.device(device):  # parameters created on the device (a 2B model: no host copy)
        models = [PatchTST(cfg) for _ in range(members)]
    for m in models:
        fit_input_stats(m, x)
    autocast = device.type == "cuda"
    # the trainer's own step (stack, dropout noise per seed, AdamW, schedule, clipping,
    # accumulation), not a copy of it
    model, _, train_step, _, _ = training_step(
        models, TrainConfig(lr=1e-4, batch_size=batch, compile=compile_backend),
        list(range(members)), device, 10**6, autocast)
    available, _ = available_memory(device)
    micro = (choose_micro_batch(cfg, batch, available / members, autocast) if available
             else batch)
    model.train()
    x = x.unsqueeze(0).expand(members, *x.shape).contiguous()  # each model's batch
    y = torch.randint(0, 2, (members, batch), device=device).float()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step():
        train_step(x, y, micro)

    t_warm = time.perf_counter()
    step()  # warm-up (and compilation) outside the timed window
    _sync(device)
    warmup_s = time.perf_counter() - t_warm
    steps, t0 = 0, time.perf_counter()
    with Timer(device) as timer:
        while steps < min_steps or time.perf_counter() - t0 < seconds:
            step()
            steps += 1
    sps = steps * batch * members / timer.seconds
    # on CUDA the operators' CPU time says nothing about the kernels: not measured there
    # (one profiled step when a step takes over half a second: 14 s each at 20M independent)
    split = (time_split(step, 3 if timer.seconds / steps < 0.5 else 1) if device.type == "cpu"
             else None)
    out = {"samples_per_s": sps, "time_split": split, "steps": steps, "micro_batch": micro,
           "warmup_s": warmup_s, "models": members, "batch": batch,
           "timing": "cuda events" if device.type == "cuda" else "perf_counter",
           "model_flops_per_s": sps * flops_per_sample(cfg),
           "process_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _row_worker(cfg, seconds, min_steps, compile_backend, threads, q, batch=64, members=1):
    torch.set_num_threads(threads)
    q.put(train_throughput(cfg, torch.device("cpu"), batch=batch, seconds=seconds,
                           min_steps=min_steps, compile_backend=compile_backend, members=members))


def measure_row(cfg: ModelConfig, device: torch.device, seconds: float, min_steps: int,
                compile_backend: str, isolate: bool = True, batch: int = 64,
                members: int = 1) -> dict:
    """One benchmark row. On the CPU it runs in a fresh process of its own (``isolate``), so that
    the peak RSS is this row's (a process's peak never goes down); on CUDA the peak allocation is
    reset."""
    if device.type != "cpu" or not isolate:
        r = train_throughput(cfg, device, batch=batch, seconds=seconds, min_steps=min_steps,
                             compile_backend=compile_backend, members=members)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the previous model's blocks, before the next size
        return r
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_row_worker, args=(cfg, seconds, min_steps, compile_backend,
                                                 torch.get_num_threads(), q, batch, members))
    proc.start()
    try:
        return q.get(timeout=600)
    finally:
        proc.join()
