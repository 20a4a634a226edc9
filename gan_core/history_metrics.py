"""The named scalars a family's train step returns: history.csv's columns and how pages show them.

A family declares its metrics; the trainer writes the declaration into status.json, and every
reader (charts, the runs table, Compare, the CLI progress line, the Train page) takes it from
there. This module imports no TensorFlow, so the pages that read runs stay quick.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable

# What the loop adds around a family's metrics in every history row.
LEADING_COLUMNS = ("step", "epoch")
TRAILING_COLUMNS = ("images_per_sec", "elapsed_sec")


@dataclass(frozen=True)
class Metric:
    """One scalar of the train step: its history column, its label, its chart tab and its role."""

    name: str
    label: str
    group: str
    short: str = ""  # shown on the progress line, the Train page and the runs table when set
    loss: bool = False  # a loss: beyond ±LOSS_LIMIT it means divergence
    log: bool = False  # charted on a log scale (e.g. gradient norms)
    skippable: bool = False  # non-finite under float16 loss scaling means a skipped step, not divergence
    needs: str = ""  # a setting (a term's weight) a new run records this metric for only when it is above 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Metric":
        """A metric as a run declared it in status.json (`to_dict`); unknown keys are ignored, missing ones take their defaults."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


# The adversarial families' metrics (dcgan, mlp); also what runs made before metrics were declared recorded.
ADVERSARIAL_METRICS = (
    Metric("g_loss", "G loss", "Losses", short="G", loss=True),
    Metric("d_loss", "D loss", "Losses", short="D", loss=True),
    Metric("d_real", "D(x)", "D outputs"),
    Metric("d_fake", "D(G(z))", "D outputs"),
    Metric("g_grad_norm", "G grad norm", "Gradient norms", log=True, skippable=True),
    Metric("d_grad_norm", "D grad norm", "Gradient norms", log=True, skippable=True),
)


def history_columns(metrics: Iterable[Metric]) -> tuple[str, ...]:
    """history.csv's header for a family's metrics."""
    return (*LEADING_COLUMNS, *(m.name for m in metrics), *TRAILING_COLUMNS)


def headline(metrics: Iterable[Metric]) -> tuple[Metric, ...]:
    """The metrics a one-line summary shows (those with a short label)."""
    return tuple(m for m in metrics if m.short)


def groups(metrics: Iterable[Metric]) -> dict[str, tuple[Metric, ...]]:
    """Metrics by chart group, in declaration order."""
    found: dict[str, list[Metric]] = {}
    for metric in metrics:
        found.setdefault(metric.group, []).append(metric)
    return {group: tuple(members) for group, members in found.items()}


def from_status(status: dict[str, Any]) -> tuple[Metric, ...]:
    """The metrics a run declared in status.json; runs made before declarations were written used the adversarial six."""
    declared = status.get("metrics")
    if not isinstance(declared, list) or not declared:
        return ADVERSARIAL_METRICS
    try:
        return tuple(Metric.from_dict(item) for item in declared)
    except (TypeError, KeyError):
        return ADVERSARIAL_METRICS


def progress_text(metrics: Iterable[Metric], row: dict[str, float]) -> str:
    """'G 0.712 D 1.301': the headline metrics of one history row."""
    return " ".join(f"{m.short} {row[m.name]:.3f}" for m in headline(metrics) if row.get(m.name) is not None)
