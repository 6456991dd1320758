"""Refusing a run that will not fit: the memory estimate of its model (model.memory) against what this
machine has (host_memory); `check_fits` raises `MemoryRefused` (exit code 2) with the estimate by part,
what is available and what to change, unless `force`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from cnnzoo.host_memory import MemoryRefused, available_memory, human_bytes
from cnnzoo.model.builder import build_model
from cnnzoo.model.memory import MemoryEstimate, estimate_inference, estimate_training


def check_fits(estimate: MemoryEstimate, *, what: str, force: bool, locate: Callable[[str], str] | None = None,
               console: Any = None) -> int:
    """Refuse `estimate` when it exceeds what is available (say so and go on with `force`); returns
    the bytes available."""
    available, source = available_memory()
    if estimate.total <= available:
        return available
    message = (f"{what} needs an estimated {human_bytes(estimate.total)} of memory, but {human_bytes(available)} "
               f"is available ({source}). Estimate by part: {'; '.join(estimate.lines())} (a training step's "
               f"gradients and activations and the checkpoint writing never overlap: the larger counts). "
               f"To fit: {' '.join(_advice(estimate, locate))}"
               + "".join(f" Note: {note}." for note in estimate.notes))
    if force:
        if console is not None:
            from rich.markup import escape

            console.print(f"[yellow]warning:[/] {escape(message)} Going on (--force).", highlight=False)
        return available
    raise MemoryRefused(message + " Or pass --force to try anyway (the estimate is within about 30%).")


def _advice(estimate: MemoryEstimate, locate: Callable[[str], str] | None) -> list[str]:
    parts = estimate.parts
    tips = []
    batch_bound = parts.get("activations", 0) + parts.get("input_pipeline", 0)
    if batch_bound and estimate.batch_size > 1:
        tips.append(f"lower train.batch_size ({estimate.batch_size} now; activations and batches in flight, "
                    f"{human_bytes(batch_bound)}, scale with it);")
    if parts.get("dataset", 0) or parts.get("activations", 0):
        tips.append(f"use a smaller input.shape (the dataset arrays, {human_bytes(parts.get('dataset', 0))}, and the "
                    "activations scale with its size);")
    if estimate.largest_layer:
        name, params = estimate.largest_layer
        place = f" ({locate(name)})" if locate else ""
        tips.append(f"shrink the layer with the most parameters, `{name}`{place}, {params:,} parameters "
                    "(each costs its weight, gradient and optimizer slots);")
    if estimate.policy == "float32":
        tips.append("set train.precision: mixed_bfloat16 (mixed_float16 on a GPU), which halves the activations;")
    tips[-1] = tips[-1].rstrip(";") + "."
    return tips


def check_run_memory(config: Any, *, what: str, force: bool, data_dir: Path | None = None, console: Any = None,
                     batch_size: int | None = None, with_data: bool = True, inference: bool = False
                     ) -> MemoryEstimate:
    """Build `config`'s model without weights, estimate the run and refuse it if it cannot fit."""
    built = build_model(config, allocate=False)
    if inference:
        estimate = estimate_inference(config, built.model, data_dir=data_dir)
    else:
        estimate = estimate_training(config, built.model, data_dir=data_dir, batch_size=batch_size,
                                     with_data=with_data)
    estimate.available = check_fits(estimate, what=what, force=force, console=console,
                                    locate=lambda name: _located(built.where.get(name)))
    return estimate


def _located(where: Any) -> str:
    if where is None:
        return "a merge of branches"
    return f"{where.file}:{where.line} {where.path}" if where.line else f"{where.file} {where.path}"
