"""TensorBoard event files beside history.csv: every run shows in `tensorboard --logdir runs`.

The worker writes `<run>/tensorboard/events.out.tfevents.<time>.<host>.<pid>`: the family's metrics and
images/s for every step (as history.csv has them), the quality metrics at each measurement, and the
fixed-seed sample grid at each sample step. An event file is a TFRecord file of `Event` protocol
buffers, so the Event and Summary protos are built here and written with `tf.io.TFRecordWriter`: no
op runs per value, so a history row of seven scalars costs about 6.5 µs, where tf.summary's eager
ops cost about 117 µs a scalar on this CPU (bench/tensorboard.py, docs/PERFORMANCE.md). A resumed
run starts its file with a SessionLog START one step past the checkpoint it resumed from, which
tells TensorBoard to drop the events a crash left beyond it, as history.csv is cut back.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np

from gan_core.data.images import encode_png
from gan_core.lazy_tf import tf

FOLDER = "tensorboard"
FILE_VERSION = "brain.Event:2"


def _protos():
    from tensorflow.core.framework import summary_pb2
    from tensorflow.core.util import event_pb2

    return event_pb2, summary_pb2


class EventLog:
    """One worker's TensorBoard event file for a run."""

    def __init__(self, run_dir: Path, start_step: int) -> None:
        self.event_pb2, self.summary_pb2 = _protos()
        folder = Path(run_dir) / FOLDER
        folder.mkdir(exist_ok=True)
        name = f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}.{os.getpid()}"
        self.path = folder / name
        self._writer = tf.io.TFRecordWriter(str(self.path))
        self._write(self.event_pb2.Event(wall_time=time.time(), file_version=FILE_VERSION))
        if start_step > 0:  # a resume: TensorBoard drops the events at steps >= start_step + 1, which a crash left behind
            start = self.event_pb2.SessionLog(status=self.event_pb2.SessionLog.START)
            self._write(self.event_pb2.Event(wall_time=time.time(), step=start_step + 1, session_log=start))

    def _write(self, event) -> None:
        self._writer.write(event.SerializeToString())

    def scalars(self, step: int, values: dict[str, float], wall_time: float | None = None) -> None:
        """Scalars of one step, tagged by name; non-numbers (None) are left out."""
        summary = self.summary_pb2.Summary(value=[
            self.summary_pb2.Summary.Value(tag=tag, simple_value=float(value)) for tag, value in values.items() if value is not None
        ])
        self._write(self.event_pb2.Event(wall_time=wall_time or time.time(), step=int(step), summary=summary))

    def image(self, step: int, tag: str, image: np.ndarray) -> None:
        """A uint8 image (H, W, C) as a PNG."""
        height, width, channels = image.shape
        picture = self.summary_pb2.Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=encode_png(image))
        summary = self.summary_pb2.Summary(value=[self.summary_pb2.Summary.Value(tag=tag, image=picture)])
        self._write(self.event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
