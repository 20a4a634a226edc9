"""A sweep shared by two machines through a real PostgreSQL server: one machine is lost mid-trial, and the
other finishes the sweep with every trial run once and none lost.

The two machines are two runs folders (each worker sees only its own runs, as on two hosts). Without
PostgreSQL the test fails under CI (`.ci/run` installs it) and is skipped elsewhere.
"""

import os
import signal

import pytest

from gan_core.store.runs import RunStore
from gan_core.sweeps.store import SweepStore, database_storage
from tests.postgres_server import postgres_bin, postgres_server
from tests.test_sweeps import TINY, cli, spawn, wait_for


@pytest.fixture(scope="module")
def postgres_url():
    if postgres_bin() is None:
        reason = "PostgreSQL is not installed (Debian's postgresql package)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true: the shared-storage sweep test must run")
        pytest.skip(reason)
    with postgres_server() as url:
        yield url


def test_two_workers_share_a_sweep_through_postgresql_and_a_lost_machine_loses_no_trial(evaluator_env, postgres_url, tmp_path):
    import optuna
    from optuna.trial import TrialState

    machine_a, machine_b = evaluator_env, tmp_path / "machine-b"
    started = cli("sweep", "--config", "dcgan", *TINY, "--vary", "loss=bce,hinge", "--vary", "g_lr=1e-4:1e-3:log", "--trials", "2",
                  "--steps", "300", "--objective", "d_loss", "--storage", postgres_url, "--detach", runs_dir=machine_a)
    sweep_id = started.stdout.splitlines()[0]
    worker_b = spawn("sweep-worker", sweep_id, "--storage", postgres_url, runs_dir=machine_b, log=tmp_path / "b.log")

    store_a = RunStore(machine_a)
    worker_a = int(wait_for(lambda: SweepStore(store_a).get(sweep_id).live_workers(), "machine A's worker")[0].rpartition("-")[2])
    lost = wait_for(lambda: store_a.list()[0] if store_a.list() else None, "machine A's trial")
    wait_for(lambda: lost.raw_status().get("step", 0) >= 5, "machine A's trial to train")
    os.kill(worker_a, signal.SIGKILL)  # machine A is lost: its sweep worker and the trial it was training
    os.kill(lost.raw_status()["pid"], signal.SIGKILL)

    assert worker_b.wait(timeout=240) == 0, (tmp_path / "b.log").read_text()
    log = (tmp_path / "b.log").read_text()
    assert f"Sweep {sweep_id} finished: 2 trials completed, 0 failed" in log

    study = optuna.load_study(study_name=sweep_id, storage=database_storage(postgres_url))
    lost_trial = study.trials[lost.raw_status()["trial"]]
    assert lost_trial.state == TrialState.FAIL and lost_trial.user_attrs["replaced"] is True
    assert "stopped answering" in lost_trial.user_attrs["error"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 2 and lost_trial.params in [t.params for t in complete]  # the lost trial was run again, once
    store_b = RunStore(machine_b)
    runs_b = {run.id: run for run in store_b.list()}
    assert sorted(runs_b) == sorted(t.user_attrs["run_id"] for t in complete)  # every finished trial is one run of B's
    for trial in complete:
        run = runs_b[trial.user_attrs["run_id"]]
        assert run.status()["state"] == "finished" and run.status()["step"] == 300
        assert run.raw_status()["trial"] == trial.number and trial.params["loss"] == run.config().loss
    assert [run.id for run in store_a.list()] == [lost.id]  # machine A started nothing else


def test_a_storage_that_cannot_be_reached_is_one_sentence_with_its_password_hidden(tmp_path):
    refused = cli("sweep", "--config", "dcgan", "--vary", "loss=bce,hinge", "--steps", "10",
                  "--storage", "postgresql://me:secret@127.0.0.1:1/sweeps", runs_dir=tmp_path / "runs", check=False)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: Cannot open the sweep storage postgresql://me:***@127.0.0.1:1/sweeps: ")
    assert "secret" not in refused.stderr and "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert list((tmp_path / "runs" / ".sweeps").iterdir()) == []  # no half-made sweep is left behind
