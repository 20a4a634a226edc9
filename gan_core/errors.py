"""Errors a user can cause; each carries one sentence meant to be shown as it is."""


class GanError(Exception):
    """Base class for every error the UI and CLI show as a plain sentence."""


class ConfigError(GanError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class DataError(GanError, ValueError):
    """A dataset cannot be loaded: missing, unreachable or malformed."""


class RunError(GanError):
    """A run cannot be found, read, resumed or exported."""


class RefusedError(RunError):
    """A request refused before it changed anything (training a trained run again, resuming with no readable checkpoint)."""
