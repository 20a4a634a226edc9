"""TensorFlow and Keras, imported on first use.

Family modules, the loss registry and the network builders use `tf` and `keras` only inside
functions, so importing them (which validating a run's config does) loads no TensorFlow: the
pages that list runs stay quick. The first attribute read (`tf.split`, `keras.Input`) imports the
real module; from then on it costs one dictionary lookup.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """A stand-in for a module that imports it when one of its attributes is first read."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _module(self) -> ModuleType:
        return importlib.import_module(self._name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._module(), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


tf = LazyModule("tensorflow")
keras = LazyModule("keras")
layers = LazyModule("keras.layers")
