"""Training jobs: every run trains in its own worker process, at most `max_jobs()` at a time.

`start_job` launches `python -m gan_core work RUN_ID` in a new session, so a page rerun, a
closed tab or a restarted Streamlit server never stops it; pages only read the run store.

The queue needs no daemon. Each worker calls `wait_for_turn` before it imports TensorFlow:
under an exclusive `flock` on `<store>/.queue.lock` it counts the running runs and the queued
runs whose worker is alive (oldest `queued_at` first, falling back to `created`), and claims
its run (state "running") once it is among the first K - running of them. Launching,
stopping a queued run and claiming all happen under that lock, so two workers never take
the same slot and a stopped queued run is never claimed. A run's status.json names the pid
of the one worker that owns it; a worker that finds another live pid there exits.

This module imports no TensorFlow.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from gan_core.config import RunConfig
from gan_core.errors import ConfigError, RunError
from gan_core.history_metrics import from_status, headline
from gan_core.store.runs import ACTIVE_STATES, Run, RunStore, atomic_write_text, pid_alive

MAX_JOBS_ENV = "GAN_MAX_JOBS"
# Default 1: TensorFlow already spreads one training step over every core, so on a small CPU
# (this machine has 2 cores) a second concurrent job only halves the speed of both and adds
# thread contention and memory; queued runs start as soon as the running one ends.
DEFAULT_MAX_JOBS = 1
RESUMABLE_STATES = ("stopped", "crashed", "finished", "diverged")
RESUME_CHANGES = ("epochs", "steps", "time_limit", "sample_every", "checkpoint_every", "eval_every")
RECENT_STEPS = 50  # history rows behind the ETA and throughput
PROJECT_DIR = Path(__file__).resolve().parents[2]


def max_jobs() -> int:
    """How many runs may train at once: $GAN_MAX_JOBS, default 1."""
    text = os.environ.get(MAX_JOBS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_JOBS
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{MAX_JOBS_ENV} must be a whole number of at least 1; got '{text}'.")
    return int(text)


# ---- launching and controlling jobs ---------------------------------------------------------
def start_job(store: RunStore, config: RunConfig, tags: dict[str, Any] | None = None) -> Run:
    """Create a queued run and launch its worker; return the run at once. `tags` go to status.json (a sweep's id and trial)."""
    max_jobs()
    with _refused_by_disk(store, "start the run"):
        run = store.create(config)
        try:
            with _queue_lock(store):
                worker = _launch(store, run, resume=False)
                run.update_status(pid=worker.pid, host=socket.gethostname(), queued_at=time.time(), **(tags or {}))
        except OSError:
            shutil.rmtree(run.dir, ignore_errors=True)  # no half-made run left queued forever
            raise
    return run


def resume_job(store: RunStore, run_id: str, changes: dict[str, Any] | None = None) -> Run:
    """Queue a stopped, crashed, finished or diverged run again, with schedule changes applied."""
    max_jobs()
    run = store.get(run_id)
    changes = dict(changes or {})
    for key in changes:
        if key not in RESUME_CHANGES:
            raise RunError(f"Only the schedule can change on resume ({', '.join(RESUME_CHANGES)}); '{key}' cannot.")
    with _refused_by_disk(store, f"resume run '{run.id}'"), _queue_lock(store):
        state = job_status(run)["state"]
        if state not in RESUMABLE_STATES:
            raise RunError(f"Run '{run.id}' is {state}; only a stopped, crashed, finished or diverged run can be resumed.")
        if changes:
            atomic_write_text(run.config_path, run.config().replace(**changes).to_json())
        run.stop_path.unlink(missing_ok=True)
        resume = has_checkpoint(run)
        if not resume:
            run.truncate_history(0)
        # total_steps is the worker's to write: until it does, the page says "starting", not "step 420 / 420, 0:00 left"
        run.update_status(state="queued", message="", finished=None, pid=None, queued_at=time.time(), total_steps=None)
        try:
            worker = _launch(store, run, resume=resume)
        except OSError:
            run.update_status(state=state, queued_at=None)  # still resumable, not queued with no worker
            raise
        run.update_status(pid=worker.pid, host=socket.gethostname())
    return run


@contextlib.contextmanager
def _refused_by_disk(store: RunStore, what: str) -> Iterator[None]:
    """A run store that cannot be written (full, read-only, not a folder) becomes one sentence."""
    try:
        yield
    except OSError as exc:
        raise RunError(f"Could not {what} in {store.root}: {exc.strerror or type(exc).__name__}.") from None


def schedule_unit(config: RunConfig) -> str:
    """The unit a run's schedule counts in: steps when `steps` is set, else epochs."""
    return "steps" if config.steps else "epochs"


def more_training(config: RunConfig, amount: int) -> dict[str, int]:
    """The schedule change that trains `amount` more epochs (or steps, for a run scheduled in steps), lifting any time limit."""
    unit = schedule_unit(config)
    return {unit: getattr(config, unit) + amount} | ({"time_limit": 0} if config.time_limit else {})


def stop_job(run: Run) -> None:
    """Stop a run: a queued one at once, a running one after its current step (with a checkpoint)."""
    with _queue_lock(RunStore(run.dir.parent)):
        state = run.status()["state"]
        if state == "queued":
            run.update_status(state="stopped", message="Stopped before training started.", finished=time.time())
            return
    if state == "running":
        run.request_stop()


def has_checkpoint(run: Run) -> bool:
    """True when the run has saved a checkpoint, or left checkpoint files without their index.

    Either way resume must restore one or refuse in a sentence; only a run with no checkpoint
    files at all restarts from step 0.
    """
    folder = run.checkpoints_dir
    return (folder / "checkpoint").exists() or any(folder.glob("ckpt-*.index"))


def _launch(store: RunStore, run: Run, resume: bool) -> subprocess.Popen:
    """Start the worker detached from this process, its output going to worker.log."""
    return spawn_detached(["work", run.id, "--runs-dir", str(store.root.resolve()), *(["--resume"] if resume else [])], run.dir / "worker.log")


def spawn_detached(arguments: list[str], log_path: Path) -> subprocess.Popen:
    """Run `python -m gan_core ARGUMENTS` in a new session (no page rerun or server restart stops it), output appended to log_path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_DIR), env.get("PYTHONPATH")]))
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gan_core", *arguments], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )


# ---- the queue ------------------------------------------------------------------------------
@contextlib.contextmanager
def _queue_lock(store: RunStore) -> Iterator[None]:
    store.root.mkdir(parents=True, exist_ok=True)
    with open(store.root / ".queue.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def wait_for_turn(store: RunStore, run: Run, poll: float = 0.5) -> bool:
    """Block until this worker may train `run` (then it is "running"); False if it was stopped or deleted."""
    while True:
        with _queue_lock(store):
            verdict = _try_claim(store, run)
        if verdict is not None:
            return verdict
        time.sleep(poll)


def _try_claim(store: RunStore, run: Run) -> bool | None:
    """True: claimed; False: give up (stopped, deleted, owned by another worker); None: keep waiting."""
    me, host = os.getpid(), socket.gethostname()
    try:
        status = run.raw_status()
        if status["state"] != "queued":
            return False
        if status.get("pid") != me:
            if _worker_alive(status):
                return False
            run.update_status(pid=me, host=host)
        running, waiting = _queue_snapshot(store)
        if run.id in waiting[: max(0, max_jobs() - running)]:
            run.update_status(state="running", pid=me, host=host, message="Starting: loading TensorFlow and the data.")
            return True
    except (RunError, OSError):
        return False
    return None


def _worker_alive(status: dict[str, Any]) -> bool:
    """Whether the worker named in a status may still be alive (pids on other hosts are trusted)."""
    pid = status.get("pid")
    if not isinstance(pid, int):
        return False
    return status.get("host") not in (None, socket.gethostname()) or pid_alive(pid)


def _queue_snapshot(store: RunStore) -> tuple[int, list[str]]:
    """The number of running runs and the ids of queued runs with a live worker, first in line first."""
    running, waiting = 0, []
    for run in store.list():
        try:
            status = run.status()
        except RunError:
            continue
        if status["state"] == "running":
            running += 1
        elif status["state"] == "queued" and _worker_alive(status):
            waiting.append((status.get("queued_at") or status.get("created") or 0.0, run.id))
    return running, [run_id for _, run_id in sorted(waiting)]


def queue_position(store: RunStore, run: Run) -> int | None:
    """1-based place of a queued run among the runs waiting for a slot; None when not waiting."""
    _, waiting = _queue_snapshot(store)
    return waiting.index(run.id) + 1 if run.id in waiting else None


def is_active(run: Run) -> bool:
    """True while the run is queued or training (so the page keeps polling it)."""
    return job_status(run)["state"] in ACTIVE_STATES


def job_status(run: Run) -> dict[str, Any]:
    """`run.status()`, with a queued run whose waiting worker died reported as crashed too."""
    status = run.status()
    if status["state"] == "queued" and isinstance(status.get("pid"), int) and not _worker_alive(status):
        status["state"] = "crashed"
        status["message"] = "The worker waiting for this run's turn ended before training started."
    return status


# ---- what the Train page shows ------------------------------------------------------------
@dataclass(frozen=True)
class JobWarning:
    """One problem to show: level "error" or "warning" and a sentence with what to try."""

    level: str
    text: str


@dataclass(frozen=True)
class JobView:
    """A snapshot of a job for display."""

    run_id: str
    state: str
    step: int
    total_steps: int | None
    epoch: int
    progress: float
    eta_seconds: float | None
    images_per_sec: float | None
    headline: tuple[tuple[str, float | None], ...]  # (label, latest value) of the family's headline metrics
    message: str
    queue_position: int | None
    warnings: list[JobWarning] = field(default_factory=list)
    slot_free: bool = False  # queued with a free training slot: its worker is starting and takes it at once
    stopping: bool = False  # running, asked to stop: it finishes the current step and saves a checkpoint
    start_step: int | None = None  # the step this worker started (or resumed) from, until its first call is done
    resume_from: int | None = None  # a resumed job's checkpoint step, while its worker starts (before it sets total_steps)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def resumable(self) -> bool:
        return self.state in RESUMABLE_STATES


def job_state(run: Run) -> JobView:
    """Read a run's status and the end of its history into what the Train page renders."""
    status = job_status(run)
    recent = run.history_tail(RECENT_STEPS)
    state, step, total = status["state"], int(status.get("step") or 0), status.get("total_steps")
    last = recent[-1] if recent else {}
    store = RunStore(run.dir.parent)
    position = queue_position(store, run) if state == "queued" else None
    start = status.get("start_step")
    return JobView(
        run_id=run.id,
        state=state,
        step=step,
        total_steps=total,
        epoch=int(last.get("epoch", 0)),
        progress=min(1.0, step / total) if total else 0.0,
        eta_seconds=_eta(recent, step, total) if state == "running" else None,
        images_per_sec=statistics.median(r["images_per_sec"] for r in recent) if recent else None,
        headline=tuple((m.label, last.get(m.name)) for m in headline(from_status(status))),
        message=status.get("message") or "",
        queue_position=position,
        warnings=_warnings(run, status),
        slot_free=position is not None and position <= max_jobs() - _queue_snapshot(store)[0],
        stopping=state == "running" and run.stop_requested(),
        start_step=start if state == "running" and start == step else None,
        resume_from=status.get("last_checkpoint_step") if state in ACTIVE_STATES and not total else None,
    )


def _eta(recent: list[dict[str, float]], step: int, total: int | None) -> float | None:
    """Seconds left at the recent step rate (training time only: sampling and checkpoints add a little)."""
    if not total or len(recent) < 2:
        return None
    seconds = recent[-1]["elapsed_sec"] - recent[0]["elapsed_sec"]
    steps = recent[-1]["step"] - recent[0]["step"]
    if seconds <= 0 or steps <= 0:
        return None
    return max(0.0, (total - step) * seconds / steps)


def _warnings(run: Run, status: dict[str, Any]) -> list[JobWarning]:
    found = []
    if status["state"] == "diverged":
        found.append(JobWarning("error", status.get("message") or "Training diverged."))
    if status["state"] == "crashed":
        found.append(JobWarning("error", _crash_text(run, status)))
    if status.get("warning"):
        found.append(JobWarning("warning", status["warning"]))
    return found


def _crash_text(run: Run, status: dict[str, Any]) -> str:
    text = status.get("message") or "The training process ended unexpectedly."
    if "resume" in text.lower():
        return text
    if has_checkpoint(run):
        where = status.get("last_checkpoint_step")
        return f"{text} Resume continues from the last checkpoint" + (f" (step {where})." if where is not None else ".")
    return f"{text} Resume starts it again from step 0 (there is no checkpoint yet)."


def log_tail(run: Run, lines: int = 20) -> str:
    """The last lines of the worker's log (its progress bar and any traceback)."""
    try:
        text = (run.dir / "worker.log").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])


def format_duration(seconds: float) -> str:
    """Seconds as m:ss, or h:mm:ss from an hour on."""
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _starting_from(step: int | None) -> str:
    """How a starting worker's line begins: "Resuming from step N" after a checkpoint, else "Starting"."""
    return f"Resuming from step {step:,}" if step else "Starting"


def progress_text(view: JobView) -> str:
    """The line under the progress bar: what the job is doing now (starting, step and time left, stopping)."""
    if view.state == "queued" and view.slot_free:
        return f"Resuming from step {view.resume_from:,}: starting the worker process." if view.resume_from else "Starting the worker process."
    if view.state == "queued":
        place = f" (position {view.queue_position} in the queue)" if view.queue_position else ""
        return f"Queued{place}: waiting for a free training slot."
    if view.stopping:
        return "Stopping: finishing the current step and saving a checkpoint."
    if not view.total_steps and view.active:
        return f"{_starting_from(view.resume_from)}: loading TensorFlow and the data."
    if not view.total_steps:
        return f"{view.state.capitalize()} before training started."
    if view.start_step is not None:
        return f"{_starting_from(view.start_step)}: building the networks and compiling the training step (the first call takes longest)."
    text = f"{view.state.capitalize()}: step {view.step:,} / {view.total_steps or 0:,}, epoch {view.epoch}"
    if view.eta_seconds is not None:
        text += f", about {format_duration(view.eta_seconds)} left"
    return text
