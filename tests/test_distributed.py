"""The same training code under MirroredStrategy, on two logical CPU devices."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from gan_core.config import RunConfig
from gan_core.runs import RunStore
from gan_core.training import train_run
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
