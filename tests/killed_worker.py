"""A family's checkpoint after SIGKILL: the worker is killed mid-run, and its newest checkpoint is compared,
item by item, with what an unbroken run of as many steps holds (training is deterministic on the CPU)."""

from __future__ import annotations

import os
import signal
import time

import keras
import numpy as np
import tensorflow as tf

from gan_core.config import RunConfig
from gan_core.generation.sampling import checkpoint_steps
from gan_core.store import jobs
from gan_core.store.runs import Run, RunStore, pid_alive
from gan_core.training.loop import Trainer


def _values(item) -> list:
    if isinstance(item, keras.Model):
        return item.weights
    return [item] if isinstance(item, tf.Variable) else item.variables


def kill_and_compare(job_store: RunStore, config: RunConfig) -> tuple[Run, int, dict]:
    """Start a worker, SIGKILL it after two checkpoints; check the newest restores to the unbroken run's state.

    Returns the killed run, its newest checkpoint step and the unbroken run's checkpoint items.
    """
    run = jobs.start_job(job_store, config)
    deadline = time.monotonic() + 180
    while not (run.raw_status().get("state") == "running" and len(checkpoint_steps(run)) >= 2):
        assert time.monotonic() < deadline, (run.dir / "worker.log").read_text()
        time.sleep(0.2)
    pid = run.raw_status()["pid"]
    os.kill(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(0.05)
    newest = checkpoint_steps(run)[-1]

    unbroken = Trainer(job_store.create(config.replace(steps=newest)))
    unbroken.fit()
    restored = Trainer(run)
    restored.checkpoint.restore(restored.manager.latest_checkpoint).assert_existing_objects_matched()
    items = unbroken.parts.checkpoint_items()
    for key, item in items.items():
        for want, got in zip(_values(item), _values(restored.parts.checkpoint_items()[key]), strict=True):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6, err_msg=key)
    return run, newest, items
