"""Sweeps: the spec a user types, the budget and grid, the objective read from a run, and real sweeps through the CLI
whose workers and trials are killed on the way."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gan_core.config import RunConfig, load_preset, preset_names
from gan_core.errors import ConfigError, RunError
from gan_core.store import jobs
from gan_core.store.presets import save_user_preset
from gan_core.store.runs import RunStore, pid_alive
from gan_core.sweeps import worker as sweep_worker
from gan_core.sweeps.objective import read_objective
from gan_core.sweeps.progress import sweep_state, trials_frame
from gan_core.sweeps.spec import END_OF_RUN, SweepSpec, check, grid_points, parse_dimension
from gan_core.sweeps.store import SweepStore, open_study
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
BASE = RunConfig(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, sample_every=10, checkpoint_every=10, seed=1)
TINY = ["--set", "width=0.125", "--set", "latent_dim=8", "--set", "batch_size=16", "--set", "sample_every=10", "--set", "checkpoint_every=10"]
TIMEOUT = 240


def spec(**changes) -> SweepSpec:
    values = dict(
        name="tiny", base=BASE.to_dict(), dimensions=(parse_dimension("g_lr=1e-4:1e-3:log", BASE), parse_dimension("loss=bce,hinge", BASE)),
        trials=3, budget_steps=20,
    )
    return SweepSpec(**(values | changes))


def cli(*args, runs_dir, timeout=TIMEOUT, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "gan_core", *args, "--runs-dir", str(runs_dir)], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"},
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def spawn(*args, runs_dir, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gan_core", *args, "--runs-dir", str(runs_dir)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        )


# ---- the spec ---------------------------------------------------------------------------
def test_dimensions_are_parsed_with_the_fields_types_and_checked_against_the_base():
    g_lr = parse_dimension("g_lr=1e-4:1e-3:log", BASE)
    assert (g_lr.kind, g_lr.low, g_lr.high, g_lr.log) == ("float", 1e-4, 1e-3, True)
    assert parse_dimension("batch_size=16,32,16,64", BASE).choices == (16, 32, 64)
    assert parse_dimension("latent_dim=8:64", BASE).kind == "int"
    assert parse_dimension("batch_norm=true,false", BASE).choices == (True, False)
    refused = {
        "g_lrr=1e-4:1e-3": "Did you mean 'g_lr'",
        "g_lr=1e-3:1e-4": "from a lower to a higher value",
        "g_lr=0:1e-3:log": "log range must start above 0",
        "loss=bce,squared": "loss must be one of",
        "batch_size=16,99999": "batch_size must be an integer between 1 and 4096",
        "loss=bce": "at least two different choices",
        "steps=10,20": "steps cannot be varied",
        "g_lr": "looks like g_lr=1e-4:1e-3:log",
    }
    for text, message in refused.items():
        with pytest.raises(ConfigError, match=message):
            parse_dimension(text, BASE)


def test_a_spec_is_checked_and_round_trips_through_sweep_json():
    good = spec()
    assert SweepSpec.from_dict(json.loads(json.dumps(good.to_dict()))) == good
    for changes, message in [
        (dict(dimensions=()), "at least one field"),
        (dict(budget_steps=0), "budget of either steps or seconds"),
        (dict(budget_seconds=30), "budget of either steps or seconds"),
        (dict(trials=0), "trials must be a whole number"),
        (dict(objective="psnr"), "objective must be one of frechet_distance"),
        (dict(search="bayes"), "search must be one of random, tpe, grid"),
        (dict(dimensions=(parse_dimension("loss=bce,hinge", BASE),) * 2), "loss is given twice"),
    ]:
        with pytest.raises(ConfigError, match=message):
            check(spec(**changes))


def test_a_trial_config_carries_the_params_the_budget_and_a_quality_measurement_at_its_end():
    config = spec().trial_config({"g_lr": 5e-4, "loss": "hinge"}, 2)
    assert (config.g_lr, config.loss, config.steps, config.name, config.eval_every) == (5e-4, "hinge", 20, "tiny #2", END_OF_RUN)
    timed = spec(budget_steps=0, budget_seconds=45, objective="d_loss").trial_config({"g_lr": 5e-4, "loss": "bce"}, 0)
    assert (timed.time_limit, timed.eval_every) == (45, 0)  # a family metric needs no quality measurement


def test_a_grid_enumerates_every_combination_once_and_caps_the_trials():
    grid = spec(search="grid", trials=100, dimensions=(
        parse_dimension("g_lr=1e-4:1e-2:log", BASE), parse_dimension("batch_size=16:64", BASE), parse_dimension("loss=bce,hinge", BASE),
    ))
    points = grid_points(grid)
    assert len(points) == 3 * 3 * 2 == grid.planned_trials()
    assert sorted({p["g_lr"] for p in points}) == [1e-4, 1e-3, 1e-2]  # log-spaced
    assert sorted({p["batch_size"] for p in points}) == [16, 40, 64]
    assert len({tuple(p.values()) for p in points}) == len(points)
    assert spec(search="grid", trials=4).planned_trials() == 4


# ---- the objective ----------------------------------------------------------------------
def test_the_objective_is_read_at_the_runs_last_step_or_averaged_over_its_last_rows(tmp_path):
    store = RunStore(tmp_path / "runs")
    run = store.create(BASE.replace(steps=4))
    run.append_history([{"step": s, "epoch": 1, "g_loss": float(s), "d_loss": 1.0, "d_real": 0.5, "d_fake": 0.5,
                         "g_grad_norm": 1.0, "d_grad_norm": 1.0, "images_per_sec": 1.0, "elapsed_sec": 1.0} for s in (1, 2, 3, 4)])
    run.append_metrics([{"step": 2, "frechet_distance": 80.0, "classes_covered": 5, "class_kl": 0.5}])
    run.update_status(state="finished", step=4, message="")
    with pytest.raises(RunError, match="no frechet_distance measured at its last step 4"):
        read_objective(run, "frechet_distance")
    run.append_metrics([{"step": 4, "frechet_distance": 61.5, "classes_covered": 8, "class_kl": 0.25}])
    assert read_objective(run, "frechet_distance") == 61.5
    assert read_objective(run, "classes_covered") == 8
    assert read_objective(run, "g_loss") == 2.5


# ---- budget and grid with runs that do not train ---------------------------------------------
@pytest.fixture
def dry_worker(tmp_path, monkeypatch):
    """A sweep worker whose runs are created but not launched, to count what it starts."""
    store = RunStore(tmp_path / "runs")
    started = []

    def start_job(store_, config, tags=None):
        run = store_.create(config)
        run.update_status(**tags)
        started.append(config)
        return run

    monkeypatch.setattr(jobs, "start_job", start_job)

    def make(sweep_spec: SweepSpec, parallel: int = 100):
        sweep = SweepStore(store).create(sweep_spec)
        return sweep, sweep_worker.SweepWorker(sweep, store, parallel=parallel, say=lambda line: None), started

    return make


def test_a_grid_sweep_starts_each_point_once_and_no_worker_goes_past_the_budget(dry_worker):
    sweep, first, started = dry_worker(spec(search="grid", trials=50))
    while first.launch_next():
        pass
    assert sorted((c.g_lr, c.loss) for c in started) == sorted((p["g_lr"], p["loss"]) for p in grid_points(first.spec))
    assert len(started) == 6 and first.remaining() == 0
    assert [run.raw_status()["sweep"] for run in first.store.list()] == [sweep.id] * 6
    second = sweep_worker.SweepWorker(sweep, first.store, say=lambda line: None)
    assert not second.launch_next() and len(started) == 6


def test_a_trial_drawn_past_the_budget_by_a_racing_worker_is_marked_and_never_trained(dry_worker, monkeypatch):
    sweep, worker, started = dry_worker(spec(trials=2))
    assert worker.launch_next()
    racing = worker.study.ask(sweep_worker.distributions(worker.spec))  # another machine's worker took trial #1
    assert worker.remaining() == 0 and not worker.launch_next()
    monkeypatch.setattr(worker, "remaining", lambda: 1)  # as if it had counted the trials just before #1 was drawn
    assert not worker.launch_next()
    over = [t.number for t in worker.study.get_trials() if t.user_attrs.get("over_budget")]
    assert over == [2] and len(started) == 1
    assert list(trials_frame(sweep, worker.study, worker.store)["trial"]) == [0, racing.number]  # the page hides #2


# ---- real sweeps ------------------------------------------------------------------------
def test_a_random_sweep_trains_its_trials_as_tagged_runs_and_its_best_becomes_a_preset(evaluator_env, tmp_path, monkeypatch):
    runs_dir = evaluator_env
    result = cli("sweep", "--config", "dcgan", *TINY, "--vary", "g_lr=1e-4:1e-3:log", "--vary", "loss=bce,hinge",
                 "--trials", "2", "--steps", "20", "--name", "tiny", runs_dir=runs_dir)
    sweep_id = result.stdout.splitlines()[0]
    assert "finished: 2 trials completed, 0 failed; best #" in result.stdout
    store = RunStore(runs_dir)
    runs = {run.raw_status()["trial"]: run for run in store.list()}
    assert sorted(runs) == [0, 1] and {run.raw_status()["sweep"] for run in runs.values()} == {sweep_id}
    sweep = SweepStore(store).get(sweep_id)
    study = open_study(sweep)
    for trial in study.trials:
        run = runs[trial.number]
        assert run.status()["state"] == "finished" and run.status()["step"] == 20
        assert trial.value == run.metrics_rows()[-1]["frechet_distance"]
        assert run.config().g_lr == trial.params["g_lr"] and run.config().loss == trial.params["loss"]
    assert sweep_state(sweep, study) == "finished"
    assert f"{sweep_id}" in (listing := cli("sweeps", runs_dir=runs_dir).stdout) and "finished  2/2 trials  best #" in listing

    monkeypatch.setenv("GAN_PRESETS_DIR", str(tmp_path / "presets"))
    best = runs[study.best_trial.number]
    saved = cli("save-preset", best.id, "tiny-best", runs_dir=runs_dir)
    assert "saved preset 'tiny-best'" in saved.stdout and "tiny-best" in preset_names()
    assert load_preset("tiny-best") == best.config().replace(name="tiny-best")
    refused = cli("save-preset", best.id, "dcgan", runs_dir=runs_dir, check=False)
    assert refused.returncode == 2 and refused.stderr.strip() == "error: 'dcgan' is a built-in preset; choose another name."
    with pytest.raises(ConfigError, match="1 to 40 letters"):
        save_user_preset("../evil", best.config())


def test_a_sweep_goes_on_after_its_worker_and_a_trials_run_are_killed(evaluator_env):
    """The sweep worker is SIGKILLed mid-trial, then the trial's own worker: a new sweep worker takes the trial over,
    resumes its crashed run from the checkpoint (no step lost or repeated) and finishes the sweep with no extra run."""
    runs_dir = evaluator_env
    result = cli("sweep", "--config", "dcgan", *TINY, "--vary", "loss=bce,hinge", "--trials", "2", "--steps", "400",
                 "--objective", "d_loss", "--detach", runs_dir=runs_dir)
    sweep_id = result.stdout.splitlines()[0]
    store = RunStore(runs_dir)
    sweep = SweepStore(store).get(sweep_id)
    worker_pid = int(wait_for(lambda: sweep.live_workers(), "the sweep worker", timeout=TIMEOUT)[0].rpartition("-")[2])
    run = wait_for(lambda: store.list()[0] if store.list() else None, "trial #0's run", timeout=TIMEOUT)
    wait_for(lambda: run.raw_status().get("last_checkpoint_step", 0) >= 10, "a checkpoint of trial #0", timeout=TIMEOUT)
    os.kill(worker_pid, signal.SIGKILL)
    assert jobs.job_status(run)["state"] == "running"  # the run trains in its own process
    os.kill(run.raw_status()["pid"], signal.SIGKILL)
    wait_for(lambda: jobs.job_status(run)["state"] == "crashed", "the run to read as crashed", timeout=TIMEOUT)
    wait_for(lambda: not pid_alive(worker_pid), "the killed sweep worker to be gone", timeout=TIMEOUT)  # SIGKILL is delivered, not awaited
    assert sweep_state(sweep, open_study(sweep)) == "paused"

    again = cli("sweep-worker", sweep_id, runs_dir=runs_dir)
    assert "trial #0: taken over from a worker that ended" in again.stderr
    assert "trial #0: its run crashed" in again.stderr and "retry 1 of 2" in again.stderr
    assert "finished: 2 trials completed, 0 failed" in again.stdout
    assert len(store.list()) == 2
    study = open_study(sweep)
    assert [t.user_attrs.get("retries", 0) for t in study.trials] == [1, 0]
    assert [int(row["step"]) for row in run.history_rows()] == list(range(1, 401))
    assert study.trials[0].value == pytest.approx(read_objective(run, "d_loss"))


def test_a_crashed_trial_fails_with_its_reason_when_the_sweep_does_not_retry(evaluator_env):
    runs_dir = evaluator_env
    store = RunStore(runs_dir)
    sweep = SweepStore(store).create(spec(trials=1, budget_steps=400, on_crash="fail", objective="d_loss",
                                          dimensions=(parse_dimension("loss=bce,hinge", BASE),)))
    worker = spawn("sweep-worker", sweep.id, runs_dir=runs_dir, log=runs_dir / "sweep.log")
    run = wait_for(lambda: store.list()[0] if store.list() else None, "the trial's run", timeout=TIMEOUT)
    wait_for(lambda: run.raw_status().get("step", 0) >= 5 and run.raw_status().get("state") == "running", "training", timeout=TIMEOUT)
    os.kill(run.raw_status()["pid"], signal.SIGKILL)
    assert worker.wait(timeout=60) == 0
    trial = open_study(sweep).trials[0]
    assert trial.state.name == "FAIL" and trial.user_attrs["error"].startswith("its run crashed")
    table = trials_frame(sweep, open_study(sweep), store)
    assert table.loc[0, "state"] == "failed" and "crashed" in table.loc[0, "error"]


def test_a_time_limit_ends_a_run_finished_at_the_step_it_reached(tmp_path):
    from gan_core.training.loop import train_run

    run = RunStore(tmp_path / "runs").create(BASE.replace(steps=100_000, time_limit=2, checkpoint_every=50, sample_every=1000))
    status = train_run(run)
    assert status["state"] == "finished" and 0 < status["step"] < 100_000
    assert status["train_seconds"] >= 2 and f"Reached the time limit of 2 s of training at step {status['step']}" in status["message"]
    assert int(run.history_rows()[-1]["step"]) == status["step"]
    assert jobs.more_training(run.config(), 10) == {"steps": 100_010, "time_limit": 0}
