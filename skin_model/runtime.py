"""TensorFlow process settings: quiet logs, thread counts, seeds.

Thread counts must be set before the first TensorFlow op, so every entry
point calls :func:`tensorflow` instead of importing TensorFlow directly.
"""

from __future__ import annotations

import os
import warnings
from functools import cache

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@cache
def tensorflow():
    """Import TensorFlow once, with threads sized for the machine."""
    import tensorflow as tf

    threads = int(os.environ.get("SKIN_THREADS", "0")) or (os.cpu_count() or 1)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:  # already initialised by a caller: keep its settings
        pass
    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", message=".*shuffle=True.*was passed")
    return tf


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Fix Python, NumPy and TensorFlow seeds (and optionally op determinism)."""
    tf = tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
