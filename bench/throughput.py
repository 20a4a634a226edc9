"""Images/s of the TensorFlow DCGAN tutorial's training loop beside gan_core's, alternated in one process.

    python3 -m bench.throughput [--rounds 6] [--steps 12] [--batches 256 32] [--no-mlp]

The tutorial side is a faithful copy of https://www.tensorflow.org/tutorials/generative/dcgan:
its two Sequential models, BCE from logits, Adam(1e-4) for both, one `@tf.function train_step`
per batch fed by `Dataset.from_tensor_slices(images).shuffle(N).batch(B)`. The gan_core side is
the engine's compiled call (`Trainer.train_fn`) on a run of the `tutorial-dcgan` preset at the
same batch size: once with gan_core's default performance settings (precision and
steps_per_call) and once forced to float32 with one step per call. The MLP rows put the
`mlp-gan` preset beside the classic Keras loop (`generator.predict` + `train_on_batch` on a
compiled discriminator and a combined model with the discriminator frozen) on the same models.

Each round runs every contender for `--steps` steps, in a rotated order, after a warm-up
that traces everything. Figures are the median images/s over rounds and the ratio to the
baseline measured in the same rounds, so a busy machine slows both sides alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import tensorflow as tf

from bench.loops import Loop, classic_keras_mlp, gan_core_loop, tutorial_loop
from gan_core.config import RunConfig, load_preset
from gan_core.data.datasets import load_dataset
from gan_core.store.runs import RunStore


def describe(config: RunConfig) -> str:
    return f"precision={config.precision}, steps_per_call={config.steps_per_call}"


# --------------------------------------------------------------------------- the race


def race(contenders: dict[str, Loop], rounds: int, steps: int) -> dict[str, list[float]]:
    """Images/s per round for each contender; the order rotates every round."""
    names = list(contenders)
    for name in names:
        contenders[name].run(max(2, steps // 4))  # warm-up: traces, oneDNN primitive caches
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            started = time.perf_counter()
            images = contenders[name].run(steps)
            rates[name].append(images / (time.perf_counter() - started))
    return rates


def report(title: str, rates: dict[str, list[float]], baseline: str) -> None:
    print(f"\n### {title}\n")
    print("| loop | images/s (median) | ratio to baseline (median of per-round ratios) |")
    print("|---|---:|---:|")
    for name, values in rates.items():
        ratios = [v / b for v, b in zip(values, rates[baseline])]
        print(f"| {name} | {statistics.median(values):,.0f} | {statistics.median(ratios):.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=12, help="steps per contender per round")
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 32])
    parser.add_argument("--no-mlp", action="store_true", help="skip the MLP against train_on_batch rows")
    args = parser.parse_args()

    images = load_dataset("mnist-5k").images
    defaults = RunConfig()
    print(f"# bench/throughput.py: mnist-5k, {args.rounds} rounds x {args.steps} steps, TF {tf.__version__}")
    print(f"gan_core defaults: {describe(defaults)}")
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        for batch in args.batches:
            tutorial = load_preset("tutorial-dcgan").replace(batch_size=batch, epochs=1000, sample_every=10**6, checkpoint_every=10**6)
            contenders = {
                "tutorial train_step": tutorial_loop(images, batch),
                f"gan_core defaults ({describe(tutorial)})": gan_core_loop(tutorial, store),
                "gan_core float32, 1 step/call": gan_core_loop(tutorial.replace(precision="float32", steps_per_call=1), store),
            }
            report(f"Tutorial DCGAN, batch {batch}", race(contenders, args.rounds, args.steps), "tutorial train_step")
        if not args.no_mlp:
            mlp = load_preset("mlp-gan").replace(epochs=1000, sample_every=10**6, checkpoint_every=10**6)
            contenders = {
                "Keras train_on_batch + predict": classic_keras_mlp(mlp, images),
                f"gan_core mlp-gan ({describe(mlp)})": gan_core_loop(mlp, store),
            }
            steps = args.steps * 4  # MLP steps are short; more per round keeps timing noise down
            report(f"MLP GAN, batch {mlp.batch_size}", race(contenders, args.rounds, steps), "Keras train_on_batch + predict")


if __name__ == "__main__":
    main()
