"""Whether a dataset can feed a config: the family's own check and the rows one step takes, without TensorFlow.

The worker runs it before training and Configure before Train, so both refuse with the same sentence.
"""

from __future__ import annotations

from gan_core import families
from gan_core.config import RunConfig
from gan_core.data.imageset import ImageSet
from gan_core.errors import ConfigError


def check_data_fits(config: RunConfig, data: ImageSet) -> None:
    """Raise ConfigError when the dataset cannot feed this configuration."""
    family = families.get(config.family)
    family.check_data(config, data)
    rows = family.rows_per_step(config)
    if rows > len(data.images):
        raise ConfigError(f"One training step takes {rows} images, more than the dataset's {len(data.images)}; lower batch_size.")
