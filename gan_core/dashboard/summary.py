"""Model summaries before training: the layers and parameter counts a config would build."""

from __future__ import annotations

from typing import Any

from gan_core.config import RunConfig
from gan_core.data.datasets import load_dataset, needs_download
from gan_core.errors import ConfigError, GanError
from gan_core.families.data_fit import check_data_fits

BUILTIN_SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    "mnist-5k": ((28, 28, 1), 10),
    "mnist": ((28, 28, 1), 10),
    "fashion_mnist": ((28, 28, 1), 10),
    "sklearn-digits": ((28, 28, 1), 10),
    "mnist-5k-thick": ((28, 28, 1), 10),
    "mnist-5k-colour": ((32, 32, 3), 10),
    "cifar10": ((32, 32, 3), 10),
}


def dataset_shape(dataset: str) -> tuple[tuple[int, int, int], int]:
    """(image shape, number of classes) of a dataset; builtins without loading, files by validating them."""
    if dataset in BUILTIN_SHAPES:
        return BUILTIN_SHAPES[dataset]
    images = load_dataset(dataset)
    return images.image_shape, images.num_classes


def data_problem(config: RunConfig) -> str | None:
    """The sentence that says why the data cannot feed this config (the worker's own check), None when it can.

    Datasets that Keras downloads are left to the worker, so a change of field never starts a download.
    """
    if needs_download(config.dataset):
        return None
    try:
        check_data_fits(config, load_dataset(config.dataset))
    except GanError as exc:
        return str(exc)
    return None


def summarize(config: RunConfig, image_shape: tuple[int, int, int], num_classes: int) -> dict[str, Any]:
    """Layer rows and parameter totals of each network the family exports ("parts" lists them in order)."""
    from gan_core import families  # TensorFlow loads only when a summary is asked for
    from gan_core.families.base import DataSpec
    from gan_core.families.networks import model_summary

    if getattr(config, "conditional", False) and num_classes < 2:
        raise ConfigError("conditional=true needs a labelled dataset; this dataset has no class labels.")
    exports = families.get(config.family).exports(config, DataSpec(tuple(image_shape), num_classes))
    summary: dict[str, Any] = {"parts": list(exports)}
    for role, (_, model) in exports.items():
        summary[role] = model_summary(model)
        summary[f"{role}_params"] = int(model.count_params())
    return summary
