"""Similar training images: exact cosine neighbours, a checksummed index stored with the version, the summary line."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from skin_model import similar
from skin_model.cli import main
from skin_model.errors import RegistryError
from skin_model.headline import headline
from skin_model.predict import Predictor
from skin_model.record import VersionRecord
from skin_model.registry import Registry

DIAGNOSES = ("melanoma", "nevus", "melanoma", "vascular lesion", "melanoma")


def make_index(vectors: np.ndarray, diagnoses=DIAGNOSES) -> similar.Index:
    n = len(vectors)
    return similar.Index(
        vectors=similar.unit(vectors.astype(np.float32)),
        diagnoses=tuple(diagnoses[i % len(diagnoses)] for i in range(n)),
        sources=tuple("ham10000/rosendahl" if i % 2 else "isic_archive" for i in range(n)),
        paths=tuple(f"Train/{diagnoses[i % len(diagnoses)]}/ISIC_{i:07d}.jpg" for i in range(n)),
    )


def test_nearest_are_the_highest_cosine_first_with_their_distance():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 24))
    index = make_index(vectors)
    query = rng.normal(size=24)

    found = index.nearest(query, 6)

    cosine = similar.unit(vectors) @ (query / np.linalg.norm(query))
    expected = np.argsort(-cosine)[:6]
    assert [n.image for n in found] == [f"ISIC_{i:07d}" for i in expected]
    assert [n.distance for n in found] == pytest.approx([1 - cosine[i] for i in expected], abs=2e-4)
    assert found == sorted(found, key=lambda n: n.distance)


def test_an_indexed_image_finds_itself_first_at_distance_zero():
    vectors = np.random.default_rng(1).normal(size=(50, 8))
    index = make_index(vectors)
    assert index.nearest(vectors[17] * 3.0, 1)[0].image == "ISIC_0000017"
    assert index.nearest(vectors[17], 1)[0].distance == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize(("k", "count"), [(0, 0), (3, 3), (99, 5)])
def test_k_is_clipped_to_the_index(k, count):
    assert len(make_index(np.eye(5)).nearest(np.ones(5), k)) == count


def test_the_index_survives_its_file_and_a_damaged_file_is_one_clear_error():
    index = make_index(np.random.default_rng(2).normal(size=(40, 16)))
    again = similar.Index.from_bytes(index.to_bytes())
    query = np.arange(16.0)
    assert [n.image for n in again.nearest(query, 5)] == [n.image for n in index.nearest(query, 5)]
    assert again.diagnoses == index.diagnoses and again.paths == index.paths
    with pytest.raises(RegistryError, match="cannot be read"):
        similar.Index.from_bytes(b"not an npz file")


@pytest.mark.parametrize(
    ("diagnoses", "line"),
    [
        (
            ["melanoma", "melanoma", "nevus", "melanoma", "melanoma", "nevus"],
            "4 of the 6 most similar training images are melanomas",
        ),
        (["nevus"] * 6, "All 6 most similar training images are nevi"),
        (
            ["seborrheic keratosis", "seborrheic keratosis", "nevus"],
            "2 of the 3 most similar training images are seborrheic keratoses",
        ),
        (["actinic keratosis"], "The most similar training image is an actinic keratosis"),
        (["nevus", "melanoma", "dermatofibroma"], "The 3 most similar training images have 3 different diagnoses"),
        (
            ["nevus", "melanoma", "melanoma", "nevus"],
            "2 of the 4 most similar training images are nevi",
        ),  # tie: nearest
    ],
)
def test_the_summary_line(diagnoses, line):
    neighbours = [
        similar.Neighbour(f"ISIC_{i:07d}", d, 0.1 * i, "x", f"Train/{d}/a.jpg") for i, d in enumerate(diagnoses)
    ]
    assert similar.summary(neighbours) == line
    assert similar.summary([]) is None


def test_thumbnails_come_only_from_inside_the_dataset_folder(tmp_path):
    (tmp_path / "Train" / "nevus").mkdir(parents=True)
    (tmp_path / "Train" / "nevus" / "ISIC_0000001.jpg").write_bytes(b"x")
    (tmp_path.parent / "outside.jpg").write_bytes(b"x")
    inside = similar.Neighbour("ISIC_0000001", "nevus", 0.1, "isic_archive", "Train/nevus/ISIC_0000001.jpg")
    escape = similar.Neighbour("outside", "nevus", 0.1, "isic_archive", "../outside.jpg")
    missing = similar.Neighbour("ISIC_0000002", "nevus", 0.1, "isic_archive", "Train/nevus/ISIC_0000002.jpg")

    assert similar.local_file(inside, [tmp_path]) == tmp_path / "Train" / "nevus" / "ISIC_0000001.jpg"
    assert similar.local_file(escape, [tmp_path]) is None
    assert similar.local_file(missing, [tmp_path]) is None
    assert similar.local_file(inside, []) is None
    assert inside.url == "https://api.isic-archive.com/images/ISIC_0000001/"
    assert escape.url is None


# -- stored with a version, served by the predictor ------------------------------------------------------


@pytest.fixture
def indexed(tiny_model, servable, lesion_images):
    """The tiny model live with an index of six generated images' own features."""
    from skin_model import robustness

    images = lesion_images(6, seed=11, size=64)
    registry = Registry()
    features = robustness.embedder(tiny_model, 32)(images)[1]  # as training indexes its images
    index = make_index(features, diagnoses=("melanoma", "nevus") * 3)
    version = registry.register(
        tiny_model,
        VersionRecord.from_dict(servable(tiny_model)),
        activate=True,
        files={similar.INDEX_FILE: index.to_bytes()},
    )
    return {"registry": registry, "version": version, "images": images}


def test_the_predictor_gives_k_similar_cases_the_image_itself_first(indexed):
    predictor = Predictor.load()
    result = predictor.predict(indexed["images"][3], similar=4)

    assert len(result.similar) == 4
    assert result.similar[0].image == "ISIC_0000003" and result.similar[0].distance == pytest.approx(0, abs=1e-3)
    assert [set(d) for d in result.to_dict()["similar"]] == [{"image", "diagnosis", "distance", "source"}] * 4
    assert "similar" not in predictor.predict(indexed["images"][3]).to_dict()  # not asked: not in the JSON


def test_a_refused_image_gets_no_similar_cases(indexed, tiny_model, servable):
    refusing = servable(tiny_model)
    refusing["gate"] = dict(refusing["gate"], bias=-10.0)  # a gate that refuses everything
    files = {similar.INDEX_FILE: (indexed["version"].path / similar.INDEX_FILE).read_bytes()}
    indexed["registry"].register(tiny_model, VersionRecord.from_dict(refusing), activate=True, files=files)

    result = Predictor.load().predict(indexed["images"][0], similar=6)
    assert result.lesion_like is False and result.similar == []
    assert result.to_dict()["similar"] == []


def test_a_modified_index_file_refuses_the_version(indexed):
    version = indexed["version"]
    path = version.path / similar.INDEX_FILE
    path.chmod(0o644)
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(RegistryError, match=r"similar\.npz is missing or was modified"):
        indexed["registry"].verify(version)


def test_cli_predict_similar_adds_k_cases_to_each_json_result(indexed, capsys, tmp_path, encode):
    path = tmp_path / "lesion.png"
    path.write_bytes(encode(indexed["images"][1], "PNG"))

    assert main(["predict", str(path), "--json", "--similar", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["similar"][0]["image"] == "ISIC_0000001" and len(result["similar"]) == 2
    assert main(["predict", str(path), "--json", "--similar", "0"]) == 0
    assert "similar" not in json.loads(capsys.readouterr().out)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is installed by `make test`")
def test_cli_report_writes_a_pdf_naming_the_top_class_version_alert_and_similar_cases(
    indexed, capsys, tmp_path, encode
):
    path = tmp_path / "lesion.png"
    path.write_bytes(encode(indexed["images"][2], "PNG"))
    out = tmp_path / "report.pdf"

    assert main(["report", str(path), str(path), "-o", str(out), "--case-reference", "clinic 4 / case 17"]) == 0
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    result = Predictor.load().predict(indexed["images"][2], similar=6)
    assert text.count("Skin lesion decision-support report") == 3  # a summary page, then one page per image
    assert headline(result).title in text
    assert f"model version {indexed['version'].number}" in text
    assert "clinic 4 / case 17" in text
    assert similar.summary(result.similar) in text
    assert "lesion.png" not in text  # the file name may name the patient: it stays out
