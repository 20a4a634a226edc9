"""Runs made by the engine before family plug-ins (commit 74ded8a) still load, resume, train the same numbers and generate.

The fixtures and expected.json come from tests/fixtures/make_legacy_runs.py, run on that commit. Issue 17 moved
dropout masks, wgan-gp's interpolation weights and the rows of each of D's `d_steps` updates onto the run's RNG per
row of the global batch, which every fixture uses (dropout 0.3, or wgan-gp): so expected.json's numbers were
re-recorded then, by the same steps as these tests (resume a copy to step 4; train the config fresh for 3 steps), from
the same fixtures, whose checkpoints resume unchanged.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gan_core.generation.sampling import load_generator, sample
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run
from tests.fixtures.digits8 import write as write_digits8

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "legacy_runs"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
LEGACY_METRICS = ("g_loss", "d_loss", "d_real", "d_fake", "g_grad_norm", "d_grad_norm")


def assert_same_rows(rows, expected):
    assert [int(r["step"]) for r in rows] == [int(e["step"]) for e in expected]
    for row, want in zip(rows, expected):
        for name in LEGACY_METRICS:
            assert row[name] == pytest.approx(want[name], rel=1e-3, abs=1e-4), (row["step"], name)


@pytest.fixture
def store(tmp_path, monkeypatch):
    write_digits8(tmp_path)  # the mlp fixture's dataset, named by a path relative to where the test runs
    monkeypatch.chdir(tmp_path)
    return RunStore(tmp_path / "runs")


def copied(store, name):
    shutil.copytree(FIXTURES / name, store.root / name)
    return store.get(name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_legacy_run_resumes_with_the_numbers_the_old_engine_gave(store, name):
    run = copied(store, name)
    status = train_run(run, resume=True)
    assert status["state"] == "finished" and status["step"] == 4
    assert_same_rows(run.history_rows()[2:], EXPECTED[name]["resumed"])
    assert [int(r["step"]) for r in run.history_rows()] == [1, 2, 3, 4]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_legacy_config_trains_the_numbers_the_old_engine_gave(store, name):
    config = copied(store, name).config()
    run = store.create(config.replace(steps=3))
    train_run(run)
    assert_same_rows(run.history_rows(), EXPECTED[name]["fresh"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_legacy_run_generates_from_its_checkpoint(store, name):
    run = copied(store, name)
    loaded = load_generator(run)
    assert loaded.step == 2
    images, labels = sample(loaded, 10, seed=1)
    side = 8 if name == "mlp-bce" else 28  # the mlp fixture trains on scikit-learn's 8x8 digits
    assert images.shape == (10, side, side, 1) and images.dtype == np.uint8 and images.std() > 0
    assert (labels is not None) == (name == "cgan")
