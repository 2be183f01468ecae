"""The final-evaluation stage of a sweep: which process evaluates which cell
(:func:`lib.analysis.final.run_final` does the work)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..analysis.final import run_final
from ..core.config import ConfigError
from ..search.cells import Cell, cells
from ..search.sweepfile import load_sweep


def claim(claims: Path | None, cell: Cell) -> bool:
    """Whether this process takes ``cell``: always without a claims folder, else when it is the
    first to create the cell's claim file there (the job slots of one driver share a queue)."""
    if claims is None:
        return True
    try:
        os.close(os.open(claims / cell.id, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def final_cells(sweep: str, cell_ids: list[str] | None, threads: int | None,
                claims: Path | None = None) -> int:
    """Final evaluation of the named cells (default: all) in this process, one after the other
    in the order given; with ``claims`` (a folder the driver's job slots share) each cell is
    evaluated by the first process that claims it, so a slot that finishes early takes the next
    cell instead of idling. A failing cell is reported and the others still run."""
    import traceback

    cfg = load_sweep(sweep)
    by_id = {c.id: c for c in cells(sweep, cfg)}
    unknown = set(cell_ids or ()) - set(by_id)
    if unknown:
        raise ConfigError(f"unknown cell(s) {', '.join(sorted(unknown))} in sweep '{sweep}'")
    chosen = [by_id[i] for i in cell_ids] if cell_ids else list(by_id.values())
    failed = []
    for cell in chosen:
        if not claim(claims, cell):
            continue
        t0 = time.time()
        try:
            run_final(cell, cfg, threads=threads)
            print(f"{cell.id}: final evaluation done in {time.time() - t0:.0f} s", flush=True)
        except Exception:  # noqa: BLE001 -- one cell's failure must not stop the others
            print(f"{cell.id}: final evaluation FAILED\n{traceback.format_exc()}", flush=True)
            failed.append(cell.id)
    return 1 if failed else 0
