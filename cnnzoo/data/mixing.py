"""MixUp and CutMix of training batches (`data.mix`), after augmentation, on one-hot labels.

Both are Keras' own layers (keras.layers.MixUp, keras.layers.CutMix), which mix the labels with the
images when called on {"images", "labels"}; this module only picks one per batch when both are on."""

from __future__ import annotations

from typing import Any, Callable

from cnnzoo.tensorflow_import import import_tensorflow


def make_mixer(spec: Any, seed: int) -> Callable | None:
    """(images, one-hot labels) -> mixed (images, labels), or None when `spec` switches both off."""
    import keras

    tf = import_tensorflow()
    layers = []
    if spec is not None and spec.mixup_alpha > 0:
        layers.append(keras.layers.MixUp(alpha=spec.mixup_alpha, seed=seed))
    if spec is not None and spec.cutmix_factor > 0:
        layers.append(keras.layers.CutMix(factor=spec.cutmix_factor, seed=seed))
    if not layers:
        return None

    def apply(layer, images, labels):
        mixed = layer({"images": images, "labels": labels}, training=True)
        return mixed["images"], tf.cast(mixed["labels"], labels.dtype)

    def mix(images, labels):
        if len(layers) == 1:
            return apply(layers[0], images, labels)
        return tf.cond(tf.random.uniform(()) < 0.5, lambda: apply(layers[0], images, labels),
                       lambda: apply(layers[1], images, labels))

    return mix
