"""SRGAN and restoration on the held-out digits: PSNR and SSIM against the baseline, and what the evaluator reads.

    python3 -m bench.restoration [--presets srgan restore] [--budget 180] [--slice 30] [--out docs/restoration.png]
    python3 -m bench.restoration --presets srgan:x2 srgan:blur srgan:blocks   # a preset with another degradation

Each preset trains with gan_core's compiled call, in turns of `--slice` seconds, until it has
trained `--budget` seconds. After every turn all 500 held-out mnist-5k digits are degraded the
preset's way (noise from a fixed seed), restored by the generator, and scored against the
originals: mean PSNR and SSIM of the generator's output and of the baseline (bicubic upsampling
for super-resolution, the degraded input itself for restoration), and the share of digits the
cached evaluator classifies correctly on each (the originals' share is the ceiling). Judging is
not counted as training time. The last pairs grid of each preset is saved side by side in `--out`.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
from PIL import Image

from bench.loops import gan_core_loop
from bench.time_to_quality import Entry, turn_options
from bench.two_minutes import side_by_side
from gan_core import families
from gan_core.config import RunConfig, load_preset
from gan_core.data.images import interleaved, make_grid, scaled_to, to_uint8
from gan_core.evaluation.evaluator import get_evaluator, reference_data
from gan_core.evaluation.restoration import psnr, ssim
from gan_core.families.srgan import baseline
from gan_core.store.runs import RunStore

LONG = dict(epochs=10_000, sample_every=10**6, checkpoint_every=10**6)
SEED = 0


class Judge:
    """The held-out digits, their labels and the evaluator."""

    def __init__(self) -> None:
        heldout = reference_data("mnist-5k").heldout
        self.originals, self.labels = heldout.images, heldout.labels
        self.evaluator = get_evaluator("mnist-5k")

    def accuracy(self, images: np.ndarray) -> float:
        return float(np.mean(np.argmax(self.evaluator.probabilities(images), axis=1) == self.labels))

    def score(self, sampler, config: RunConfig) -> tuple[dict, Image.Image]:
        x = self.originals.astype(np.float32) / 127.5 - 1.0
        degraded = families.get(config.family).model_inputs(config, x, SEED)
        outputs = {
            "baseline": to_uint8(np.asarray(baseline(degraded, config, x.shape[1:]))),
            "generator": to_uint8(np.asarray(sampler(degraded, training=False))),
        }
        scores = {f"{name} {metric.__name__}": float(np.mean(metric(images, self.originals))) for name, images in outputs.items() for metric in (psnr, ssim)}
        scores |= {f"{name} accuracy": self.accuracy(images) for name, images in outputs.items()}
        shown = np.linspace(0, len(x) - 1, 8).astype(int)  # spread over the held-out set, which is sorted by class
        rows = [scaled_to(to_uint8(degraded), 28)[shown], outputs["baseline"][shown], outputs["generator"][shown], self.originals[shown]]
        grid = make_grid(interleaved(rows), cols=4)
        return scores, Image.fromarray(grid[..., 0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["srgan", "restore"], help="preset names; preset:degradation trains it with another degradation")
    turn_options(parser, 180.0, 30.0, "docs/restoration.png", "preset")
    args = parser.parse_args()
    judge = Judge()
    store = RunStore(tempfile.mkdtemp(prefix="restoration-"))
    print(f"# bench/restoration.py: {', '.join(args.presets)}, {args.budget:g} s each, {len(judge.originals)} held-out digits")
    print(f"# the evaluator reads {judge.accuracy(judge.originals):.1%} of the originals correctly")
    results = []
    for name in args.presets:
        preset, _, degradation = name.partition(":")
        config = load_preset(preset).replace(**LONG, **({"degradation": degradation} if degradation else {}))
        entry = Entry(name, gan_core_loop(config, store), config.batch_size)
        while entry.seconds < args.budget:
            entry.train_for(min(args.slice, args.budget - entry.seconds))
            scores, entry.grid = judge.score(entry.loop.sampler, config)
            print(
                f"{name:>8}: {entry.seconds:5.0f} s, {entry.steps:5d} steps, PSNR {scores['generator psnr']:.2f} dB "
                f"(baseline {scores['baseline psnr']:.2f}), SSIM {scores['generator ssim']:.3f} (baseline {scores['baseline ssim']:.3f}), "
                f"evaluator accuracy {scores['generator accuracy']:.1%} (baseline {scores['baseline accuracy']:.1%})", flush=True,
            )
        results.append((entry, config, scores))
    print("\n| preset | degradation | training s | steps | PSNR G / baseline (dB) | SSIM G / baseline | evaluator accuracy G / baseline |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for entry, config, s in results:
        print(
            f"| {entry.name} | {config.degradation} | {entry.seconds:.0f} | {entry.steps:,} | {s['generator psnr']:.2f} / {s['baseline psnr']:.2f} "
            f"| {s['generator ssim']:.3f} / {s['baseline ssim']:.3f} | {s['generator accuracy']:.1%} / {s['baseline accuracy']:.1%} |"
        )
    side_by_side([(f"{e.name}: degraded | baseline | G | original", e.grid) for e, _, _ in results]).save(args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
