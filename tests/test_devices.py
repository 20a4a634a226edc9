"""Device choices on this CPU-only machine, and the TF_CONFIG parsing used for multi-worker runs."""

import json

import tensorflow as tf

from gan_core.training import devices


def test_cpu_choices():
    assert devices.configure_gpus() == []
    assert not devices.has_gpu()
    assert devices.precision_policy("float32") == "float32"
    assert devices.precision_policy("mixed") == "mixed_bfloat16"
    assert devices.use_xla("auto") is False, "XLA is far slower on CPUs"
    assert devices.use_xla("on") is True and devices.use_xla("off") is False


def test_auto_precision_is_bfloat16_only_on_a_cpu_that_computes_it_natively(tmp_path, monkeypatch):
    with_bf16, without = tmp_path / "bf16", tmp_path / "plain"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 fma\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f fma\n")
    assert devices.cpu_has_bfloat16(str(with_bf16)) and not devices.cpu_has_bfloat16(str(without))
    assert not devices.cpu_has_bfloat16(str(tmp_path / "missing")), "no /proc/cpuinfo (macOS, Windows) means no"
    monkeypatch.setattr(devices, "cpu_has_bfloat16", lambda: True)
    assert devices.precision_policy("auto") == "mixed_bfloat16"
    monkeypatch.setattr(devices, "cpu_has_bfloat16", lambda: False)
    assert devices.precision_policy("auto") == "float32"
    monkeypatch.setattr(devices, "has_gpu", lambda: True)
    assert devices.precision_policy("auto") == "float32", "GPUs stay float32 until float16 is measured on one"
    assert devices.precision_policy("mixed") == "mixed_float16"


def test_default_strategy_without_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert devices.multi_worker_count() == 1 and devices.is_chief()
    strategy = devices.choose_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def test_tf_config_roles(monkeypatch):
    cluster = {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert devices.multi_worker_count() == 2 and not devices.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert devices.is_chief()
    with_chief = {"chief": ["127.0.0.1:20000"], "worker": ["127.0.0.1:20001"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}}))
    assert devices.multi_worker_count() == 2 and not devices.is_chief()
