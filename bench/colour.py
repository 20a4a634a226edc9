"""Colour 32×32 GANs side by side: held-out Fréchet distance after a training budget, beside the real-data floor.

    python3 -m bench.colour [--dataset auto] [--presets dcgan-colour dcgan] [--budget 600] [--slice 60] [--out docs/colour.png]

`--dataset auto` (the default) measures on cifar10 when Keras can load it and otherwise on the offline
mnist-5k-colour set (mnist-5k digits in colour over photo patches), and says which. Every preset trains
on that dataset (its own `dataset` is replaced), in turns of `--slice` seconds until each has trained
`--budget` seconds, as bench/families.py does: after every turn its sampling generator draws N images
from seeded latents and the dataset's cached evaluator (a classifier trained on its labels) measures
their Fréchet distance to the held-out images and the classes they cover. The floor (held-out against
training images at the same N) is printed beside, and the last grids, in colour, are saved side by side
in `--out`.
"""

from __future__ import annotations

import argparse
import tempfile

from bench.families import LONG, race, report
from bench.loops import gan_core_loop
from bench.time_to_quality import Entry, Judge, turn_options
from gan_core.config import load_config
from gan_core.data.datasets import COLOUR_DATASET, load_dataset
from gan_core.errors import DataError
from gan_core.evaluation.evaluate import real_floor, reference_data
from gan_core.store.runs import RunStore

DOWNLOADED = "cifar10"


def measured_on(choice: str) -> str:
    """The dataset to measure on: `choice`, or for "auto" cifar10 when it loads and the offline colour set when not."""
    if choice != "auto":
        return choice
    try:
        load_dataset(DOWNLOADED, "test")
    except DataError as exc:
        print(f"# {exc}\n# so measuring on the offline colour set {COLOUR_DATASET}")
        return COLOUR_DATASET
    return DOWNLOADED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="auto", help=f"'auto' ({DOWNLOADED}, else {COLOUR_DATASET}) or any dataset")
    parser.add_argument("--presets", nargs="+", default=["dcgan-colour", "dcgan"], help="preset names or JSON files")
    turn_options(parser, 600.0, 60.0, "docs/colour.png", "preset")
    args = parser.parse_args()
    dataset = measured_on(args.dataset)
    judge = Judge(dataset)
    floor = real_floor(judge.evaluator, reference_data(dataset), judge.n).result["values"]
    store = RunStore(tempfile.mkdtemp(prefix="colour-"))
    entries = []
    for name in args.presets:
        config = load_config(name).replace(dataset=dataset, **LONG)
        entries.append(Entry(config.name, gan_core_loop(config, store), config.batch_size))
    print(
        f"# bench/colour.py on {dataset} (evaluator accuracy {judge.evaluator.accuracy:.3f}): "
        f"{', '.join(e.name for e in entries)}, {args.budget:g} s each in turns of {args.slice:g} s, N = {judge.n}"
    )
    report(entries, race(entries, judge, args.budget, args.slice), floor, args.out, on=f" on {dataset}")


if __name__ == "__main__":
    main()
