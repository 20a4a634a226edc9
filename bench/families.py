"""GAN families side by side at the same training budget: held-out Fréchet distance and classes covered on mnist-5k.

    python3 -m bench.families [--presets dcgan lapgan lapgan:ema_decay=0.999] [--budget 300] [--slice 30] [--out docs/families.png]

Each preset trains with gan_core's compiled call, in turns of `--slice` seconds, until each has
trained `--budget` seconds (taking turns, a busy machine slows every contender alike). After every
turn its sampling generator draws N digits from seeded latents and the cached mnist-5k evaluator
measures their Fréchet distance to the held-out digits and the classes they cover (the metrics of
metrics.csv); judging is not counted as training time. A contender `PRESET:KEY=VALUE[:KEY=VALUE]` is
the preset with those fields changed. The real-data floor (held-out digits
against training digits, at the same N) is printed beside, and the last grids are saved side by
side in `--out` to be looked at.
"""

from __future__ import annotations

import argparse
import tempfile

from bench.loops import gan_core_loop
from bench.time_to_quality import Entry, Judge, turn_options
from bench.two_minutes import side_by_side
from gan_core.config import RunConfig, load_preset
from gan_core.data.images import make_grid, picture
from gan_core.evaluation.evaluate import cheap_metrics, real_floor, reference_data
from gan_core.store.runs import RunStore

LONG = dict(epochs=10_000, sample_every=10**6, checkpoint_every=10**6)


def contender(name: str) -> RunConfig:
    """The config of `PRESET[:KEY=VALUE...]`: the preset with those fields changed."""
    preset, *changes = name.split(":")
    return load_preset(preset).with_overrides(changes)


def race(entries: list[Entry], judge: Judge, budget: float, slice_seconds: float) -> dict[str, dict]:
    """Train in turns until each entry has `budget` seconds; return each entry's last metrics."""
    last: dict[str, dict] = {}
    while any(entry.seconds < budget for entry in entries):
        for entry in entries:
            if entry.seconds >= budget:
                continue
            entry.train_for(min(slice_seconds, budget - entry.seconds))
            images = judge.images(entry.loop.sampler)
            last[entry.name] = cheap_metrics(lambda n: images[:n], judge.evaluator, judge.reference, judge.n)
            fd, covered = last[entry.name]["fd"], last[entry.name].get("classes_covered")
            entry.curve.append((entry.seconds, entry.steps, fd))
            print(f"{entry.name:>10}: {entry.seconds:6.1f} s, {entry.steps:6d} steps, FD {fd:6.1f}, classes covered {covered}", flush=True)
            entry.grid = picture(make_grid(images[:64], cols=8))
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["dcgan", "lapgan"])
    turn_options(parser, 300.0, 30.0, "docs/families.png", "preset")
    args = parser.parse_args()
    judge = Judge()
    floor = real_floor(judge.evaluator, reference_data(judge.dataset), judge.n).result["values"]
    store = RunStore(tempfile.mkdtemp(prefix="families-"))
    entries = []
    for name in args.presets:
        config = contender(name).replace(**LONG)
        entries.append(Entry(name, gan_core_loop(config, store), config.batch_size))
    print(f"# bench/families.py: {', '.join(args.presets)}, {args.budget:g} s each in turns of {args.slice:g} s, N = {judge.n}")
    report(entries, race(entries, judge, args.budget, args.slice), floor, args.out)


def report(entries: list[Entry], last: dict[str, dict], floor: dict, out: str, on: str = "") -> None:
    """Print the race's table beside the real-data floor and save the contenders' last grids side by side."""
    print(f"\n| preset{on} | training s | steps | images/s | held-out FD | classes covered |\n|---|---:|---:|---:|---:|---:|")
    for e in entries:
        m = last[e.name]
        print(f"| {e.name} | {e.seconds:.0f} | {e.steps:,} | {e.steps * e.batch_size / e.seconds:,.0f} | {m['fd']:.1f} | {m.get('classes_covered')} |")
    print(f"| real held-out vs train (floor) | | | | {floor['fd']:.1f} | {floor.get('classes_covered')} |")
    side_by_side([(f"{e.name}: {e.seconds:.0f} s{on}", e.grid) for e in entries]).save(out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
