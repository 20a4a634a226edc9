"""A finished trial's objective, read from its run: a quality metric at its last step, or a family metric's recent mean."""

from __future__ import annotations

import math

from gan_core.errors import RunError
from gan_core.store.runs import Run
from gan_core.sweeps.spec import QUALITY_OBJECTIVES

TAIL_ROWS = 50  # history rows a family metric is averaged over (losses are noisy step to step)


def read_objective(run: Run, objective: str) -> float:
    """The objective of a finished run; RunError with the reason when it has none."""
    step = int(run.status().get("step", 0))
    if objective in QUALITY_OBJECTIVES:
        rows = run.metrics_rows()
        last = rows[-1] if rows else {}
        value = last.get(objective)
        if int(last.get("step", -1)) != step or value is None:
            note = run.raw_status().get("message") or "no quality row was written"
            raise RunError(f"Run '{run.id}' has no {objective} measured at its last step {step} ({note.rstrip('.')}).")
        return float(value)
    values = [v for row in run.history_tail(TAIL_ROWS) if isinstance(v := row.get(objective), (int, float)) and math.isfinite(v)]
    if not values:
        raise RunError(f"Run '{run.id}' has no {objective} in its history.")
    return sum(values) / len(values)
