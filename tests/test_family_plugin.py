"""A family defined only in tests/ (tests/plugins/triple_family.py) works everywhere without any edit outside tests/.

It registers through $GAN_FAMILIES, validates its own settings, trains from the CLI and from the
job queue the dashboard uses, checkpoints, resumes after a kill, writes its own metric names to
history.csv, shows them on the Train and Compare pages and in the runs table, and generates.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from gan_core import families
from gan_core.config import RunConfig
from gan_core.dashboard.runs_table import runs_table
from gan_core.errors import ConfigError
from gan_core.generation.sampling import checkpoint_steps, load_generator, sample
from gan_core.store import jobs
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run
from tests.plugins.triple_family import TARGET
from tests.waiting import APPTEST_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
CONFIG = dict(family="triple", dataset="mnist-5k", code_dim=4, hidden=16, batch_size=16, steps=4,
              sample_every=2, checkpoint_every=2, precision="float32")
COLUMNS = ["step", "epoch", "gen_adv", "disc_adv", "code_mse", "images_per_sec", "elapsed_sec"]


@pytest.fixture
def plugin(monkeypatch, tmp_path):
    monkeypatch.setenv(families.PLUGINS_ENV, TARGET)
    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    return RunStore(tmp_path / "runs")


def cli(*args, runs):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "gan_core", *args, "--runs-dir", str(runs)], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300,
    )


def dashboard_page(page: str, run_id: str) -> AppTest:
    """A browser session opened on `page` of the dashboard with ?run=run_id."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APPTEST_TIMEOUT).run()
    at.query_params["run"] = run_id
    at.switch_page(page).run()
    assert not at.exception
    return at


def test_the_family_registers_and_validates_its_own_settings(plugin):
    assert "triple" in families.names()
    config = RunConfig(**CONFIG)
    assert config.code_dim == 4 and "latent_dim" not in config.to_dict()
    assert RunConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match=r"^code_dim must be an integer between 1 and 64; got 0\.$"):
        config.replace(code_dim=0)
    with pytest.raises(ConfigError, match="Unknown configuration key 'latent_dim'"):
        config.replace(latent_dim=8)


def test_a_plugin_is_a_family_only_while_gan_families_names_it(plugin, monkeypatch):
    assert families.get("triple").name == "triple"
    monkeypatch.delenv(families.PLUGINS_ENV)
    assert families.names() == ("dcgan", "mlp", "lapgan", "srgan", "cyclegan", "stylegan", "progan")
    with pytest.raises(ConfigError, match=r"^family must be one of dcgan, mlp, lapgan, srgan, cyclegan, stylegan, progan; got 'triple'\.$"):
        RunConfig(**CONFIG)


def test_an_unknown_family_is_one_sentence_naming_the_known_ones():
    with pytest.raises(ConfigError, match=r"^family must be one of dcgan, mlp.*; got 'nope'\.$"):
        RunConfig(family="nope")


def test_cli_trains_checkpoints_resumes_after_a_kill_and_generates(plugin, tmp_path):
    config_path = tmp_path / "triple.json"
    config_path.write_text(json.dumps(CONFIG))
    runs = tmp_path / "runs"
    result = cli("train", "--config", str(config_path), runs=runs)
    assert result.returncode == 0, result.stderr
    (run,) = plugin.list()
    assert run.history_path.read_text().splitlines()[0].split(",") == COLUMNS
    assert checkpoint_steps(run) == [2, 4]
    assert [m.name for m in run.metrics()] == ["gen_adv", "disc_adv", "code_mse"]
    # A kill after step 4 was logged but before its checkpoint: the newest checkpoint is step 2.
    index = run.checkpoints_dir / "checkpoint"
    index.write_text(index.read_text().replace("ckpt-4", "ckpt-2"))
    run.update_status(state="crashed")
    result = cli("resume", run.id, "--set", "steps=6", runs=runs)
    assert result.returncode == 0, result.stderr
    assert [int(r["step"]) for r in run.history_rows()] == [1, 2, 3, 4, 5, 6]
    assert run.status()["state"] == "finished" and "Resumed from step 2" in run.status()["message"]
    out = tmp_path / "samples.npz"
    result = cli("generate", run.id, "--n", "5", "--out", str(out), runs=runs)
    assert result.returncode == 0, result.stderr
    assert np.load(out)["x"].shape == (5, 28, 28, 1)
    listing = cli("runs", runs=runs)
    assert "Gadv" in listing.stdout and "code" in listing.stdout


def test_the_dashboard_job_queue_trains_it_and_the_pages_show_its_metrics(plugin):
    run = jobs.start_job(plugin, RunConfig(**CONFIG))
    deadline = time.monotonic() + 240
    while run.status()["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert run.status()["state"] == "finished", (run.dir / "worker.log").read_text()
    loaded = load_generator(run)
    images, labels = sample(loaded, 3, seed=1)
    assert images.shape == (3, 28, 28, 1) and labels is None

    table = runs_table(plugin)
    assert {"Generator adversarial", "Discriminator adversarial", "Code error"} <= set(table.columns)

    train = dashboard_page("pages/train.py", run.id)
    assert [tab.label for tab in train.tabs][:4] == ["Adversarial", "Quality", "Encoder", "Throughput"]
    assert {m.label for m in train.metric} >= {"Generator adversarial", "Code error"}

    other = plugin.create(RunConfig(**(CONFIG | {"seed": 7})))
    assert train_run(other)["state"] == "finished"
    compare = dashboard_page("pages/compare.py", run.id)
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in compare.get("plotly_chart")]
    assert {"Generator adversarial", "Discriminator adversarial", "Code error"} <= set(titles)
