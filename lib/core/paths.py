"""Every path of the project, defined once (as cookiecutter-data-science's ``config.py``)."""

from __future__ import annotations

import os
from pathlib import Path

CODE_ROOT = Path(__file__).resolve().parents[2]  # notebooks and params always come from the code


def set_root(root: Path | str) -> None:
    """Point data/, outputs/ and reports/ at ``root`` (tests use a temporary folder)."""
    global ROOT, DATA, RAW, PROCESSED, RAW_MANIFEST, PROCESSED_MANIFEST, OUTPUTS, SWEEPS, REPORTS
    global BASELINE_CACHE
    ROOT = Path(root)
    DATA = ROOT / "data"
    RAW = DATA / "raw"
    PROCESSED = DATA / "processed"
    RAW_MANIFEST = DATA / "raw_manifest.json"
    PROCESSED_MANIFEST = DATA / "processed_manifest.json"
    OUTPUTS = ROOT / "outputs"
    SWEEPS = OUTPUTS / "sweeps"
    REPORTS = ROOT / "reports"
    BASELINE_CACHE = OUTPUTS / "cache" / "baselines"  # see baselines.cached_baselines


set_root(os.environ.get("WORKBENCH_ROOT", CODE_ROOT))
PARAMS = CODE_ROOT / "params"
SWEEP_FILES = PARAMS / "sweeps"
NOTEBOOKS = CODE_ROOT / "notebooks"


def rel(path: Path) -> str:
    """Repository-relative path as a POSIX string (manifests never store absolute paths)."""
    path = Path(path).resolve()
    try:
        return path.relative_to(ROOT.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
