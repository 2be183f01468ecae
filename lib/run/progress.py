"""What the driver says while a stage runs: a line per finished item, and while nothing finishes a
line at least every ``every_s`` seconds, each with items done of total, elapsed time and an
estimate of the time left from the items finished so far.

Plain lines rather than a redrawn bar: the same output reads well on a terminal, in CI and in a
log file, and a stage never goes silent for more than ``every_s`` seconds (the final evaluation
used to run for minutes without a word).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def clock(seconds: float) -> str:
    """``1:05`` for 65 s, ``1:02:05`` past an hour."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Progress of one stage of ``total`` items."""

    def __init__(self, stage: str, total: int, every_s: float = 20.0,
                 say: Callable[[str], None] = print):
        self.stage, self.total, self.every_s = stage, total, every_s
        self.say = say
        self.t0 = self.last = time.time()
        self.finished = 0

    def left(self) -> str:
        """The estimated time left: the stage's time per finished item so far (slots running
        side by side included), times the items not finished; unknown before the first ends."""
        if not self.finished:
            return "time left unknown until the first one ends"
        per_item = (time.time() - self.t0) / self.finished
        return f"~{clock(per_item * (self.total - self.finished))} left"

    def _status(self) -> str:
        return (f"{self.finished}/{self.total} done, elapsed {clock(time.time() - self.t0)}, "
                f"{self.left() if self.finished < self.total else 'stage finished'}")

    def done(self, item: str, what: str) -> None:
        """An item finished (``what``: its status and duration)."""
        self.finished += 1
        self.last = time.time()
        self.say(f"  [{self.stage} {self.finished}/{self.total}] {item}: {what} | "
                 f"{self._status()}")

    def tick(self, running: list[str] | None = None, force: bool = False) -> None:
        """A line when nothing was said for ``every_s`` seconds (or with ``force``)."""
        if not force and time.time() - self.last < self.every_s:
            return
        self.last = time.time()
        now = f"; running: {', '.join(running)}" if running else ""
        self.say(f"  [{self.stage}] {self._status()}{now}")
