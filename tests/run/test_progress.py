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


def test_the_time_left_weighs_cells_by_their_cost(monkeypatch):
    """The largest cells run first: counted alike, one 320k cell done in 100 s predicts 300 s
    for three 10k cells that take about 55; weighted by the square root of the budget, ~53 s."""
    from lib.run.sweep import cost_weights
    from lib.search.cells import Cell

    now = [0.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    todo = [Cell(f"{b}-h{h}", b, h) for b, h in (("320k", 1), ("10k", 1), ("10k", 3), ("10k", 5))]
    alike, weighted = Progress("search", 4, say=print), Progress("search", 4, say=print,
                                                                  weights=cost_weights(todo))
    now[0] = 100.0
    for p in (alike, weighted):
        p.done("320k-h1", "done")
    assert alike.left() == "~5:00 left"
    assert weighted.left() == "~0:53 left"


class _Terminal:
    """A stream that says it is a terminal and keeps what is written to it."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_on_a_terminal_a_bar_is_redrawn_and_finished_lines_stay(monkeypatch, capsys):
    now = [0.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    term, lines = _Terminal(), []
    p = Progress("search", 2, say=lines.append, bar=True, stream=term)
    now[0] = 3.0
    p.tick(["10k-h1 for 0:03"], extra="5 trial record(s) in these cells")
    assert "0/2 done" in term.text and "5 trial record(s)" in term.text and not lines
    now[0] = 60.0
    p.done("10k-h1", "done in 60 s")
    assert "1/2 done, elapsed 1:00, ~1:00 left" in term.text  # the bar
    # the finished line is printed above the bar, on the driver's output
    assert "[search 1/2] 10k-h1: done in 60 s | 1/2 done, elapsed 1:00, ~1:00 left" in \
        capsys.readouterr().out
    p.done("10k-h3", "done in 60 s")
    assert p.bar is None and not lines  # closed at the end; nothing went to the plain lines


def test_the_run_is_sized_and_estimated_before_it_starts():
    from lib.run.progress import run_estimate
    from lib.search.cells import cells
    from lib.search.sweepfile import load_sweep

    cfg = load_sweep("default")
    text = run_estimate(cells("default", cfg), cfg, cfg.jobs)
    assert text.startswith("size: 12 cell(s) x 8 trials (96 trials of 4-10 epochs)")
    # the reference run itself: its measured search (5:08) and final evaluation (3:13)
    assert "search ~5:08" in text and "final evaluation ~3:13" in text, text


def test_a_long_report_is_never_silent():
    """A report notebook runs for minutes in the driver's own process (the panel's joint report
    took over 3): a ticker keeps saying what runs and for how long."""
    import time

    from lib.run.progress import Progress, Ticking

    lines: list[str] = []
    prog = Progress("report", 2, every_s=0.05, say=lines.append, bar=False)
    with Ticking(prog, ["06_joint_scaling"], period_s=0.02):
        time.sleep(0.3)
    prog.done("06_joint_scaling", "rendered in 0 s")
    ticks = [x for x in lines if "running: 06_joint_scaling for" in x]
    assert len(ticks) >= 2 and "[report 1/2] 06_joint_scaling: rendered" in lines[-1]
