"""The registry of GAN families: `get("dcgan")` returns the family that trains, samples and exports a run.

A family is one module with one class (see `base.GanFamily` and docs/ARCHITECTURE.md, "Adding a
family"). The built-in families are listed in FAMILIES as "module:Class" (one line each) and imported
only when first asked for. More families come from $GAN_FAMILIES, a comma-separated list of
"module:Class" read at each lookup (how the tests add one, and how a user adds their own), or from
`register(cls)`. Family modules reach TensorFlow only through `gan_core.lazy_tf`, so looking a family
up, and validating a config with its settings, loads no TensorFlow.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from gan_core.errors import ConfigError

if TYPE_CHECKING:
    from gan_core.families.base import GanFamily

FAMILIES = {
    "dcgan": "gan_core.families.dcgan:DCGAN",
    "mlp": "gan_core.families.mlp:MLPGAN",
    "lapgan": "gan_core.families.lapgan:LAPGAN",
    "srgan": "gan_core.families.srgan:SRGAN",
    "cyclegan": "gan_core.families.cyclegan:CycleGAN",
    "stylegan": "gan_core.families.stylegan:StyleGAN",
    "progan": "gan_core.families.progan:ProGAN",
}
PLUGINS_ENV = "GAN_FAMILIES"

_instances: dict[str, "GanFamily"] = {}  # one instance per "module:Class" target
_registered: dict[str, "GanFamily"] = {}  # families added with register()


def register(family_class: type) -> type:
    """Add a family class under its `name` (usable as a class decorator)."""
    _registered[family_class.name] = family_class()
    return family_class


def _load(target: str) -> "GanFamily":
    """The family instance of a "module:Class" target, imported once."""
    if target not in _instances:
        module_name, _, class_name = target.partition(":")
        try:
            _instances[target] = getattr(importlib.import_module(module_name), class_name)()
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"The GAN family '{target}' cannot be loaded: {exc}.") from None
    return _instances[target]


def _plugins() -> dict[str, "GanFamily"]:
    """The families named in $GAN_FAMILIES now, by name."""
    targets = [item.strip() for item in os.environ.get(PLUGINS_ENV, "").split(",") if item.strip()]
    return {family.name: family for family in map(_load, targets)}


def names() -> tuple[str, ...]:
    """Every family a config may name: the built-in ones, then plug-ins."""
    extra = _registered | _plugins()
    return (*FAMILIES, *(name for name in extra if name not in FAMILIES))


def get(name: str) -> "GanFamily":
    """The family called `name`; a ConfigError names the known ones."""
    if name in FAMILIES:
        return _load(FAMILIES[name])
    extra = _registered | _plugins()
    if name not in extra:
        raise ConfigError(f"family must be one of {', '.join(names())}; got {name!r}.")
    return extra[name]

