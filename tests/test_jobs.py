"""Worker jobs: real worker processes, the flock queue, stop/resume, crashes and what the page shows."""

import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from gan_core.config import RunConfig
from gan_core.errors import ConfigError, RunError
from gan_core.store import jobs
from gan_core.store.runs import RunStore, pid_alive
from tests.waiting import wait_for

TIMEOUT = 120


def tiny(**changes) -> RunConfig:
    base = dict(
        dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3, seed=1,
    )
    return RunConfig(**(base | changes))


def state(run) -> str:
    return jobs.job_state(run).state


def history_steps(run) -> list[int]:
    return [int(row["step"]) for row in run.history_rows()]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def store(job_store):
    return job_store


# ---- real workers ---------------------------------------------------------------------------
def test_start_job_trains_in_a_detached_worker_to_the_end(store):
    run = jobs.start_job(store, tiny())
    status = run.raw_status()
    assert status["host"] == socket.gethostname()
    assert os.getsid(status["pid"]) == status["pid"]  # its own session: a page rerun or server restart cannot kill it
    wait_for(lambda: state(run) == "finished", what="the run to finish")
    assert history_steps(run) == [1, 2, 3, 4, 5, 6]
    assert [p.name for p in run.sample_paths()] == ["step_000000.png", "step_000003.png", "step_000006.png"]
    view = jobs.job_state(run)
    assert view.progress == 1.0 and view.step == view.total_steps == 6 and view.epoch == 1
    assert view.warnings == [] and view.images_per_sec > 0 and view.eta_seconds is None
    assert "finished at step 6" in (run.dir / "worker.log").read_text()


def test_stop_checkpoints_and_resume_continues_without_gaps(store):
    run = jobs.start_job(store, tiny(steps=2000, sample_every=100, checkpoint_every=1000))
    wait_for(lambda: run.status()["step"] >= 5, what="a few steps")
    with pytest.raises(RunError, match="is running"):
        jobs.resume_job(store, run.id)
    jobs.stop_job(run)
    wait_for(lambda: state(run) == "stopped", what="the stop")
    stopped = run.status()
    assert stopped["step"] < 2000 and stopped["last_checkpoint_step"] == stopped["step"]
    assert jobs.has_checkpoint(run) and not jobs.job_state(run).warnings

    with pytest.raises(RunError, match="'loss' cannot"):
        jobs.resume_job(store, run.id, {"loss": "hinge"})
    jobs.resume_job(store, run.id, {"steps": stopped["step"] + 4})
    assert run.raw_status()["state"] == "queued" and not run.stop_requested()
    wait_for(lambda: state(run) == "finished", what="the resumed run to finish")
    assert run.config().steps == stopped["step"] + 4
    assert history_steps(run) == list(range(1, stopped["step"] + 5))


def test_the_queue_runs_one_job_at_a_time_and_survives_stops_and_crashes(store):
    first = jobs.start_job(store, tiny(steps=2000, checkpoint_every=1000, sample_every=1000))
    second = jobs.start_job(store, tiny())
    third = jobs.start_job(store, tiny())
    wait_for(lambda: state(first) == "running", what="the first job to start")
    assert [jobs.job_state(r).queue_position for r in (first, second, third)] == [None, 1, 2]
    assert jobs.progress_text(jobs.job_state(second)).startswith("Queued (position 1 in the queue)")

    third_worker = third.raw_status()["pid"]
    jobs.stop_job(third)
    assert third.raw_status()["state"] == "stopped"
    wait_for(lambda: not pid_alive(third_worker), what="the stopped queued worker to exit")
    assert third.history_rows() == [] and third.sample_paths() == []
    assert "not trained" in jobs.log_tail(third)
    assert jobs.progress_text(jobs.job_state(third)) == "Stopped before training started."

    assert state(second) == "queued"
    os.kill(first.raw_status()["pid"], signal.SIGKILL)
    view = wait_for(lambda: (v := jobs.job_state(first)).state == "crashed" and v, what="the crash to show")
    assert view.resumable and [w.level for w in view.warnings] == ["error"]
    assert "resume continues from the last checkpoint" in view.warnings[0].text.lower()

    wait_for(lambda: state(second) == "finished", what="the queued job to run after the first")
    assert history_steps(second) == [1, 2, 3, 4, 5, 6]
    assert state(third) == "stopped"


# ---- the queue logic in-process (no TensorFlow) ---------------------------------------------
def test_wait_for_turn_claims_in_order_and_gives_up_when_stopped_or_deleted(store, monkeypatch):
    first, second, third, fourth = (store.create(tiny()) for _ in range(4))
    kept_waiting = collections.Counter()
    claim = jobs._try_claim

    def counted(store, run):
        verdict = claim(store, run)
        kept_waiting[run.id] += verdict is None
        return verdict

    monkeypatch.setattr(jobs, "_try_claim", counted)
    assert jobs.wait_for_turn(store, first, poll=0.01)
    assert first.raw_status()["state"] == "running" and first.raw_status()["pid"] == os.getpid()

    results = {}
    waiters = [
        threading.Thread(target=lambda r=r: results.__setitem__(r.id, jobs.wait_for_turn(store, r, poll=0.02)))
        for r in (second, third, fourth)
    ]
    for waiter in waiters:
        waiter.start()
    wait_for(lambda: all(kept_waiting[r.id] >= 3 for r in (second, third, fourth)), timeout=5, what="three polls by each waiter")
    assert results == {} and second.raw_status()["state"] == "queued"
    jobs.stop_job(third)
    wait_for(lambda: third.id in results, timeout=5, what="the stopped waiter")
    assert results[third.id] is False and second.id not in results
    store.delete(fourth.id)
    wait_for(lambda: fourth.id in results, timeout=5, what="the deleted waiter")
    assert results[fourth.id] is False and second.id not in results

    first.update_status(state="finished")
    wait_for(lambda: second.id in results, timeout=5, what="the next waiter")
    assert results[second.id] is True and second.raw_status()["state"] == "running"
    for waiter in waiters:
        waiter.join()


def test_wait_for_turn_leaves_a_run_owned_by_another_live_worker(store):
    run = store.create(tiny())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        run.update_status(pid=sleeper.pid, host=socket.gethostname())
        assert jobs.wait_for_turn(store, run, poll=0.01) is False
        assert run.raw_status()["state"] == "queued"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert jobs.wait_for_turn(store, run, poll=0.01) is True  # its owner is gone: this worker takes it


def test_max_jobs_reads_the_environment(store, monkeypatch):
    monkeypatch.delenv("GAN_MAX_JOBS")
    assert jobs.max_jobs() == 1
    monkeypatch.setenv("GAN_MAX_JOBS", "3")
    assert jobs.max_jobs() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("GAN_MAX_JOBS", bad)
        with pytest.raises(ConfigError, match="GAN_MAX_JOBS must be a whole number"):
            jobs.start_job(store, tiny())
    assert store.list() == []


def test_a_dead_waiting_worker_shows_as_crashed_and_can_be_queued_again(store):
    run = store.create(tiny())
    run.update_status(pid=dead_pid(), host=socket.gethostname())
    view = jobs.job_state(run)
    assert view.state == "crashed" and view.resumable and view.queue_position is None
    assert "Resume starts it again from step 0" in view.warnings[0].text
    assert jobs.log_tail(run) == ""
    (run.dir / "worker.log").write_text("start\n[#---] 1/6\r[##--] 2/6\rTraceback: boom\n")
    assert jobs.log_tail(run, lines=2) == "[##--] 2/6\nTraceback: boom"
    queued = store.create(tiny())
    with pytest.raises(RunError, match="is queued"):
        jobs.resume_job(store, queued.id)


# ---- what the page shows --------------------------------------------------------------------
def rows(n: int, d_fake: float, d_loss: float) -> list[dict]:
    return [
        dict(step=i + 1, epoch=1, g_loss=3.0, d_loss=d_loss, d_real=0.99, d_fake=d_fake,
             g_grad_norm=1.0, d_grad_norm=1.0, images_per_sec=160.0, elapsed_sec=0.1 * (i + 1))
        for i in range(n)
    ]


def test_job_state_eta_headline_and_the_warning_the_worker_wrote(store):
    run = store.create(tiny(steps=100))
    run.append_history(rows(50, d_fake=0.01, d_loss=0.05))
    run.update_status(state="running", step=50, total_steps=100, pid=os.getpid(), host=socket.gethostname(),
                      warning="The discriminator is overpowering the generator.")
    view = jobs.job_state(run)
    assert view.progress == 0.5 and view.eta_seconds == pytest.approx(50 * 4.9 / 49)
    assert view.images_per_sec == 160.0 and view.headline == (("G loss", 3.0), ("D loss", 0.05)) and view.active
    assert [(w.level, w.text) for w in view.warnings] == [("warning", "The discriminator is overpowering the generator.")]
    assert "about 0:05 left" in jobs.progress_text(view)


def test_the_overpowering_rule_of_the_adversarial_families():
    from gan_core import families

    dcgan = families.get("dcgan")
    warning = dcgan.warning(tiny(steps=100), rows(50, d_fake=0.01, d_loss=0.05))
    assert "overpowering" in warning and "label_smoothing" in warning
    assert dcgan.warning(tiny(steps=100), rows(50, d_fake=0.4, d_loss=1.2)) is None
    assert dcgan.warning(tiny(steps=100), rows(49, d_fake=0.01, d_loss=0.05)) is None  # too few steps to judge
    assert dcgan.warning(tiny(steps=100, loss="wgan-gp"), rows(50, d_fake=0.01, d_loss=0.05)) is None  # bce/minimax only


def test_job_state_reports_divergence_and_schedules_more_training(store):
    run = store.create(tiny())
    run.update_status(state="diverged", step=4, total_steps=6, message="Training diverged at step 5 (g_loss=nan).")
    view = jobs.job_state(run)
    assert view.resumable and not view.active
    assert [(w.level, w.text) for w in view.warnings] == [("error", "Training diverged at step 5 (g_loss=nan).")]
    assert jobs.more_training(tiny(steps=6), 10) == {"steps": 16}
    assert jobs.more_training(tiny(steps=0, epochs=2), 3) == {"epochs": 5}
    assert jobs.format_duration(3725) == "1:02:05" and jobs.format_duration(65) == "1:05"


def test_checkpoint_files_without_their_state_file_still_count_so_resume_never_restarts_from_scratch(job_store):
    run = job_store.create(RunConfig(steps=6))
    assert not jobs.has_checkpoint(run)
    run.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    (run.checkpoints_dir / "ckpt-4.index").write_bytes(b"")
    assert jobs.has_checkpoint(run), "resume must read or refuse these, not train over them from step 0"


def test_a_store_that_cannot_be_written_refuses_start_in_one_sentence(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    store = RunStore(tmp_path / "file" / "runs")
    with pytest.raises(RunError) as caught:
        jobs.start_job(store, tiny())
    assert str(caught.value) == f"Could not start the run in {store.root}: Not a directory."


def test_a_worker_that_cannot_launch_leaves_no_queued_run_behind(store, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(store.root / "no-python-here"))
    with pytest.raises(RunError) as caught:
        jobs.start_job(store, tiny())
    assert str(caught.value) == f"Could not start the run in {store.root}: No such file or directory."
    assert store.list() == [], "the half-made run is removed"

    monkeypatch.undo()
    run = store.create(tiny())
    run.update_status(state="stopped")
    monkeypatch.setattr(sys, "executable", str(store.root / "no-python-here"))
    with pytest.raises(RunError) as caught:
        jobs.resume_job(store, run.id, {"steps": 9})
    assert str(caught.value) == f"Could not resume run '{run.id}' in {store.root}: No such file or directory."
    assert state(run) == "stopped" and jobs.job_state(run).resumable


def test_the_progress_line_says_what_is_happening_while_a_job_starts_stops_and_resumes(store, monkeypatch):
    """Starting the worker, compiling the first step, stopping, resuming: never a stale 'step 0' or '420 / 420, 0:00 left'."""
    here = dict(pid=os.getpid(), host=socket.gethostname())
    run = store.create(tiny(steps=420))
    run.update_status(state="queued", queued_at=time.time(), **here)
    assert jobs.progress_text(jobs.job_state(run)) == "Starting the worker process."  # a free slot: nothing to wait for
    busy = store.create(tiny())
    busy.update_status(state="running", **here)
    assert jobs.progress_text(jobs.job_state(run)) == "Queued (position 1 in the queue): waiting for a free training slot."
    busy.update_status(state="finished")

    run.update_status(state="running", step=0, start_step=0, total_steps=420)
    assert jobs.progress_text(jobs.job_state(run)).startswith("Starting: building the networks and compiling the training step")
    run.append_history(rows(2, d_fake=0.5, d_loss=1.0))
    run.update_status(step=2)
    assert jobs.progress_text(jobs.job_state(run)).startswith("Running: step 2 / 420")
    run.request_stop()
    view = jobs.job_state(run)
    assert view.stopping and jobs.progress_text(view) == "Stopping: finishing the current step and saving a checkpoint."

    run.update_status(state="finished", step=420, last_checkpoint_step=420, pid=None)
    run.stop_path.unlink()
    monkeypatch.setattr(jobs, "_launch", lambda store, run, resume: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]))
    jobs.resume_job(store, run.id, {"steps": 920})
    try:
        assert jobs.progress_text(jobs.job_state(run)) == "Resuming from step 420: starting the worker process."
        run.update_status(state="running")  # the worker claimed its slot and imports TensorFlow
        assert jobs.progress_text(jobs.job_state(run)) == "Resuming from step 420: loading TensorFlow and the data."
        run.update_status(state="running", step=420, start_step=420, total_steps=920)
        assert jobs.progress_text(jobs.job_state(run)).startswith("Resuming from step 420: building the networks")
    finally:
        os.kill(run.raw_status()["pid"], signal.SIGKILL)
