"""File lists in, tf.data batches out: training memory does not grow with the data.

Only file names and labels are held (a few bytes per image); pixels are
decoded in parallel as batches are needed, with the same Pillow decode the
predictor uses (EXIF rotation, any colour mode to RGB), then sized by the
model's own resize op. Each worker of a cluster reads its own shard of the
file list, so no two workers decode the same image in an epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from skin_model.images import decode
from skin_model.runtime import tensorflow


def _reader(image_size: int, condition: str | None = None):
    """A tf.data map: file name -> ``(image_size, image_size, 3)`` float32 pixels, as the model resizes them.

    ``condition``: a stress-test condition (``shift.CONDITIONS``) applied to the decoded full-size pixels.
    """
    tf = tensorflow()
    from skin_model.network import resize
    from skin_model.shift import apply

    def load(path: bytes) -> np.ndarray:
        pixels = decode(Path(path.decode()))
        return apply(condition, pixels) if condition else pixels

    def read(path):
        pixels = tf.numpy_function(load, [path], tf.uint8, stateful=False)
        pixels.set_shape((None, None, 3))
        return resize(pixels, image_size)

    return read


def training(
    paths: Sequence[Path | str],
    labels: np.ndarray,
    weights: np.ndarray,
    image_size: int,
    batch: int,
    seed: int,
    context=None,
    device: str = "none",
    paired: bool = False,
    look_swap: float = 0.0,
):
    """Endless shuffled, augmented ``(pixels, label, weight)`` batches of this worker's shard.

    ``context``: a tf.distribute InputContext; ``device``: camera-like augmentation strength (see network.augmenter).
    ``paired``: each batch holds ``batch // 2`` images, then their camera-altered twins in the same order.
    ``look_swap``: the share of images re-toned to another image's colour look (see network.swap_looks).

    Endless so every worker runs the same number of steps per epoch even
    when the shards differ by an image; the caller counts steps.
    """
    tf = tensorflow()
    from skin_model.network import augmenter

    augment = augmenter(seed, device, paired, look_swap)
    read = _reader(image_size)
    names = tf.data.Dataset.from_tensor_slices(
        ([str(p) for p in paths], np.asarray(labels, np.int32), np.asarray(weights, np.float32))
    )
    if context is not None and context.num_input_pipelines > 1:
        names = names.shard(context.num_input_pipelines, context.input_pipeline_id)
    names = names.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = names.map(lambda p, y, w: (read(p), y, w), num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    twice = (lambda t: tf.concat([t, t], axis=0)) if paired else (lambda t: t)
    ds = ds.batch(batch // 2 if paired else batch, drop_remainder=True)
    ds = ds.map(lambda x, y, w: (augment(x), twice(y), twice(w)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def pixels(paths: Sequence[Path | str], image_size: int, batch: int = 64, condition: str | None = None):
    """Batches of resized pixels in file order, for scoring (no augmentation)."""
    tf = tensorflow()
    read = _reader(image_size, condition)
    ds = tf.data.Dataset.from_tensor_slices([str(p) for p in paths])
    return ds.map(read, num_parallel_calls=tf.data.AUTOTUNE).batch(batch).prefetch(tf.data.AUTOTUNE)


def logits(
    model,
    paths: Sequence[Path | str],
    image_size: int,
    batch: int = 64,
    condition: str | None = None,
    views: int = 1,
) -> np.ndarray:
    """Inference-mode outputs of files, in order, without holding their pixels (a list for multi-output models).

    ``views``: logits averaged over that many test-time views (see ``network.forward``).
    """
    from skin_model.network import forward

    out = [forward(model, x, views) for x in pixels(paths, image_size, batch, condition)]
    if isinstance(out[0] if out else None, (list, tuple)):
        return [np.concatenate([o[i].numpy() for o in out]) for i in range(len(out[0]))]
    out = [o.numpy() for o in out]
    return np.concatenate(out) if out else np.empty((0, int(model.outputs[0].shape[-1])), np.float32)
