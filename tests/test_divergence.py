"""Divergence end to end: a worker job whose losses blow up stops at the first bad step, keeps its last
checkpoint loadable, and the Train page says at which step it went wrong and what to try.

Two ways to diverge: learning rates at the configured maximum (1000), and a NaN batch injected into
the worker's data pipeline through a `sitecustomize` module on the worker's PYTHONPATH (the worker
is a separate process, so monkeypatching this one would not reach it).
"""

import os
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig, field_info
from gan_core.store import jobs
from gan_core.store.runs import pid_alive
from tests.waiting import APPTEST_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 180
NAN_ENV = "GAN_TEST_NAN_FROM_BATCH"
INJECTOR = f"""
import os

if os.environ.get("{NAN_ENV}"):
    from gan_core.data import datasets

    first_bad, real_pipeline = int(os.environ["{NAN_ENV}"]), datasets.make_pipeline

    def poisoned(*args, **kwargs):
        import tensorflow as tf

        nan = tf.constant(float("nan"))
        batches = real_pipeline(*args, **kwargs).enumerate()
        return batches.map(lambda i, batch: (tf.where(i >= first_bad, batch[0] * nan, batch[0]), batch[1]))

    datasets.make_pipeline = poisoned
"""


def tiny(**changes) -> RunConfig:
    base = dict(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, sample_every=100, seed=1)
    return RunConfig(**(base | changes))


def finished_job(run) -> dict:
    """Wait for the worker to end the run; return its status."""
    deadline = time.monotonic() + TIMEOUT
    while jobs.is_active(run):
        assert time.monotonic() < deadline, f"the job did not end: {jobs.log_tail(run)}"
        time.sleep(0.3)
    pid = run.raw_status()["pid"]
    while pid_alive(pid):  # the worker exits once the status is written
        assert time.monotonic() < deadline, "the worker did not exit"
        time.sleep(0.1)
    return run.status()


def assert_stopped_at_first_bad_step(run, status: dict) -> int:
    """The run is diverged, nothing after the last good step was kept, and that step's checkpoint loads."""
    from gan_core.families.adversarial import run_generator as generate
    from gan_core.generation.sampling import checkpoint_steps, load_generator

    assert status["state"] == "diverged", (status, jobs.log_tail(run))
    good = status["step"]
    steps = [int(row["step"]) for row in run.history_rows()]
    assert steps == list(range(1, good + 1)), "history must end at the last good step, with no step after the bad one"
    assert all(np.isfinite(row[key]) for row in run.history_rows() for key in ("g_loss", "d_loss"))
    assert f"diverged at step {good + 1} " in status["message"]
    assert "lower learning rates" in status["message"]
    assert checkpoint_steps(run)[-1] == good == status["last_checkpoint_step"]
    assert max(int(path.stem.split("_")[1]) for path in run.sample_paths()) <= good

    loaded = load_generator(run, step=good)
    assert loaded.step == good
    images = generate(loaded.model, np.random.default_rng(0).standard_normal((4, loaded.config.latent_dim), np.float32), None)
    assert np.isfinite(np.asarray(images)).all()
    return good


def assert_train_page_explains(run, good: int, total: int) -> None:
    """The Train page shows the diverged state, the bad step and what to try, with a way to a new run."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APPTEST_TIMEOUT)  # page links resolve against the app
    at.session_state["run_id"] = run.id
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.selectbox[0].value == run.id
    assert at.get("progress")[0].proto.text.startswith(f"Diverged: step {good} / {total}")
    assert at.metric[0].value == "diverged"
    (error,) = at.error
    assert f"diverged at step {good + 1} " in error.value and "lower learning rates" in error.value
    links = [(link.proto.label, link.proto.page) for link in at.get("page_link")]
    assert links == [("Configure a new run with lower learning rates", "configure")]
    assert [b.label for b in at.button] == ["Resume"]


@pytest.fixture
def store(job_store):
    return job_store


def test_learning_rates_at_the_maximum_stop_the_run_as_diverged(store):
    top = field_info("g_lr")["max"]
    assert top == field_info("d_lr")["max"] == 1000.0
    run = jobs.start_job(store, tiny(g_lr=top, d_lr=top, steps=50, checkpoint_every=1))
    status = finished_job(run)
    good = assert_stopped_at_first_bad_step(run, status)
    assert good < 10, "learning rates of 1000 blow the losses up within a few steps"
    assert_train_page_explains(run, good, 50)


def test_a_nan_batch_stops_the_worker_at_that_step(store, tmp_path, monkeypatch):
    (tmp_path / "inject").mkdir()
    (tmp_path / "inject" / "sitecustomize.py").write_text(textwrap.dedent(INJECTOR))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path / "inject"), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv(NAN_ENV, "4")  # batches 0-3 feed steps 1-4; step 5 gets NaN images
    run = jobs.start_job(store, tiny(steps=20, checkpoint_every=2))
    status = finished_job(run)
    assert assert_stopped_at_first_bad_step(run, status) == 4
    assert "diverged at step 5 (" in status["message"] and "=nan" in status["message"]
    assert_train_page_explains(run, 4, 20)
