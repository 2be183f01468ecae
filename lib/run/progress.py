"""What the driver says while a stage runs: a line per finished item, each with items done of
total, elapsed time and an estimate of the time left from the items finished so far; and while
nothing finishes, either a tqdm bar redrawn every few seconds (on a terminal) or a plain line at
least every ``every_s`` seconds (CI, logs, pipes), so a stage never goes silent (the final
evaluation used to run for minutes without a word). :func:`run_estimate` is the size of a run and
a rough time for it, printed before it starts.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable

from tqdm import tqdm

# Measured: `make sweep` on a fresh clone, 2 CPU cores, no other load, 2026-12-05 (default sweep:
# search 308 s and final evaluation 193 s, 2 cells at a time; smoke sweep 33 s and 36 s). A cell
# costs a fixed part (kernel, data, notebook; for the final evaluation also the baselines and the
# intervals) and slot-seconds per trained epoch and square root of its parameter budget (cells
# grow about so: 320k took 5.5x 10k).
SEARCH_CELL_S, FINAL_CELL_S = 10.0, 15.0
SEARCH_S_PER_EPOCH_ROOT_N = (616 - 12 * SEARCH_CELL_S) / (8 * 7 * 3465)
FINAL_S_PER_EPOCH_ROOT_N = (386 - 12 * FINAL_CELL_S) / (4 * 7 * 3465)


def clock(seconds: float) -> str:
    """``1:05`` for 65 s, ``1:02:05`` past an hour."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _columns(stream) -> int:
    """The terminal's width (0 where a pseudo-terminal reports none: a bar would draw nothing
    there, so plain lines are used)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0


class Progress:
    """Progress of one stage of ``total`` items.

    ``weights`` (optional, per item): the expected relative cost of each item, e.g. the square
    root of a cell's parameter budget (a 320k cell's search takes about 5.5 times a 10k one's on
    2 cores, sqrt gives 5.7). The sweep runs its largest cells first, so an estimate that counts
    every item alike overstates the time left early on by a factor of two or more."""

    def __init__(self, stage: str, total: int, every_s: float = 20.0,
                 say: Callable[[str], None] = print, weights: dict[str, float] | None = None,
                 bar: bool | None = None, stream=None):
        self.stage, self.total, self.every_s = stage, total, every_s
        self.say = say
        self.weights = weights or {}
        self.t0 = self.last = time.time()
        self.finished = 0
        self.done_weight = 0.0
        stream = stream or sys.stderr
        if bar is None:  # a bar only where someone watches: a terminal, never a log or CI
            bar = stream.isatty() and sys.stdout.isatty() and _columns(stream) > 0
        # the bar draws the share of the stage's cost done; the words are ours (weighted
        # estimate); tqdm's own rate would count a 10k cell like a 320k one
        self.bar = tqdm(total=1000, desc=f"  [{stage}]", file=stream, leave=False,
                        bar_format="{desc} {bar:20}{postfix}", dynamic_ncols=True) \
            if bar else None

    def left(self) -> str:
        """The estimated time left: the stage's time per unit of finished cost so far (slots
        running side by side included), times the cost not finished; every item costs 1 without
        weights; unknown before the first ends."""
        if not self.finished:
            return "time left unknown until the first one ends"
        total = sum(self.weights.values()) if self.weights else self.total
        done = self.done_weight if self.weights else self.finished
        per_unit = (time.time() - self.t0) / done
        return f"~{clock(per_unit * max(total - done, 0.0))} left"

    def _status(self) -> str:
        return (f"{self.finished}/{self.total} done, elapsed {clock(time.time() - self.t0)}, "
                f"{self.left() if self.finished < self.total else 'stage finished'}")

    def _share(self) -> float:
        if self.weights:
            return self.done_weight / max(sum(self.weights.values()), 1e-12)
        return self.finished / max(self.total, 1)

    def done(self, item: str, what: str) -> None:
        """An item finished (``what``: its status and duration)."""
        self.finished += 1
        self.done_weight += self.weights.get(item, 0.0)
        self.last = time.time()
        line = f"  [{self.stage} {self.finished}/{self.total}] {item}: {what} | {self._status()}"
        if self.bar is None:
            self.say(line)
            return
        self.bar.write(line)  # above the bar, which stays at the bottom
        self.bar.n = round(1000 * self._share())
        self.bar.set_postfix_str(self._status())
        if self.finished >= self.total:
            self.close()

    def tick(self, running: list[str] | None = None, force: bool = False,
             extra: str = "") -> None:
        """On a terminal: redraw the bar (status, ``extra`` such as trials done, what runs).
        Elsewhere: a line when nothing was said for ``every_s`` seconds (or with ``force``)."""
        now = (f"; {extra}" if extra else "") + (f"; running: {', '.join(running)}"
                                                 if running else "")
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self._status()}{now}")
            return
        if not force and time.time() - self.last < self.every_s:
            return
        self.last = time.time()
        self.say(f"  [{self.stage}] {self._status()}{now}")

    def close(self) -> None:
        """Remove the bar (the finished lines stay)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Ticking:
    """``with Ticking(progress, ["06_joint_scaling"]):`` keeps a stage that runs one long item
    in this process (a report notebook) visible: a background thread ticks ``progress`` every
    ``period_s`` seconds until the block ends, so a terminal's bar keeps counting and a log gets
    a line at least every ``every_s``."""

    def __init__(self, progress: Progress, running: list[str], period_s: float = 2.0):
        import threading

        self.progress, self.running, self.period_s = progress, running, period_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.time()
        while not self.stop.wait(self.period_s):
            self.progress.tick([f"{r} for {clock(time.time() - t0)}" for r in self.running])

    def __enter__(self) -> Ticking:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def run_estimate(cells_: list, cfg, jobs: int) -> str:
    """The size of a run and a rough time for it on a CPU like the reference machine, before it
    starts: every listed cell searched in full and evaluated (a resumed run takes less)."""
    from ..model.budget import parse_budget

    if not cells_:
        return "nothing to search"
    s, f = cfg.search, cfg.final
    epochs = sum(s.max_epochs) / 2
    trials = s.n_trials + (4 if s.enqueue_extremes else 0)  # up to 4 enqueued shapes
    roots = sum(math.sqrt(parse_budget(c.budget)) for c in cells_)
    search = (SEARCH_CELL_S * len(cells_)
              + SEARCH_S_PER_EPOCH_ROOT_N * trials * epochs * roots) / jobs
    final = (FINAL_CELL_S * len(cells_)
             + FINAL_S_PER_EPOCH_ROOT_N * f.seeds * f.top_k * epochs * roots) / jobs
    probes = " + up to 4 enqueued shapes" if s.enqueue_extremes else ""
    per_fold = " per rolling-origin test fold" if cfg.split.fold_years else ""
    return (f"size: {len(cells_)} cell(s) x {s.n_trials} trials{probes} ({len(cells_) * trials} "
            f"trials of {s.max_epochs[0]}-{s.max_epochs[1]} epochs), then {f.seeds} seed(s) x "
            f"{f.top_k} configuration(s) per cell; rough estimate on 2 CPU cores: search "
            f"~{clock(search)}, final evaluation ~{clock(final)}{per_fold} (scaled from the "
            f"default sweep's measured time by trials, epochs and the square root of each budget; "
            f"other data sizes, loads and GPUs differ)")
