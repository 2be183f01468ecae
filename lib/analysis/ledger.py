"""The test-block ledger (research rule 26): every read of a sweep's test labels is recorded.

Only the final evaluation reads test labels (:mod:`lib.analysis.final`); each time it does, one
entry is written to ``outputs/sweeps/<sweep>/test_reads/`` (one file per read, written
atomically, so parallel job slots never append to a shared file): when, which cell and block,
which configurations (trial numbers) and seeds it scored for the first time, whether the
baselines were scored, and the code version. The scaling report quotes how often the block was
read (:func:`summary`), so a reader can tell a block opened once from one looked at many times.
The holdout stage (:mod:`lib.run.holdout`) writes its single read of a holdout block here too,
marked ``kind: holdout`` and counted apart.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..core import paths
from ..core.provenance import code_version, now_iso, read_json, write_json


def folder(sweep: str) -> Path:
    """Where a sweep's ledger entries live."""
    return paths.SWEEPS / Path(sweep).stem / "test_reads"


def record(sweep: str, cell: str, block: dict, trials: list[int], new_seeds: dict,
           baselines: bool) -> Path:
    """Write one ledger entry: ``cell``'s test block (``block``: first and last day, windows)
    was read; ``new_seeds`` maps each configuration (trial number) to the seeds scored on it for
    the first time (empty when the read only re-computed metrics of stored predictions)."""
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 10**9:09d}"
    path = folder(sweep) / f"{stamp}-{cell}.json"
    commit = code_version()
    write_json(path, {"cell": cell, "block": block, "trials": trials,
                      "new_predictions": {str(k): v for k, v in new_seeds.items()},
                      "baselines_scored": baselines, "read_at": now_iso(),
                      "code": {"commit": commit.get("commit"), "dirty": commit.get("dirty")}})
    return path


def reads(sweep: str) -> list[dict]:
    """Every ledger entry of the sweep, oldest first."""
    return [read_json(f) for f in sorted(folder(sweep).glob("*.json"))]


def summary(sweep: str) -> dict:
    """How often the sweep's test block was read: entries, reads that scored a model for the
    first time, the cells, the distinct configurations scored, the first and last read."""
    everything = reads(sweep)
    entries = [e for e in everything if (e.get("block") or {}).get("kind") != "holdout"]
    holdout = [e for e in everything if (e.get("block") or {}).get("kind") == "holdout"]
    new = [e for e in entries if any(e["new_predictions"].values())]
    configs = {(e["cell"], t) for e in new for t, s in e["new_predictions"].items() if s}
    return {"reads": len(entries), "reads_with_new_predictions": len(new),
            "cells": len({e["cell"] for e in entries}), "configurations_scored": len(configs),
            "first": entries[0]["read_at"] if entries else None,
            "last": entries[-1]["read_at"] if entries else None,
            "blocks": sorted({(e["block"].get("first"), e["block"].get("last"))
                              for e in entries if e.get("block")}),
            "holdout_reads": len(holdout), "holdout_cells": len({e["cell"] for e in holdout})}
