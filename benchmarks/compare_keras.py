"""cnnzoo against the plain, hand-written Keras script a tutorial would have you write: same machine,
same session, same data, same network and batch size.

    python benchmarks/compare_keras.py --data-dir /work/shared/data            # 3 repeats (~20 min on 2 cores)
    python benchmarks/compare_keras.py --data-dir /work/shared/data --quick    # 1 repeat, small subsets (~5 min)
    python benchmarks/compare_keras.py --pairs lenet,forda --repeats 5 --out runs/cmp.json

Pairs (each side is a fresh Python process, so timings and peak RSS are per process):

  lenet    LeNet on MNIST (configs/lenet.yaml). Plain side: np.load mnist.npz, float32 / 255 in memory,
           to_categorical, keras.Sequential, fit(validation_split=0.2). By default both sides use the first
           `--mnist-samples` 24,000 training images (19,200 train / 4,800 validation) so that 3 repeats fit
           the time budget; --mnist-samples 60000 is the full tutorial run.
  flowers  Inception-V2 on Flowers-17 at 128x128 (configs/inception_v2.yaml with input.shape=[128,128,3] and the
           final AveragePooling2D at pool_size 4). Plain side: tarfile extraction, keras.utils.load_img +
           img_to_array into one float32 array, a numpy 60/20/20 split, the same network hand-written in Keras'
           functional API (parameter counts are compared). Both sides use all 1,360 images (816 train), or
           at most `--flowers-limit` examples of each split (cnnzoo: data.limit).
  forda    The 1D CNN on UCR FordA (configs/cnn1d.yaml). Plain side: np.loadtxt the TSVs, Sequential Conv1D
           network, fit(validation_split=0.2), as in the keras.io time-series tutorial.

What is measured, identically on both sides:

  train samples/s   training examples / epoch seconds, median over the epochs after the first (the first
                    pays for tracing). An epoch's seconds run from on_epoch_begin to on_epoch_end, so they
                    include the validation pass (and on the cnnzoo side its per-epoch checkpoint writes).
                    cnnzoo's numbers come from its run folder (history.csv epoch_seconds, metrics.json
                    train_samples); the plain script times epochs with a two-method callback.
  process wall s    the whole child process, interpreter start to exit (import, data, fit, test evaluation;
                    cnnzoo also writes its run folder and plots).
  peak RSS MB       the child's ru_maxrss, read by the parent with os.wait4 (the same for both sides).
  data prep s       cnnzoo: time inside cnnzoo.data.load_dataset (timed by a wrapper; the cnnzoo side runs the
                    real CLI, `cnnzoo.cli.app`, in-process in the child). Plain: from after `import keras` to
                    arrays ready (load, scale, one-hot, split). Flowers cold: a prep-only child with an empty
                    CNNZOO_CACHE_DIR (cnnzoo) or an empty extraction folder (plain: extract + load); flowers
                    warm: the training run that follows, reusing that cache / extracted folder. The OS page
                    cache is warm on both sides after the first read of the archive.

Sides alternate order between repeats; the table shows medians over repeats and the ratio cnnzoo / plain.
Every command is printed before it runs and stored, with all raw numbers, in the --out JSON file.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
MNIST_TRAIN = 60000
FLOWERS_128 = ["--set", "input.shape=[128,128,3]", "--set", "model.layers[-3].AveragePooling2D.pool_size=4"]
EPOCHS = {"lenet": 2, "flowers": 2, "forda": 3}


# --- the plain Keras scripts, run as child processes; they never import cnnzoo -------------------------------

def _epoch_timer(keras):
    class EpochTimer(keras.callbacks.Callback):
        """Seconds per epoch, begin to end (the end comes after the validation pass)."""

        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    return EpochTimer()


def plain_lenet(opts) -> dict:
    import keras
    import numpy as np
    from keras import layers

    start = time.perf_counter()
    with np.load(Path(opts.data_dir) / "mnist.npz") as f:
        x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    x_train, y_train = x_train[:opts.samples], y_train[:opts.samples]
    test = min(len(x_test), opts.test_limit or len(x_test))
    x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255.0
    x_test = x_test[:test].reshape(-1, 28, 28, 1).astype("float32") / 255.0
    y_train = keras.utils.to_categorical(y_train, 10)
    y_test = keras.utils.to_categorical(y_test[:test], 10)
    prep = time.perf_counter() - start

    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(20, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(pool_size=2, strides=2),
        layers.Conv2D(50, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(pool_size=2, strides=2),
        layers.Flatten(),
        layers.Dense(500, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    timer = _epoch_timer(keras)
    model.fit(x_train, y_train, batch_size=128, epochs=opts.epochs, validation_split=0.2, callbacks=[timer])
    model.evaluate(x_test, y_test)
    n_train = int(len(x_train) * 0.8)  # Keras' validation_split keeps floor(n * 0.8)
    return {"prep_seconds": prep, "epoch_seconds": timer.seconds, "train_samples": n_train,
            "val_samples": len(x_train) - n_train, "test_samples": test, "params": model.count_params()}


def plain_flowers(opts) -> dict:
    import tarfile

    import keras
    import numpy as np

    start = time.perf_counter()
    jpg = Path(opts.extract_dir) / "jpg"
    if not jpg.is_dir():
        with tarfile.open(Path(opts.data_dir) / "17flowers.tgz") as tar:
            tar.extractall(opts.extract_dir, filter="data")
    paths = sorted(jpg.glob("image_*.jpg"))
    images, labels = [], []
    for path in paths:
        image = keras.utils.load_img(path, target_size=(128, 128))
        images.append(keras.utils.img_to_array(image))
        labels.append((int(path.stem.split("_")[1]) - 1) // 80)
    x = np.array(images, dtype="float32") / 255.0
    y = np.array(labels)
    order = np.random.default_rng(42).permutation(len(x))  # a train_test_split done with numpy: 60/20/20
    n_hold = round(0.2 * len(x))
    test, val, train = order[:n_hold], order[n_hold:2 * n_hold], order[2 * n_hold:]
    if opts.limit:
        test, val, train = test[:opts.limit], val[:opts.limit], train[:opts.limit]
    x_train, y_train, x_val, y_val, x_test, y_test = x[train], y[train], x[val], y[val], x[test], y[test]
    prep = time.perf_counter() - start
    counts = {"train_samples": len(train), "val_samples": len(val), "test_samples": len(test)}
    if opts.prep_only:
        return {"prep_seconds": prep, "images": len(paths), **counts}

    model = inception_v2(keras, (128, 128, 3), classes=17, final_pool=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    timer = _epoch_timer(keras)
    model.fit(x_train, y_train, batch_size=32, epochs=opts.epochs, validation_data=(x_val, y_val),
              callbacks=[timer])
    model.evaluate(x_test, y_test)
    return {"prep_seconds": prep, "epoch_seconds": timer.seconds, "params": model.count_params(), **counts}


def inception_v2(keras, shape, classes, final_pool):
    """BN-Inception as configs/inception_v2.yaml writes it (Conv -> ReLU -> BatchNorm), by hand."""
    from keras import layers

    def conv_bn(x, filters, kernel, strides=1):
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", activation="relu")(x)
        return layers.BatchNormalization()(x)

    def inception(x, b1, b3r, b3, d3r, d3, proj, pool=layers.AveragePooling2D):
        branch1 = conv_bn(x, b1, 1)
        branch3 = conv_bn(conv_bn(x, b3r, 1), b3, 3)
        double3 = conv_bn(conv_bn(conv_bn(x, d3r, 1), d3, 3), d3, 3)
        pooled = conv_bn(pool(pool_size=3, strides=1, padding="same")(x), proj, 1)
        return layers.Concatenate()([branch1, branch3, double3, pooled])

    def reduction(x, b3r, b3, d3r, d3):
        branch3 = conv_bn(conv_bn(x, b3r, 1), b3, 3, strides=2)
        double3 = conv_bn(conv_bn(conv_bn(x, d3r, 1), d3, 3), d3, 3, strides=2)
        pooled = layers.MaxPooling2D(pool_size=3, strides=2, padding="same")(x)
        return layers.Concatenate()([branch3, double3, pooled])

    inputs = keras.Input(shape=shape)
    x = conv_bn(inputs, 64, 7, strides=2)
    x = layers.MaxPooling2D(pool_size=3, strides=2, padding="same")(x)
    x = conv_bn(x, 64, 1)
    x = conv_bn(x, 192, 3)
    x = layers.MaxPooling2D(pool_size=3, strides=2, padding="same")(x)
    x = inception(x, 64, 64, 64, 64, 96, 32)
    x = inception(x, 64, 64, 96, 64, 96, 64)
    x = reduction(x, 128, 160, 64, 96)
    x = inception(x, 224, 64, 96, 96, 128, 128)
    x = inception(x, 192, 96, 128, 96, 128, 128)
    x = inception(x, 160, 128, 160, 128, 160, 128)
    x = inception(x, 96, 128, 192, 160, 192, 128)
    x = reduction(x, 128, 192, 192, 256)
    x = inception(x, 352, 192, 320, 160, 224, 128)
    x = inception(x, 352, 192, 320, 192, 224, 128, pool=layers.MaxPooling2D)
    x = layers.AveragePooling2D(pool_size=final_pool)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def plain_forda(opts) -> dict:
    import keras
    import numpy as np
    from keras import layers

    def readucr(filename):
        data = np.loadtxt(filename, delimiter="\t")
        return data[:, 1:], data[:, 0].astype(int)

    start = time.perf_counter()
    folder = Path(opts.data_dir) / "ucr" / "FordA"
    x_train, y_train = readucr(folder / "FordA_TRAIN.tsv")
    x_test, y_test = readucr(folder / "FordA_TEST.tsv")
    x_train = x_train.reshape((x_train.shape[0], x_train.shape[1], 1))
    x_test = x_test.reshape((x_test.shape[0], x_test.shape[1], 1))
    y_train[y_train == -1] = 0
    y_test[y_test == -1] = 0
    idx = np.random.default_rng(42).permutation(len(x_train))
    x_train, y_train = x_train[idx], y_train[idx]
    prep = time.perf_counter() - start

    model = keras.Sequential([
        keras.Input(shape=(500, 1)),
        layers.Conv1D(64, 3, activation="relu"),
        layers.Conv1D(64, 3, activation="relu"),
        layers.MaxPooling1D(pool_size=3),
        layers.Conv1D(128, 3, activation="relu"),
        layers.Conv1D(128, 3, activation="relu"),
        layers.GlobalAveragePooling1D(),
        layers.Dropout(0.5),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    timer = _epoch_timer(keras)
    model.fit(x_train, y_train, batch_size=32, epochs=opts.epochs, validation_split=0.2, callbacks=[timer])
    model.evaluate(x_test, y_test)
    n_train = int(len(x_train) * 0.8)
    return {"prep_seconds": prep, "epoch_seconds": timer.seconds, "train_samples": n_train,
            "val_samples": len(x_train) - n_train, "test_samples": len(x_test), "params": model.count_params()}


# --- the cnnzoo side children: the real CLI, with a timer around the data loader --------------------------

def cnnzoo_train(argv: list[str]) -> dict:
    """Run `cnnzoo <argv>` in this process, timing cnnzoo.data.load_dataset (train_run calls it by module)."""
    import cnnzoo.data as datasets
    from cnnzoo.cli import app

    load, spent = datasets.load_dataset, []

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return load(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    datasets.load_dataset = timed
    try:
        app(argv, prog_name="cnnzoo")
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    return {"prep_seconds": sum(spent)}


def cnnzoo_prep(argv: list[str]) -> dict:
    """What `cnnzoo train CONFIG --set ...` does to load its data, and nothing else: argv = CONFIG [--set X]...
    [--data-dir D]. The cache folder comes from CNNZOO_CACHE_DIR, as for `cnnzoo train`."""
    from cnnzoo import data as datasets
    from cnnzoo.config import load_config
    from cnnzoo.tensorflow_import import import_tensorflow

    import_tensorflow()
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--data-dir")
    opts = parser.parse_args(argv)
    config = load_config(opts.config, opts.set)
    started = time.perf_counter()
    splits = datasets.load_dataset(config.data, input_shape=config.input.shape,
                                   data_dir=datasets.resolve_data_dir(opts.data_dir and Path(opts.data_dir)),
                                   seed=config.train.seed)
    return {"prep_seconds": time.perf_counter() - started, "train_samples": len(splits.x_train),
            "val_samples": len(splits.x_val), "test_samples": len(splits.x_test)}


PLAIN = {"plain-lenet": plain_lenet, "plain-flowers": plain_flowers, "plain-forda": plain_forda}


def child_main(argv: list[str]) -> None:
    """`compare_keras.py child NAME RESULT.json ARGS...`: run one side and write its numbers to RESULT.json."""
    name, result_path, rest = argv[0], Path(argv[1]), argv[2:]
    if name in PLAIN:
        parser = argparse.ArgumentParser()
        for option in ("--data-dir", "--extract-dir"):
            parser.add_argument(option)
        for option in ("--epochs", "--samples", "--limit", "--test-limit"):
            parser.add_argument(option, type=int)
        parser.add_argument("--prep-only", action="store_true")
        result = PLAIN[name](parser.parse_args(rest))
    else:
        result = {"cnnzoo-train": cnnzoo_train, "cnnzoo-prep": cnnzoo_prep}[name](rest)
    result_path.write_text(json.dumps(result))


# --- the parent: which children to run, running them, the table --------------------------------------------

def child_command(name: str, result: Path, args: list[str]) -> list[str]:
    return [sys.executable, str(SCRIPT), "child", name, str(result), *args]


def run_child(command: list[str], env_extra: dict[str, str], log: Path) -> dict:
    """Run one child; wall seconds and peak RSS (MB, from os.wait4) plus the numbers it wrote."""
    result = Path(command[4])
    result.unlink(missing_ok=True)
    shown = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env_extra.items()), *map(shlex.quote, command)])
    print(f"$ {shown}", flush=True)
    load_before, started = os.getloadavg()[0], time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, **env_extra})
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    record = {"command": shown, "exit_code": code, "wall_seconds": time.perf_counter() - started,
              "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime, "log": str(log),
              "load_average_1min": [load_before, os.getloadavg()[0]]}  # other work on the machine skews timings
    if code != 0 or not result.exists():
        tail = log.read_text(errors="replace").splitlines()[-15:]
        print(f"  ! failed with exit code {code}; last lines of {log}:\n    " + "\n    ".join(tail), flush=True)
        record["error"] = "\n".join(tail)
        return record
    record.update(json.loads(result.read_text()))
    print(f"  wall {record['wall_seconds']:.1f} s, peak RSS {record['peak_rss_mb']:.0f} MB, load average "
          f"{record['load_average_1min'][0]:.1f} -> {record['load_average_1min'][1]:.1f}", flush=True)
    return record


def read_run(record: dict, runs_dir: Path, keep: bool) -> dict:
    """Add a cnnzoo run folder's epoch seconds and sample counts to its child's record."""
    folders = sorted(runs_dir.iterdir(), key=lambda p: p.stat().st_mtime) if runs_dir.exists() else []
    if "error" in record or not folders:
        return record
    run = folders[-1]
    metrics = json.loads((run / "metrics.json").read_text())
    with open(run / "history.csv", newline="") as f:
        record["epoch_seconds"] = [float(row["epoch_seconds"]) for row in csv.DictReader(f)]
    record.update({k: metrics[k] for k in ("train_samples", "val_samples", "test_samples", "params",
                                           "samples_per_second")}, run=str(run),
                  precision=metrics.get("precision"))
    if not keep:
        shutil.rmtree(run, ignore_errors=True)
    return record


def steady_samples_per_second(record: dict) -> float | None:
    seconds = record.get("epoch_seconds") or []
    steady = seconds[1:] or seconds
    return record["train_samples"] / statistics.median(steady) if steady else None


class Session:
    def __init__(self, opts, work: Path):
        self.opts, self.work = opts, work
        self.records: list[dict] = []
        self.count = 0

    def run(self, pair: str, side: str, kind: str, repeat: int, name: str, args: list[str],
            env: dict[str, str] | None = None, runs_dir: Path | None = None) -> dict:
        self.count += 1
        result = self.work / f"{self.count:03d}-{name}.json"
        if name == "cnnzoo-train" and self.opts.precision:
            args = [*args, "--set", f"train.precision={self.opts.precision}"]
        record = run_child(child_command(name, result, args), env or {}, result.with_suffix(".log"))
        if runs_dir is not None:
            record = read_run(record, runs_dir, self.opts.keep)
        record.update(pair=pair, side=side, kind=kind, repeat=repeat)
        if "epoch_seconds" in record and "train_samples" in record:
            record["train_samples_per_second"] = steady_samples_per_second(record)
        self.records.append(record)
        return record


def lenet_sides(session: Session, repeat: int) -> dict:
    opts = session.opts
    data = str(opts.data_dir)
    samples, epochs = opts.mnist_samples, EPOCHS["lenet"]
    train_limit = int(samples * 0.8)
    cnnzoo_args = ["--epochs", str(epochs), "--data-dir", data]
    test_limit = []
    if samples < MNIST_TRAIN:  # the same 80/20 split of the first `samples` images, in cnnzoo's terms
        cnnzoo_args += ["--set", f"data.validation_split={(samples - train_limit) / MNIST_TRAIN!r}",
                        "--set", f"data.limit={train_limit}"]
        test_limit = ["--test-limit", str(train_limit)]  # data.limit caps the test split too
    runs = session.work / f"runs-lenet-{repeat}"
    return {
        "cnnzoo": lambda: session.run("lenet", "cnnzoo", "train", repeat, "cnnzoo-train",
                                      ["train", "configs/lenet.yaml", "--runs-dir", str(runs), *cnnzoo_args],
                                      runs_dir=runs),
        "plain": lambda: session.run("lenet", "plain", "train", repeat, "plain-lenet",
                                     ["--data-dir", data, "--epochs", str(epochs), "--samples", str(samples),
                                      *test_limit]),
    }


def flowers_sides(session: Session, repeat: int) -> dict:
    opts = session.opts
    data = str(opts.data_dir)
    limit, epochs = opts.flowers_limit, EPOCHS["flowers"]
    cache = session.work / f"cache-flowers-{repeat}"
    extract = session.work / f"extract-flowers-{repeat}"
    runs = session.work / f"runs-flowers-{repeat}"
    config = ["configs/inception_v2.yaml", *FLOWERS_128, *(["--set", f"data.limit={limit}"] if limit else [])]
    env = {"CNNZOO_CACHE_DIR": str(cache)}
    plain = ["--data-dir", data, "--extract-dir", str(extract), "--limit", str(limit), "--epochs", str(epochs)]

    def cnnzoo():
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        session.run("flowers", "cnnzoo", "prep_cold", repeat, "cnnzoo-prep", [*config, "--data-dir", data], env)
        session.run("flowers", "cnnzoo", "train", repeat, "cnnzoo-train",
                    ["train", *config, "--epochs", str(epochs), "--runs-dir", str(runs), "--data-dir", data],
                    env, runs_dir=runs)
        shutil.rmtree(cache, ignore_errors=True)

    def plain_side():
        shutil.rmtree(extract, ignore_errors=True)
        session.run("flowers", "plain", "prep_cold", repeat, "plain-flowers", [*plain, "--prep-only"])
        session.run("flowers", "plain", "train", repeat, "plain-flowers", plain)
        shutil.rmtree(extract, ignore_errors=True)

    return {"cnnzoo": cnnzoo, "plain": plain_side}


def forda_sides(session: Session, repeat: int) -> dict:
    data, epochs = str(session.opts.data_dir), EPOCHS["forda"]
    runs = session.work / f"runs-forda-{repeat}"
    return {
        "cnnzoo": lambda: session.run("forda", "cnnzoo", "train", repeat, "cnnzoo-train",
                                      ["train", "configs/cnn1d.yaml", "--epochs", str(epochs), "--runs-dir",
                                       str(runs), "--data-dir", data], runs_dir=runs),
        "plain": lambda: session.run("forda", "plain", "train", repeat, "plain-forda",
                                     ["--data-dir", data, "--epochs", str(epochs)]),
    }


PAIRS = {"lenet": lenet_sides, "flowers": flowers_sides, "forda": forda_sides}

# (pair, row label, record kind, field[, how repeats are combined: median unless "best"])
ROWS = [
    ("lenet", "train samples/s (epochs 2+)", "train", "train_samples_per_second"),
    ("lenet", "  same, best repeat", "train", "train_samples_per_second", "best"),
    ("lenet", "process wall s (2 epochs)", "train", "wall_seconds"),
    ("lenet", "process CPU s (user+sys)", "train", "cpu_seconds"),
    ("lenet", "peak RSS MB", "train", "peak_rss_mb"),
    ("lenet", "data prep s", "train", "prep_seconds"),
    ("lenet", "params", "train", "params"),
    ("flowers", "data prep s, cold cache", "prep_cold", "prep_seconds"),
    ("flowers", "data prep s, warm cache", "train", "prep_seconds"),
    ("flowers", "train samples/s (epochs 2+)", "train", "train_samples_per_second"),
    ("flowers", "  same, best repeat", "train", "train_samples_per_second", "best"),
    ("flowers", "process wall s (2 epochs)", "train", "wall_seconds"),
    ("flowers", "process CPU s (user+sys)", "train", "cpu_seconds"),
    ("flowers", "peak RSS MB, training run", "train", "peak_rss_mb"),
    ("flowers", "peak RSS MB, cold prep", "prep_cold", "peak_rss_mb"),
    ("flowers", "params", "train", "params"),
    ("forda", "train samples/s (epochs 2+)", "train", "train_samples_per_second"),
    ("forda", "  same, best repeat", "train", "train_samples_per_second", "best"),
    ("forda", "process wall s (3 epochs)", "train", "wall_seconds"),
    ("forda", "process CPU s (user+sys)", "train", "cpu_seconds"),
    ("forda", "peak RSS MB", "train", "peak_rss_mb"),
    ("forda", "data prep s", "train", "prep_seconds"),
    ("forda", "params", "train", "params"),
]


def summarize(records: list[dict], pairs: list[str]) -> list[dict]:
    rows = []
    for pair, label, kind, field, *how in ROWS:
        if pair not in pairs:
            continue
        combine = max if how == ["best"] else statistics.median
        row = {"pair": pair, "metric": label}
        for side in ("cnnzoo", "plain"):
            values = [r[field] for r in records if (r["pair"], r["side"], r["kind"]) == (pair, side, kind)
                      and r.get(field) is not None and "error" not in r]
            row[side] = combine(values) if values else None
            row[f"{side}_values"] = values
        row["ratio"] = row["cnnzoo"] / row["plain"] if row["cnnzoo"] is not None and row["plain"] else None
        rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    def fmt(value):
        if value is None:
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"

    print(f"\n{'pair':8} {'metric':30} {'cnnzoo':>11} {'plain':>11} {'cnnzoo/plain':>13} {'n':>4}")
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        n = min(len(r["cnnzoo_values"]), len(r["plain_values"]))
        print(f"{r['pair']:8} {r['metric']:30} {fmt(r['cnnzoo']):>11} {fmt(r['plain']):>11} {ratio:>13} {n:>4}")
    print("medians over repeats (\"best repeat\": the highest); samples/s = training examples / epoch seconds "
          "(epoch incl. validation), median over epochs after the first; ratio > 1 means cnnzoo has more of it.\n"
          "Timings are only as steady as the machine: see load_average_1min per child in the JSON; CPU seconds "
          "are less sensitive to other load than wall seconds.")


def machine() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def pkg(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    cpu = ""
    if Path("/proc/cpuinfo").exists():
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "tensorflow": pkg("tensorflow"), "keras": pkg("keras"), "platform": platform.platform()}


def parse_args(argv: list[str]):
    from cnnzoo.precision import PRECISIONS  # no TensorFlow import: the parent process stays light

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("CNNZOO_DATA_DIR"),
                        help="folder with mnist.npz, 17flowers.tgz and ucr/FordA/ (default: $CNNZOO_DATA_DIR)")
    parser.add_argument("--pairs", default="lenet,flowers,forda", help="comma-separated subset of lenet,flowers,forda")
    parser.add_argument("--repeats", type=int, default=None, help="repetitions per pair (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 repeat, 6,000 MNIST images, 32 Flowers-17 images per split")
    parser.add_argument("--mnist-samples", type=int, default=None,
                        help="first N MNIST training images, split 80/20 (default 24000; 6000 with --quick)")
    parser.add_argument("--flowers-limit", type=int, default=None,
                        help="at most N Flowers-17 images per split (default 0: all 816/272/272; 32 with --quick)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="train.precision for the cnnzoo side (default: each config's own; the plain side "
                             "is float32, as the tutorials write it)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "compare_keras.json", help="raw numbers (JSON)")
    parser.add_argument("--work-dir", type=Path, help="children's logs and run folders (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep cnnzoo run folders and the work folder")
    opts = parser.parse_args(argv)
    opts.repeats = opts.repeats or (1 if opts.quick else 3)
    opts.mnist_samples = opts.mnist_samples or (6000 if opts.quick else 24000)
    if opts.flowers_limit is None:
        opts.flowers_limit = 32 if opts.quick else 0
    opts.pairs = [p.strip() for p in opts.pairs.split(",") if p.strip()]
    unknown = sorted(set(opts.pairs) - set(PAIRS))
    if unknown:
        parser.error(f"unknown pair(s) {', '.join(unknown)}; choose from {', '.join(PAIRS)}")
    if not opts.data_dir or not Path(opts.data_dir).is_dir():
        parser.error("pass --data-dir (or set CNNZOO_DATA_DIR) to the folder that holds the datasets")
    if not 1 <= opts.mnist_samples <= MNIST_TRAIN:
        parser.error(f"--mnist-samples must be between 1 and {MNIST_TRAIN}")
    opts.data_dir = Path(opts.data_dir).resolve()
    return opts


def main(argv: list[str]) -> None:
    opts = parse_args(argv)
    work = opts.work_dir or Path(tempfile.mkdtemp(prefix="compare_keras-"))
    work.mkdir(parents=True, exist_ok=True)
    session = Session(opts, work)
    invocation = " ".join(map(shlex.quote, [sys.executable, str(SCRIPT.relative_to(ROOT)), *argv]))
    print(f"# reproduce: cd {ROOT} && {invocation}\n# work folder: {work}\n# cnnzoo side = `cnnzoo <args>` "
          f"(run as cnnzoo.cli.app in the child, with a timer around cnnzoo.data.load_dataset)", flush=True)
    started = time.perf_counter()
    for repeat in range(opts.repeats):
        for pair in opts.pairs:
            sides = PAIRS[pair](session, repeat)
            order = ("cnnzoo", "plain") if repeat % 2 == 0 else ("plain", "cnnzoo")
            print(f"\n## {pair}, repeat {repeat + 1}/{opts.repeats}, order {' then '.join(order)}", flush=True)
            for side in order:
                sides[side]()
    rows = summarize(session.records, opts.pairs)
    print_table(rows)
    policies = sorted({f"{r['pair']}: {r['precision']}" for r in session.records if r.get("precision")})
    print(f"cnnzoo dtype policy (metrics.json): {', '.join(policies) or '-'}; the plain side is float32")
    report = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
              "invocation": invocation, "machine": machine(), "total_seconds": time.perf_counter() - started,
              "summary": rows, "records": session.records}
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2))
    print(f"\nraw numbers: {opts.out}  (total {report['total_seconds'] / 60:.1f} min)")
    if not opts.keep and not opts.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child_main(sys.argv[2:])
    else:
        main(sys.argv[1:])
