"""The same training code under MirroredStrategy, on two logical CPU devices."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gan_core.config import PRESET_DIR

BUILT_IN_PRESETS = sorted(path.stem for path in PRESET_DIR.glob("*.json"))

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch):
    """The subprocesses these tests start see no GPU (they take os.environ), so a GPU machine runs them as a CPU one does.

    Two replicas need two devices: two logical CPUs exist on any machine, two GPUs on few. With a GPU visible the
    one-replica run would train on the GPU and the two-replica run on the CPUs, XLA would be on (use_xla follows
    has_gpu) around a strategy placed on CPUs, and the two local workers would both train on one GPU.
    """
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


SCRIPT = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from gan_core.config import RunConfig
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
config = RunConfig(width=0.125, latent_dim=8, batch_size=16, steps=4, sample_every=2, checkpoint_every=2)
run = RunStore(sys.argv[1]).create(config)
status = train_run(run, strategy=strategy)
print("RESULT", status["state"], status["step"], strategy.num_replicas_in_sync, len(run.history_rows()))
"""


def test_mirrored_strategy_over_two_cpu_devices_trains_a_run(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=240,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert "RESULT finished 4 2 4" in result.stdout, result.stderr[-3000:]


SAME_LOSSES = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from gan_core.config import RunConfig
from gan_core.store.runs import RunStore
from gan_core.training.loop import Trainer, train_run
config = RunConfig(width=0.125, latent_dim=8, batch_size=16, steps=4, dropout=0.0, batch_norm=True, sample_every=4, checkpoint_every=4)
store = RunStore(sys.argv[1])
losses, synchronized = {}, {}
for name, strategy in [("one", tf.distribute.get_strategy()), ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))]:
    run = store.create(config)
    train_run(run, strategy=strategy)
    losses[name] = [[row[k] for k in ("g_loss", "d_loss", "d_real", "d_fake")] for row in run.history_rows()]
    with strategy.scope():
        parts = Trainer(store.create(config), strategy=strategy).parts
    synchronized[name] = sorted({layer.synchronized for layer in parts.networks["generator"].layers if "bn" in layer.name})
print("RESULT " + json.dumps({"losses": losses, "synchronized": synchronized}))
"""


def test_two_replicas_give_the_losses_of_one_device_with_the_same_global_batch(tmp_path):
    """Noise drawn for the global batch and synchronized batch norm make the replica count invisible (every preset: below)."""
    result = subprocess.run(
        [sys.executable, "-c", SAME_LOSSES, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=240,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    line = next((line for line in result.stdout.splitlines() if line.startswith("RESULT ")), None)
    assert line, result.stderr[-3000:]
    found = json.loads(line.removeprefix("RESULT "))
    assert found["synchronized"] == {"one": [False], "two": [True]}
    one, two = np.array(found["losses"]["one"]), np.array(found["losses"]["two"])
    assert one.shape == two.shape == (4, 4)
    np.testing.assert_allclose(two, one, rtol=1e-3, atol=1e-4)


PRESETS = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from gan_core.config import load_preset
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run
TINY = {
    "dcgan": dict(width=0.125, latent_dim=8),
    "mlp": dict(width=0.125, latent_dim=8),
    "lapgan": dict(width=0.125, latent_dim=8, noise_dim=4),
    "progan": dict(channels="8,8,8,4", latent_dim=8, fade_images=8, stable_images=8),
    "stylegan": dict(width=0.125, latent_dim=8, w_dim=8, mapping_layers=2),
    "srgan": dict(width=0.125, blocks=1, warmup_steps=1, feature_weight=0.0),
    "cyclegan": dict(width=0.125, blocks=1, pool_size=0),
}
store = RunStore(sys.argv[1])
strategies = {"one": tf.distribute.get_strategy(), "two": tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])}
for preset in sys.argv[2:]:
    config = load_preset(preset)
    config = config.replace(**TINY[config.family], batch_size=8, steps=2, sample_every=100, checkpoint_every=100, eval_every=0)
    found = {}
    for name, strategy in strategies.items():
        run = store.create(config)
        train_run(run, strategy=strategy)
        found[name] = {m.name: [float(row[m.name]) for row in run.history_rows()] for m in run.metrics()}
    print("RESULT " + json.dumps({"preset": preset, **found}), flush=True)
"""


@pytest.fixture(scope="module")
def preset_histories(tmp_path_factory):
    """Every built-in preset, shrunk (2 steps of 8 images, narrow networks, cyclegan's pool off), trained on one device and on two.

    Two processes share the presets (alternate ones, so each gets a mix of slow and quick ones): tracing is single-threaded
    Python, so on two cores they take about half the wall time of one.
    """
    folders = [tmp_path_factory.mktemp("presets") for _ in range(2)]
    procs = []
    for folder, presets in zip(folders, [BUILT_IN_PRESETS[0::2], BUILT_IN_PRESETS[1::2]]):
        with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:  # files, not pipes: neither waits on a full pipe
            procs.append(subprocess.Popen(
                [sys.executable, "-c", PRESETS, str(folder / "runs"), *presets], cwd=ROOT, stdout=out, stderr=err, text=True,
                env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
            ))
    for proc in procs:
        proc.wait(timeout=1800)
    lines = [line for folder in folders for line in (folder / "stdout").read_text().splitlines() if line.startswith("RESULT ")]
    found = [json.loads(line.removeprefix("RESULT ")) for line in lines]
    return {entry["preset"]: entry for entry in found}, "\n".join((folder / "stderr").read_text()[-3000:] for folder in folders)


@pytest.mark.parametrize("preset", BUILT_IN_PRESETS)
def test_every_preset_gives_one_devices_losses_on_two_replicas(preset_histories, preset):
    """Dropout masks and wgan-gp's interpolation weights follow the run's RNG per row of the global batch, batch statistics
    (batch norm, the minibatch standard deviation) are the global batch's, and D's extra updates (d_steps) each take every
    d_steps-th row: so every metric but the gradient norms matches one device's (those are averages of each replica's
    gradient norm, larger than the norm of the averaged gradient). CycleGAN's history pool, kept per replica, is off here.

    The first step matches within 1e-3 (float rounding; before issue 17 the presets with dropout were 7-10% apart there,
    wgan-gp 18%, srgan 3%, progan and restore 1%, and all but cyclegan, dcgan-colour and stylegan failed). After an
    update, rounding differences (synchronized batch norm's variance from sums over replicas, the order of gradient sums)
    grow: at the second step the presets here are up to 0.7% apart (restore's G adversarial term), so that step is held to 2%.
    """
    histories, stderr = preset_histories
    assert preset in histories, stderr
    one, two = histories[preset]["one"], histories[preset]["two"]
    compared = [name for name in one if not name.endswith("grad_norm")]
    assert len(compared) >= 4 and all(len(one[name]) == 2 for name in compared)
    for name in compared:
        np.testing.assert_allclose(two[name][0], one[name][0], rtol=1e-3, atol=1e-4, err_msg=f"{preset}: {name}, step 1")
        np.testing.assert_allclose(two[name][1], one[name][1], rtol=2e-2, atol=2e-3, err_msg=f"{preset}: {name}, step 2")


def _free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _two_workers(*command, runs_dir):
    """Run one gan_core command as worker 0 (the chief) and worker 1 of a local cluster; their (returncode, stdout, stderr)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    procs = []
    for index in range(2):
        env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        args = [sys.executable, "-m", "gan_core", *command, "--runs-dir", str(runs_dir)]
        procs.append(subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [proc.communicate(timeout=240) for proc in procs]
    return [(proc.returncode, *output) for proc, output in zip(procs, outputs)]


def test_multi_worker_mirrored_strategy_two_local_workers_train_and_resume(tmp_path):
    import csv

    trained = _two_workers(
        "train", "--config", "dcgan", "--set", "steps=4", "--set", "width=0.125", "--set", "latent_dim=8",
        "--set", "batch_size=16", "--set", "sample_every=2", "--set", "checkpoint_every=2", runs_dir=tmp_path / "runs",
    )
    assert [code for code, _, _ in trained] == [0, 0], trained
    outputs = [out[1:] for out in trained]
    assert "finished at step 4" in outputs[0][1] and "finished at step 4" in outputs[1][1]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1, "only the chief writes a run"
    status = json.loads((runs[0] / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 4
    assert sorted(p.name for p in (runs[0] / "checkpoints").glob("*.index")) == ["ckpt-2.index", "ckpt-4.index"]
    assert "non-chief worker" in outputs[1][1]

    resumed = _two_workers("resume", runs[0].name, "--set", "steps=6", runs_dir=tmp_path / "runs")
    assert [code for code, _, _ in resumed] == [0, 0], resumed
    assert "finished at step 6. Resumed from step 4." in resumed[0][2] and "non-chief worker: resuming" in resumed[1][2]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [runs[0].name], "the non-chief writes only its own copy"
    status = json.loads((runs[0] / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 6
    with open(runs[0] / "history.csv", newline="") as history:
        assert [int(row["step"]) for row in csv.DictReader(history)] == [1, 2, 3, 4, 5, 6]  # each step once: one writer
    assert sorted(p.name for p in (runs[0] / "checkpoints").glob("*.index")) == ["ckpt-2.index", "ckpt-4.index", "ckpt-6.index"]


CYCLEGAN = """
import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from gan_core.config import RunConfig
from gan_core.store.runs import RunStore
from gan_core.training.loop import Trainer, train_run
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
config = RunConfig(family="cyclegan", width=0.125, blocks=1, pool_size=4, batch_size=4, steps=4, sample_every=2, checkpoint_every=2)
run = RunStore(sys.argv[1]).create(config)
status = train_run(run, strategy=strategy)
restored = Trainer(run)
restored.checkpoint.restore(restored.manager.latest_checkpoint).assert_existing_objects_matched()
pool = restored.parts.state["pool_a"].numpy()
print("RESULT", status["state"], status["step"], int(restored.parts.state["pool_a_count"].numpy()), int((np.abs(pool).sum(axis=(1, 2, 3)) > 0).sum()))
"""


def test_cyclegan_trains_on_two_replicas_each_with_its_own_history_pool(tmp_path):
    """Each replica fills its pool from its 2 images a step; the checkpoint keeps the first replica's full pool."""
    result = subprocess.run(
        [sys.executable, "-c", CYCLEGAN, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=240,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert "RESULT finished 4 4 4" in result.stdout, result.stderr[-3000:]


STABILIZED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from gan_core.config import RunConfig
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run
config = RunConfig(**json.loads(sys.argv[2]), batch_size=8, steps=2, sample_every=100, checkpoint_every=100, eval_every=0,
                   r1_weight=1.0, diffaugment="translation,cutout", feature_matching=1.0)
found = {}
for name, strategy in {"one": tf.distribute.get_strategy(), "two": tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])}.items():
    run = RunStore(sys.argv[1]).create(config)
    train_run(run, strategy=strategy)
    found[name] = {m.name: [float(row[m.name]) for row in run.history_rows()] for m in run.metrics()}
print("RESULT " + json.dumps(found), flush=True)
"""
STABILIZED_FAMILIES = {
    "dcgan": dict(family="dcgan", width=0.125, latent_dim=8),
    "cyclegan": dict(family="cyclegan", width=0.125, blocks=1, pool_size=0),
}


@pytest.mark.parametrize("family", STABILIZED_FAMILIES)
def test_every_stabilizer_on_gives_one_devices_losses_on_two_replicas(tmp_path, family):
    """DiffAugment's draws come from the run's RNG per row of the global batch, R1 is a mean over images, and feature
    matching compares the global batch's mean features (all-reduced), so two replicas train as one device does (cyclegan's
    two Ds with their own draws; its pool, kept per replica, off); the step-2 tolerance is the presets' above."""
    result = subprocess.run(
        [sys.executable, "-c", STABILIZED, str(tmp_path), json.dumps(STABILIZED_FAMILIES[family])], cwd=ROOT, capture_output=True,
        text=True, timeout=600, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    found = [json.loads(line.removeprefix("RESULT ")) for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert found, result.stderr[-3000:]
    one, two = found[0]["one"], found[0]["two"]
    assert {"feature_matching", "r1_penalty"} <= {name.removesuffix("_a").removesuffix("_b") for name in one}
    for name in (name for name in one if not name.endswith("grad_norm")):
        np.testing.assert_allclose(two[name][0], one[name][0], rtol=1e-3, atol=1e-4, err_msg=f"{family}: {name}, step 1")
        np.testing.assert_allclose(two[name][1], one[name][1], rtol=2e-2, atol=2e-3, err_msg=f"{family}: {name}, step 2")


STYLEGAN = """
import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from gan_core.config import RunConfig
from gan_core.store.runs import RunStore
from gan_core.training.loop import Trainer, train_run
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
config = RunConfig(family="stylegan", width=0.125, latent_dim=8, w_dim=8, mapping_layers=2, batch_size=8, steps=4, sample_every=2, checkpoint_every=2)
run = RunStore(sys.argv[1]).create(config)
status = train_run(run, strategy=strategy)
restored = Trainer(run)
restored.checkpoint.restore(restored.manager.latest_checkpoint).assert_existing_objects_matched()
moved = bool(np.abs(restored.parts.state["w_avg"].numpy()).max() > 0)
print("RESULT", status["state"], status["step"], moved, all(np.isfinite(float(r["r1_penalty"])) for r in run.history_rows()))
"""


def test_stylegan_trains_on_two_replicas_with_the_average_w_averaged_over_them(tmp_path):
    """The R1 penalty's nested tape and the average w, written from each replica's batch, work under MirroredStrategy."""
    result = subprocess.run(
        [sys.executable, "-c", STYLEGAN, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=240,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert "RESULT finished 4 True True" in result.stdout, result.stderr[-3000:]


PROGAN = """
import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from gan_core.config import RunConfig
from gan_core.families.progan import growth_of
from gan_core.store.runs import RunStore
from gan_core.training.loop import Trainer, train_run
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
config = RunConfig(family="progan", channels="8,8,8,4", latent_dim=8, batch_size=8, fade_images=16, stable_images=16, steps=9, sample_every=100, checkpoint_every=9)
run = RunStore(sys.argv[1]).create(config)
status = train_run(run, strategy=strategy)
restored = Trainer(run)
restored.checkpoint.restore(restored.manager.latest_checkpoint).assert_existing_objects_matched()
stages = [(int(float(r["stage"])), float(r["alpha"])) for r in run.history_rows()]
print("RESULT", status["state"], int(restored.parts.state["growth_step"].numpy()), growth_of(restored.parts.networks["generator"]), stages)
"""


def test_progan_grows_on_two_replicas_with_one_stage_and_alpha_for_both(tmp_path):
    """Each stage's own compiled step, the step counter and the sampler's stored stage and alpha work under MirroredStrategy."""
    result = subprocess.run(
        [sys.executable, "-c", PROGAN, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=240,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    stages = [(0, 1.0), (0, 1.0), (1, 0.5), (1, 1.0), (1, 1.0), (1, 1.0), (2, 0.5), (2, 1.0), (2, 1.0)]
    assert f"RESULT finished 9 (2, 1.0) {stages}" in result.stdout, result.stderr[-3000:]
