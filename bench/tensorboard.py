"""What writing TensorBoard event files costs a training run: the same run with `tensorboard` on and off.

    python3 -m bench.tensorboard [--preset dcgan] [--steps 2000] [--pairs 3]

Trains `--pairs` pairs of runs of the preset for `--steps` steps each, one with TensorBoard events and
one without, in alternating order (off, on, on, off, ...), each through `Trainer.fit` as a worker
does (history, samples every 100 steps, checkpoints, and the events). The figure is the median
over pairs of 1 - (steps/s with events) / (steps/s without), wall clock from the first step to
the last (the build and the first, tracing call are left out). Target: under 2%.

Whole runs on this shared machine differ by several percent from one to the next, more than
the events can cost, so the script also times what the trainer adds per step directly: writing
one history row's scalars (the preset's metrics and images/s) to an event file, `--rows` times,
against the preset's median step time from the runs above.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from gan_core.config import load_preset
from gan_core.store.runs import RunStore
from gan_core.training.events import EventLog
from gan_core.training.loop import Trainer


def steps_per_second(store: RunStore, preset: str, steps: int, tensorboard: bool) -> float:
    """Steps per wall-clock second of one run, between its sample grids of step 100 and of its last step."""
    config = load_preset(preset).replace(steps=steps, epochs=0, sample_every=100, checkpoint_every=1000, tensorboard=tensorboard)
    run = store.create(config)
    Trainer(run).fit()
    samples = sorted(run.samples_dir.glob("step_*.png"))  # step 0 (before the tracing call), 100, 200, ...
    first, last = samples[1], samples[-1]
    step = {path: int(path.stem.split("_")[1]) for path in (first, last)}
    return (step[last] - step[first]) / (last.stat().st_mtime - first.stat().st_mtime)


def seconds_per_row(folder: Path, metrics: list[str], rows: int) -> float:
    """Seconds to write one history row's scalars to an event file (flushed every 100 rows, as the trainer flushes about once a second)."""
    events = EventLog(folder, 0)
    values = {f"Losses/{name}": 0.5 for name in metrics} | {"Throughput/images_per_sec": 2000.0}
    started = time.perf_counter()
    for step in range(rows):
        events.scalars(step, values)
        if step % 100 == 0:
            events.flush()
    events.close()
    return (time.perf_counter() - started) / rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dcgan")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    store = RunStore(tempfile.mkdtemp(prefix="tensorboard-bench-"))
    print(f"# bench/tensorboard.py: {args.preset}, {args.steps} steps a run, {args.pairs} pairs, {time.strftime('%Y-%m-%d')}")
    costs, speeds = [], []
    for pair in range(args.pairs):
        order = (False, True) if pair % 2 == 0 else (True, False)
        speed = {on: steps_per_second(store, args.preset, args.steps, on) for on in order}
        costs.append(1.0 - speed[True] / speed[False])
        speeds += speed.values()
        print(f"pair {pair + 1}: {speed[False]:.1f} steps/s without events, {speed[True]:.1f} with: cost {costs[-1]:+.1%}", flush=True)
    print(f"\nmedian cost of writing TensorBoard events: {statistics.median(costs):+.1%} (pairs {', '.join(f'{c:+.1%}' for c in costs)})")
    metrics = [metric.name for metric in store.list()[0].metrics()]
    row = seconds_per_row(Path(tempfile.mkdtemp(prefix="events-")), metrics, args.rows)
    step = 1.0 / statistics.median(speeds)
    print(f"one row's {len(metrics) + 1} scalars: {row * 1e6:.0f} µs, {row / step:.2%} of a median step ({step * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
