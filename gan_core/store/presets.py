"""The user's own presets: a run's config saved under a name, offered beside the built-ins on Configure and to `--config`."""

from __future__ import annotations

from pathlib import Path

from gan_core.config import PRESET_DIR, PRESET_NAME, RunConfig, user_presets_dir
from gan_core.errors import ConfigError
from gan_core.store.runs import atomic_write_text


def save_user_preset(name: str, config: RunConfig) -> Path:
    """Write `config` as the user's preset `name` (letters, digits, - and _; not a built-in's name)."""
    if not PRESET_NAME.fullmatch(name):
        raise ConfigError(f"A preset name is 1 to 40 letters, digits, '-' or '_', starting with a letter or digit; got '{name[:40]}'.")
    if (PRESET_DIR / f"{name}.json").exists():
        raise ConfigError(f"'{name}' is a built-in preset; choose another name.")
    folder = user_presets_dir()
    path = folder / f"{name}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, config.replace(name=name).to_json())
    except OSError as exc:
        raise ConfigError(f"Could not save preset '{name}' in {folder}: {exc.strerror or exc}.") from None
    return path
