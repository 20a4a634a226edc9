"""Apply a trained image-to-image generator (SRGAN, restoration) to a user's own images: Generate's Apply view and `apply`.

The images come from an upload or a file (one PNG/JPEG, or a batch as .npz or .zip, checked as
dataset uploads are, in memory: nothing is written when they are refused). Images of the
generator's input size go in as they are; images of the run's training size are first degraded
the run's way (so a user can see a digit taken down to 7x7 and brought back). Colour images are
made grey for a grey generator, and grey ones repeated for a colour one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan_core import families
from gan_core.data.images import encode_png, interleaved, make_grid, scaled_to, to_uint8
from gan_core.data.uploads import load_images
from gan_core.errors import RunError
from gan_core.families.adversarial import run_generator
from gan_core.generation.sampling import LoadedGenerator, save_samples
from gan_core.lazy_tf import keras
from gan_core.store.runs import atomic_write_bytes

APPLY_SUFFIXES = ("png", "jpg", "jpeg", "npz", "zip")  # what the upload widget offers
PNG_SCALE = 4
SEED = 0  # the noise of a noisy-image degradation applied to a user's full-size images


@dataclass
class Applied:
    """A generator applied to a user's images: what went in, what came out, and how the inputs were made."""

    inputs: np.ndarray  # uint8, the generator's input size
    outputs: np.ndarray  # uint8
    note: str

    def grid(self) -> np.ndarray:
        """Rows of input (scaled to the output size) beside output."""
        side = scaled_to(self.inputs, self.outputs.shape[1])
        return make_grid(interleaved([side, self.outputs]), cols=2)

    def png(self) -> bytes:
        """The grid as PNG bytes, four times enlarged."""
        return encode_png(self.grid(), scale=PNG_SCALE)


def with_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 images with `channels` channels: colour made grey, grey repeated."""
    if images.shape[-1] == channels:
        return images
    if channels == 1:
        grey = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.round(grey).astype(np.uint8)[..., None]
    return np.repeat(images, channels, axis=-1)


def directions(loaded: LoadedGenerator) -> dict[str, keras.Model]:
    """The networks Apply can run on a user's images, by what they do (CycleGAN: both ways)."""
    return families.get(loaded.config.family).directions(loaded.model, loaded.config, loaded.partners)


def size_hint(loaded: LoadedGenerator) -> str:
    """The sentence that says which image sizes the generator takes."""
    height, width = (int(d) for d in loaded.model.inputs[0].shape[1:3])
    out_h, out_w = (int(d) for d in loaded.model.outputs[0].shape[1:3])
    if (height, width) == (out_h, out_w):
        return f"Images of {height}x{width} pixels go in as they are."
    return f"Images of {height}x{width} pixels go in as they are; images of {out_h}x{out_w} are first degraded the way the run was trained."


def apply_generator(loaded: LoadedGenerator, images: np.ndarray, name: str, network: keras.Model | None = None) -> Applied:
    """Run the generator (or another of `directions`) on uint8 images (N, H, W, C) of its input size, or of its training size after degrading them."""
    family = families.get(loaded.config.family)
    if not family.image_to_image:
        raise RunError(
            f"Run '{loaded.config.name}' is a {loaded.config.family} run, which draws images from noise; "
            f"Apply needs an image-to-image run ({', '.join(image_to_image_families())})."
        )
    network = network or loaded.model
    height, width, channels = (int(d) for d in network.inputs[0].shape[1:])
    out_h, out_w = (int(d) for d in network.outputs[0].shape[1:3])
    images = with_channels(images, channels)
    size = tuple(images.shape[1:3])
    if size == (height, width):
        inputs, note = images, f"{len(images)} images of {height}x{width}, which went in as they are."
    elif size == (out_h, out_w):
        originals = images.astype(np.float32) / 127.5 - 1.0
        inputs = to_uint8(family.model_inputs(loaded.config, originals, SEED))
        note = f"{len(images)} images of {out_h}x{out_w}, first degraded the run's way ({loaded.config.degradation}) to {height}x{width}."
    else:
        raise RunError(
            f"'{name}' holds {size[0]}x{size[1]} images; this generator takes {height}x{width} images, "
            f"or {out_h}x{out_w} ones, which it first degrades the way it was trained."
        )
    batch = inputs.astype(np.float32) / 127.5 - 1.0
    return Applied(inputs, to_uint8(run_generator(network, batch)), note)


def image_to_image_families() -> list[str]:
    """The registered families whose generators map an image to an image."""
    return [name for name in families.names() if families.get(name).image_to_image]


def apply_upload(loaded: LoadedGenerator, data: bytes, name: str, network: keras.Model | None = None) -> Applied:
    """Check the uploaded bytes (in memory) and apply the generator (or `network`) to the images they hold."""
    return apply_generator(loaded, load_images(data, name), name, network)


def reverse_network(loaded: LoadedGenerator) -> keras.Model:
    """The network that runs the other way (CycleGAN's B->A); a RunError for one-way runs."""
    found = directions(loaded)
    if len(found) < 2:
        raise RunError(f"--reverse is for runs that translate both ways (cyclegan); this {loaded.config.family} run has one direction.")
    return list(found.values())[1]


def apply_file(loaded: LoadedGenerator, source: Path, target: Path, reverse: bool = False) -> Applied:
    """Apply the generator (reverse: the other way) to an image file and write the outputs: .npz (array 'x') or .png (each input beside its output)."""
    network = reverse_network(loaded) if reverse else None
    if target.suffix.lower() not in (".npz", ".png"):
        raise RunError(f"--out must end in .npz or .png; got '{target.name}'.")
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise RunError(f"Could not read '{source}': {exc.strerror or exc}.") from None
    applied = apply_upload(loaded, data, source.name, network)
    if target.suffix.lower() == ".png":
        atomic_write_bytes(target, applied.png())
    else:
        save_samples(applied.outputs, None, target)
    return applied
