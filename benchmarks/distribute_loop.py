"""train.distribute speeds, side by side in one process on the same data: LeNet (configs/lenet.yaml, float32)
on an MNIST subset, each side a fresh model from the same seed, timed per epoch.

    python benchmarks/distribute_loop.py --data-dir /work/shared/data                 # 6,000 images, 4 epochs
    python benchmarks/distribute_loop.py --data-dir /work/shared/data --samples 2000 --epochs 3 --out d.json

Sides (every one trains the same whole batches: each epoch's last partial batch is dropped on all of them):

  fit, 1 device          model.fit with no strategy: what `train.distribute: none` runs
  custom step, 1 device  the multi_worker loop (cnnzoo/training/distributed_loop.py) on TensorFlow's default strategy:
                         strategy.run inside a tf.function, compute_average_loss, apply_gradients, CallbackList
  fit, mirrored x2       model.fit under MirroredStrategy over two logical CPU devices (the host CPU split
                         with tf.config.set_logical_device_configuration): what the CI test runs

samples/s is the training samples of an epoch over its seconds, median over the epochs after the first
(which pays for tracing); `ratio` is each side over `fit, 1 device`. Two logical CPU devices share the
same cores, so mirrored cannot be faster here: it measures the cost of splitting and all-reducing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=6000, help="MNIST images loaded (data.limit)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--out", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()

    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from cnnzoo.config import load_config
    from cnnzoo.data import load_dataset

    config = load_config(ROOT / "configs" / "lenet.yaml", [f"data.limit={args.samples}", "train.precision=float32",
                                                           f"train.batch_size={args.batch}"])
    splits = load_dataset(config.data, input_shape=config.input.shape, data_dir=args.data_dir, seed=config.train.seed)
    rows = [measure(side, config, splits, args.epochs) for side in ("fit, 1 device", "custom step, 1 device",
                                                                     "fit, mirrored x2")]
    base = rows[0]["samples_per_second"]
    print(f"\nLeNet, {len(splits.x_train)} training images, batch {args.batch}, {args.epochs} epochs, "
          f"TensorFlow {tf.__version__}")
    print(f"{'side':<24}{'samples/s':>12}{'ratio':>8}{'final loss':>12}")
    for row in rows:
        row["ratio"] = round(row["samples_per_second"] / base, 3)
        print(f"{row['side']:<24}{row['samples_per_second']:>12.1f}{row['ratio']:>8.3f}{row['final_loss']:>12.4f}")
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))


def measure(side: str, config, splits, epochs: int) -> dict:
    import keras
    import tensorflow as tf

    from cnnzoo.model.builder import build_model
    from cnnzoo.training.distribute import Distribution
    from cnnzoo.training.distributed_loop import DistributedLoop
    from cnnzoo.training.labels import plan_labels
    from cnnzoo.training.setup import compile_model, make_pipelines

    dist = {"fit, 1 device": Distribution("none"),
            "custom step, 1 device": Distribution("multi_worker", tf.distribute.get_strategy()),
            "fit, mirrored x2": Distribution("mirrored", tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"]),
                                             replicas=2)}[side]
    with dist.scope():
        keras.utils.set_random_seed(config.train.seed)
        model = build_model(config).model
        plan = plan_labels(config, model, splits.num_classes)
        compile_model(model, config, plan)
        pipes = make_pipelines(config, splits, plan, drop_remainder=True)
        runner = DistributedLoop(model, dist, config, plan) if dist.custom_loop else model
        timer = EpochTimer()
        steps = len(splits.x_train) // config.train.batch_size
        runner.fit(pipes.train, validation_data=None, epochs=epochs, initial_epoch=0, steps_per_epoch=steps,
                   callbacks=[timer], verbose=0, shuffle=False)  # the pipeline shuffles
    seconds = timer.seconds[1:] or timer.seconds
    samples = steps * config.train.batch_size
    print(f"{side}: epoch seconds {[round(s, 2) for s in timer.seconds]}", flush=True)
    return {"side": side, "epoch_seconds": timer.seconds, "final_loss": timer.losses[-1],
            "samples_per_second": round(statistics.median(samples / s for s in seconds), 1)}


def _timer_class():
    import keras

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.losses, self.started = [], [], 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)
            self.losses.append(float(logs["loss"]))

    return Timer


def EpochTimer():  # noqa: N802 - a class made after keras is imported
    return _timer_class()()


if __name__ == "__main__":
    main()
