"""Device choices: what the device in use implies, each device's rule forced on any machine, and TF_CONFIG parsing."""

import json

import pytest
import tensorflow as tf

from gan_core.training import devices

FAKE_GPUS = [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU"), tf.config.PhysicalDevice("/physical_device:GPU:1", "GPU")]


def test_the_device_in_use_decides_mixed_precision_and_xla():
    """On a CPU: bfloat16 and no XLA (about 50x slower there); on a GPU: float16 with loss scaling and XLA."""
    gpus = [gpu.name for gpu in tf.config.list_physical_devices("GPU")]
    assert devices.configure_gpus() == gpus and devices.has_gpu() == bool(gpus)
    assert devices.precision_policy("float32") == "float32"
    assert devices.precision_policy("mixed") == ("mixed_float16" if gpus else "mixed_bfloat16")
    assert devices.use_xla("auto") is bool(gpus)
    assert devices.use_xla("on") is True and devices.use_xla("off") is False


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_each_devices_rule_for_mixed_and_xla(monkeypatch, gpu):
    monkeypatch.setattr(devices, "has_gpu", lambda: gpu)
    assert devices.precision_policy("mixed") == ("mixed_float16" if gpu else "mixed_bfloat16")
    assert devices.precision_policy("float32") == "float32"
    assert devices.use_xla("auto") is gpu, "XLA only on GPUs: on a CPU it made this DCGAN about 50x slower"
    assert devices.use_xla("on") is True and devices.use_xla("off") is False


def test_memory_growth_is_turned_on_for_every_gpu_and_a_gpu_already_initialised_is_left(monkeypatch):
    """Two jobs share one GPU only when neither maps all its memory; TF refuses the change once a GPU is in use."""
    grown = []

    def set_memory_growth(gpu, enable):
        if gpu.name.endswith(":1"):
            raise RuntimeError("Physical devices cannot be modified after being initialized")
        grown.append((gpu.name, enable))

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: FAKE_GPUS if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", set_memory_growth)
    assert devices.configure_gpus() == ["/physical_device:GPU:0", "/physical_device:GPU:1"]
    assert grown == [("/physical_device:GPU:0", True)]


def test_the_device_description_names_the_gpus_else_the_cpu_model(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU @ 2.00GHz\nflags\t\t: fpu\n")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert devices.device_description(str(cpuinfo)) == "Some CPU @ 2.00GHz"
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: FAKE_GPUS if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda gpu: {"device_name": f"GPU {gpu.name[-1]}"})
    assert devices.device_description(str(cpuinfo)) == "GPU 0, GPU 1"


def test_auto_precision_is_bfloat16_only_on_a_cpu_that_computes_it_natively(tmp_path, monkeypatch):
    with_bf16, without = tmp_path / "bf16", tmp_path / "plain"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 fma\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f fma\n")
    assert devices.cpu_has_bfloat16(str(with_bf16)) and not devices.cpu_has_bfloat16(str(without))
    assert not devices.cpu_has_bfloat16(str(tmp_path / "missing")), "no /proc/cpuinfo (macOS, Windows) means no"
    monkeypatch.setattr(devices, "has_gpu", lambda: False)
    monkeypatch.setattr(devices, "cpu_has_bfloat16", lambda: True)
    assert devices.precision_policy("auto") == "mixed_bfloat16"
    monkeypatch.setattr(devices, "cpu_has_bfloat16", lambda: False)
    assert devices.precision_policy("auto") == "float32"
    monkeypatch.setattr(devices, "has_gpu", lambda: True)
    monkeypatch.setattr(devices, "cpu_has_bfloat16", lambda: True)
    assert devices.precision_policy("auto") == "float32", "GPUs stay float32 until float16 is measured on one"


def test_the_default_strategy_without_tf_config_covers_the_gpus_in_use(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert devices.multi_worker_count() == 1 and devices.is_chief()
    gpus = len(tf.config.list_logical_devices("GPU"))
    strategy = devices.choose_strategy()
    assert strategy.num_replicas_in_sync == max(gpus, 1)
    assert isinstance(strategy, tf.distribute.MirroredStrategy) == (gpus > 1)
    assert not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def test_the_strategy_is_multi_worker_from_tf_config_else_mirrored_on_several_gpus(monkeypatch):
    """Each branch forced on any machine: the strategies are stand-ins, the device list a fake."""
    monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy", lambda: "multi-worker")
    monkeypatch.setattr(tf.distribute, "MirroredStrategy", lambda: "mirrored")
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: ["/GPU:0", "/GPU:1"] if kind == "GPU" else [])
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert devices.choose_strategy() == "mirrored"
    cluster = {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert devices.choose_strategy() == "multi-worker"
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: ["/GPU:0"] if kind == "GPU" else [])
    monkeypatch.delenv("TF_CONFIG")
    assert devices.choose_strategy() is tf.distribute.get_strategy()


def test_tf_config_roles(monkeypatch):
    cluster = {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert devices.multi_worker_count() == 2 and not devices.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert devices.is_chief()
    with_chief = {"chief": ["127.0.0.1:20000"], "worker": ["127.0.0.1:20001"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}}))
    assert devices.multi_worker_count() == 2 and not devices.is_chief()
