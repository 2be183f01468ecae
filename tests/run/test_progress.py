"""The driver's progress lines (lib/run/progress.py): a line per finished item with done/total,
elapsed and an estimate of the time left, and a line while nothing finishes, never silence."""

import time

from lib.run.progress import Progress, clock


def test_clock_reads_minutes_and_hours():
    assert clock(5) == "0:05" and clock(65) == "1:05" and clock(3725) == "1:02:05"


def test_each_finished_item_says_where_the_stage_is(monkeypatch):
    lines, now = [], [1000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    p = Progress("final", 4, every_s=20, say=lines.append)
    assert "unknown" in p.left()
    now[0] += 60
    p.done("10k-h1", "evaluated")
    assert lines[-1] == "  [final 1/4] 10k-h1: evaluated | 1/4 done, elapsed 1:00, ~3:00 left"
    now[0] += 10
    p.tick(["10k-h3"])
    assert len(lines) == 1  # something was said 10 s ago
    now[0] += 15
    p.tick(["10k-h3"])
    assert lines[-1].startswith("  [final] 1/4 done, elapsed 1:25") and "running: 10k-h3" in \
        lines[-1]
    for cell in ("10k-h3", "10k-h5", "30k-h1"):
        p.done(cell, "evaluated")
    assert lines[-1].endswith("4/4 done, elapsed 1:25, stage finished")
