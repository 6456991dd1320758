"""`cnnzoo bench`: time training and inference steps on synthetic data, like `caffe time`.

What the numbers mean:

- ms/batch is the median (and the minimum) over `steps` timed calls of `model.train_on_batch` or
  `model.predict_on_batch`, after `warmup` untimed calls (tracing, XLA compilation). Each call returns
  numpy, so a timed step includes the device sync and Keras' small per-call host overhead.
- FLOPs are forward FLOPs per sample from `cnnzoo.model.summary` (a multiply-add counts 2). A training step
  is counted as 3x forward (forward, plus gradients with respect to inputs and to weights): the usual
  convention, not a measurement.
- The peak is this machine's dense float32 matmul rate, measured here (`measure_matmul_peak`), so
  "% of peak" says how close a model gets to what the hardware does on its best-case kernel.
- Memory: the estimate of `cnnzoo.model.memory` for a training step at that batch size (no dataset), next
  to this process's peak resident memory (`peak_rss`: VmHWM) measured after that batch size's steps.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import statistics
import time
from typing import Any, Callable, Sequence

import numpy as np

from cnnzoo.config.spec import BlockNode, BranchNode, ModelConfig, Node
from cnnzoo.data import default_scale
from cnnzoo.host_memory import human_bytes, out_of_memory, peak_rss
from cnnzoo.model.builder import Built, build_model
from cnnzoo.model.memory import estimate_training
from cnnzoo.model.memory_guard import check_run_memory
from cnnzoo.model.summary import summarize
from cnnzoo.tensorflow_import import import_tensorflow
from cnnzoo.terminal import plain
from cnnzoo.training.labels import LabelPlan, plan_labels
from cnnzoo.training.setup import compile_model

TRAIN_FLOPS_FACTOR = 3
MATMUL_SIZE = 2048


@functools.lru_cache(maxsize=None)
def measure_matmul_peak(n: int = MATMUL_SIZE, reps: int = 5) -> float:
    """GFLOP/s of the fastest float32 (n x n) @ (n x n) matmul on the default device; cached per process.

    Both TensorFlow's own kernel and the XLA-compiled one are tried (`reps` timed calls each) and the
    faster counts: on CPUs they differ by up to ~30%, and a peak a model can beat would be no peak.
    """
    tf = import_tensorflow()
    a = tf.random.normal((n, n), dtype=tf.float32, seed=1)
    b = tf.random.normal((n, n), dtype=tf.float32, seed=2)
    best = float("inf")
    for jit in (False, True):
        matmul = tf.function(tf.linalg.matmul, jit_compile=jit)
        best = min(best, *time_calls(lambda: matmul(a, b).numpy(), steps=reps, warmup=1))
    return 2 * n ** 3 / best / 1e9


def time_calls(call: Callable[[], Any], *, steps: int, warmup: int) -> list[float]:
    """Seconds of each of `steps` calls, after `warmup` untimed ones; `call` must block until done."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def bench_config(config: ModelConfig, batch_sizes: Sequence[int] | None = None, steps: int = 20, warmup: int = 3,
                 jit: bool | None = None, *, precision: str | None = None, per_layer: bool = False,
                 peak_gflops: float | None = None, seed: int = 0, force: bool = False) -> list[dict]:
    """One row of timings per batch size (default: train.batch_size) for the config's compiled model.

    `jit` and `precision` override train.jit_compile and train.precision; `per_layer` adds approximate
    forward times per top-level config entry. The memory estimate at the largest batch size is checked
    first (`force` goes on regardless).
    """
    config = _with_overrides(config, jit, precision)
    batch_sizes = list(batch_sizes or [config.train.batch_size])
    check_run_memory(config, what=f"benchmarking {config.name} at batch size {max(batch_sizes)}", force=force,
                     batch_size=max(batch_sizes), with_data=False)
    with out_of_memory("building the model"):
        built = build_model(config)
    model = built.model
    plan = _label_plan(config, model)
    compile_model(model, config, plan)
    flops = summarize(config, built).flops
    timed = []
    for batch_size in batch_sizes:
        with out_of_memory(f"timing batch size {batch_size}"):
            x, y = synthetic_batch(config, plan, model, batch_size, seed)
            train = time_calls(lambda: model.train_on_batch(x, y), steps=steps, warmup=warmup)
            infer = time_calls(lambda: model.predict_on_batch(x), steps=steps, warmup=warmup)
        timed.append((batch_size, train, infer, peak_rss()))
    # the matmul probe comes last: its large matrices and XLA compilation must not count in the
    # peak RSS reported next to the model's memory estimate
    peak = peak_gflops or measure_matmul_peak()
    rows = []
    for batch_size, train, infer, rss in timed:
        row = _row(batch_size, train, infer, flops, peak)
        row.update(memory_estimate_bytes=estimate_training(config, model, batch_size=batch_size,
                                                           with_data=False).total, peak_rss_bytes=rss)
        row.update(jit_compile=bool(model.jit_compile), dtype_policy=model.dtype_policy.name)
        if per_layer:
            row["per_layer"] = time_entries(config, built, batch_size, steps=steps, warmup=warmup,
                                            jit=bool(model.jit_compile))
        rows.append(row)
    return rows


def _with_overrides(config: ModelConfig, jit: bool | None, precision: str | None) -> ModelConfig:
    train = config.train
    train = dataclasses.replace(train, jit_compile=train.jit_compile if jit is None else jit,
                                precision=precision or train.precision)
    return dataclasses.replace(config, train=train)


def _label_plan(config: ModelConfig, model: Any) -> LabelPlan:
    """Labels for the model's own output width: 1 is binary, else that many classes."""
    width = model.output_shape[-1]
    return plan_labels(config, model, 2 if width == 1 else width)


def synthetic_batch(config: ModelConfig, plan: LabelPlan, model: Any, batch_size: int, seed: int):
    """Random uint8-range inputs, scaled as the data pipeline would scale them, and random labels."""
    tf = import_tensorflow()
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (batch_size, *config.input.shape)).astype(np.float32)
    scale = default_scale(config.data) if config.data is not None else None
    if scale is not None and np.dtype(config.input.dtype).kind == "f":
        x *= scale
    width = model.output_shape[-1]
    labels = rng.integers(0, 2 if width == 1 else width, batch_size)
    if width == 1:
        y = labels.astype(np.float32)[:, None]
    elif plan.one_hot:
        y = np.eye(width, dtype=np.float32)[labels]
    else:
        y = labels
    return tf.constant(x.astype(config.input.dtype)), tf.constant(y)


def _row(batch_size: int, train: list[float], infer: list[float], flops: int, peak: float) -> dict:
    row: dict[str, Any] = {"batch_size": batch_size}
    for kind, times, factor in (("train", train, TRAIN_FLOPS_FACTOR), ("infer", infer, 1)):
        median = statistics.median(times)
        samples = batch_size / median
        gflops = samples * flops * factor / 1e9
        row.update({f"{kind}_ms_median": median * 1e3, f"{kind}_ms_min": min(times) * 1e3,
                    f"{kind}_samples_per_s": samples, f"{kind}_gflops": gflops,
                    f"{kind}_peak_share": gflops / peak})
    row.update(flops_per_sample=flops, train_flops_per_sample=flops * TRAIN_FLOPS_FACTOR)
    return row


def time_entries(config: ModelConfig, built: Built, batch_size: int, *, steps: int, warmup: int,
                 jit: bool) -> list[dict]:
    """Approximate forward ms per top-level config entry: each entry run alone as a sub-model on random
    input of its input shape (so no fusion across entries, and one call overhead per entry)."""
    import keras

    tf = import_tensorflow()
    model = built.model
    last: dict[int, Any] = {}
    for layer in model.layers[1:]:  # topological order: an entry's last layer produces its output
        last[built.group[layer.name]] = layer
    flops = [row.flops for row in summarize(config, built).layers]
    rows, previous = [], model.inputs[0]
    for index, node in enumerate(config.layers):
        if index not in last:
            continue  # left out by `when`
        output = last[index].output
        sub = keras.Model(previous, output, name=f"bench_entry_{index}")
        x = tf.random.uniform((batch_size, *previous.shape[1:]), maxval=1.0, dtype=previous.dtype, seed=index)
        forward = tf.function(lambda t, sub=sub: sub(t, training=False), jit_compile=jit)
        times = time_calls(lambda: forward(x).numpy(), steps=steps, warmup=max(warmup, 1))
        median = statistics.median(times)
        rows.append({"name": node.name, "type": _entry_type(node), "ms_median": median * 1e3,
                     "ms_min": min(times) * 1e3, "flops_per_sample": flops[index],
                     "gflops": batch_size * flops[index] / median / 1e9})
        previous = output
    total = sum(r["ms_median"] for r in rows) or 1.0
    for r in rows:
        r["share"] = r["ms_median"] / total
    return rows


def _entry_type(node: Node) -> str:
    if isinstance(node, BlockNode):
        return f"block {node.block}"
    if isinstance(node, BranchNode):
        return f"branches ({node.merge})"
    return node.type


def bench_report(config: ModelConfig, rows: list[dict], *, steps: int, warmup: int,
                 peak_gflops: float | None = None) -> dict:
    """Everything `cnnzoo bench --json` prints: the machine, the peak, the settings and the rows."""
    return {
        "config": config.name,
        "file": config.file,
        "input_shape": list(config.input.shape),
        "device": describe_device(),
        "matmul_peak_gflops": peak_gflops or measure_matmul_peak(),
        "matmul_peak_method": f"fastest float32 {MATMUL_SIZE}x{MATMUL_SIZE} @ {MATMUL_SIZE}x{MATMUL_SIZE} matmul "
                              "(2*n^3 FLOPs), 5 calls each of tf.function with and without XLA",
        "train_flops_factor": TRAIN_FLOPS_FACTOR,
        "steps": steps,
        "warmup": warmup,
        "jit_compile": rows[0]["jit_compile"] if rows else None,
        "dtype_policy": rows[0]["dtype_policy"] if rows else None,
        "rows": rows,
    }


def describe_device() -> str:
    """'CPU: <model>, N cores' or the GPU's name: what the timings were taken on."""
    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU: {model or 'unknown'}, {cores} cores"


def render_bench(report: dict):
    """A rich renderable: the settings, one row per batch size, and per-entry tables if measured."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    rows = report["rows"]
    flops = rows[0]["flops_per_sample"] if rows else 0
    header = Text(
        f"{report['config']}  input {tuple(report['input_shape'])}  on {report['device']}\n"
        f"matmul peak: {report['matmul_peak_gflops']:.1f} GFLOP/s ({report['matmul_peak_method']})\n"
        f"forward FLOPs per sample: {flops:,}; training counted as {report['train_flops_factor']}x forward\n"
        f"jit_compile={report['jit_compile']}  dtype policy {report['dtype_policy']}  "
        f"median of {report['steps']} steps after {report['warmup']} warm-up")
    table = Table(title="per batch, median and fastest of the timed steps", title_justify="left")
    for column in ("batch", "step", "ms median", "ms min", "samples/s", "GFLOP/s", "% of peak", "memory est.",
                   "peak RSS"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in rows:
        for kind, label in (("train", "train"), ("infer", "inference")):
            first = kind == "train"
            table.add_row(str(r["batch_size"]) if first else "", label,
                          f"{r[f'{kind}_ms_median']:.2f}", f"{r[f'{kind}_ms_min']:.2f}",
                          f"{r[f'{kind}_samples_per_s']:,.0f}", f"{r[f'{kind}_gflops']:.1f}",
                          f"{100 * r[f'{kind}_peak_share']:.1f}%",
                          human_bytes(r["memory_estimate_bytes"]) if first and "memory_estimate_bytes" in r else "",
                          human_bytes(r["peak_rss_bytes"]) if first and "peak_rss_bytes" in r else "",
                          end_section=kind == "infer")
    parts = [header, table]
    parts += [_render_entries(r) for r in rows if "per_layer" in r]
    if report["dtype_policy"] == "mixed_float16" and report["device"].startswith("CPU"):
        parts.append(Text("note: mixed_float16 on a CPU usually runs slower than float32 (no fast float16 "
                          "kernels); the % of peak is still against the float32 matmul peak."))
    return Group(*parts)


def _render_entries(row: dict):
    from rich.table import Table

    table = Table(title=f"forward time per config entry, batch {row['batch_size']} (approximate: each entry "
                        "timed alone as a sub-model)", title_justify="left")
    for column, justify in (("entry", "left"), ("type", "left"), ("ms", "right"), ("share", "right"),
                            ("GFLOP/s", "right")):
        table.add_column(column, justify=justify, no_wrap=column != "entry", overflow="fold")
    for e in row["per_layer"]:
        table.add_row(plain(e["name"]), e["type"], f"{e['ms_median']:.3f}", f"{100 * e['share']:.1f}%",
                      f"{e['gflops']:.1f}")
    total = sum(e["ms_median"] for e in row["per_layer"])
    table.add_row("sum", "", f"{total:.3f}", "", "", style="bold")
    table.add_row("whole model", "", f"{row['infer_ms_median']:.3f}", "", "", style="bold")
    return table
