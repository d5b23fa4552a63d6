"""One progress display for every long step: a rich bar on a terminal, a plain line otherwise.

Logs and CI capture standard error without a terminal, where a bar cannot redraw; there a line
with what is running, done/total, rate and ETA is printed every ``interval_s`` seconds (from a
background thread, so a slow first step still shows that the run is alive) and once at the end.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

#: Seconds between two plain progress lines.
PLAIN_INTERVAL_S = 10.0

#: ``update(done, total=None, *, done_before=0, detail="")``: also a valid ``progress(done, total)`` callback.
Update = Callable[..., None]


class PlainProgress:
    """A progress line (what, done/total, rate, ETA) written to a stream at a fixed interval."""

    def __init__(self, description: str, total: int, unit: str, stream: TextIO, interval_s: float = PLAIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.description, self.total, self.unit = description, total, unit
        self.stream, self.interval_s, self.clock = stream, interval_s, clock
        self.done, self.done_before, self.detail = 0, 0, ""
        self.started = clock()
        self.lines_written = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None

    def update(self, done: int, total: Optional[int] = None, *, done_before: int = 0, detail: str = "") -> None:
        """Record the progress; ``done_before`` steps were done before this run (not in the rate)."""
        with self._lock:
            self.done, self.done_before, self.detail = done, done_before, detail
            if total is not None:
                self.total = total

    def line(self) -> str:
        """The progress as one line of text."""
        with self._lock:
            elapsed = max(self.clock() - self.started, 0.0)
            rate = (self.done - self.done_before) / elapsed if elapsed > 0 else 0.0
            unit = f" {self.unit}" if self.unit else ""
            if self.total <= 0:  # the size of the job is not known yet
                return f"{self.description}: {self.detail or 'starting'}, elapsed {_duration(elapsed)}"
            text = f"{self.description}: {self.done}/{self.total}{unit}, elapsed {_duration(elapsed)}"
            if self.done >= self.total:
                text += ", finished"
            elif rate > 0:
                text += f", {rate:.3g}{unit}/s, ETA {_duration((self.total - self.done) / rate)}"
            else:
                text += ", ETA unknown"
            return text + (f"; {self.detail}" if self.detail else "")

    def write(self) -> None:
        """Write the current line."""
        self.stream.write(self.line() + "\n")
        self.stream.flush()
        self.lines_written += 1

    def __enter__(self) -> "PlainProgress":
        self._thread = threading.Thread(target=self._tick, name="progress-line", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lines_written:  # a run short enough to print nothing ends as quietly
            self.write()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.write()


@contextmanager
def progress(description: str, total: int, unit: str = "", *, quiet: bool = False, console: Optional[Console] = None,
             interval_s: float = PLAIN_INTERVAL_S) -> Iterator[Update]:
    """Show progress on stderr: a rich bar on a terminal, a plain line every ``interval_s`` otherwise.

    Yields ``update(done, total=None, *, done_before=0, detail="")``; ``quiet`` shows nothing.
    """
    console = console or Console(stderr=True)
    if quiet:
        yield lambda *args, **kwargs: None
    elif console.is_terminal:
        with _rich_bar(description, total, unit, console) as update:
            yield update
    else:
        with PlainProgress(description, total, unit, console.file, interval_s) as plain:
            yield plain.update


@contextmanager
def _rich_bar(description: str, total: int, unit: str, console: Console) -> Iterator[Update]:
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task: list[Any] = []

        def update(done: int, total_: Optional[int] = None, *, done_before: int = 0, detail: str = "") -> None:
            if not task:
                # Start at what was done before, so that it does not count towards the rate and ETA.
                task.append(bar.add_task(description, total=total_ or total, completed=done_before, detail=""))
            bar.update(task[0], completed=done, total=total_ or total, detail=detail)

        yield update


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
