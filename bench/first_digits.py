"""From pressing Train to the first sample grid whose digits the evaluator reads as at least 8 classes.

    python3 -m bench.first_digits [--preset dcgan[:KEY=VALUE...]] [--starts 3] [--classes 8] [--confidence 0.9] [--share 0.5]
                                  [--look 45] [--out docs/first-digits.png]

Starts the preset (the Configure page's default) with `jobs.start_job`, the function the Train
button calls, and watches the run's `samples/` folder. Each new grid is cut into its 64 digits
and read by the dataset's cached evaluator. A grid counts as digits when the evaluator reads at
least `--share` of its digits with probability >= `--confidence` (it reads 98% of real held-out
digits so; a classifier is confident about some scribbles, so one confident digit per class is
not enough: early grids of half-formed strokes have 8 classes at 47% confident digits) and those
digits span at least `--classes` classes. At the default half, about half the grid is legible
digits (the share then grows slowly: 0.6 to 0.7 from 3,000 to 7,000 steps). The time is from
start_job to the modification time of the first such grid. Target: under 45 s on this 2-core CPU.

The evaluator is confident about half-formed strokes, so what a user sees is saved too: the last grid
each start wrote within `--look` seconds of Train, side by side in `--out`, to be looked at.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.families import contender
from bench.interactivity import stop_and_wait
from bench.two_minutes import side_by_side
from gan_core.config import RunConfig
from gan_core.evaluation.evaluator import get_evaluator
from gan_core.store import jobs
from gan_core.store.runs import RunStore

TIMEOUT = 300.0
SIDE, PAD = 28, 2  # make_grid puts digits of 28x28 on a 2-pixel lattice


def digits(grid_png: Path) -> np.ndarray:
    """The 28x28 digits of a sample grid PNG, as (N, 28, 28, 1) uint8."""
    grid = np.asarray(Image.open(grid_png).convert("L"))
    pitch = SIDE + PAD
    rows, cols = (grid.shape[0] - PAD) // pitch, (grid.shape[1] - PAD) // pitch
    cells = [grid[PAD + r * pitch : PAD + r * pitch + SIDE, PAD + c * pitch : PAD + c * pitch + SIDE] for r in range(rows) for c in range(cols)]
    return np.stack(cells)[..., None]


def reads_as_digits(evaluator, images: np.ndarray, confidence: float, share: float, classes: int) -> bool:
    """At least `share` of the images read with `confidence` or more, spanning at least `classes` classes."""
    probs = evaluator.probabilities(images)
    sure = probs.max(axis=1) >= confidence
    return sure.mean() >= share and len(set(probs.argmax(axis=1)[sure].tolist())) >= classes


@dataclass
class Start:
    seconds: float  # from start_job to the first grid read as digits
    step: int  # that grid's step
    looked: Path  # the last grid written within the `look` seconds


def watch_start(store: RunStore, config: RunConfig, evaluator, confidence: float, share: float, classes: int, look: float) -> Start:
    """Start a run as Train does and watch its grids until one reads as digits and `look` seconds have passed."""
    started = time.time()
    run = jobs.start_job(store, config)
    seen: set[Path] = set()
    found: tuple[float, int] | None = None
    looked: Path | None = None
    try:
        while time.time() - started < TIMEOUT:
            for grid in sorted(set(run.samples_dir.glob("step_*.png")) - seen) if run.samples_dir.exists() else []:
                seen.add(grid)
                written = grid.stat().st_mtime - started
                if written <= look:
                    looked = grid
                if found is None and reads_as_digits(evaluator, digits(grid), confidence, share, classes):
                    found = written, int(grid.stem.split("_")[1])
            if found is not None and looked is not None and time.time() - started > look + 1:
                return Start(*found, looked)
            time.sleep(0.5)
        raise SystemExit(f"no grid read as digits of {classes} classes within {TIMEOUT:.0f} s; see {run.dir}")
    finally:
        stop_and_wait(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dcgan", help="a preset, with fields changed as PRESET:KEY=VALUE[:KEY=VALUE]")
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--confidence", type=float, default=0.9)
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--look", type=float, default=45.0, help="save the last grid written within these seconds of Train")
    parser.add_argument("--out", default="docs/first-digits.png")
    args = parser.parse_args()
    config = contender(args.preset)
    evaluator = get_evaluator(config.dataset)
    store = RunStore(tempfile.mkdtemp(prefix="first-digits-"))
    print(
        f"# bench/first_digits.py: {args.preset}, {args.starts} starts; a grid reads as digits when {args.share:.0%} of them are read "
        f"with p >= {args.confidence} over {args.classes}+ classes; {time.strftime('%Y-%m-%d')}"
    )
    starts = []
    for number in range(1, args.starts + 1):
        start = watch_start(store, config, evaluator, args.confidence, args.share, args.classes, args.look)
        starts.append(start)
        print(f"start {number}: {start.seconds:.1f} s (the grid of step {start.step}); within {args.look:g} s: {start.looked.stem}", flush=True)
    median = statistics.median(start.seconds for start in starts)
    print(f"\nmedian {median:.1f} s from Train to a grid of {args.classes}+ classes (target: under 45 s)")
    panels = [(f"start {n}: {start.looked.stem}, within {args.look:g} s", Image.open(start.looked)) for n, start in enumerate(starts, 1)]
    side_by_side(panels).save(args.out)
    print(f"wrote {args.out}: the grids a user sees {args.look:g} s after pressing Train")


if __name__ == "__main__":
    main()
