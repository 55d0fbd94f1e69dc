"""The TF Serving export: bytes in, the app's own probabilities out, and the CLI around it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from skin_model import CLASSES, images
from skin_model.cli import main
from skin_model.export import SIGNATURE, savedmodel
from skin_model.predict import Predictor
from skin_model.runtime import tensorflow

pytestmark = pytest.mark.slow


def encoded(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def keras_probabilities(predictor: Predictor, data: bytes) -> np.ndarray:
    return predictor.probabilities(predictor.logits_features(images.decode(data))[0])  # over the served views


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The committed default model (registry version 1), exported once."""
    home = tmp_path_factory.mktemp("export_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIN_HOME", str(home))
        out = savedmodel(home / "serving" / "skin" / "1")
        predictor = Predictor.load()
    return out, predictor


def test_the_serving_signature_matches_the_keras_model_within_1e_5(exported, blob):
    tf = tensorflow()
    out, predictor = exported
    labels = ("melanoma", "nevus", "basal cell carcinoma")
    files = [encoded(blob(label, seed=i, size=180), fmt) for i, label in enumerate(labels) for fmt in ("JPEG", "PNG")]

    served = tf.saved_model.load(str(out)).signatures[SIGNATURE](image_bytes=tf.constant(files))

    expected = np.stack([keras_probabilities(predictor, data) for data in files])
    assert served["probabilities"].shape == (len(files), len(CLASSES))
    assert np.abs(served["probabilities"].numpy() - expected).max() < 1e-5
    mel = CLASSES.index("melanoma")
    # no gate in the graph: every image is held to the threshold the app keeps for unusual imaging conditions
    assert list(served["melanoma_alert"].numpy()) == list(expected[:, mel] >= predictor.info.strict_threshold)


def test_the_export_describes_classes_and_threshold_for_the_operator(exported):
    out, predictor = exported

    description = json.loads((out / "assets.extra" / "skin_model.json").read_text())

    assert description["classes"] == list(CLASSES)
    assert description["alert_threshold"] == predictor.info.strict_threshold <= predictor.threshold
    assert str(predictor.threshold) in description["alert_threshold_note"]  # what the app holds usual images to
    assert description["registry_version"] == 1
    assert description["views"] == predictor.views == predictor.record.config.views  # as calibrated


def test_cli_export_writes_a_savedmodel_and_refuses_to_overwrite(capsys, tmp_path, skin_home):
    target = tmp_path / "skin" / "1"

    assert main(["export", str(target), "--format", "savedmodel", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"savedmodel": str(target)}
    assert (target / "saved_model.pb").is_file()
    before = sorted(p.name for p in target.iterdir())

    assert main(["export", str(target)]) == 2  # the CLI's code for a problem the user can fix
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0]
    assert sorted(p.name for p in target.iterdir()) == before
