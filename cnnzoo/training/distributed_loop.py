"""The multi_worker train and eval loop: `model.fit` and `model.evaluate` for MultiWorkerMirroredStrategy.

Keras 3.15 `fit` fails under MultiWorkerMirroredStrategy ("Attempt to convert a value (PerReplica...) to a
Tensor", keras-team/keras#20585), so this loop runs the step itself: `strategy.run(step)` inside a
tf.function over `strategy.experimental_distribute_dataset`, the per-example loss averaged over the
global batch (`tf.nn.compute_average_loss`), the compiled Keras optimizer's `apply_gradients` (which
all-reduces the gradients), and the same Keras callbacks `fit` would drive, through
`keras.callbacks.CallbackList`.

Data: every worker builds the same pipeline and tf.data auto-shards it by DATA (each worker keeps its
share of every global batch); a streamed training split is sharded before decoding instead (each worker
decodes only its share, data/stream_pipeline.py) and handed over per worker. Each epoch's last partial batch is dropped so every worker runs the same number of
steps (a short batch would split unevenly across replicas); the epoch-seeded shuffle drops different
samples each epoch. Validation and test passes run whole on every worker, outside the strategy: every
worker then computes the same numbers, so early stopping, schedules and checkpoints decide alike.
"""

from __future__ import annotations

import time
from typing import Any

import keras

from cnnzoo.errors import ConfigError
from cnnzoo.training.callbacks import RichProgress
from cnnzoo.training.distribute import Distribution, WorkerLost, lost_worker_message


class DistributedLoop:
    """`fit` and `evaluate` with the signatures train.py calls on a Keras model."""

    def __init__(self, model: Any, dist: Distribution, config, plan, presharded: bool = False):
        _check_plan(config, plan)
        self.model, self.dist, self.config = model, dist, config
        self.presharded = presharded  # the training dataset is this worker's per-replica batches already
        self.global_batch = config.train.batch_size
        self.loss_fn = _loss_function(plan.loss)
        self.metric_fns = _metric_functions(config, plan, model.output_shape[-1])
        self._train_step = None
        self._eval_step = None

    def fit(self, train, *, validation_data, epochs: int, initial_epoch: int, steps_per_epoch: int,
            callbacks: list, **_ignored) -> None:
        """Like `model.fit`; a lost worker (in a step, or in a checkpoint save, which all workers do
        together) becomes WorkerLost naming it."""
        self._guarded(lambda: self._fit(train, validation_data, epochs, initial_epoch, steps_per_epoch, callbacks))

    def _fit(self, train, validation_data, epochs: int, initial_epoch: int, steps_per_epoch: int,
             callbacks: list) -> None:
        callbacks = [c for c in callbacks if self.dist.is_chief or not _is_progress(c)]
        if not self.dist.is_chief:
            callbacks.append(EpochLine(self.dist.worker_index, epochs))
        hooks = keras.callbacks.CallbackList(callbacks, model=self.model, epochs=epochs, steps=steps_per_epoch,
                                             verbose=0)
        if self.presharded:
            batches = iter(self.dist.strategy.distribute_datasets_from_function(lambda _: _unsharded(train)))
        else:
            batches = iter(self.dist.strategy.experimental_distribute_dataset(_data_sharded(train)))
        self.model.stop_training = False
        hooks.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            logs = self._epoch(epoch, batches, steps_per_epoch, hooks)
            if validation_data is not None and not self.model.stop_training:
                hooks.on_test_begin()  # as in fit: SwapEMAWeights validates the averaged weights
                validated = self.evaluate(validation_data)
                hooks.on_test_end(validated)
                logs.update({f"val_{k}": v for k, v in validated.items()})
            hooks.on_epoch_end(epoch, logs)
            if self.model.stop_training:
                break
        hooks.on_train_end()

    def _epoch(self, epoch: int, batches, steps: int, hooks) -> dict:
        hooks.on_epoch_begin(epoch)
        totals = None
        for step in range(steps):
            hooks.on_train_batch_begin(step)
            values = [float(v) for v in self._train_step_fn()(next(batches))]
            totals = values if totals is None else [a + b for a, b in zip(totals, values)]
            hooks.on_train_batch_end(step, self._logs(values, 1))
            if self.model.stop_training:
                break
        return self._logs(totals, step + 1)

    def _logs(self, values: list[float], steps: int) -> dict:
        """Loss as the mean of batch means; each metric as its sum over all samples seen."""
        logs = {"loss": values[0] / steps}
        logs.update({name: total / (steps * self.global_batch) for name, total in zip(self.metric_fns, values[1:])})
        return logs

    def evaluate(self, dataset, verbose: int = 0, return_dict: bool = True) -> dict:
        """Loss and metrics of one pass over `dataset` (whole, on this worker)."""
        step = self._eval_step_fn()
        totals, count = None, 0
        for x, y in dataset:
            values = [float(v) for v in step(x, y)]
            totals = values if totals is None else [a + b for a, b in zip(totals, values)]
            count += int(x.shape[0])
        names = ["loss", *self.metric_fns]
        return {name: total / max(count, 1) for name, total in zip(names, totals or [0.0] * len(names))}

    def _guarded(self, run):
        import tensorflow as tf

        try:
            return run()
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                tf.errors.CancelledError, tf.errors.InternalError) as exc:
            raise WorkerLost(lost_worker_message(exc, self.dist, self.config.train.distribute.timeout_seconds)) \
                from None

    def _train_step_fn(self):
        if self._train_step is None:
            self._train_step = self._make_train_step()
        return self._train_step

    def _make_train_step(self):
        import tensorflow as tf

        model, strategy, batch = self.model, self.dist.strategy, self.global_batch

        def replica_step(x, y):
            with tf.GradientTape() as tape:
                y_pred = model(x, training=True)
                per_example = tf.cast(self.loss_fn(*_aligned(y, y_pred)), tf.float32)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=batch)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n([tf.cast(v, tf.float32) for v in model.losses]))
                scaled = model.optimizer.scale_loss(loss)  # LossScaleOptimizer under mixed_float16
            gradients = tape.gradient(scaled, model.trainable_variables)
            model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return [loss, *(_summed(fn, y, y_pred) for fn in self.metric_fns.values())]

        @tf.function
        def train_step(inputs):
            per_replica = strategy.run(replica_step, args=inputs)
            return [strategy.reduce("SUM", value, axis=None) for value in per_replica]

        return train_step

    def _eval_step_fn(self):
        import tensorflow as tf

        if self._eval_step is None:
            model = self.model

            @tf.function
            def eval_step(x, y):
                y_pred = model(x, training=False)
                return [_summed(self.loss_fn, y, y_pred), *(_summed(fn, y, y_pred) for fn in self.metric_fns.values())]

            self._eval_step = eval_step
        return self._eval_step


def _summed(fn, y, y_pred):
    import tensorflow as tf

    return tf.reduce_sum(tf.cast(fn(*_aligned(y, y_pred)), tf.float32))


def _aligned(y, y_pred):
    """Labels and float32 predictions of the same rank where the output has one unit (binary), as Keras'
    loss and metric wrappers do before calling these per-example functions."""
    import tensorflow as tf

    y_pred = tf.cast(y_pred, tf.float32)
    if y.shape.rank == y_pred.shape.rank - 1 and y_pred.shape[-1] == 1:
        y = tf.expand_dims(y, -1)
    return tf.cast(y, y_pred.dtype) if y.dtype.is_floating else y, y_pred


def _data_sharded(dataset):
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _unsharded(dataset):
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)


def _loss_function(name: str):
    return keras.losses.get(name)


def _metric_functions(config, plan, width: int) -> dict:
    """name -> per-example function of each `train.metrics` entry ("accuracy" resolved as compile does)."""
    functions = {}
    for name in config.train.metrics:  # make_distribution has refused metrics with state
        if name in ("accuracy", "acc"):
            functions[name] = (keras.metrics.binary_accuracy if width == 1 else
                               keras.metrics.categorical_accuracy if plan.one_hot else
                               keras.metrics.sparse_categorical_accuracy)
        else:
            functions[name] = keras.metrics.get(name)._fn
    return functions


def _is_progress(callback) -> bool:
    return isinstance(callback, RichProgress)


class EpochLine(keras.callbacks.Callback):
    """What a worker other than the chief shows: one line per epoch."""

    def __init__(self, worker: int, epochs: int):
        super().__init__()
        self.worker, self.epochs, self.started = worker, epochs, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        shown = "  ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items())
        print(f"worker {self.worker}: epoch {epoch + 1}/{self.epochs}  {shown}  "
              f"({time.perf_counter() - self.started:.1f} s)", flush=True)


def _check_plan(config, plan) -> None:
    """What this loop does not do yet, refused once the labels are known (before any step runs)."""
    if plan.task == "regression" or plan.multi_label:
        raise ConfigError(f"the multi_worker strategy trains classification runs only so far; this is a "
                          f"{'regression' if plan.task == 'regression' else 'multi-label'} run.", file=config.file,
                          path="train.distribute", hint="Use mirrored (or none) for this run.")
    for key, value in (("class_weight", config.train.class_weight), ("label_smoothing", config.train.label_smoothing)):
        if value:
            raise ConfigError(f"train.{key} is not supported with the multi_worker strategy yet.", file=config.file,
                              path=f"train.{key}", hint="Leave it out, or use mirrored.")
