"""`data.in_memory`: whether an image source is decoded into one array or streamed from disk.

`auto` decodes into memory when the decoded images take at most half of the memory available (the rest
is the model's, TensorFlow's and the pipeline's), and streams otherwise; the choice and its reason go
into the dataset's description, which `train` prints. Streamed and in-memory training see the same
batches (data/stream_pipeline.py), so the choice changes memory and speed, not results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cnnzoo.data.interface import STREAMABLE, DataSpec
from cnnzoo.host_memory import available_memory, human_bytes

COMFORTABLE = 0.5  # the share of available memory decoded images may take under `auto`


@dataclass(frozen=True)
class Storage:
    stream: bool
    reason: str


def choose_storage(spec: DataSpec, input_shape: Sequence[int], data_dir: Path | None) -> Storage:
    if spec.dataset not in STREAMABLE:
        return Storage(False, "")
    if spec.dataset == "tfrecord":
        return Storage(True, "streamed from its shards")
    if spec.in_memory is True:
        return Storage(False, "in memory: data.in_memory: true")
    if spec.in_memory is False:
        return Storage(True, "streamed from disk: data.in_memory: false")
    if spec.random_resized_crop is not None:
        return Storage(True, "streamed from disk: data.random_resized_crop cuts each crop from the original file")
    from cnnzoo.data.sizes import sample_count

    found = sample_count(spec, input_shape, data_dir)
    if found is None:
        return Storage(False, "")
    decoded = found[0] * math.prod(input_shape)
    available, _ = available_memory()
    if decoded <= COMFORTABLE * available:
        return Storage(False, f"in memory: decoded {human_bytes(decoded)}, within half of the {human_bytes(available)} "
                              "available; data.in_memory: auto")
    return Storage(True, f"streamed from disk: decoded it would take {human_bytes(decoded)}, more than half of the "
                         f"{human_bytes(available)} available; data.in_memory: auto")
