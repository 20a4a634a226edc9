"""What a sweep is: the base config, the fields it varies, the search, the budget and the objective.

A dimension is written as on the command line: `g_lr=1e-4:1e-3:log` (a range, log-uniform),
`width=0.25:1` (a range), `batch_size=16,32,64` or `loss=bce,hinge` (choices). Its type is the
config field's, and every end and choice is checked against the base config as a run would be.
No TensorFlow and no Optuna here.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

from gan_core.config import RunConfig, field_info, parse_assignment
from gan_core.errors import ConfigError

SEARCHES = ("random", "tpe", "grid")
ON_CRASH = ("retry", "fail")
QUALITY_OBJECTIVES = {"frechet_distance": "minimize", "classes_covered": "maximize", "class_kl": "minimize"}
DIRECTIONS = ("minimize", "maximize")
FIXED_FIELDS = ("family", "name", "steps", "epochs", "time_limit", "eval_every")  # set by the sweep, not searched
GRID_LEVELS = 3  # points a range gets in a grid search
MAX_TRIALS = 1000
MAX_RETRIES = 2  # resumes of a crashed trial before it is marked failed
END_OF_RUN = 1_000_000  # eval_every for trials: the quality monitor measures only the last step


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched field: a range (`low`, `high`, `log`) or a list of `choices`."""

    field: str
    kind: str  # "int", "float" or "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def text(self) -> str:
        """The dimension as typed: `field=low:high[:log]` or `field=a,b`."""
        if self.kind == "choice":
            return f"{self.field}={','.join(_plain(c) for c in self.choices)}"
        return f"{self.field}={_plain(self.low)}:{_plain(self.high)}{':log' if self.log else ''}"

    def grid(self) -> tuple[Any, ...]:
        """The values a grid search tries: the choices, or GRID_LEVELS points over the range (log-spaced for log)."""
        if self.kind == "choice":
            return self.choices
        if self.log:
            points = [math.exp(math.log(self.low) + i * (math.log(self.high) - math.log(self.low)) / (GRID_LEVELS - 1)) for i in range(GRID_LEVELS)]
        else:
            points = [self.low + i * (self.high - self.low) / (GRID_LEVELS - 1) for i in range(GRID_LEVELS)]
        if self.kind == "int":
            return tuple(dict.fromkeys(int(round(p)) for p in points))
        return tuple(float(f"{p:.4g}") for p in points)


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """Everything a sweep worker needs; saved as sweep.json."""

    name: str
    base: dict[str, Any]
    dimensions: tuple[Dimension, ...]
    search: str = "random"
    trials: int = 6
    budget_steps: int = 0
    budget_seconds: int = 0
    objective: str = "frechet_distance"
    direction: str = "minimize"
    on_crash: str = "retry"
    seed: int = 0

    @property
    def family(self) -> str:
        return self.base["family"]

    def planned_trials(self) -> int:
        """The trials the sweep runs: `trials`, or the grid's size when a grid search has fewer points."""
        return min(self.trials, len(grid_points(self))) if self.search == "grid" else self.trials

    def budget_text(self) -> str:
        return f"{self.budget_steps} steps" if self.budget_steps else f"{self.budget_seconds} s of training"

    def trial_config(self, params: dict[str, Any], number: int) -> RunConfig:
        """The config of trial `number`: the base with the params and the budget, its quality measured at its last step."""
        base = RunConfig.from_dict(self.base)
        budget = {"steps": self.budget_steps} if self.budget_steps else {"time_limit": self.budget_seconds}
        measured = {"eval_every": base.eval_every or END_OF_RUN} if self.objective in QUALITY_OBJECTIVES else {}
        return base.replace(**params, **budget, **measured, name=f"{self.name} #{number}"[:60])

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["dimensions"] = [d.text() for d in self.dimensions]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepSpec":
        """Build and check a spec from sweep.json's fields (dimensions as typed text)."""
        try:
            base = RunConfig.from_dict(data["base"])
            dimensions = tuple(parse_dimension(text, base) for text in data["dimensions"])
            fields = {f.name for f in dataclasses.fields(cls)} - {"base", "dimensions"}
            spec = cls(base=base.to_dict(), dimensions=dimensions, **{k: v for k, v in data.items() if k in fields})
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"A sweep needs a name, a base config and its dimensions; this one is malformed ({exc}).") from None
        check(spec)
        return spec


def parse_dimension(text: str, base: RunConfig) -> Dimension:
    """`field=low:high[:log]` or `field=a,b,...` for a field of the base config's family, each value checked."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key or not raw:
        raise ConfigError(f"A field to vary looks like g_lr=1e-4:1e-3:log, batch_size=16,32,64 or loss=bce,hinge; got '{text[:80]}'.")
    kind = field_info(key, base.family)["type"]
    if key in FIXED_FIELDS:
        raise ConfigError(f"{key} cannot be varied in a sweep: the sweep sets it (its budget, its family and its names).")
    if ":" in raw and kind in ("int", "float"):
        dimension = _range(key, kind, raw, base.family)
        ends = (dimension.low, dimension.high)
    else:
        choices = tuple(dict.fromkeys(parse_assignment(f"{key}={part}", base.family)[1] for part in raw.split(",") if part.strip()))
        if len(choices) < 2:
            raise ConfigError(f"{key} needs at least two different choices to vary; got '{raw[:80]}'.")
        dimension = Dimension(key, "choice", choices=choices)
        ends = choices
    for value in ends:
        base.replace(**{key: value})  # the field's own range and the family's rules, in their sentence
    return dimension


def _range(key: str, kind: str, raw: str, family: str) -> Dimension:
    parts = [p.strip() for p in raw.split(":")]
    log = len(parts) == 3 and parts[2] == "log"
    if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
        raise ConfigError(f"A range looks like {key}=low:high or {key}=low:high:log; got '{raw[:80]}'.")
    low, high = (parse_assignment(f"{key}={p}", family)[1] for p in parts[:2])
    if not low < high:
        raise ConfigError(f"{key}'s range must go from a lower to a higher value; got {low} to {high}.")
    if log and low <= 0:
        raise ConfigError(f"{key}'s log range must start above 0; got {low}.")
    return Dimension(key, kind, low=low, high=high, log=log)


def check(spec: SweepSpec) -> None:
    """Raise ConfigError with one sentence for the first thing wrong with a sweep."""
    if not spec.name.strip() or len(spec.name) > 60:
        raise ConfigError("A sweep's name must be 1 to 60 characters.")
    if not spec.dimensions:
        raise ConfigError("Choose at least one field to vary.")
    fields = [d.field for d in spec.dimensions]
    if len(set(fields)) != len(fields):
        raise ConfigError(f"Each field can be varied once; {next(f for f in fields if fields.count(f) > 1)} is given twice.")
    if spec.search not in SEARCHES:
        raise ConfigError(f"search must be one of {', '.join(SEARCHES)}; got '{spec.search}'.")
    if not isinstance(spec.trials, int) or not 1 <= spec.trials <= MAX_TRIALS:
        raise ConfigError(f"trials must be a whole number from 1 to {MAX_TRIALS}; got {spec.trials!r}.")
    if (spec.budget_steps > 0) == (spec.budget_seconds > 0) or min(spec.budget_steps, spec.budget_seconds) < 0:
        raise ConfigError("Give each trial a budget of either steps or seconds of training (one of them above 0).")
    if spec.objective not in objective_names(spec.family):
        raise ConfigError(f"objective must be one of {', '.join(objective_names(spec.family))}; got '{spec.objective}'.")
    if spec.direction not in DIRECTIONS:
        raise ConfigError(f"direction must be minimize or maximize; got '{spec.direction}'.")
    if spec.on_crash not in ON_CRASH:
        raise ConfigError(f"on_crash must be retry or fail; got '{spec.on_crash}'.")


def objective_names(family: str) -> list[str]:
    """What a sweep can optimize: the quality metrics (families whose images are drawn, not restored), and the family's
    own metrics averaged over a trial's last steps."""
    from gan_core.families import get

    plugin = get(family)
    return [*(QUALITY_OBJECTIVES if plugin.compares_distributions else ()), *(m.name for m in plugin.metrics)]


def default_direction(objective: str) -> str:
    """Quality metrics have a better side; a family's metric (a loss, PSNR) is the user's call, minimize by default."""
    return QUALITY_OBJECTIVES.get(objective, "maximize" if objective == "psnr" else "minimize")


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every combination of the dimensions' grid values, in order."""
    names = [d.field for d in spec.dimensions]
    return [dict(zip(names, values)) for values in itertools.product(*(d.grid() for d in spec.dimensions))]


def _plain(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)
