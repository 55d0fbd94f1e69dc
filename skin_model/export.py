"""A registry version as a TensorFlow Serving model: encoded image bytes in, 9 probabilities out.

The serving signature decodes JPEG/PNG/BMP/GIF bytes inside the graph, so a
client sends the file as it is (base64 in TF Serving's REST API). It applies
the same temperature as the app and its stricter alert threshold (the one for
unusual imaging conditions, which the graph cannot tell), and returns
``probabilities`` (N, 9, in ``skin_model.CLASSES`` order) and
``melanoma_alert`` (N,), averaging the test-time views the version was
calibrated on, as the app does. Unlike the app it does not apply EXIF
orientation (clients send upright pixels), shrink photos over 1,024 px with
Pillow first, or run the not-a-lesion check.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from skin_model import CLASSES
from skin_model.config import MELANOMA
from skin_model.errors import SkinModelError
from skin_model.modelinfo import ModelInfo
from skin_model.record import plain
from skin_model.registry import Registry, Version
from skin_model.runtime import tensorflow

SIGNATURE = "serving_default"


def serving_fn(model, temperature: float, threshold: float, image_size: int, views: int = 1):
    """The traced function TF Serving calls: a batch of encoded images -> probabilities and alert."""
    tf = tensorflow()
    from skin_model.network import forward

    mel = CLASSES.index(MELANOMA)

    def decode(data):
        # INTEGER_ACCURATE: the JPEG decoder Pillow uses, so served and in-app pixels match
        pixels = tf.cond(
            tf.io.is_jpeg(data),
            lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
            lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
        )
        logits = forward(model, pixels[None], views, image_size)[0]
        return tf.nn.softmax(logits / temperature)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve(image_bytes):
        probabilities = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec([len(CLASSES)], tf.float32))
        return {"probabilities": probabilities, "melanoma_alert": probabilities[:, mel] >= threshold}

    return serve


def savedmodel(out: Path | str, number: int | None = None, registry: Registry | None = None) -> Path:
    """Write version ``number`` (default: live) as a SavedModel folder; refuse to overwrite a non-empty one.

    TF Serving expects ``<model>/<version>/saved_model.pb``; pass
    ``<model>/<version>`` as ``out``.
    """
    tf = tensorflow()
    registry = registry or Registry()
    version = registry.live() if number is None else registry.get(number)
    model = registry.load(version)
    out = Path(out).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SkinModelError(f"{out}: already exists and is not an empty folder; choose a new one")
    info = ModelInfo.of(version.record, f"model version {version.number}")
    # no gate in the graph to tell unusual imaging conditions: every image is held to the strict threshold
    policy = info.policy
    serve = serving_fn(model, policy.temperature, policy.strict, info.image_size, policy.views)
    module = tf.Module()
    module.model, module.serve = model, serve
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        tf.saved_model.save(module, str(staging), signatures={SIGNATURE: serve})
        (staging / "assets.extra").mkdir(exist_ok=True)
        (staging / "assets.extra" / "skin_model.json").write_text(json.dumps(_description(version), indent=2))
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _description(version: Version) -> dict:
    """What a serving operator needs beside the graph: class order, threshold, provenance."""
    policy = version.record.policy
    return {
        "registry_version": version.number,
        "classes": list(CLASSES),
        "temperature": policy.temperature,
        "alert_threshold": policy.strict,
        "alert_threshold_note": "the app's threshold for unusual imaging conditions, applied to every image: "
        "the graph has no not-a-lesion gate to tell them (the app holds usual images to "
        f"{policy.threshold})",
        "views": policy.views,
        "signature": SIGNATURE,
        "inputs": {"image_bytes": "string[N]: encoded JPEG/PNG/BMP/GIF files"},
        "outputs": {"probabilities": "float32[N, 9]", "melanoma_alert": "bool[N]"},
        "test_metrics": plain(version.record.metrics.test),
    }
