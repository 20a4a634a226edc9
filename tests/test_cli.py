"""The command line, run as a user runs it: `python -m gan_core ...` in a subprocess."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "width=0.125", "--set", "latent_dim=8", "--set", "batch_size=16", "--set", "sample_every=3", "--set", "checkpoint_every=3"]


def cli(*args, runs_dir, check=True, timeout=180):
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "gan_core", *args, "--runs-dir", str(runs_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def history_steps(run_dir):
    lines = (run_dir / "history.csv").read_text().splitlines()[1:]
    return [int(line.split(",")[0]) for line in lines]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run trained and resumed through the CLI, shared by the tests below."""
    runs = tmp_path_factory.mktemp("runs")
    result = cli("train", "--config", "dcgan", "--set", "steps=4", *TINY, runs_dir=runs)
    run_id = result.stdout.strip().splitlines()[0]
    return runs, run_id, result


def test_train_prints_the_run_id_and_leaves_the_run_folder(trained):
    runs, run_id, result = trained
    run_dir = runs / run_id
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 4 and status["dataset"] == "mnist-5k"
    assert history_steps(run_dir) == [1, 2, 3, 4]
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step_000000.png", "step_000003.png", "step_000004.png"]
    assert "finished at step 4" in result.stderr
    assert "\r" not in result.stderr, "a pipe gets plain lines, not a redrawn bar"
    assert "4/4" in result.stderr and "ETA" in result.stderr


def test_a_command_prints_only_the_workbench_lines_unless_verbose(trained):
    """TensorFlow's start-up lines (absl, oneDNN, CUDA probing) reach the terminal only with --verbose."""
    runs, run_id, _ = trained
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"} | {"PYTHONUNBUFFERED": "1"}

    def generate(*extra):
        command = [sys.executable, "-m", "gan_core", "generate", run_id, "--n", "4", "--out", str(runs / "four.png"), "--runs-dir", str(runs), *extra]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)

    quiet, verbose = generate(), generate("--verbose")
    assert quiet.returncode == 0 and verbose.returncode == 0, verbose.stderr
    assert quiet.stderr == "" and quiet.stdout.startswith("wrote 4 images")
    assert "oneDNN" in verbose.stderr or "cuda" in verbose.stderr.lower()


def test_resume_continues_from_the_saved_step(trained):
    runs, run_id, _ = trained
    result = cli("resume", run_id, "--set", "steps=7", runs_dir=runs)
    assert "finished at step 7" in result.stderr
    assert history_steps(runs / run_id) == [1, 2, 3, 4, 5, 6, 7]
    config = json.loads((runs / run_id / "config.json").read_text())
    assert config["steps"] == 7


def test_resume_refuses_non_schedule_changes(trained):
    runs, run_id, _ = trained
    result = cli("resume", run_id, "--set", "loss=hinge", runs_dir=runs, check=False)
    assert result.returncode == 2
    assert "Only the schedule can change on resume" in result.stderr and "Traceback" not in result.stderr


def test_generate_png_and_npz(trained, tmp_path):
    runs, run_id, _ = trained
    cli("generate", run_id, "--n", "9", "--seed", "5", "--out", str(tmp_path / "grid.png"), runs_dir=runs)
    assert (tmp_path / "grid.png").read_bytes().startswith(b"\x89PNG")
    cli("generate", run_id, "--n", "9", "--seed", "5", "--out", str(tmp_path / "s.npz"), runs_dir=runs)
    cli("generate", run_id, "--n", "9", "--seed", "5", "--out", str(tmp_path / "again.npz"), runs_dir=runs)
    first, again = np.load(tmp_path / "s.npz"), np.load(tmp_path / "again.npz")
    assert first["x"].shape == (9, 28, 28, 1) and first["x"].dtype == np.uint8
    assert (first["x"] == again["x"]).all(), "same seed, same digits"
    cli("generate", run_id, "--n", "9", "--seed", "5", "--truncation", "0", "--out", str(tmp_path / "centre.npz"), runs_dir=runs)
    centre = np.load(tmp_path / "centre.npz")["x"]
    assert (centre == centre[0]).all() and not (centre == first["x"]).all(), "psi 0: every z shrunk to the centre"


def test_generate_refusals_are_one_sentence_and_write_nothing(trained, tmp_path):
    runs, run_id, _ = trained
    bad_suffix = cli("generate", run_id, "--out", str(tmp_path / "x.jpg"), runs_dir=runs, check=False)
    assert bad_suffix.returncode == 2 and "must end in .npz, .zip or .png" in bad_suffix.stderr
    label = cli("generate", run_id, "--label", "3", "--out", str(tmp_path / "x.png"), runs_dir=runs, check=False)
    assert label.returncode == 2 and "only for conditional runs" in label.stderr
    psi = cli("generate", run_id, "--truncation", "2", "--out", str(tmp_path / "x.png"), runs_dir=runs, check=False)
    assert psi.returncode == 2 and psi.stderr.strip().endswith("truncation must be between 0 and 1; got 2.0.")
    assert list(tmp_path.iterdir()) == []


def test_export_zip_holds_a_generator_plain_keras_can_load(trained, tmp_path):
    runs, run_id, _ = trained
    result = cli("export", run_id, "--out", str(tmp_path / "run.zip"), runs_dir=runs)
    assert "run.zip" in result.stdout
    with zipfile.ZipFile(tmp_path / "run.zip") as archive:
        names = archive.namelist()
        assert f"{run_id}/config.json" in names and f"{run_id}/history.csv" in names
        archive.extract(f"{run_id}/exports/generator.keras", tmp_path)
    code = (
        "import keras, numpy as np, sys; m = keras.saving.load_model(sys.argv[1], safe_mode=True); "
        "print(m(np.zeros((2, 8), 'float32')).shape)"
    )
    shown = subprocess.run([sys.executable, "-c", code, str(tmp_path / run_id / "exports" / "generator.keras")],
                           capture_output=True, text=True, timeout=120, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert "(2, 28, 28, 1)" in shown.stdout, shown.stderr


def test_runs_lists_state_and_losses(trained):
    runs, run_id, _ = trained
    out = cli("runs", runs_dir=runs).stdout
    line = next(line for line in out.splitlines() if line.startswith(run_id))
    assert "finished" in line and "mnist-5k" in line


def test_bad_config_value_is_one_sentence_and_creates_no_run(tmp_path):
    result = cli("train", "--config", "dcgan", "--set", "batch_size=0", runs_dir=tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: batch_size must be an integer between 1 and 4096; got 0."
    assert not any(tmp_path.iterdir())


def test_unknown_dataset_is_one_sentence_and_leaves_no_run(tmp_path):
    result = cli("train", "--config", "dcgan", "--set", "dataset=nope", runs_dir=tmp_path / "runs", check=False)
    assert result.returncode == 2
    assert "Unknown dataset 'nope'" in result.stderr and "Traceback" not in result.stderr
    assert list((tmp_path / "runs").iterdir()) == []


def test_unknown_run_ids(tmp_path):
    missing = cli("resume", "nope", runs_dir=tmp_path, check=False)
    assert missing.returncode == 2 and "No run 'nope'" in missing.stderr
    tricky = cli("generate", "../etc", "--out", str(tmp_path / "x.png"), runs_dir=tmp_path, check=False)
    assert tricky.returncode == 2 and "not a valid run id" in tricky.stderr


def test_sigterm_stops_cleanly_with_a_checkpoint(tmp_path):
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gan_core", "train", "--config", "dcgan", "--set", "steps=100000", *TINY,
         "--set", "checkpoint_every=100000", "--runs-dir", str(tmp_path)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    run_id = proc.stdout.readline().strip()
    history = tmp_path / run_id / "history.csv"
    deadline = time.time() + 120
    while not (history.exists() and len(history.read_text().splitlines()) > 3) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    status = json.loads((tmp_path / run_id / "status.json").read_text())
    assert status["state"] == "stopped"
    step = status["step"]
    assert (tmp_path / run_id / "checkpoints" / f"ckpt-{step}.index").exists()
    assert history_steps(tmp_path / run_id) == list(range(1, step + 1))


def test_evaluate_prints_a_report_and_json(trained, cache_dir, monkeypatch):
    runs, run_id, _ = trained
    monkeypatch.setenv("GAN_CACHE_DIR", str(cache_dir))  # the session's evaluator: trained once for every test
    text = cli("evaluate", run_id, "--n", "50", runs_dir=runs, timeout=400)
    data = json.loads(cli("evaluate", run_id, "--n", "50", "--json", runs_dir=runs).stdout)
    assert "Fr" in text.stdout and "floor" in text.stdout.lower()
    step = json.loads((runs / run_id / "status.json").read_text())["step"]
    assert data["n"] == 50 and data["step"] == step
    assert list((runs / run_id / "evaluations").glob("*.json"))
    bad = cli("evaluate", run_id, "--n", "5", runs_dir=runs, check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "N must be a whole number between 10 and 500" in bad.stderr and bad.stderr.rstrip().endswith("got 5."), bad.stderr
