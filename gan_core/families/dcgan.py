"""DCGAN: the TensorFlow tutorial's convolutional generator and discriminator, scaled by `width`.

Image sides must be divisible by 4 (the generator upsamples 7 -> 14 -> 28 for MNIST).
"""

from __future__ import annotations

from gan_core.errors import ConfigError
from gan_core.families.adversarial import AdversarialFamily


class DCGAN(AdversarialFamily):
    name = "dcgan"

    def check_data(self, config, data):
        super().check_data(config, data)
        height, width, _ = data.image_shape
        if height % 4 or width % 4:
            raise ConfigError(f"The dcgan family needs image sides divisible by 4; '{data.source}' has {height}x{width} images.")
