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
from pathlib import Path
from typing import Any

from gan_core.errors import ConfigError

PRESET_DIR = Path(__file__).parent / "presets"
SHOWN_CHARS = 80  # longest value quoted in an error message


def _field(default: Any, help: str, group: str, **limits: Any) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, "group": group, **limits})


@dataclasses.dataclass
class RunConfig:
    """All hyperparameters of one GAN training run."""

    name: str = _field("", "A short name for the run, shown in tables.", "output", max_len=60)
    dataset: str = _field(
        "mnist-5k",
        "mnist, fashion_mnist, mnist-5k (bundled, offline) or the path of a .npz/.zip file.",
        "data",
    )
    architecture: str = _field("dcgan", "Model family.", "architecture", choices=("dcgan", "mlp"))
    conditional: bool = _field(False, "Condition G and D on class labels (needs a labelled dataset).", "architecture")
    latent_dim: int = _field(100, "Size of the noise vector z.", "architecture", min=1, max=1024)
    width: float = _field(1.0, "Channel/unit multiplier for both networks (1.0 = tutorial size).", "architecture", min=0.125, max=4.0)
    batch_norm: bool = _field(True, "Batch normalization in the generator.", "architecture")
    dropout: float = _field(0.3, "Dropout rate in the discriminator.", "architecture", min=0.0, max=0.9)
    spectral_norm: bool = _field(False, "Spectral normalization on the discriminator's layers.", "regularizers")
    loss: str = _field(
        "bce", "GAN objective.", "loss", choices=("bce", "minimax", "lsgan", "hinge", "wgan-gp")
    )
    label_smoothing: float = _field(0.0, "One-sided label smoothing: real targets become 1 - value.", "regularizers", min=0.0, max=0.45)
    gp_weight: float = _field(10.0, "Gradient-penalty weight (wgan-gp only).", "regularizers", min=0.0, max=1000.0)
    ema_decay: float = _field(0.0, "EMA of generator weights for samples and export; 0 turns it off.", "regularizers", min=0.0, max=0.9999)
    batch_size: int = _field(64, "Images per training step.", "optimizer", min=1, max=4096)
    g_lr: float = _field(2e-4, "Generator learning rate (Adam).", "optimizer", min=1e-7, max=1000.0)
    d_lr: float = _field(2e-4, "Discriminator learning rate (Adam).", "optimizer", min=1e-7, max=1000.0)
    g_beta1: float = _field(0.5, "Generator Adam beta 1.", "optimizer", min=0.0, max=0.999)
    g_beta2: float = _field(0.999, "Generator Adam beta 2.", "optimizer", min=0.0, max=0.9999)
    d_beta1: float = _field(0.5, "Discriminator Adam beta 1.", "optimizer", min=0.0, max=0.999)
    d_beta2: float = _field(0.999, "Discriminator Adam beta 2.", "optimizer", min=0.0, max=0.9999)
    d_steps: int = _field(1, "Discriminator updates per generator update.", "optimizer", min=1, max=20)
    epochs: int = _field(10, "Passes over the data (ignored when steps > 0).", "schedule", min=0, max=100_000)
    steps: int = _field(0, "Generator steps to train; 0 means use epochs.", "schedule", min=0, max=100_000_000)
    sample_every: int = _field(50, "Save a fixed-seed sample grid every N steps.", "schedule", min=1, max=1_000_000)
    checkpoint_every: int = _field(200, "Save a checkpoint every N steps.", "schedule", min=1, max=1_000_000)
    eval_every: int = _field(
        0,
        "Compute cheap quality metrics (Fréchet distance, classes covered) every N steps; 0 turns it off. "
        "The first use per dataset trains a small evaluator (~20 s).",
        "schedule",
        min=0,
        max=1_000_000,
    )
    seed: int = _field(42, "Random seed for weights, noise and shuffling.", "schedule", min=0, max=2**31 - 1)
    precision: str = _field(
        "auto",
        "auto: bfloat16 mixed precision on CPUs with native bfloat16 (AVX512-BF16 or AMX), float32 elsewhere; "
        "float32; or mixed (bfloat16 on CPU, float16 with loss scaling on GPU).",
        "performance",
        choices=("auto", "float32", "mixed"),
    )
    steps_per_call: int = _field(1, "Training steps run inside one compiled call (less Python overhead).", "performance", min=1, max=1000)
    xla: str = _field("auto", "XLA compilation: auto turns it on for GPUs only (it is slow on CPUs).", "performance", choices=("auto", "on", "off"))

    def __post_init__(self) -> None:
        self.validate()

    # ---- validation -------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError with one sentence for the first bad value."""
        for f in dataclasses.fields(self):
            _check_value(f, getattr(self, f.name))
        if self.steps == 0 and self.epochs == 0:
            raise ConfigError("Set epochs or steps above 0; both are 0, so the run would train nothing.")
        if not self.dataset.strip():
            raise ConfigError("dataset must not be empty: use mnist-5k for the bundled offline digits.")
        if self.loss == "wgan-gp" and self.gp_weight == 0:
            raise ConfigError("gp_weight must be above 0 with loss wgan-gp; got 0.")

    # ---- serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> "RunConfig":
        """Build from a mapping, refusing unknown keys and wrong types with one sentence."""
        if not isinstance(data, dict):
            raise ConfigError(f"A configuration must be a JSON object of key/value pairs; got {type(data).__name__}.")
        known = field_names()
        for key in data:
            if key not in known:
                raise ConfigError(_unknown_key_message(key))
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
        """A copy with some fields changed, validated."""
        for key in changes:
            if key not in field_names():
                raise ConfigError(_unknown_key_message(key))
        return dataclasses.replace(self, **changes)

    def with_overrides(self, assignments: list[str]) -> "RunConfig":
        """Apply `key=value` strings as typed on the command line."""
        return self.replace(**dict(parse_assignment(a) for a in assignments))


def field_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(RunConfig))


def field_info(name: str) -> dict[str, Any]:
    """Help text, group, choices and limits of one field, for forms."""
    for f in dataclasses.fields(RunConfig):
        if f.name == name:
            return {"type": f.type, "default": f.default, **f.metadata}
    raise ConfigError(_unknown_key_message(name))


def _unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(str(key), field_names(), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"Unknown configuration key {_shown(key)}.{hint} Known keys: {', '.join(field_names())}."


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


def parse_assignment(text: str) -> tuple[str, Any]:
    """Turn 'key=value' into (key, typed value) using the field's type."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ConfigError(f"Overrides look like key=value (e.g. epochs=2); got {_shown(text)}.")
    kind = field_info(key)["type"]
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


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def load_preset(name: str) -> RunConfig:
    path = PRESET_DIR / f"{name}.json"
    if name not in preset_names():
        raise ConfigError(f"Unknown preset '{name}'; presets: {', '.join(preset_names())}.")
    return RunConfig.from_file(path)


def load_config(name_or_path: str) -> RunConfig:
    """A preset name (e.g. 'dcgan') or the path of a JSON file."""
    if name_or_path in preset_names():
        return load_preset(name_or_path)
    return RunConfig.from_file(name_or_path)
