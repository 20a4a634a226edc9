"""Cost against dataset size and against steps: images/s on 5k vs 60k images, and a long job's memory curve.

    python3 -m bench.scale [--rounds 6] [--steps 40] [--minutes 20] [--preset dcgan]

Part 1 races gan_core's compiled call on mnist-5k against the same preset on a 60,000-image set
made by tiling mnist-5k twelve times (the size of full MNIST, which cannot be downloaded
here), in alternating rounds in one process. Flat images/s means a step costs the same
whatever the dataset size, so training time grows linearly with steps.

Part 2 starts a real training job (a detached worker, as the dashboard does) and records its
resident memory (VmRSS) and step every 30 s for `--minutes`, then prints the curve and the
growth after the first minute (warm-up: tracing, oneDNN caches, the shuffle buffer). Memory
that does not grow with steps shows as a flat tail. `--minutes 0` skips part 2, `--rounds 0`
part 1.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.loops import gan_core_loop
from bench.throughput import race, report
from gan_core.config import load_preset
from gan_core.data.datasets import load_dataset
from gan_core.store import jobs
from gan_core.store.runs import RunStore

SAMPLE_EVERY_SEC = 30.0


def tiled_dataset(folder: Path, copies: int = 12) -> Path:
    data = load_dataset("mnist-5k")
    path = folder / "mnist-60k-tiled.npz"
    np.savez(path, x=np.tile(data.images, (copies, 1, 1, 1)), y=np.tile(data.labels, copies))
    return path


def dataset_size(store: RunStore, preset: str, rounds: int, steps: int) -> None:
    config = load_preset(preset).replace(epochs=10_000, sample_every=10**6, checkpoint_every=10**6)
    big = tiled_dataset(store.root)
    contenders = {
        "mnist-5k (5,000 images)": gan_core_loop(config, store),
        "mnist-5k tiled x12 (60,000 images)": gan_core_loop(config.replace(dataset=str(big)), store),
    }
    report(f"{preset}, batch {config.batch_size}: images/s against dataset size", race(contenders, rounds, steps), "mnist-5k (5,000 images)")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def memory_curve(store: RunStore, preset: str, minutes: float) -> None:
    config = load_preset(preset).replace(epochs=100_000, checkpoint_every=2000, sample_every=500)
    run = jobs.start_job(store, config)
    curve = []
    try:
        started = time.monotonic()
        while time.monotonic() - started < minutes * 60:
            time.sleep(SAMPLE_EVERY_SEC)
            status = run.status()
            if status["state"] != "running":
                raise RuntimeError(f"the job is {status['state']}: {status.get('message', '')}")
            curve.append(((time.monotonic() - started) / 60, status["step"], rss_mb(status["pid"])))
            print(f"{curve[-1][0]:5.1f} min  step {curve[-1][1]:7,d}  RSS {curve[-1][2]:7.1f} MB", flush=True)
    finally:
        jobs.stop_job(run)
    after_warmup = [rss for minute, _, rss in curve if minute >= 1.0]
    print(f"\n### {preset} job over {minutes:g} min ({curve[-1][1]:,} steps)\n")
    print(f"RSS after the first minute: min {min(after_warmup):.0f} MB, max {max(after_warmup):.0f} MB, "
          f"last {after_warmup[-1]:.0f} MB, growth from minute 1 to the end {after_warmup[-1] - after_warmup[0]:+.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds of the dataset-size race; 0 skips it")
    parser.add_argument("--steps", type=int, default=40, help="steps per contender per round")
    parser.add_argument("--minutes", type=float, default=20.0, help="length of the memory curve; 0 skips it")
    parser.add_argument("--preset", default="dcgan")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        store = RunStore(tmp)
        print(f"# bench/scale.py: preset {args.preset}, {args.rounds} rounds x {args.steps} steps")
        if args.rounds > 0:
            dataset_size(store, args.preset, args.rounds, args.steps)
        if args.minutes > 0:
            print()
            memory_curve(store, args.preset, args.minutes)


if __name__ == "__main__":
    main()
