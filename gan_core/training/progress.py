"""Training progress on a terminal: one live bar on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from gan_core.history_metrics import progress_text
from gan_core.training.loop import Progress


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class TerminalProgress:
    """Callable progress display; bar with ETA and losses on a TTY, a line every ~5% elsewhere."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        stream = stream or sys.stderr  # read now, not at import: tests and callers may replace sys.stderr
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self.first_step: int | None = None
        self.last_line = 0.0

    def __call__(self, progress: Progress) -> None:
        if self.first_step is None:  # the first call traces the step (and a resumed run has no rate yet): no ETA from it
            self.first_step = progress.step
            self.start = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line(progress))
            self.stream.flush()
        elif self._due(progress):
            self.stream.write(self.line(progress) + "\n")
            self.stream.flush()

    def _due(self, progress: Progress) -> bool:
        every = max(1, progress.total_steps // 20)
        now = time.monotonic()
        if progress.step % every == 0 or progress.step == progress.total_steps or now - self.last_line > 30:
            self.last_line = now
            return True
        return False

    def line(self, progress: Progress) -> str:
        done = progress.step / max(1, progress.total_steps)
        filled = int(done * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.monotonic() - self.start
        rate = (progress.step - (self.first_step or 0)) / max(elapsed, 1e-9)
        remaining = progress.total_steps - progress.step
        eta = format_duration(remaining / rate) if rate > 0 else "00:00" if remaining <= 0 else "--:--"
        row = progress.row
        return (
            f"[{bar}] {progress.step}/{progress.total_steps} epoch {progress.epoch} "
            f"ETA {eta} | {progress_text(progress.metrics, row)} "
            f"| {row['images_per_sec']:.0f} img/s"
        )

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
