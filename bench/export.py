"""The TF Serving export checked against the app's model on real images, and its speed beside it.

Exports the live version (the committed default on a fresh registry) with
``skin_model export``, loads it with ``tf.saved_model.load`` and compares the
serving signature's probabilities with the Keras model's (the app's decode,
same temperature) on every image of the shared Train folder, or ``--limit``.
Writes the "Serving export" section of ``bench/RESULTS.md``.

    python -m bench.export --data ../shared/data/isic9
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.publish import put_section

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--limit", type=int, default=0, help="compare on this many images (0: all)")
    args = parser.parse_args(argv)

    from skin_model import images
    from skin_model.export import SIGNATURE, savedmodel
    from skin_model.predict import Predictor
    from skin_model.registry import Registry
    from skin_model.runtime import tensorflow

    tf = tensorflow()
    files = sorted((Path(args.data) / "Train").rglob("*.jpg"))
    files = files[: args.limit] if args.limit else files
    data = [f.read_bytes() for f in files]
    with tempfile.TemporaryDirectory() as scratch:
        registry = Registry(Path(scratch) / "models")
        predictor = Predictor(registry.live(), registry.load(registry.live()))
        serve = tf.saved_model.load(str(savedmodel(Path(scratch) / "skin" / "1", registry=registry)))
        signature = serve.signatures[SIGNATURE]

        started = time.perf_counter()
        keras_probs = np.stack([predictor.probabilities(predictor.logits_features(images.decode(d))[0]) for d in data])
        keras_s = time.perf_counter() - started
        signature(image_bytes=tf.constant(data[:2]))  # trace once
        started = time.perf_counter()
        served = np.concatenate(
            [
                signature(image_bytes=tf.constant(data[i : i + 32]))["probabilities"].numpy()
                for i in range(0, len(data), 32)
            ]
        )
        served_s = time.perf_counter() - started

    diff = np.abs(served - keras_probs)
    same_top = float((served.argmax(1) == keras_probs.argmax(1)).mean())
    result = {
        "images": len(data),
        "max_abs_difference": float(diff.max()),
        "mean_abs_difference": float(diff.mean()),
        "same_top_class": same_top,
        "keras_images_per_s": len(data) / keras_s,
        "savedmodel_images_per_s": len(data) / served_s,
        "registry_version": predictor.version.number,
    }
    (HERE / "export_results.json").write_text(json.dumps(result, indent=2))
    text = "\n".join(
        [
            "## Serving export (`python -m bench.export`)",
            "",
            f"The live model (registry version {result['registry_version']}: the committed default) exported with "
            "`python -m skin_model export DIR --format savedmodel`, loaded with `tf.saved_model.load`, and its "
            f"`serving_default` signature (encoded bytes in) compared on {len(data):,} real images of the shared "
            "Train folder with the Keras model behind the app (Pillow decode, same temperature; both average the "
            f"version's {predictor.views} test-time view(s)).",
            "",
            "| measure | value |",
            "|---|---|",
            f"| largest difference of any of the 9 probabilities | {result['max_abs_difference']:.1e} |",
            f"| mean difference | {result['mean_abs_difference']:.1e} |",
            f"| same top class | {same_top:.1%} |",
            f"| Keras, one image at a time (decode + model), images/s | {result['keras_images_per_s']:.0f} |",
            f"| SavedModel, batches of 32 bytes strings, images/s | {result['savedmodel_images_per_s']:.0f} "
            f"({result['savedmodel_images_per_s'] / result['keras_images_per_s']:.2f}x) |",
        ]
    )
    put_section("Serving export", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
