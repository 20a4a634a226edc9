"""Where training runs: GPU set-up, the tf.distribute strategy, precision and XLA choices."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import tensorflow as tf


def configure_gpus() -> list[str]:
    """Turn on memory growth for every GPU (so two jobs can share one) and list them."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # already initialised by an earlier call in this process
    return [gpu.name for gpu in gpus]


def multi_worker_count() -> int:
    """Number of workers named in TF_CONFIG (1 when unset)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 1
    cluster = json.loads(raw).get("cluster", {})
    return sum(len(cluster.get(job, [])) for job in ("chief", "worker"))


def choose_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirrored from TF_CONFIG, Mirrored on several GPUs, else the default strategy."""
    if multi_worker_count() > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief() -> bool:
    """True unless TF_CONFIG names this process as a non-chief worker."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    config = json.loads(raw)
    task = config.get("task", {})
    cluster = config.get("cluster", {})
    if "chief" in cluster:
        return task.get("type") == "chief"
    return task.get("type") == "worker" and task.get("index", 0) == 0


def device_description(cpuinfo: str = "/proc/cpuinfo") -> str:
    """What training computes on: the GPUs' names, or the CPU's model name (Linux; else what `platform` says)."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return ", ".join(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus)
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def has_gpu() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def cpu_has_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU computes bfloat16 natively (the avx512_bf16 or amx_bf16 flag; Linux only)."""
    try:
        flags = Path(cpuinfo).read_text(errors="replace").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def precision_policy(precision: str) -> str:
    """Keras dtype policy.

    mixed means float16 (with loss scaling) on GPUs and bfloat16 on CPUs. auto means bfloat16 only
    on a CPU without GPUs that computes bfloat16 natively, where bench/time_to_quality.py showed
    it about 1.35x faster at the same quality per step (docs/PERFORMANCE.md); float32 elsewhere.
    """
    if precision == "float32":
        return "float32"
    if precision == "auto":
        return "mixed_bfloat16" if not has_gpu() and cpu_has_bfloat16() else "float32"
    return "mixed_float16" if has_gpu() else "mixed_bfloat16"


def use_xla(setting: str) -> bool:
    """XLA on GPUs only under 'auto': on a CPU it made this DCGAN about 50x slower."""
    if setting == "auto":
        return has_gpu()
    return setting == "on"
