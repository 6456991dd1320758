"""The dtype policy a model is built under: `train.precision` (float32, mixed_bfloat16, mixed_float16 or auto)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from cnnzoo.tensorflow_import import import_tensorflow

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}


def resolve_precision(name: str) -> str:
    """`auto` is mixed_bfloat16 on a machine that trains on a CPU with bfloat16 arithmetic in hardware
    (matmuls and convolutions run about 1.5x faster there), float32 everywhere else."""
    if name != "auto":
        return name
    return "mixed_bfloat16" if _trains_on_cpu() and cpu_flags() & BF16_CPU_FLAGS else "float32"


def mixed_policy() -> str:
    """The mixed policy this machine trains fastest with: bfloat16 on a CPU, float16 on a GPU."""
    return "mixed_bfloat16" if _trains_on_cpu() else "mixed_float16"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The first CPU's feature flags (Linux x86); empty where they cannot be read."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())


def _trains_on_cpu() -> bool:
    return not import_tensorflow().config.list_physical_devices("GPU")


@contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Build layers under the Keras dtype policy `name` (a resolved precision), restored afterwards."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
