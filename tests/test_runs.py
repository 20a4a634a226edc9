"""The run store: ids, atomic writes, status, history, listing, deletion and export."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from gan_core.config import RunConfig
from gan_core.errors import RunError
from gan_core.history_metrics import ADVERSARIAL_METRICS, history_columns
from gan_core.store.runs import (
    METRICS_COLUMNS,
    RunStore,
    atomic_write_text,
    default_runs_dir,
    export_zip,
    validate_run_id,
)

HISTORY_COLUMNS = history_columns(ADVERSARIAL_METRICS)


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def test_create_makes_the_run_folder(store):
    run = store.create(RunConfig(name="my first run", epochs=1))
    assert run.id.endswith(run.id[-4:]) and "my-first-run" in run.id
    for sub in ("samples", "checkpoints", "exports"):
        assert (run.dir / sub).is_dir()
    assert run.config() == RunConfig(name="my first run", epochs=1)
    assert run.status()["state"] == "queued"
    assert store.get(run.id).dir == run.dir


def test_a_run_being_created_is_not_listed_until_its_status_is_written(store, monkeypatch):
    """Another process listing the store mid-create (the sweep worker, the dashboard) never meets a run with no status."""
    from gan_core.store import runs as runs_module

    seen_while_writing = []
    write_json = runs_module.atomic_write_json

    def watching_write(path, data):
        seen_while_writing.append([r.id for r in store.list()])
        write_json(path, data)

    monkeypatch.setattr(runs_module, "atomic_write_json", watching_write)
    run = store.create(RunConfig())
    assert seen_while_writing == [[]]
    assert [r.id for r in store.list()] == [run.id] and run.status()["state"] == "queued"
    assert [p.name for p in store.root.iterdir()] == [run.id], "no staging folder is left"


@pytest.mark.parametrize("bad", ["../etc", "/abs", "a/b", "", ".hidden", "a..b", "x" * 81, "a b", "a\\b"])
def test_run_ids_with_path_tricks_are_refused(store, bad):
    with pytest.raises(RunError, match="is not a valid run id"):
        validate_run_id(bad)
    with pytest.raises(RunError):
        store.get(bad)


def test_missing_run_is_one_sentence(store):
    with pytest.raises(RunError, match="No run 'nope'"):
        store.get("nope")


def test_list_is_newest_first_and_ignores_strays(store):
    first = store.create(RunConfig(name="a"))
    second = store.create(RunConfig(name="b"))
    (store.root / ".tmp-junk").mkdir()
    (store.root / "file.txt").write_text("x")
    ids = [r.id for r in store.list()]
    assert set(ids) == {first.id, second.id}
    assert ids == sorted(ids, reverse=True)


def test_list_of_missing_root_is_empty(tmp_path):
    assert RunStore(tmp_path / "none").list() == []


def test_default_runs_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path))
    assert default_runs_dir() == tmp_path
    monkeypatch.delenv("GAN_RUNS_DIR")
    assert str(default_runs_dir()) == "runs"


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "f.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_status_update_merges(store):
    run = store.create(RunConfig())
    run.update_status(state="running", step=5, pid=os.getpid(), host=os.uname().nodename)
    run.update_status(step=7)
    status = run.status()
    assert status["state"] == "running" and status["step"] == 7 and "updated" in status


def test_running_run_whose_process_is_gone_shows_as_crashed(store):
    run = store.create(RunConfig())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.update_status(state="running", pid=dead.pid, host=os.uname().nodename)
    status = run.status()
    assert status["state"] == "crashed" and "resume" in status["message"]
    assert run.raw_status()["state"] == "running"


def test_broken_status_and_config_are_reported_not_raised_as_tracebacks(store):
    run = store.create(RunConfig())
    run.status_path.write_text("{broken")
    with pytest.raises(RunError, match="broken status.json"):
        run.status()
    run.config_path.write_text(json.dumps({"epochs": -1}))
    with pytest.raises(RunError, match="broken config.json: epochs must be"):
        run.config()


def _row(step):
    return {name: float(step) for name in HISTORY_COLUMNS} | {"step": step, "epoch": 1}


def test_history_append_and_read(store):
    run = store.create(RunConfig())
    run.append_history([_row(1), _row(2)])
    run.append_history([_row(3)])
    assert [r["step"] for r in run.history_rows()] == [1, 2, 3]


def test_partial_last_history_line_is_ignored(store):
    run = store.create(RunConfig())
    run.append_history([_row(1), _row(2)])
    with open(run.history_path, "a") as handle:
        handle.write("3,1,0.5,0.")
    assert [r["step"] for r in run.history_rows()] == [1, 2]
    assert run.history_tail(5)[-1]["step"] == 2


def test_history_drops_damaged_rows_but_keeps_a_nan_loss(store):
    run = store.create(RunConfig())
    run.append_history([_row(1), dict(_row(2), g_loss=float("nan")), _row(3)])
    with open(run.history_path, "a") as handle:
        handle.write("4,1,abc,0.5,0.5,0.5,1,1,100,1\n")  # not a number
        handle.write("5,1,,0.5,0.5,0.5,1,1,100,1\n")  # an empty cell
        handle.write("6,1,0.5,0.5,0.5,0.5,1,1,100,1,7\n")  # one field too many
    with open(run.history_path, "ab") as handle:
        handle.write(b"\xff\xfe,1,0.5,0.5,0.5,0.5,1,1,100,1\n")  # not even UTF-8
    run.append_history([_row(7)])
    frame = run.history_frame()
    assert frame["step"].tolist() == [1, 2, 3, 7]
    assert list(frame.columns) == list(HISTORY_COLUMNS) and set(frame.dtypes) == {np.dtype("float64")}
    assert np.isnan(frame["g_loss"][1])
    assert [r["step"] for r in run.history_tail(2)] == [3, 7]


@pytest.mark.parametrize("n", [1, 50, 999, 1000, 5000])
def test_history_tail_reads_the_last_rows_of_a_long_history(store, n):
    run = store.create(RunConfig())
    run.append_history([_row(s) for s in range(1, 1001)])
    tail = run.history_tail(n)
    assert [r["step"] for r in tail] == list(range(max(1, 1001 - n), 1001))
    assert tail == run.history_rows()[-n:]


def test_history_of_a_run_that_has_not_stepped_is_empty(store):
    run = store.create(RunConfig())
    assert run.history_rows() == [] and run.history_tail(50) == [] and run.history_frame().empty
    run.history_path.write_text(",".join(HISTORY_COLUMNS) + "\n")
    assert run.history_rows() == [] and run.history_tail(50) == []


def test_truncate_history_drops_steps_after_the_checkpoint(store):
    run = store.create(RunConfig())
    run.append_history([_row(s) for s in range(1, 11)])
    run.truncate_history(6)
    assert [r["step"] for r in run.history_rows()] == [1, 2, 3, 4, 5, 6]
    run.append_history([_row(7)])
    assert [r["step"] for r in run.history_rows()] == list(range(1, 8))


def test_metrics_rows_keep_empty_class_cells_and_follow_the_history_rules(store):
    run = store.create(RunConfig())
    assert run.metrics_rows() == []
    run.truncate_metrics(3)
    assert not run.metrics_path.exists()
    run.append_metrics([{"step": s, "frechet_distance": 10.0 / s, "classes_covered": 9, "class_kl": 0.1} for s in (2, 4, 6)])
    run.append_metrics([{"step": 8, "frechet_distance": 1.0, "classes_covered": None, "class_kl": None}])
    with open(run.metrics_path, "a") as handle:
        handle.write("10,0.")
    assert run.metrics_path.read_text().splitlines()[0] == ",".join(METRICS_COLUMNS)
    rows = run.metrics_rows()
    assert [r["step"] for r in rows] == [2, 4, 6, 8]
    assert rows[0] == {"step": 2, "frechet_distance": 5.0, "classes_covered": 9, "class_kl": 0.1}
    assert rows[-1]["classes_covered"] is None and rows[-1]["class_kl"] is None
    run.truncate_metrics(4)
    assert [r["step"] for r in run.metrics_rows()] == [2, 4]
    assert run.metrics_path.read_text().splitlines()[1] == "2,5.0,9,0.1"


def test_stop_request(store):
    run = store.create(RunConfig())
    assert not run.stop_requested()
    run.request_stop()
    assert run.stop_requested()


def test_delete_refuses_a_live_run(store):
    run = store.create(RunConfig())
    run.update_status(state="running", pid=os.getpid(), host=os.uname().nodename)
    with pytest.raises(RunError, match="still training"):
        store.delete(run.id)
    run.update_status(state="stopped")
    store.delete(run.id)
    assert not run.dir.exists()


def test_export_zip_holds_the_run_under_its_id(store, tmp_path):
    run = store.create(RunConfig())
    run.append_history([_row(1)])
    (run.samples_dir / "step_000001.png").write_bytes(b"png")
    run.request_stop()
    out = export_zip(run, tmp_path / "out" / "run.zip")
    names = zipfile.ZipFile(out).namelist()
    assert f"{run.id}/config.json" in names and f"{run.id}/samples/step_000001.png" in names
    assert f"{run.id}/STOP" not in names
    assert [p.name for p in out.parent.iterdir()] == ["run.zip"]


def test_a_run_that_cannot_be_written_whole_leaves_no_folder(store, monkeypatch):
    from gan_core.store import runs

    def full_disk(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs, "atomic_write_text", full_disk)
    with pytest.raises(OSError, match="No space left"):
        store.create(RunConfig(steps=1))
    assert list(store.root.iterdir()) == []
