"""Scores of an image-to-image family's columns: PSNR and SSIM against their reference column, and the share of classes kept.

A column's classes are read by the evaluator of the dataset it belongs to (`Column.read_by`): for
SRGAN the run's dataset (does the evaluator still read a super-resolved digit as its digit?), for
CycleGAN the target domain (does a digit translated to domain B keep its class?).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from gan_core.data.images import to_uint8
from gan_core.evaluation.evaluator import Evaluator
from gan_core.evaluation.restoration import psnr, ssim
from gan_core.families.base import Column

PSNR, SSIM, KEPT = "PSNR (dB)", "SSIM", "Class kept (%)"


def classes_kept(column: Column, reader: Callable[[str], Evaluator]) -> float | None:
    """Percent of the column's images whose evaluator class is their label; None when nothing reads them."""
    if not column.read_by or column.labels is None:
        return None
    evaluator = reader(column.read_by)
    if not evaluator.num_classes:
        return None
    read = np.argmax(evaluator.probabilities(to_uint8(column.images)), axis=1)
    return float(100.0 * np.mean(read == np.asarray(column.labels)))


def column_scores(columns: Mapping[str, Column], reader: Callable[[str], Evaluator] | None = None) -> list[dict]:
    """One row per column that has a score: PSNR and SSIM against its reference, and the classes kept (given a dataset's evaluator)."""
    rows = []
    for name, column in columns.items():
        row: dict = {"column": name}
        if column.scored_against:
            images, reference = to_uint8(column.images), to_uint8(columns[column.scored_against].images)
            row |= {"against": column.scored_against, PSNR: float(np.mean(psnr(images, reference))), SSIM: float(np.mean(ssim(images, reference)))}
        if reader is not None and (kept := classes_kept(column, reader)) is not None:
            row |= {"read by": f"{column.read_by} evaluator", KEPT: kept}
        if len(row) > 1:
            rows.append(row)
    return rows
