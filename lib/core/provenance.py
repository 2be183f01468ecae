"""Checksums, atomic writes and provenance (research rule 16).

Every file the workbench writes goes through :func:`atomic_write_bytes` (temporary file in the same
folder, fsync, rename), so a crash leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import paths


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would create: mkstemp's 0600 hid data from others


class CorruptFileError(ValueError):
    """A record or manifest that cannot be read back (truncated, bytes flipped)."""


TRACKED_PACKAGES = (
    "torch", "numpy", "pandas", "pyarrow", "scikit-learn", "TA-Lib", "arch", "yfinance", "optuna",
    "papermill", "psutil", "nvidia-ml-py",
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` via temp file + fsync + rename; the old file survives any failure. ``mode``
    (default: what ``open`` would create) is 0o600 for a file that may hold secrets."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e} (the previous version, if "
                      f"any, is intact)") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE if mode is None else mode)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e} (the previous version, if "
                      f"any, is intact)") from e
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_default(obj: Any) -> Any:
    if getattr(obj, "ndim", 0) > 0:  # numpy / torch arrays
        return obj.tolist()
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, Path):
        return obj.as_posix()
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def clean_json(obj: Any) -> Any:
    """Replace NaN/inf by None recursively: JSON has no NaN, and unavailable is an honest value."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    if hasattr(obj, "item") and not hasattr(obj, "__len__"):
        return clean_json(obj.item())
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (NaN refused); a failure keeps the previous file."""
    text = json.dumps(clean_json(obj), indent=2, default=_json_default, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def read_json(path: Path) -> Any:
    """The JSON document at ``path``; a file that does not parse is a ``CorruptFileError`` that
    names it (a missing file stays ``FileNotFoundError``)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptFileError(f"{paths.rel(Path(path))}: not valid JSON ({e}); rebuild it from "
                               f"the study storage with `make regenerate SWEEP=<sweep>` (a "
                               f"final.json is moved aside and re-run by `make final`)") from None


def package_versions(names=TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed versions of the tracked packages (None when one is missing)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def code_version(root: Path | None = None) -> dict[str, Any]:
    """Git commit and dirty flag of the CODE (``paths.CODE_ROOT``, not the data root that
    ``WORKBENCH_ROOT`` moves); ``None`` values with a reason outside git. Untracked files that git
    does not ignore count as dirty: a new module changes what runs as much as an edited one."""
    root = Path(root or paths.CODE_ROOT)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=normal"],
                                cwd=root, capture_output=True, text=True, check=True,
                                timeout=10).stdout
        changed = [line[3:] for line in status.splitlines() if line.strip()]
        return {"commit": commit, "dirty": bool(changed), "changed": changed[:20]}
    except (OSError, subprocess.SubprocessError) as e:
        return {"commit": None, "dirty": None, "reason": f"git unavailable: {e}"}


def hardware_info() -> dict[str, Any]:
    """Host, CPU, memory, torch threads and devices: what a record's numbers were measured on."""
    import psutil
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "logical_cpus": psutil.cpu_count(logical=True),
        "physical_cpus": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 2),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 2)
    return info


def provenance(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Code version, package versions, hardware and time; ``extra`` adds manifest hash, params."""
    out = {"code": code_version(), "packages": package_versions(), "hardware": hardware_info(),
           "recorded_at": now_iso()}
    out.update(extra or {})
    return out
