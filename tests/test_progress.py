"""The terminal progress display."""

import io

from gan_core.history_metrics import ADVERSARIAL_METRICS
from gan_core.training.loop import Progress
from gan_core.training.progress import TerminalProgress, format_duration

ROW = {"g_loss": 0.75, "d_loss": 1.25, "images_per_sec": 1234.0}


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_durations():
    assert format_duration(0) == "00:00" and format_duration(75) == "01:15" and format_duration(3725) == "1:02:05"


def test_tty_redraws_one_line_with_bar_eta_and_losses():
    stream = FakeTTY()
    show = TerminalProgress(stream, width=10)
    show(Progress(step=5, total_steps=10, epoch=1, row=ROW, seconds=0.5, metrics=ADVERSARIAL_METRICS))
    show.close()
    text = stream.getvalue()
    assert text.startswith("\r[#####-----] 5/10 epoch 1 ETA ")
    assert "G 0.750 D 1.250 | 1234 img/s" in text and text.endswith("\n")


def test_pipe_gets_the_first_step_then_a_line_every_five_percent():
    stream = io.StringIO()
    show = TerminalProgress(stream)
    for step in range(1, 101):
        show(Progress(step=step, total_steps=100, epoch=1, row=ROW, seconds=0.01, metrics=ADVERSARIAL_METRICS))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 21 and "\r" not in stream.getvalue()
    assert lines[0].split()[1] == "1/100" and lines[1].split()[1] == "5/100"
    assert lines[-1].startswith("[" + "#" * 30 + "] 100/100")


def test_a_resumed_run_shows_no_eta_until_steps_after_its_first_call_are_timed(monkeypatch):
    """The first call of a session traces the step: its seconds would give an ETA of hours (6 img/s after a resume)."""
    clock = [100.0]
    monkeypatch.setattr("gan_core.training.progress.time.monotonic", lambda: clock[0])
    stream = io.StringIO()
    show = TerminalProgress(stream)
    show(Progress(step=141, total_steps=1400, epoch=2, row=ROW, seconds=8.0, metrics=ADVERSARIAL_METRICS))
    clock[0] += 0.69  # 100 steps a second from here
    show(Progress(step=210, total_steps=1400, epoch=2, row=ROW, seconds=0.01, metrics=ADVERSARIAL_METRICS))
    first, second = stream.getvalue().splitlines()
    assert "141/1400" in first and "ETA --:-- |" in first
    assert "210/1400" in second and "ETA 00:11 |" in second  # (1400 - 210) / 100 = 11.9 s
