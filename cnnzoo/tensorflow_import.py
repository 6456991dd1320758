"""Importing TensorFlow quietly: its C++ start-up messages would bury cnnzoo's own output."""

from __future__ import annotations

import os
import sys


def import_tensorflow():
    """Import TensorFlow with its pre-logging chatter (CUDA probes on CPU machines) silenced.

    Once imported, the module is returned as is: no environment or file-descriptor work, so calling this
    inside a traced function (a tf.data map) leaves nothing for AutoGraph to trip over.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
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
