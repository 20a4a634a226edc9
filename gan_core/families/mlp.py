"""MLP GAN: the original fully connected generator and discriminator (Goodfellow et al., 2014), any image size."""

from __future__ import annotations

from gan_core.families.adversarial import AdversarialFamily


class MLPGAN(AdversarialFamily):
    name = "mlp"
