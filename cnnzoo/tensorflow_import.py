"""Importing TensorFlow quietly: its C++ start-up messages would bury cnnzoo's own output."""

from __future__ import annotations

import os


def import_tensorflow():
    """Import TensorFlow with its pre-logging chatter (CUDA probes on CPU machines) silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
        import keras  # noqa: F401  (Keras logs on import too)
        tf.config.list_physical_devices()  # the CUDA probe happens here, once
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tf
