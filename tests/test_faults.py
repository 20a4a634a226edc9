"""Fault injection: killed workers, broken checkpoints, a full disk and a read-only run folder.

Faults are real where a test can make them real: workers die by SIGKILL (`python -m gan_core work` started
by jobs, or tests/fault_worker.py, which runs the same CLI and kills itself at a chosen point of a checkpoint
write), the disk fills up through RLIMIT_FSIZE (writes fail with EFBIG) and a read-only folder is a chmod
that binds root too (fault_worker drops CAP_DAC_OVERRIDE). Resumes go through jobs.resume_job or the CLI.
"""

import contextlib
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gan_core import families
from gan_core.cli import main as cli_main
from gan_core.config import RunConfig
from gan_core.errors import RunError
from gan_core.generation.sampling import checkpoint_steps, load_generator
from gan_core.history_metrics import history_columns
from gan_core.store import jobs, runs
from gan_core.store.runs import RunStore, pid_alive
from gan_core.training import progress
from gan_core.training.loop import train_run
from tests.waiting import wait_for


ROOT = Path(__file__).resolve().parents[1]
FAULT_WORKER = ROOT / "tests" / "fault_worker.py"
TIMEOUT = 120
CHECKPOINT_EVERY = 2


def tiny(**changes) -> RunConfig:
    base = dict(
        dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=100,
        checkpoint_every=CHECKPOINT_EVERY, seed=1,
    )
    return RunConfig(**(base | changes))


def history_steps(run) -> list[int]:
    return [int(row["step"]) for row in run.history_rows()]


def last_step(run) -> int:
    steps = history_steps(run)
    return steps[-1] if steps else 0


def resumed_from(message: str) -> int:
    found = re.search(r"Resumed from step (\d+)\.", message)
    assert found, message
    return int(found.group(1))


def files(run) -> dict[str, bytes]:
    """Every file of a run folder with its bytes."""
    return {str(p.relative_to(run.dir)): p.read_bytes() for p in sorted(run.dir.rglob("*")) if p.is_file()}


def cli(capsys, *args) -> tuple[int, str]:
    """The CLI in this process (TensorFlow is loaded already); its exit code and stderr."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    terminal_progress = progress.TerminalProgress
    progress.TerminalProgress = lambda: terminal_progress(sys.stderr)  # its default stream is bound at import
    try:
        code = cli_main([str(a) for a in args])
    finally:
        progress.TerminalProgress = terminal_progress
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return code, capsys.readouterr().err


def fault_worker(fault: str, *args, runs_dir: Path) -> subprocess.CompletedProcess:
    """tests/fault_worker.py: the CLI in a new process with one fault injected."""
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(FAULT_WORKER), fault, *map(str, args), "--runs-dir", str(runs_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@contextlib.contextmanager
def reader(run):
    """Read status.json, config.json and history.csv as the dashboard does, over and over; yield the failures."""
    failures: list[str] = []
    stop = threading.Event()
    config = run.config()
    columns = history_columns(families.get(config.family).run_metrics(config))

    def read_forever():
        while not stop.is_set():
            try:
                json.loads(run.status_path.read_text())
                json.loads(run.config_path.read_text())
                if run.history_path.exists():
                    *complete, _partial = run.history_path.read_text().split("\n")
                    bad = [line for line in complete if len(line.split(",")) != len(columns)]
                    assert not bad, f"half-written history lines {bad}"
            except Exception as exc:  # anything a page would trip over
                failures.append(repr(exc))
            stop.wait(0.02)

    thread = threading.Thread(target=read_forever, daemon=True)
    thread.start()
    try:
        yield failures
    finally:
        stop.set()
        thread.join()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 6-step run with checkpoints 2, 4 and 6, copied by the tests that damage it."""
    run = RunStore(tmp_path_factory.mktemp("trained") / "runs").create(tiny())
    assert train_run(run)["state"] == "finished"
    assert checkpoint_steps(run) == [2, 4, 6]
    return run


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run in a store of its own."""
    store = RunStore(tmp_path / "runs")
    shutil.copytree(trained.dir, store.root / trained.id)
    return store.get(trained.id)


# ---- 1. a killed worker ---------------------------------------------------------------------------
def test_a_worker_killed_at_random_steps_resumes_from_its_newest_checkpoint(job_store, capsys):
    """SIGKILL a real worker at two seeded random steps; each resume loses at most one checkpoint interval."""
    rng = random.Random(20251125)
    every = 5
    run = jobs.start_job(job_store, tiny(steps=5000, checkpoint_every=every))
    restored = 0
    with reader(run) as failures:
        for kill in (1, 2):
            target = restored + rng.randrange(8, 60)
            wait_for(lambda: run.raw_status()["state"] == "running" and last_step(run) >= target, f"step {target}")
            pid = run.raw_status()["pid"]
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not pid_alive(pid), "the worker to die")
            status = run.status()
            assert status["state"] == "crashed", status
            reached = max(last_step(run), status["step"])  # the worker had trained at least this far
            newest = checkpoint_steps(run)[-1]
            assert reached - every <= newest <= reached, (reached, newest)
            if kill == 1:  # the dashboard's way
                jobs.resume_job(job_store, run.id)
                message = wait_for(lambda: "Resumed" in (m := run.raw_status().get("message", "")) and m, "the resume")
                restored = resumed_from(message)
                assert restored == newest, "resume loads the newest complete checkpoint"
    assert failures == []

    code, err = cli(capsys, "resume", run.id, "--set", f"steps={newest + 10}", "--runs-dir", job_store.root)
    assert code == 0 and f"finished at step {newest + 10}. Resumed from step {newest}." in err, err
    assert history_steps(run) == list(range(1, newest + 11)), "no duplicate and no missing step"


KILL_STAGES = ["data", "index", "state", "sweep"]  # in the order fault_worker's docstring explains them
RESTORED_AFTER = {"data": 6, "index": 6, "state": 6, "sweep": 8}  # after a kill while writing ckpt-8
TINY_ARGS = [
    "--set", "width=0.125", "--set", "latent_dim=8", "--set", "batch_size=16", "--set", "steps=12",
    "--set", "sample_every=100", "--set", f"checkpoint_every={CHECKPOINT_EVERY}",
]


def test_a_kill_while_a_checkpoint_is_written_never_restores_that_checkpoint(tmp_path, capsys):
    """Four workers die at four points of writing ckpt-8; each resume loads the newest complete checkpoint.

    This is the order TensorFlow writes in: the data and index files first (into ckpt-N_temp/, then moved),
    the `checkpoint` state file that names them last (atomically), then the oldest checkpoint is deleted.
    """
    runs_dir = tmp_path / "runs"
    first = fault_worker("kill-data:8", "train", "--config", "dcgan", *TINY_ARGS, runs_dir=runs_dir)
    assert first.returncode == -signal.SIGKILL, first.stderr
    run = RunStore(runs_dir).get(first.stdout.splitlines()[0])
    with reader(run) as failures:
        for stage, next_stage in zip(KILL_STAGES, KILL_STAGES[1:] + [None]):
            status = run.status()
            assert status["state"] == "crashed", (stage, status)
            assert history_steps(run) == list(range(1, 9)), "history reaches the step being saved"
            check_leftovers(run, stage)
            newest = checkpoint_steps(run)[-1]
            assert newest == RESTORED_AFTER[stage], f"after a kill at '{stage}' the state file names ckpt-{newest}"
            assert 8 - newest <= CHECKPOINT_EVERY
            if next_stage:
                killed = fault_worker(f"kill-{next_stage}:8", "resume", run.id, runs_dir=runs_dir)
                assert killed.returncode == -signal.SIGKILL, killed.stderr
                message = run.raw_status()["message"]
                assert resumed_from(message) == newest and "could not be read" not in message, (stage, message)
    assert failures == []

    code, err = cli(capsys, "resume", run.id, "--runs-dir", runs_dir)
    assert code == 0 and "finished at step 12. Resumed from step 8." in err, err
    assert history_steps(run) == list(range(1, 13))
    assert checkpoint_steps(run) == [8, 10, 12]
    assert sorted(p.name for p in run.checkpoints_dir.glob("ckpt-*.index")) == ["ckpt-10.index", "ckpt-12.index", "ckpt-8.index"]


def check_leftovers(run, stage: str) -> None:
    """What the kill left behind: the interrupted write is on disk, and torn."""
    ckpt = run.checkpoints_dir
    if stage == "data":
        torn = ckpt / "ckpt-8_temp" / "part-00000-of-00001.data-00000-of-00001"
        assert torn.stat().st_size < (ckpt / "ckpt-6.data-00000-of-00001").stat().st_size
        assert not (ckpt / "ckpt-8.index").exists()
    elif stage == "index":
        assert (ckpt / "ckpt-8.index").stat().st_size < (ckpt / "ckpt-6.index").stat().st_size
    elif stage == "state":
        assert [p.name for p in ckpt.glob("checkpoint.tmp*")], "the torn temp state file"
    elif stage == "sweep":
        assert not (ckpt / "ckpt-2.index").exists() and (ckpt / "ckpt-2.data-00000-of-00001").exists()


# ---- 2. a broken checkpoint -----------------------------------------------------------------------
def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "truncated data": lambda prefix: truncate(Path(f"{prefix}.data-00000-of-00001")),
    "truncated index": lambda prefix: truncate(Path(f"{prefix}.index")),
    "deleted": lambda prefix: [p.unlink() for p in prefix.parent.glob(f"{prefix.name}.*")],
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_resume_falls_back_past_a_broken_newest_checkpoint_and_says_so(run, capsys, damage):
    DAMAGE[damage](run.checkpoints_dir / "ckpt-6")
    code, err = cli(capsys, "resume", run.id, "--set", "steps=8", "--runs-dir", run.dir.parent)
    assert code == 0, err
    reason = "its files are missing" if damage == "deleted" else "Error)"
    summary = [line for line in err.splitlines() if line.startswith(f"run {run.id}:")]
    assert len(summary) == 1 and "finished at step 8." in summary[0], err
    for text in (summary[0], run.status()["message"]):
        assert "Checkpoint ckpt-6 could not be read (" in text and reason in text, text
        assert "Resumed from step 4." in text, text
    assert history_steps(run) == list(range(1, 9))
    assert checkpoint_steps(run) == [4, 6, 8]
    assert load_generator(run).step == 8


def test_resume_with_every_checkpoint_broken_refuses_in_one_sentence_and_changes_nothing(run, capsys):
    for step in (2, 4, 6):
        truncate(run.checkpoints_dir / f"ckpt-{step}.index")
    history, status = run.history_path.read_bytes(), run.status_path.read_bytes()
    code, err = cli(capsys, "resume", run.id, "--runs-dir", run.dir.parent)
    sentence = (
        f"Run '{run.id}' has no readable checkpoint to resume from (ckpt-6, ckpt-4, ckpt-2 could not be read); "
        "start a new run instead."
    )
    assert code == 2 and err == f"error: {sentence}\n"
    assert run.status_path.read_bytes() == status, "a refused resume leaves the run's state as it was"
    assert run.history_path.read_bytes() == history, "never starts again from scratch"


@pytest.mark.parametrize("damage", DAMAGE)
def test_generating_skips_a_broken_newest_checkpoint_and_a_broken_chosen_one_is_one_sentence(run, capsys, tmp_path, damage):
    DAMAGE[damage](run.checkpoints_dir / "ckpt-6")
    reason = "its files are missing" if damage == "deleted" else "Error)"
    loaded = load_generator(run)
    assert loaded.step == 4 and loaded.note.startswith("Checkpoint ckpt-6 (") and reason in loaded.note, loaded.note
    assert loaded.note.endswith("could not be read; using step 4.")
    assert load_generator(run, 2).note == ""

    code, err = cli(capsys, "generate", run.id, "--n", 4, "--out", tmp_path / "fake.npz", "--runs-dir", run.dir.parent)
    assert code == 0 and loaded.note in err and (tmp_path / "fake.npz").exists(), err

    with pytest.raises(RunError) as chosen:
        load_generator(run, 6)
    message = str(chosen.value)
    assert message.startswith(f"Run '{run.id}' has no readable checkpoint: ckpt-6 (") and reason in message, message
    assert message.endswith("could not be read; pick another step.") and "\n" not in message


def test_generating_from_a_run_whose_checkpoints_are_all_broken_is_one_sentence(run):
    for step in (2, 4, 6):
        truncate(run.checkpoints_dir / f"ckpt-{step}.index")
    with pytest.raises(RunError) as caught:
        load_generator(run)
    assert str(caught.value) == (
        f"Run '{run.id}' has no readable checkpoint: ckpt-6 (OpError), ckpt-4 (OpError), "
        "ckpt-2 (OpError) could not be read; train it again or start a new run."
    )

# ---- 3. a full disk, a read-only run folder --------------------------------------------------------
def test_a_full_disk_stops_at_the_checkpoint_in_one_sentence_and_keeps_the_last_one(run, capsys):
    before, rows = files(run), run.history_rows()
    full = fault_worker("fsize:200000", "resume", run.id, "--set", "steps=10", runs_dir=run.dir.parent)
    sentence = "Could not write the checkpoint for step 8: File too large."
    assert full.returncode == 2 and error_lines(full.stderr) == [f"error: {sentence}"], full.stderr
    assert "Traceback" not in full.stderr
    status = run.status()
    assert status["state"] == "crashed" and status["message"] == sentence
    after = files(run)
    for name, data in before.items():
        if name.startswith("checkpoints/"):
            assert after[name] == data, f"{name} changed"
    assert run.history_rows()[:6] == rows and history_steps(run) == list(range(1, 9))
    assert checkpoint_steps(run) == [2, 4, 6]

    code, err = cli(capsys, "resume", run.id, "--runs-dir", run.dir.parent)  # space is back
    assert code == 0 and "finished at step 10. Resumed from step 6." in err, err
    assert history_steps(run) == list(range(1, 11)) and checkpoint_steps(run) == [6, 8, 10]


def test_a_full_disk_mid_history_line_says_so_and_resume_drops_the_torn_line(run, capsys, monkeypatch):
    real_open = open

    class FullDisk:
        """history.csv on a disk that fills up half-way through the next line."""

        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, text):
            self.handle.write(text[: len(text) // 2])
            self.handle.flush()
            raise OSError(28, "No space left on device")

    def open_on_a_full_disk(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        return FullDisk(handle) if Path(path).name == "history.csv" and "a" in mode else handle

    monkeypatch.setattr(runs, "open", open_on_a_full_disk, raising=False)
    checkpoints = {k: v for k, v in files(run).items() if k.startswith("checkpoints/")}
    code, err = cli(capsys, "resume", run.id, "--set", "steps=10", "--runs-dir", run.dir.parent)
    [line] = error_lines(err)  # history is flushed at the checkpoint (step 8), or sooner after a slow second
    assert code == 2 and re.fullmatch(r"error: Could not write history.csv at step [78]: No space left on device\.", line)
    assert run.status()["message"] == line.removeprefix("error: ") and run.status()["state"] == "crashed"
    assert not run.history_path.read_text().endswith("\n"), "the torn line is there"
    assert history_steps(run) == list(range(1, 7)), "readers drop it"
    assert {k: v for k, v in files(run).items() if k.startswith("checkpoints/")} == checkpoints

    monkeypatch.undo()
    code, err = cli(capsys, "resume", run.id, "--runs-dir", run.dir.parent)
    assert code == 0 and "finished at step 10. Resumed from step 6." in err, err
    assert history_steps(run) == list(range(1, 11))
    assert run.history_path.read_text().count("\n") == 11


@contextlib.contextmanager
def read_only(folder: Path):
    """chmod a folder tree read-only (fault_worker makes that bind root too), then back."""
    paths = [folder, *folder.rglob("*")]
    modes = {p: p.stat().st_mode for p in paths}
    for p in paths:
        p.chmod(stat.S_IMODE(modes[p]) & ~0o222)
    try:
        yield
    finally:
        for p in paths:
            p.chmod(stat.S_IMODE(modes[p]))


def test_a_read_only_run_folder_is_refused_in_one_sentence_and_left_as_it_was(run, capsys):
    before = files(run)
    with read_only(run.dir):
        resume = fault_worker("readonly", "resume", run.id, runs_dir=run.dir.parent)
        more = fault_worker("readonly", "resume", run.id, "--set", "steps=8", runs_dir=run.dir.parent)
    assert resume.returncode == 2 and "Traceback" not in resume.stderr, resume.stderr
    assert error_lines(resume.stderr) == [f"error: Could not write to the run folder '{run.dir}': Permission denied."]
    assert more.returncode == 2 and "Traceback" not in more.stderr, more.stderr
    assert error_lines(more.stderr) == [f"error: Could not write the new schedule to {run.config_path}: Permission denied."]
    assert files(run) == before and run.status()["state"] == "finished"

    code, err = cli(capsys, "resume", run.id, "--set", "steps=8", "--runs-dir", run.dir.parent)
    assert code == 0 and "finished at step 8. Resumed from step 6." in err, err
    assert history_steps(run) == list(range(1, 9))


def test_a_file_the_cli_cannot_write_outside_training_is_one_sentence(run, capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, err = cli(capsys, "generate", run.id, "--n", "4", "--out", blocker / "x.png", "--runs-dir", run.dir.parent)
    assert code == 2 and err == f"error: File exists ({blocker}).\n"
