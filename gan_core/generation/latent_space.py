"""The latent space that projection and editing move in: z for generators fed noise directly, w for StyleGAN.

StyleGAN's w (the mapping network's output, the same w for every block, fixed noise maps) is used instead of its
z because w is where its styles are disentangled and where a drawing is reached best. Image-to-image families
(srgan, cyclegan) have no latent space and are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gan_core import families
from gan_core.errors import RunError
from gan_core.generation.latents import seeded_latents
from gan_core.generation.sampling import LoadedGenerator
from gan_core.generation.styles import is_style_based, style_sampler
from gan_core.lazy_tf import keras, tf

BATCH = 256


@dataclass
class LatentSpace:
    """A generator seen as latent -> image: `draw` is differentiable, `images` batched numpy, `random` seeded latents."""

    name: str  # "z" or "w"
    dim: int
    network: keras.Model  # the network that takes the latent (the sampler, or StyleGAN's synthesis)
    num_classes: int  # > 0: the generator also takes a class label
    noise_maps: tuple[np.ndarray, ...] = ()  # StyleGAN's fixed per-pixel noise, one map per block
    mapping: keras.Model | None = None  # StyleGAN's z -> w

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the images it draws."""
        return tuple(int(d) for d in self.network.outputs[0].shape[1:])

    def draw(self, latents: tf.Tensor, labels: np.ndarray | None = None) -> tf.Tensor:
        """Images in [-1, 1] from latents (a tensor the caller may differentiate through)."""
        if self.noise_maps:
            n = tf.shape(latents)[0]
            maps = [tf.repeat(tf.constant(m), n, axis=0) for m in self.noise_maps]
            return self.network([*[latents] * len(self.noise_maps), *maps], training=False)
        if self.conditional:
            return self.network([latents, tf.constant(labels, tf.int32)], training=False)
        return self.network(latents, training=False)

    def images(self, latents: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """float32 images in [-1, 1] from latents, in batches."""
        out = []
        for start in range(0, len(latents), BATCH):
            rows = None if labels is None else labels[start : start + BATCH]
            out.append(np.asarray(self.draw(tf.constant(latents[start : start + BATCH], tf.float32), rows), np.float32))
        return np.concatenate(out)

    def random(self, n: int, seed: int) -> np.ndarray:
        """n latents of the seeded standard-normal z (mapped to w for StyleGAN)."""
        z = seeded_latents(n, int(self.mapping.inputs[0].shape[-1]) if self.mapping else self.dim, seed)
        if self.mapping is None:
            return z
        return np.concatenate([np.asarray(self.mapping(z[s : s + BATCH], training=False), np.float32)
                               for s in range(0, n, BATCH)])


def latent_space(loaded: LoadedGenerator) -> LatentSpace:
    """The space a run's generator is projected into and edited in; a RunError for image-to-image families."""
    family = families.get(loaded.config.family)
    if family.image_to_image:
        raise RunError(
            f"Projection and editing need a generator that draws from noise; the {family.name} family maps images to images."
        )
    if is_style_based(loaded):
        styles = style_sampler(loaded, 1.0)
        w_dim = int(styles.synthesis.inputs[0].shape[-1])
        return LatentSpace("w", w_dim, styles.synthesis, 0, tuple(styles.fixed_noise), styles.mapping)
    return LatentSpace("z", loaded.latent_dim, loaded.model, loaded.num_classes if loaded.conditional else 0)
