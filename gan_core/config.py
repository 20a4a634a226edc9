"""RunConfig: every hyperparameter of a run, validated, and round-tripped through JSON.

Each field carries its help text, allowed choices or range and its form group in
`dataclasses.field(metadata=...)`, so the CLI, the dashboard forms and the validation all
read one description.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from gan_core.errors import ConfigError

PRESET_DIR = Path(__file__).parent / "presets"
USER_PRESETS_ENV = "GAN_PRESETS_DIR"
PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
SHOWN_CHARS = 80  # longest value quoted in an error message
DEFAULT_FAMILY = "dcgan"


def setting(default: Any, help: str, group: str, label: str, **limits: Any) -> Any:
    """A validated field: its help text, form group and label, and `choices`, `min`/`max`, `max_len`, or a `pattern`
    (a regular expression the whole text must match) with `pattern_help` (what it means, for the error message)."""
    return dataclasses.field(default=default, metadata={"help": help, "group": group, "label": label, **limits})


class Settings:
    """Base of a family's own settings (a dataclass of `setting` fields); validated on creation."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_value(f, getattr(self, f.name))
        self.validate()

    def validate(self) -> None:
        """Cross-field rules of the family: raise ConfigError with one sentence."""


@dataclasses.dataclass
class CommonSettings(Settings):
    """What every run has, whatever its family: data, schedule, output and performance."""

    name: str = setting("", "A short name for the run, shown in tables.", "output", "Run name", max_len=60)
    dataset: str = setting(
        "mnist-5k",
        "mnist, fashion_mnist, cifar10 (colour 32x32; these three downloaded by Keras), mnist-5k, sklearn-digits, mnist-5k-thick, "
        "mnist-5k-colour (colour 32x32; these four offline) or the path of a .npz/.zip file.",
        "data", "Dataset",
    )
    family: str = setting(DEFAULT_FAMILY, "The GAN family: its networks, training step and settings.", "family", "GAN family")
    batch_size: int = setting(64, "Images per training step.", "optimizer", "Batch size", min=1, max=4096)
    epochs: int = setting(10, "Passes over the data (ignored when steps > 0).", "schedule", "Epochs", min=0, max=100_000)
    steps: int = setting(0, "Generator steps to train; 0 means use epochs.", "schedule", "Steps (0 = use epochs)", min=0, max=100_000_000)
    time_limit: int = setting(
        0, "Stop after this many seconds of training, summed over resumes (0 = no limit); the run ends finished at the step it reached.",
        "schedule", "Time limit in seconds (0 = none)", min=0, max=100_000_000,
    )
    sample_every: int = setting(50, "Save a fixed-seed sample grid every N steps.", "schedule", "Sample every N steps", min=1, max=1_000_000)
    checkpoint_every: int = setting(200, "Save a checkpoint every N steps.", "schedule", "Checkpoint every N steps", min=1, max=1_000_000)
    eval_every: int = setting(
        0,
        "Compute cheap quality metrics (Fréchet distance, classes covered) every N steps; 0 turns it off. "
        "The first use per dataset trains a small evaluator (~20 s).",
        "schedule",
        "Quality metrics every N steps (0 = off)",
        min=0,
        max=1_000_000,
    )
    tensorboard: bool = setting(
        True, "Also write TensorBoard event files (the metrics, quality and sample grids) to <run>/tensorboard, "
        "for `tensorboard --logdir runs`.", "output", "TensorBoard event files",
    )
    seed: int = setting(42, "Random seed for weights, noise and shuffling.", "schedule", "Seed", min=0, max=2**31 - 1)
    precision: str = setting(
        "auto",
        "auto: bfloat16 mixed precision on CPUs with native bfloat16 (AVX512-BF16 or AMX), float32 elsewhere; "
        "float32; or mixed (bfloat16 on CPU, float16 with loss scaling on GPU).",
        "performance",
        "Precision",
        choices=("auto", "float32", "mixed"),
    )
    steps_per_call: int = setting(
        1, "Training steps run inside one compiled call (less Python overhead).", "performance", "Steps per compiled call", min=1, max=1000
    )
    xla: str = setting(
        "auto", "XLA compilation: auto turns it on for GPUs only (it is slow on CPUs).", "performance", "XLA", choices=("auto", "on", "off")
    )

    def validate(self) -> None:
        if self.steps == 0 and self.epochs == 0:
            raise ConfigError("Set epochs or steps above 0; both are 0, so the run would train nothing.")
        if not self.dataset.strip():
            raise ConfigError("dataset must not be empty: use mnist-5k for the bundled offline digits.")


COMMON_FIELDS = tuple(f.name for f in dataclasses.fields(CommonSettings))
LEGACY_KEYS = {"architecture": "family"}  # config.json of runs made before families were plug-ins


class RunConfig:
    """All hyperparameters of one run: the common settings and its family's own, flat in JSON.

    `config.batch_size` reads a common field and `config.latent_dim` a field of the family's settings.
    """

    def __init__(self, **values: Any) -> None:
        values = _renamed_legacy_keys(values)
        family = values.get("family", DEFAULT_FAMILY)
        if not isinstance(family, str):
            raise ConfigError(f"family must be a string; got {_shown(family)}.")
        settings_type = family_settings(family)
        known = set(COMMON_FIELDS) | _names(settings_type)
        for key in values:
            if key not in known:
                raise ConfigError(_unknown_key_message(key, family))
        self.common = CommonSettings(**{k: v for k, v in values.items() if k in COMMON_FIELDS})
        self.settings = settings_type(**{k: v for k, v in values.items() if k not in COMMON_FIELDS})

    def __getattr__(self, name: str) -> Any:
        if name in ("common", "settings"):
            raise AttributeError(name)
        for part in (self.common, self.settings):
            if name in _names(type(part)):
                return getattr(part, name)
        raise AttributeError(f"RunConfig has no field {name!r}.")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"RunConfig({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def validate(self) -> None:
        """Raise ConfigError with one sentence for the first bad value."""
        RunConfig(**self.to_dict())

    # ---- serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Common fields with the family's settings after `family`, as config.json holds them."""
        common = dataclasses.asdict(self.common)
        data: dict[str, Any] = {}
        for key, value in common.items():
            data[key] = value
            if key == "family":
                data.update(dataclasses.asdict(self.settings))
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> "RunConfig":
        """Build from a mapping, refusing unknown keys and wrong types with one sentence."""
        if not isinstance(data, dict):
            raise ConfigError(f"A configuration must be a JSON object of key/value pairs; got {type(data).__name__}.")
        for key in data:
            if not isinstance(key, str):
                raise ConfigError(_unknown_key_message(key, DEFAULT_FAMILY))
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"The configuration is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
        except (ValueError, RecursionError):  # integers over 4300 digits, nesting deeper than Python's stack
            raise ConfigError("The configuration is not valid JSON: it nests too deeply or holds a number too long to read.") from None
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | Path) -> "RunConfig":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"Configuration file '{path}' does not exist.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Configuration file '{path}' cannot be read: {exc}.") from None
        return cls.from_json(text)

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with some fields changed, validated; a new family keeps the settings it shares with the old one."""
        changes = _renamed_legacy_keys(changes)
        data = self.to_dict()
        family = changes.get("family", data["family"])
        if family != data["family"] and isinstance(family, str):
            shared = set(COMMON_FIELDS) | _names(family_settings(family))
            data = {k: v for k, v in data.items() if k in shared}
        return RunConfig(**(data | changes))

    def with_overrides(self, assignments: list[str]) -> "RunConfig":
        """Apply `key=value` strings as typed on the command line."""
        family = self.family
        for text in assignments:
            key, _, value = text.partition("=")
            if LEGACY_KEYS.get(key.strip(), key.strip()) == "family":
                family = value.strip()
        return self.replace(**dict(parse_assignment(a, family) for a in assignments))


def family_settings(name: str) -> type:
    """The settings dataclass of a registered family; a ConfigError names the known families."""
    from gan_core import families

    return families.get(name).settings


def _names(settings_type: type | None) -> set[str]:
    return {f.name for f in dataclasses.fields(settings_type)} if settings_type is not None else set()


def _renamed_legacy_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Old key names mapped to today's (an explicit new key wins)."""
    renamed = {}
    for key, value in values.items():
        new = LEGACY_KEYS.get(key)
        if new is None:
            renamed[key] = value
        elif new not in values:
            renamed[new] = value
    return renamed


def config_fields(family: str = DEFAULT_FAMILY) -> list[dataclasses.Field]:
    """The fields of a config of this family: the common ones with the family's settings after `family`."""
    common = dataclasses.fields(CommonSettings)
    family_fields = list(dataclasses.fields(family_settings(family)))
    ordered: list[dataclasses.Field] = []
    for f in common:
        ordered.append(f)
        if f.name == "family":
            ordered.extend(family_fields)
    return ordered


def field_names(family: str = DEFAULT_FAMILY) -> tuple[str, ...]:
    """Every key of a config of this family, in config.json's order."""
    return tuple(f.name for f in config_fields(family))


def field_info(name: str, family: str = DEFAULT_FAMILY) -> dict[str, Any]:
    """Help text, label, group, choices and limits of one field, for forms."""
    for f in config_fields(family):
        if f.name == name:
            info = {"type": f.type, "default": f.default, **f.metadata}
            if name == "family":
                from gan_core import families

                info["choices"] = families.names()
            return info
    raise ConfigError(_unknown_key_message(name, family))


def _unknown_key_message(key: Any, family: str) -> str:
    names = field_names(family)
    close = difflib.get_close_matches(str(key), names, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"Unknown configuration key {_shown(key)}.{hint} Known keys: {', '.join(names)}."


def _check_value(f: dataclasses.Field, value: Any) -> None:
    kind, meta = f.type, f.metadata
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{f.name} must be true or false; got {_shown(value)}.")
        return
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{f.name} must be a string; got {_shown(value)}.")
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"{f.name} must be one of {', '.join(meta['choices'])}; got {_shown(value)}.")
        if "max_len" in meta and len(value) > meta["max_len"]:
            raise ConfigError(f"{f.name} must be at most {meta['max_len']} characters; got {len(value)}.")
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            raise ConfigError(f"{f.name} must be {meta['pattern_help']}; got {_shown(value)}.")
        return
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        noun = "an integer"
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not _is_nan_or_inf(value)
        noun = "a number"
    if not ok or not meta["min"] <= value <= meta["max"]:
        raise ConfigError(f"{f.name} must be {noun} between {meta['min']:g} and {meta['max']:g}; got {_shown(value)}.")


def _is_nan_or_inf(value: float) -> bool:
    """True for float NaN and infinities (Python ints of any size are finite)."""
    return isinstance(value, float) and not math.isfinite(value)


def _shown(value: Any) -> str:
    """A value as a message quotes it: its repr (one line), cut to SHOWN_CHARS characters."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer of over 4300 digits, or nesting deeper than the stack
        return "a value too large to show"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def parse_assignment(text: str, family: str = DEFAULT_FAMILY) -> tuple[str, Any]:
    """Turn 'key=value' into (key, typed value) using the type of the field (of `family`'s config)."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ConfigError(f"Overrides look like key=value (e.g. epochs=2); got {_shown(text)}.")
    key = LEGACY_KEYS.get(key, key)
    kind = field_info(key, family)["type"]
    if kind == "bool":
        lowered = raw.lower()
        if lowered in ("true", "1", "yes", "on"):
            return key, True
        if lowered in ("false", "0", "no", "off"):
            return key, False
        raise ConfigError(f"{key} must be true or false; got {_shown(raw)}.")
    if kind in ("int", "float"):
        try:
            number = float(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a number; got {_shown(raw)}.") from None
        if kind == "int":
            if not number.is_integer():
                raise ConfigError(f"{key} must be an integer; got {_shown(raw)}.")
            return key, int(number)
        return key, number
    return key, raw


def user_presets_dir() -> Path:
    """Where a user's own presets live: $GAN_PRESETS_DIR, default ~/.config/gan-workbench/presets."""
    return Path(os.environ.get(USER_PRESETS_ENV) or Path.home() / ".config" / "gan-workbench" / "presets")


def _preset_paths() -> dict[str, Path]:
    """Every preset by name: the user's first, so the built-ins (which a user preset may not shadow) win."""
    paths = {p.stem: p for p in sorted(user_presets_dir().glob("*.json")) if PRESET_NAME.fullmatch(p.stem)}
    return paths | {p.stem: p for p in sorted(PRESET_DIR.glob("*.json"))}


def preset_names() -> list[str]:
    return sorted(_preset_paths())


def is_user_preset(name: str) -> bool:
    return _preset_paths().get(name, PRESET_DIR).parent != PRESET_DIR


def load_preset(name: str) -> RunConfig:
    paths = _preset_paths()
    if name not in paths:
        raise ConfigError(f"Unknown preset {_shown(name)}; presets: {', '.join(sorted(paths))}.")
    return RunConfig.from_file(paths[name])


def load_config(name_or_path: str) -> RunConfig:
    """A preset name (e.g. 'dcgan') or the path of a JSON file."""
    if name_or_path in preset_names():
        return load_preset(name_or_path)
    if not Path(name_or_path).exists():
        raise ConfigError(
            f"{_shown(name_or_path)} is neither a preset nor a configuration file; presets: {', '.join(preset_names())}."
        )
    return RunConfig.from_file(name_or_path)
