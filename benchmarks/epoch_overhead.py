"""Per-epoch overhead of `cnnzoo train` on a tiny dataset, against plain `keras` `model.fit` of the same
network on the same data, side by side in one process.

    python benchmarks/epoch_overhead.py                      # 40 epochs, 3 repeats of each side (~3 min on 2 cores)
    python benchmarks/epoch_overhead.py --epochs 100 --repeats 5 --out runs/overhead

The data is synthetic and ECG200-shaped (UCR layout: 100 training and 100 test series of length 96, two
classes labelled -1 and 1), written once under --work-dir. The network is the time-series FCN (Wang et
al. 2017): Conv1D 128/256/128 with kernels 8/5/3, each + BatchNorm + ReLU, global average pooling,
softmax; Adam 0.001, batch 16, float32 on both sides, no validation split (7 steps an epoch); the cnnzoo
side keeps best.keras on the training loss, as configs/cnn1d_fcn_wang.yaml does (so it is rewritten in most
epochs while the loss falls).

  plain   the arrays in memory, `keras.Sequential`, `model.fit(x, y, batch_size=16, epochs=N, verbose=0)`:
          nothing written, nothing shown.
  cnnzoo  `cnnzoo train CONFIG --data-dir DIR` through the real CLI (`cnnzoo.cli.app`, in this process):
          its tf.data pipeline, callbacks, progress display, history.csv and the best.keras and last.keras
          checkpoints written (atomically, fsynced) after every epoch.

What is measured, identically on both sides: `keras.Model.fit` is wrapped to add a last callback that
stamps the clock as each epoch begins and a first one that stamps it as each epoch ends. An epoch's seconds
run from its begin to the next epoch's begin (the last: to the end of fit), so they include every callback's
end-of-epoch work (checkpoints, history, display); that work alone is the time from the first callback's
on_epoch_end to the next begin. Each is the median over epochs 2..N (the first pays for tracing), then the
median over repeats; overhead = cnnzoo - plain, ratio = cnnzoo / plain (also as the median of each repeat's
ratio). Sides alternate their order between repeats. The CPU model and whether lscpu shows avx512_bf16 are
printed and stored; the raw numbers go to OUT.json and OUT.csv.

Measured (AMD EPYC, 2 cores, no AVX512_BF16, shared machine at load 3-4; --epochs 30 --repeats 5, before and
after in consecutive runs):
  before (Keras' model.save for each checkpoint): plain 0.587 s/epoch, cnnzoo 0.665 s/epoch, ratio 1.12;
                                                  cnnzoo end-of-epoch work 0.195 s
  after (training/checkpoint_writer.py):          plain 0.567 s/epoch, cnnzoo 0.482 s/epoch, ratio 0.86;
                                                  cnnzoo end-of-epoch work 0.062 s
The totals vary by about 20% between repeats on a shared machine; the end-of-epoch work by a few percent.
See docs/models-and-results.md, "Per-epoch overhead on tiny datasets".
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "ECG200"
CONFIG = """\
name: fcn_overhead
input: {{shape: [{length}, 1]}}
model:
  blocks:
    conv_bn_relu:
      params: [filters, kernel]
      layers:
        - Conv1D: {{filters: $filters, kernel_size: $kernel, padding: same}}
        - BatchNormalization
        - ReLU
  layers:
    - conv_bn_relu: {{filters: 128, kernel: 8}}
    - conv_bn_relu: {{filters: 256, kernel: 5}}
    - conv_bn_relu: {{filters: 128, kernel: 3}}
    - GlobalAveragePooling1D
    - Dense: {{units: 2, activation: softmax}}
data: {{dataset: ucr, name: {name}, validation_split: 0}}
train:
  epochs: {epochs}
  batch_size: {batch}
  seed: {seed}
  precision: float32
  optimizer: {{name: adam, learning_rate: 0.001}}
  checkpoint: {{monitor: loss, mode: min}}
  loss: sparse_categorical_crossentropy
"""


def cpu() -> dict:
    """The CPU model, core count and whether lscpu (else /proc/cpuinfo) shows avx512_bf16."""
    import subprocess

    try:
        info = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        info = info.replace("Model name:", "model name:")
    except (OSError, subprocess.SubprocessError):
        info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                 platform.processor() or "?")
    return {"model": model, "cores": os.cpu_count(), "avx512_bf16": "avx512_bf16" in info.split()}


def synthetic_ucr(data_dir: Path, samples: int, length: int, seed: int) -> tuple:
    """ECG200-shaped train and test splits (labels -1/1), written as UCR TSVs; returns the float arrays."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder = data_dir / "ucr" / NAME
    folder.mkdir(parents=True, exist_ok=True)
    t = np.linspace(0, 2 * np.pi, length)
    arrays = []
    for part in ("TRAIN", "TEST"):
        labels = np.where(np.arange(samples) % 2 == 0, -1.0, 1.0)
        series = np.sin(t[None, :] * (1.5 + 0.5 * labels[:, None])) + 0.3 * rng.standard_normal((samples, length))
        rows = np.column_stack([labels, series])
        np.savetxt(folder / f"{NAME}_{part}.tsv", rows, delimiter="\t", fmt="%.6f")
        arrays.append((series.astype("float32")[..., None], (labels > 0).astype("int64")))
    return arrays[0]


class EpochClock:
    """Wraps keras.Model.fit so that every fit gets a last callback stamping the clock as each epoch begins,
    and a first one stamping it as each epoch ends (before any other callback's end-of-epoch work)."""

    def __init__(self):
        import keras

        self.keras = keras
        self.original = keras.Model.fit
        self.begins: list[float] = []
        self.ends: list[float] = []
        self.ended = 0.0

    def __enter__(self):
        clock = self

        class Begin(self.keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                clock.begins.append(time.perf_counter())

        class End(self.keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                clock.ends.append(time.perf_counter())

        def fit(model, *args, callbacks=None, **kwargs):
            clock.begins, clock.ends = [], []
            try:
                return clock.original(model, *args, callbacks=[End(), *(callbacks or []), Begin()], **kwargs)
            finally:
                clock.ended = time.perf_counter()

        self.keras.Model.fit = fit
        return self

    def __exit__(self, *exc):
        self.keras.Model.fit = self.original

    def epoch_seconds(self) -> list[float]:
        """Each epoch, begin to the next one's begin (the last: to the end of fit)."""
        return [end - begin for begin, end in zip(self.begins, [*self.begins[1:], self.ended])]

    def end_of_epoch_seconds(self) -> list[float]:
        """Each epoch, from its end to the next one's begin: the callbacks' end-of-epoch work."""
        return [begin - end for end, begin in zip(self.ends, [*self.begins[1:], self.ended])]


def plain_fcn(keras, length: int):
    def conv_bn_relu(filters, kernel):
        return [keras.layers.Conv1D(filters, kernel, padding="same"), keras.layers.BatchNormalization(),
                keras.layers.ReLU()]

    return keras.Sequential([keras.Input((length, 1)), *conv_bn_relu(128, 8), *conv_bn_relu(256, 5),
                             *conv_bn_relu(128, 3), keras.layers.GlobalAveragePooling1D(),
                             keras.layers.Dense(2, activation="softmax")])


def run_plain(opts, x, y) -> dict:
    import keras

    keras.utils.set_random_seed(opts.seed)
    model = plain_fcn(keras, opts.length)
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    with EpochClock() as clock:
        model.fit(x, y, batch_size=opts.batch_size, epochs=opts.epochs, verbose=0, shuffle=True)
    return {"params": model.count_params(), "epoch_seconds": clock.epoch_seconds(),
            "end_of_epoch_seconds": clock.end_of_epoch_seconds()}


def run_cnnzoo(opts, config: Path, data_dir: Path, runs_dir: Path) -> dict:
    from cnnzoo.cli import app
    from cnnzoo.runs.record import RunRecord

    before = set(runs_dir.iterdir()) if runs_dir.exists() else set()
    with EpochClock() as clock:
        try:
            app(["train", str(config), "--data-dir", str(data_dir), "--runs-dir", str(runs_dir)], standalone_mode=False)
        except SystemExit as exc:  # typer.Exit from a user error
            if exc.code:
                raise
    (run,) = set(runs_dir.iterdir()) - before
    record = RunRecord.read(run / "metrics.json")
    return {"params": record.params, "epoch_seconds": clock.epoch_seconds(),
            "end_of_epoch_seconds": clock.end_of_epoch_seconds(), "run": str(run)}


def steady(seconds: list[float]) -> float:
    """Median seconds per epoch after the first."""
    return statistics.median(seconds[1:] or seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=100, help="Series per split (ECG200: 100).")
    parser.add_argument("--length", type=int, default=96, help="Series length (ECG200: 96).")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work-dir", type=Path, default=None, help="Data and run folders (default: a temp folder).")
    parser.add_argument("--out", type=Path, default=Path("epoch_overhead"), help="Writes OUT.json and OUT.csv.")
    parser.add_argument("--sides", default="plain,cnnzoo", help="Comma-separated: plain, cnnzoo.")
    opts = parser.parse_args(argv)
    work = opts.work_dir or Path(tempfile.mkdtemp(prefix="cnnzoo-overhead-"))
    data_dir, runs_dir = (work / "data").resolve(), (work / "runs").resolve()
    x, y = synthetic_ucr(data_dir, opts.samples, opts.length, opts.seed)
    config = work / "fcn_overhead.yaml"
    config.write_text(CONFIG.format(length=opts.length, name=NAME, epochs=opts.epochs, batch=opts.batch_size,
                                    seed=opts.seed))
    machine = cpu()
    print(f"CPU: {machine['model']}, {machine['cores']} cores, lscpu avx512_bf16: "
          f"{'yes' if machine['avx512_bf16'] else 'no'}", flush=True)
    sides = opts.sides.split(",")
    records = []
    for repeat in range(opts.repeats):
        for side in sides if repeat % 2 == 0 else sides[::-1]:
            print(f"repeat {repeat + 1}/{opts.repeats}: {side}, {opts.epochs} epochs", flush=True)
            result = run_plain(opts, x, y) if side == "plain" else run_cnnzoo(opts, config, data_dir, runs_dir)
            result.update(side=side, repeat=repeat + 1, seconds_per_epoch=steady(result["epoch_seconds"]),
                          end_of_epoch=steady(result["end_of_epoch_seconds"]))
            print(f"  {side}: {result['seconds_per_epoch']:.4f} s/epoch, of which {result['end_of_epoch']:.4f} s "
                  f"end-of-epoch callbacks (medians of epochs 2-{opts.epochs})", flush=True)
            records.append(result)
    summary = {}
    for side in sides:
        mine = [r for r in records if r["side"] == side]
        summary[side] = statistics.median(r["seconds_per_epoch"] for r in mine)
        summary[f"{side} end-of-epoch"] = statistics.median(r["end_of_epoch"] for r in mine)
    if {"plain", "cnnzoo"} <= set(summary):
        summary["overhead"] = summary["cnnzoo"] - summary["plain"]
        summary["ratio"] = summary["cnnzoo"] / summary["plain"]
        pairs = [(c["seconds_per_epoch"], p["seconds_per_epoch"]) for c in records for p in records
                 if c["side"] == "cnnzoo" and p["side"] == "plain" and c["repeat"] == p["repeat"]]
        summary["ratio per repeat, median"] = statistics.median(c / p for c, p in pairs)
    report = {"cpu": machine, "python": sys.version.split()[0], "epochs": opts.epochs, "repeats": opts.repeats,
              "samples": opts.samples, "length": opts.length, "batch_size": opts.batch_size,
              "steps_per_epoch": -(-opts.samples // opts.batch_size), "summary": summary, "records": records}
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    with open(opts.out.with_suffix(".csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["repeat", "side", "seconds_per_epoch", "end_of_epoch_seconds", "params"])
        for r in records:
            writer.writerow([r["repeat"], r["side"], f"{r['seconds_per_epoch']:.5f}", f"{r['end_of_epoch']:.5f}",
                             r["params"]])
    print("\nseconds per epoch (median over repeats):")
    for key, value in summary.items():
        print(f"  {key:>26}: {value:.4f}" + ("x" if key.startswith("ratio") else " s"))
    print(f"wrote {opts.out.with_suffix('.json')} and {opts.out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
