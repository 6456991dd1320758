"""How many samples a dataset has, and the extra bytes its loader holds for a moment, known without
reading the data (for the memory estimate): each dataset module's `size`, found through the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from cnnzoo.data.registry import dataset_module
from cnnzoo.data.interface import DataSpec
from cnnzoo.errors import DataError

Size = tuple[int, int]  # (samples, extra bytes held while loading)


def sample_count(spec: DataSpec, input_shape: Sequence[int], data_dir: Path | None) -> Size | None:
    """(samples, extra bytes) for the dataset `spec` names; None where its files cannot be found yet
    (loading it will then say what is missing)."""
    try:
        return dataset_module(spec.dataset).size(spec, input_shape, data_dir)
    except (DataError, OSError):  # an unknown dataset too: validation reports it
        return None


def stream_bytes(spec: DataSpec, input_shape: Sequence[int], data_dir: Path | None) -> int:
    """Bytes a streamed source holds: its references (a path or record position per sample, with its
    label) and the pipeline's buffers (images being decoded, the shuffle window of encoded records);
    0 where its files cannot be found yet."""
    try:
        return dataset_module(spec.dataset).stream_size(spec, input_shape, data_dir)
    except (DataError, OSError):
        return 0
