"""Training time until the classifier Fréchet distance on mnist-5k falls below a threshold, loops side by side.

    python3 -m bench.time_to_quality [--threshold 40] [--slice 15] [--cap 1200] [--out docs/time-to-quality.png]

Contenders: the TensorFlow DCGAN tutorial's own loop (bench/loops.py, float32, batch 256,
Adam 1e-4); gan_core on the `tutorial-dcgan` preset with gan_core's default performance
settings; and gan_core's default `dcgan` preset, with its default settings and with the other
precision (float32 against mixed bfloat16: the check that bfloat16 converges as well). They take turns: each trains for
`--slice` seconds, then its sampling generator draws N = min(1000, held-out images) digits
(500 on mnist-5k) from fixed latents and the cached mnist-5k evaluator measures their Fréchet
distance to the held-out digits (the metric of metrics.csv and the Evaluate page). Judging is
not counted as training time. A contender leaves the race when its distance first falls
below `--threshold`, or after `--cap` seconds of training. Taking turns means a busy machine slows every contender alike.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from bench.loops import Loop, gan_core_loop, tutorial_loop
from bench.two_minutes import side_by_side
from gan_core.config import RunConfig, load_preset
from gan_core.data.datasets import load_dataset
from gan_core.data.images import make_grid, picture, to_uint8
from gan_core.evaluation.evaluate import SEED, cheap_metrics, check_n, make_reference, reference_data
from gan_core.evaluation.evaluator import get_evaluator
from gan_core.families.adversarial import cycled_labels
from gan_core.families.adversarial import run_generator as generate
from gan_core.store.runs import RunStore

N = 1000


@dataclass
class Entry:
    name: str
    loop: Loop
    batch_size: int
    steps: int = 0
    seconds: float = 0.0
    curve: list[tuple[float, int, float]] = field(default_factory=list)  # (train seconds, steps, FD)
    reached: float | None = None
    grid: Image.Image | None = None

    def train_for(self, seconds: float) -> None:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            self.loop.run(self.loop.steps_per_call)
            self.steps += self.loop.steps_per_call
        self.seconds += time.perf_counter() - started


def turn_options(parser: argparse.ArgumentParser, budget: float, slice_seconds: float, out: str, each: str) -> None:
    """The options of a bench that trains its contenders in turns: --budget, --slice and --out (the picture)."""
    parser.add_argument("--budget", type=float, default=budget, help=f"training seconds per {each}")
    parser.add_argument("--slice", type=float, default=slice_seconds, help="training seconds per turn")
    parser.add_argument("--out", default=out)


class Judge:
    """FD of N generated images against a dataset's held-out reference (mnist-5k by default), from the same seeded latents every time."""

    def __init__(self, dataset: str = "mnist-5k") -> None:
        self.dataset = dataset
        data = reference_data(dataset)
        self.evaluator = get_evaluator(dataset, data=data)
        self.n = check_n(min(N, data.heldout.num_images), data)
        self.reference = make_reference(self.evaluator, data, self.n)
        self.num_classes = data.train.num_classes

    def images(self, sampler) -> np.ndarray:
        """N digits from latents seeded the same every time, sized to the sampler's noise input; a conditional
        sampler (a second, label input) is asked for each class in turn, as the evaluator asks it."""
        z = np.random.default_rng(SEED).standard_normal((self.n, sampler.inputs[0].shape[-1]), dtype=np.float32)
        labels = cycled_labels(self.n, self.num_classes) if len(sampler.inputs) > 1 else None
        return to_uint8(generate(sampler, z, labels))

    def fd(self, sampler) -> float:
        return float(cheap_metrics(lambda n: self.images(sampler)[:n], self.evaluator, self.reference, self.n)["fd"])


def contenders(store: RunStore) -> list[Entry]:
    images = load_dataset("mnist-5k").images
    tutorial = load_preset("tutorial-dcgan").replace(epochs=10_000, sample_every=10**6, checkpoint_every=10**6)
    dcgan = load_preset("dcgan").replace(epochs=10_000, sample_every=10**6, checkpoint_every=10**6)
    defaults = RunConfig()
    entries = [
        Entry("tutorial loop (float32)", tutorial_loop(images, 256), 256),
        Entry(f"gan_core tutorial-dcgan ({defaults.precision})", gan_core_loop(tutorial, store), tutorial.batch_size),
        Entry(f"gan_core dcgan ({defaults.precision})", gan_core_loop(dcgan, store), dcgan.batch_size),
    ]
    other = "mixed" if defaults.precision == "float32" else "float32"
    entries.append(Entry(f"gan_core dcgan ({other})", gan_core_loop(dcgan.replace(precision=other), store), dcgan.batch_size))
    return entries


def race(entries: list[Entry], judge: Judge, threshold: float, slice_seconds: float, cap: float) -> None:
    racing = list(entries)
    while racing:
        for entry in list(racing):
            entry.train_for(slice_seconds)
            fd = judge.fd(entry.loop.sampler)
            entry.curve.append((entry.seconds, entry.steps, fd))
            print(f"{entry.name:>34}: {entry.seconds:7.1f} s, {entry.steps:6d} steps, FD {fd:7.1f}", flush=True)
            if fd < threshold:
                entry.reached = entry.seconds
            if entry.reached is not None or entry.seconds >= cap:
                entry.grid = picture(make_grid(judge.images(entry.loop.sampler)[:64], cols=8))
                racing.remove(entry)


def table(entries: list[Entry], threshold: float) -> str:
    lines = [
        f"| contender | training time to FD < {threshold:g} | steps | images/s | last FD |",
        "|---|---:|---:|---:|---:|",
    ]
    for e in entries:
        reached = f"{e.reached:,.0f} s" if e.reached is not None else f"not within {e.seconds:,.0f} s"
        lines.append(f"| {e.name} | {reached} | {e.steps:,} | {e.steps * e.batch_size / e.seconds:,.0f} | {e.curve[-1][2]:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=40.0, help="Fréchet distance to reach (floor on mnist-5k is about 9)")
    parser.add_argument("--slice", type=float, default=15.0, help="training seconds per turn")
    parser.add_argument("--cap", type=float, default=1200.0, help="give up after this many training seconds")
    parser.add_argument("--out", default="docs/time-to-quality.png")
    args = parser.parse_args()
    judge = Judge()
    entries = contenders(RunStore(tempfile.mkdtemp(prefix="time-to-quality-")))
    print(f"# bench/time_to_quality.py: threshold FD {args.threshold:g}, N = {judge.n}, slices of {args.slice:g} s, cap {args.cap:g} s")
    race(entries, judge, args.threshold, args.slice, args.cap)
    print("\n" + table(entries, args.threshold))
    for e in entries:
        print(f"\n{e.name} curve (train s, steps, FD): " + ", ".join(f"({s:.0f}, {n}, {fd:.0f})" for s, n, fd in e.curve))
    side_by_side([(f"{e.name}: {e.seconds:.0f} s", e.grid) for e in entries]).save(args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
