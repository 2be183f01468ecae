"""Hardware telemetry, pre-flight checks and the guards that act on readings.

A metric that cannot be read is ``None`` with the reason recorded once: never an invented value.
Temperatures come from ``psutil.sensors_temperatures`` where the platform reports any; GPU
utilisation, memory, temperature and power from NVML (``import pynvml``, package nvidia-ml-py).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from .provenance import now_iso, write_json


class PreflightError(RuntimeError):
    """A cell cannot start: too little memory or disk, a missing or corrupt dataset, no device."""


def _nvml():
    """(module, handle) of GPU 0, or (None, reason)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() < 1:
            return None, "NVML reports no GPU"
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
    except Exception as e:  # NVMLError subclasses, ImportError, missing driver library
        return None, f"NVML unavailable: {type(e).__name__}: {e}"


def cpu_temperature() -> tuple[float | None, str | None]:
    """Hottest CPU-ish sensor in degrees C, or (None, reason)."""
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return None, "psutil has no sensors_temperatures on this platform"
    try:
        temps = reader()
    except Exception as e:
        return None, f"sensors_temperatures failed: {e}"
    values = [t.current for entries in temps.values() for t in entries
              if t.current is not None and t.current > 0]
    if not values:
        return None, "no temperature sensors reported by psutil"
    return float(max(values)), None


@dataclass
class Telemetry:
    """Background sampler appending one JSON line per reading to ``path``."""

    path: Path | None
    interval_s: float = 5.0
    samples: list[dict] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # metric -> reason, recorded once

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc = psutil.Process(os.getpid())
        self._proc.cpu_percent(None)
        self._nvml, self._gpu = _nvml()
        if self._nvml is None:
            for k in ("gpu_util", "gpu_mem_used_mb", "gpu_temp_c", "gpu_power_w"):
                self.unavailable[k] = self._gpu
            self._gpu = None

    def read(self) -> dict:
        """One reading of CPU, memory, disk, temperatures and GPU; a reason for each value
        that cannot be read."""
        vm = psutil.virtual_memory()
        disk_root = self.path.parent if self.path else Path.cwd()
        row = {
            "time": now_iso(), "t": time.time(),
            "proc_cpu_pct": self._proc.cpu_percent(None),
            "proc_rss_mb": self._proc.memory_info().rss / 2**20,
            "sys_mem_used_pct": vm.percent, "sys_mem_available_gb": vm.available / 2**30,
            "load_1m": os.getloadavg()[0],
            "disk_free_gb": shutil.disk_usage(disk_root).free / 2**30,
        }
        row["cpu_temp_c"], why = cpu_temperature()
        if why:
            self.unavailable.setdefault("cpu_temp_c", why)
        for k in ("gpu_util", "gpu_mem_used_mb", "gpu_temp_c", "gpu_power_w"):
            row[k] = None
        if self._gpu is not None:
            nv, h = self._nvml, self._gpu
            for key, fn in (("gpu_util", lambda: nv.nvmlDeviceGetUtilizationRates(h).gpu),
                            ("gpu_mem_used_mb", lambda: nv.nvmlDeviceGetMemoryInfo(h).used / 2**20),
                            ("gpu_temp_c", lambda: nv.nvmlDeviceGetTemperature(h, 0)),
                            ("gpu_power_w", lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000)):
                try:
                    row[key] = float(fn())
                except Exception as e:
                    self.unavailable.setdefault(key, f"NVML: {e}")
        return row

    def sample(self) -> dict:
        """Take a reading, keep it and append it to the telemetry file."""
        row = self.read()
        self.samples.append(row)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = dict(row, unavailable=self.unavailable) if len(self.samples) == 1 else row
            with open(self.path, "a") as f:  # one writer per cell folder: this process
                f.write(json.dumps(line) + "\n")
        return row

    def _loop(self):
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except OSError:
                pass  # a full disk must not kill the search; the next reading tries again

    def start(self) -> Telemetry:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="telemetry", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 1)

    def summary(self, since: float = 0.0) -> dict:
        """Peaks and means of every numeric metric sampled since ``since`` (unix time)."""
        rows = [r for r in self.samples if r["t"] >= since] or self.samples[-1:]
        out = {"n_samples": len(rows), "unavailable": dict(self.unavailable)}
        for key in ("proc_cpu_pct", "proc_rss_mb", "sys_mem_used_pct", "load_1m", "cpu_temp_c",
                    "gpu_util", "gpu_mem_used_mb", "gpu_temp_c", "gpu_power_w"):
            vals = [r[key] for r in rows if r.get(key) is not None]
            out[key] = ({"max": max(vals), "mean": sum(vals) / len(vals)} if vals else None)
        return out


@dataclass
class Guard:
    """Pauses a search between trials while hot or short of memory; stops past critical."""

    telemetry: Telemetry
    temp_warn_c: float
    temp_critical_c: float
    mem_floor_gb: float
    max_pause_s: float
    log: callable = print
    poll_s: float = 5.0
    _said_no_temp: bool = False

    def status(self, row: dict) -> tuple[str, str]:
        """ok, pause or critical for a telemetry reading, with the reason."""
        temps = [row[k] for k in ("cpu_temp_c", "gpu_temp_c") if row.get(k) is not None]
        if not temps and not self._said_no_temp:
            self._said_no_temp = True
            self.log("guard: no temperature can be read here; the temperature guard stands down "
                     "(it never assumes a safe reading)")
        hottest = max(temps) if temps else None
        if hottest is not None and hottest >= self.temp_critical_c:
            return "critical", f"temperature {hottest:.0f} C >= critical {self.temp_critical_c} C"
        if hottest is not None and hottest >= self.temp_warn_c:
            return "pause", f"temperature {hottest:.0f} C >= warning {self.temp_warn_c} C"
        if row["sys_mem_available_gb"] < self.mem_floor_gb:
            return "pause", (f"available memory {row['sys_mem_available_gb']:.2f} GB < floor "
                             f"{self.mem_floor_gb} GB")
        return "ok", ""

    def wait(self) -> tuple[bool, str]:
        """Block until readings are fine; returns (may_continue, reason when stopping)."""
        start = time.time()
        while True:
            state, why = self.status(self.telemetry.sample())
            if state == "ok":
                return True, ""
            if state == "critical":
                self.log(f"guard: stopping the cell: {why}")
                return False, why
            if time.time() - start > self.max_pause_s:
                self.log(f"guard: still {why} after {self.max_pause_s:.0f} s; stopping the cell")
                return False, why
            self.log(f"guard: pausing between trials: {why}")
            time.sleep(self.poll_s)


def device_type(device: str) -> str:
    """``cuda``, ``mps`` or ``cpu`` for a configured device name (``auto`` resolved)."""
    try:
        return resolve_device(device).type
    except RuntimeError:
        return "cpu"


def preflight(*, memory_needs: dict[str, int], policy: str, dataset_check, device: str,
              threads: int | None, outputs: Path, min_disk_gb: float,
              available_bytes: int | None = None) -> dict:
    """Run every pre-flight check; returns the report (``ok``, checks, architectures kept).

    Args:
        memory_needs: architecture id -> estimated bytes it needs to train at all.
        policy: ``drop`` removes architectures that do not fit (with a warning); ``fail`` refuses.
        dataset_check: callable verifying the dataset checksum (raises on a problem).
        available_bytes: memory that may be used; default: available system (or GPU) memory.
    """
    import torch

    checks, warnings = {}, []
    try:
        entry = dataset_check()
        checks["dataset"] = {"ok": True, "sha256": entry["sha256"], "rows": entry["rows"]}
    except Exception as e:
        checks["dataset"] = {"ok": False, "error": str(e)}
    try:
        dev = resolve_device(device)
        checks["device"] = {"ok": True, "device": str(dev)}
    except RuntimeError as e:
        dev = torch.device("cpu")
        checks["device"] = {"ok": False, "error": str(e)}
    if available_bytes is None:
        if dev.type == "cuda":
            available_bytes = torch.cuda.mem_get_info()[0]
        else:
            available_bytes = psutil.virtual_memory().available
    usable = int(available_bytes * 0.9)
    fits = {a: n for a, n in memory_needs.items() if n <= usable}
    too_big = sorted(set(memory_needs) - set(fits))
    mem_ok = bool(fits) and (policy == "drop" or not too_big)
    if too_big:
        largest = max(memory_needs.values())
        msg = (f"{len(too_big)} architecture(s) need more than the usable {usable / 2**30:.2f} GB "
               f"(largest needs {largest / 2**30:.2f} GB): {', '.join(too_big[:5])}")
        warnings.append(("dropped: " if policy == "drop" and fits else "") + msg)
    checks["memory"] = {"ok": mem_ok, "available_gb": available_bytes / 2**30,
                        "largest_need_gb": max(memory_needs.values(), default=0) / 2**30,
                        "dropped": too_big if policy == "drop" else [], "policy": policy}
    free = shutil.disk_usage(outputs if outputs.exists() else outputs.parent).free / 2**30
    checks["disk"] = {"ok": free >= min_disk_gb, "free_gb": free, "needed_gb": min_disk_gb}
    checks["threads"] = {"ok": threads is None or threads >= 1, "torch_threads": threads or
                         torch.get_num_threads(), "logical_cpus": psutil.cpu_count()}
    ok = all(c["ok"] for c in checks.values())
    return {"ok": ok, "checks": checks, "warnings": warnings, "architectures": sorted(fits),
            "checked_at": now_iso()}


def write_preflight(report: dict, path: Path) -> None:
    """Write the pre-flight report; a failed check raises PreflightError naming it."""
    write_json(path, report)
    if not report["ok"]:
        failed = {k: v.get("error", v) for k, v in report["checks"].items() if not v["ok"]}
        raise PreflightError(f"pre-flight failed: {failed}")


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Cap every thread pool (OpenMP in torch and scikit-learn, BLAS) of the kernels and
    subprocesses this process starts: parallel cells that each spin up all cores' worth of OpenMP
    threads ran 6x slower here than with the pools divided."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads)


def threads_per_job(jobs_threads: int | None, jobs: int) -> int:
    """Torch threads each of ``jobs`` parallel cells gets: ``jobs_threads`` (the sweep's; None:
    every core) divided among them."""
    total = jobs_threads or os.cpu_count() or 1
    return max(1, total // max(jobs, 1))


def resolve_device(name: str = "auto"):
    """The torch device for ``auto`` (cuda, then mps, then cpu) or a named one."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA device is available")
    return torch.device(name)


def available_memory(device) -> tuple[float | None, str]:
    """Bytes this process may still use on a torch ``device`` (what it holds already
    included)."""
    import torch

    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return float(free + torch.cuda.memory_allocated(device)), "cuda free + allocated"
    if device.type == "cpu":
        return float(psutil.virtual_memory().available), "system available memory"
    return None, f"no memory reading on {device.type}"
