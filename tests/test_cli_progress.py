"""The CLI's one progress display: plain lines with rate and ETA off a terminal, a rich bar on one."""

from __future__ import annotations

import io
import time

from rich.console import Console

from neurodtco.cli.progress import PlainProgress, progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_line_says_what_runs_done_total_rate_and_eta():
    clock = FakeClock()
    line = PlainProgress("study quick", 0, "tasks", io.StringIO(), clock=clock)
    assert line.line() == "study quick: starting, elapsed 0 s"
    # Resumed run: 4 tasks were done before; 6 more in 20 s is 0.3 tasks/s, 20 left take 67 s.
    clock.now += 20
    line.update(10, 30, done_before=4, detail="1,200 inferences/s")
    assert line.line() == ("study quick: 10/30 tasks, elapsed 20 s, 0.3 tasks/s, ETA 1 min 07 s; "
                           "1,200 inferences/s")
    clock.now += 3600
    line.update(30)
    assert line.line() == "study quick: 30/30 tasks, elapsed 1 h 00 min, finished"


def test_plain_line_without_progress_has_no_eta():
    clock = FakeClock()
    line = PlainProgress("training", 300, "epochs", io.StringIO(), clock=clock)
    clock.now += 12
    assert line.line() == "training: 0/300 epochs, elapsed 12 s, ETA unknown"


def test_plain_lines_come_every_interval_and_once_at_the_end():
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=False)
    with progress("training", 10, "epochs", console=console, interval_s=0.05) as update:
        update(3, 10)
        time.sleep(0.32)
        update(10, 10)
    lines = stream.getvalue().splitlines()
    assert 4 <= len(lines) <= 8, lines
    assert all(ln.startswith("training: ") for ln in lines)
    assert lines[0].startswith("training: 3/10 epochs")
    assert lines[-1].startswith("training: 10/10 epochs") and lines[-1].endswith("finished")


def test_a_short_step_off_a_terminal_prints_nothing():
    stream = io.StringIO()
    with progress("training", 10, "epochs", console=Console(file=stream, force_terminal=False)) as update:
        update(10, 10)
    assert stream.getvalue() == ""


def test_quiet_prints_nothing_and_a_terminal_gets_the_rich_bar():
    stream = io.StringIO()
    with progress("x", 5, quiet=True, console=Console(file=stream, force_terminal=True), interval_s=0.01) as update:
        update(2, 5)
        time.sleep(0.05)
    assert stream.getvalue() == ""
    terminal = io.StringIO()
    with progress("characterizing", 4, "points", console=Console(file=terminal, force_terminal=True)) as update:
        update(2, 4)
    shown = terminal.getvalue()
    assert "characterizing" in shown and "2/4" in shown and "━" in shown


def test_before_the_size_is_known_the_line_says_what_is_happening():
    clock = FakeClock()
    line = PlainProgress("study fashion-cnn", 0, "tasks", io.StringIO(), clock=clock)
    clock.now += 70
    line.update(0, 0, detail="training the network, epoch 3 of 10")
    assert line.line() == "study fashion-cnn: training the network, epoch 3 of 10, elapsed 1 min 10 s"
